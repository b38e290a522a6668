package sdk

import (
	"fmt"
	"net/http"
)

// Error is an error with an HTTP status. A handler returns one (usually
// through Errorf) to answer with a status other than 500, for example a 404
// when the requested thing does not exist.
type Error struct {
	// Status is the HTTP status the caller gets, 400 to 599. Any other
	// value is treated as 500.
	Status int
	// Message is sent to the caller, so it should say what is wrong in
	// terms the caller can act on, and never carry secrets.
	Message string
}

// Error returns the message.
func (e *Error) Error() string { return e.Message }

// HTTPStatus returns e.Status if it is an error status (400 to 599) and
// 500 otherwise.
func (e *Error) HTTPStatus() int {
	if e.Status < 400 || e.Status > 599 {
		return http.StatusInternalServerError
	}
	return e.Status
}

// Errorf returns an *Error with the given HTTP status and a message
// formatted as fmt.Sprintf does:
//
//	return GreetOutput{}, sdk.Errorf(404, "no customer %q", in.ID)
func Errorf(status int, format string, args ...any) error {
	return &Error{Status: status, Message: fmt.Sprintf(format, args...)}
}
