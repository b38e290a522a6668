package runtime

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/weft-dev/weft/agent/handler"
	"github.com/weft-dev/weft/agent/sdk"
)

// ErrDeadline is returned (wrapped, together with context.DeadlineExceeded)
// by Invoke when the call's deadline passes before the service returns.
var ErrDeadline = errors.New("service did not finish before its deadline")

// Invoke calls svc with c and input in a goroutine apart and returns
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
	workers.run(func() {
		defer func() {
			// handler.Service.Invoke recovers; this is the last line of
			// defence, as a panic here would end the agent.
			if r := recover(); r != nil {
				done <- result{err: &handler.PanicError{Service: svc.Name(), Value: r, Stack: debug.Stack()}}
			}
		}()
		out, err := svc.Invoke(c, input)
		done <- result{out, err}
	})
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

// workers runs invocations on goroutines that outlive one call, so that a
// call starts on a stack the calls before it already grew: the interpreter
// runs deep, and growing a fresh goroutine's stack call after call costs
// more than the call itself. A worker blocked in an overrunning call is
// simply not idle; others are started as needed.
var workers = &pool{jobs: make(chan func()), idle: 2 * time.Second}

// pool is a set of worker goroutines that exit after idle with no work.
type pool struct {
	jobs chan func() // unbuffered: a send succeeds only to an idle worker
	idle time.Duration
}

// run runs f on an idle worker, or on a new one when none is idle.
func (p *pool) run(f func()) {
	select {
	case p.jobs <- f:
	default:
		go p.work(f)
	}
}

// work runs f, then whatever run hands it, until it has been idle for
// between idle and twice idle. The timer is not reset per call: that would
// cost more than the hand-over it saves.
func (p *pool) work(f func()) {
	f()
	t := time.NewTimer(p.idle)
	defer t.Stop()
	busy := false
	for {
		select {
		case f := <-p.jobs:
			f()
			busy = true
		case <-t.C:
			if !busy {
				return
			}
			busy = false
			t.Reset(p.idle)
		}
	}
}
