package handler

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/weft-dev/weft/agent/sdk"
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
// Err is the part to show the caller: the handler's error itself, except
// when that carries an *sdk.OutgoingError, whose text names an internal URL
// and quotes the remote's answer. Err is then an error that names only the
// connection and the CID, and unwraps to the handler's error. Error always
// gives the full text, for the log.
type HandlerError struct {
	Service string
	Err     error
}

// Error names the service and says what went wrong, in full.
func (e *HandlerError) Error() string {
	err := e.Err
	if w, ok := err.(*withheldError); ok {
		err = w.err
	}
	return fmt.Sprintf("%s: %v", e.Service, err)
}

// Unwrap returns the handler's error (through the stand-in, if any).
func (e *HandlerError) Unwrap() error { return e.Err }

// withheldError stands in for a handler's error whose text must not reach
// the caller. Its text says where the detail is; it unwraps to the
// handler's error, so its status and type still show through errors.As.
type withheldError struct {
	msg string
	err error
}

func (e *withheldError) Error() string { return e.msg }
func (e *withheldError) Unwrap() error { return e.err }

// withhold returns err, or a stand-in for it when it carries an
// *sdk.OutgoingError: the remote's URL and answer are for the agent's log
// (where the invocation's failure is written with cid), not for the
// caller, who learns only which connection failed.
func withhold(err error, cid string) error {
	var oe *sdk.OutgoingError
	if !errors.As(err, &oe) {
		return err
	}
	what := "failed"
	if oe.Timeout {
		what = "did not answer in time"
	}
	msg := fmt.Sprintf("outgoing connection %s %s; see the agent log", oe.Connection, what)
	if cid != "" {
		msg += ", cid " + cid
	}
	return &withheldError{msg: msg, err: err}
}

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
