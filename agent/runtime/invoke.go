package runtime

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/weft-dev/weft/agent/handler"
	"github.com/weft-dev/weft/agent/sdk"
)

// ErrDeadline is returned (wrapped, together with context.DeadlineExceeded)
// by Invoke when the call's deadline passes before the service returns.
var ErrDeadline = errors.New("service did not finish before its deadline")

// Invoke calls svc with c and input in a goroutine of its own and returns
// its output, or ErrDeadline if ctx's deadline passes first (ctx's error if
// it is cancelled). Yaegi cannot stop one call, so an overrunning call keeps
// running until it returns or its package is closed (see Package.Close).
// Errors from the service are those of handler.Service.Invoke.
func Invoke(ctx context.Context, svc *handler.Service, c *sdk.Context, input []byte) ([]byte, error) {
	type result struct {
		out []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			// handler.Service.Invoke recovers; this is the last line of
			// defence, as a panic here would end the agent.
			if r := recover(); r != nil {
				done <- result{err: &handler.PanicError{Service: svc.Name(), Value: r, Stack: debug.Stack()}}
			}
		}()
		out, err := svc.Invoke(c, input)
		done <- result{out, err}
	}()
	select {
	case r := <-done:
		return r.out, r.err
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("invoke %s: %w (%w)", svc.Name(), ErrDeadline, context.DeadlineExceeded)
		}
		return nil, fmt.Errorf("invoke %s: %w", svc.Name(), ctx.Err())
	}
}
