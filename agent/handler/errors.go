package handler

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// InputError reports input that does not decode into the handler's input
// type or lacks a required field. It maps to 400; Err is the part to show
// the caller.
type InputError struct {
	Service string
	Err     error
}

// Error names the service and says what went wrong.
func (e *InputError) Error() string { return fmt.Sprintf("%s: bad input: %v", e.Service, e.Err) }

// Unwrap returns the underlying error.
func (e *InputError) Unwrap() error { return e.Err }

// HandlerError is an error returned by the handler. It maps to the status
// of an error with an HTTPStatus method in its chain, else to 500.
//
// Err is the handler's error as it returned it. Which part of it a caller
// may read is the agent's to decide (a plain error's text, or an
// *sdk.OutgoingError's URL and remote answer, stay in its log); Error
// gives it in full, for the log.
type HandlerError struct {
	Service string
	Err     error
}

// Error names the service and says what went wrong, in full.
func (e *HandlerError) Error() string { return fmt.Sprintf("%s: %v", e.Service, e.Err) }

// Unwrap returns the handler's error.
func (e *HandlerError) Unwrap() error { return e.Err }

// PanicError reports a panic in the handler. It maps to 500.
type PanicError struct {
	Service string
	Value   any    // the value passed to panic
	Stack   []byte // the stack of the goroutine that panicked
}

// Error names the service and says what went wrong.
func (e *PanicError) Error() string { return fmt.Sprintf("%s: panic: %v", e.Service, e.Value) }

// Unwrap returns the panic value if it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// OutputError reports a handler output that cannot be encoded as JSON. It
// maps to 500.
type OutputError struct {
	Service string
	Err     error
}

// Error names the service and says what went wrong.
func (e *OutputError) Error() string { return fmt.Sprintf("%s: encode output: %v", e.Service, e.Err) }

// Unwrap returns the encoding error.
func (e *OutputError) Unwrap() error { return e.Err }

// Status returns the HTTP status for an error from Invoke: 400 for an
// *InputError, the status of an error the handler returned that has an
// HTTPStatus() int method (*sdk.Error, *sdk.OutgoingError, *sdk.SOAPFault,
// or a service's own type), 504 for
// a deadline that passed, 503 for a closed service, and 500 for anything
// else. It returns 200 for nil.
func Status(err error) int {
	var (
		ie *InputError
		he *HandlerError
		se interface{ HTTPStatus() int } // *sdk.Error, *sdk.OutgoingError, *sdk.SOAPFault
	)
	switch {
	case err == nil:
		return http.StatusOK
	case errors.As(err, &ie):
		return http.StatusBadRequest
	case errors.As(err, &he) && errors.As(he.Err, &se):
		if st := se.HTTPStatus(); st >= 400 && st <= 599 {
			return st
		}
		return http.StatusInternalServerError // an error is never a success, nor a status HTTP cannot send
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	case errors.Is(err, ErrClosed):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
