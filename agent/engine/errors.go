package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/weft-dev/weft/agent/channel"
	"github.com/weft-dev/weft/agent/handler"
	"github.com/weft-dev/weft/agent/observe"
	"github.com/weft-dev/weft/agent/runtime"
	"github.com/weft-dev/weft/agent/sdk"
)

// message is what went wrong in err, in full but never a stack: what the
// agent's log, the failure samples and an operator read.
func message(err error, timeout time.Duration) string {
	var (
		ie *handler.InputError
		he *handler.HandlerError
		pe *handler.PanicError
	)
	switch {
	case errors.Is(err, runtime.ErrDeadline):
		return fmt.Sprintf("the service did not finish within its deadline of %s", timeout)
	case errors.As(err, &ie):
		return ie.Err.Error()
	case errors.As(err, &he):
		return he.Err.Error()
	case errors.As(err, &pe):
		return fmt.Sprintf("the service panicked: %v", pe.Value)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("the service did not finish within its deadline of %s", timeout)
	default:
		return err.Error()
	}
}

// callerMessage is what the caller of an invocation from origin is told of
// err, whose full text is detail. This is the one rule for what leaves the
// agent:
//
//   - Operators read detail: weftctl invoke and job runs, whose results
//     only reach them, and the log and failure samples, which always get
//     detail.
//   - A channel's caller, and a service calling another (whose error it
//     may return to a channel's caller as it is), read only what was
//     written for them: their own bad input, the text of an error the
//     service gave a status (an *sdk.Error, an *sdk.SOAPFault, a type of
//     its own with an HTTPStatus method), a missed deadline, a service
//     being replaced. An *sdk.OutgoingError, even wrapped, is told as the
//     connection's name and the CID: its URL and the remote's answer stay
//     in the log. Anything else, a plain Go error, a panic or an output
//     that does not encode, is told as a generic message and the CID.
func callerMessage(err error, detail, cid, origin string) string {
	if origin == observe.OriginInvoke || origin == observe.OriginJob {
		return detail
	}
	var (
		ie *handler.InputError
		he *handler.HandlerError
		pe *handler.PanicError
		oe *sdk.OutgoingError
		se interface{ HTTPStatus() int }
	)
	switch {
	case errors.As(err, &pe): // whatever the value, even an error with a status
	case errors.As(err, &ie):
		return detail
	case errors.As(err, &oe):
		what := "failed"
		if oe.Timeout {
			what = "did not answer in time"
		}
		return withCID(fmt.Sprintf("outgoing connection %s %s; see the agent log", oe.Connection, what), cid)
	case errors.As(err, &he) && errors.As(he.Err, &se):
		return detail
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, runtime.ErrDeadline), errors.Is(err, handler.ErrClosed):
		return detail
	}
	return withCID(channel.ServiceFailed, cid)
}

// withCID ends msg with the CID under which the agent logged the detail.
func withCID(msg, cid string) string {
	if cid == "" {
		return msg
	}
	return msg + ", cid " + cid
}
