package runtime

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// Call is the context of one invocation: its parent's values and
// cancellation, and a deadline of its own. It is a context.Context that
// costs less than context.WithTimeout when nobody waits on it, which is
// most calls: it starts no timer and registers nothing with its parent
// until Done is first asked for (a service passing it to an outgoing call,
// say). Invoke enforces its deadline either way. It is safe for concurrent
// use.
type Call struct {
	parent   context.Context
	start    time.Time // when the call started, as its caller read the clock
	deadline time.Time
	// real is the context.WithDeadline that Done made, or one of the ended
	// contexts once the call ended before anyone asked for Done: from then
	// on Done and Err read it, so Err never changes once it is set.
	real atomic.Pointer[realContext]
}

type realContext struct {
	ctx    context.Context
	cancel context.CancelFunc
	ended  bool // one of canceled and expired, not derived from the parent
}

// canceled and expired are what a Call becomes when it ends, cancelled or
// past its deadline, before anyone asked for Done: contexts already done
// with that error.
var (
	canceled = func() *realContext {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		return &realContext{ctx, cancel, true}
	}()
	expired = func() *realContext {
		ctx, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
		return &realContext{ctx, cancel, true}
	}()
)

var _ context.Context = (*Call)(nil)

// NewCall returns the context of a call that starts at start (the
// caller's time.Now, which it may use again) and must end within timeout,
// and never after parent's deadline. Cancel it when the call returns.
func NewCall(parent context.Context, start time.Time, timeout time.Duration) *Call {
	c := new(Call)
	c.Init(parent, start, timeout)
	return c
}

// Init makes c, a zero Call not yet in use, what NewCall returns: for a
// caller that holds the Call inside a struct of its own, saving an
// allocation per call.
func (c *Call) Init(parent context.Context, start time.Time, timeout time.Duration) {
	d := start.Add(timeout)
	if pd, ok := parent.Deadline(); ok && pd.Before(d) {
		d = pd
	}
	c.parent, c.start, c.deadline = parent, start, d
}

// remaining is how long the call has until its deadline, as of its start:
// a caller that starts it at once saves reading the clock.
func (c *Call) remaining() time.Duration { return c.deadline.Sub(c.start) }

// Deadline returns the call's deadline.
func (c *Call) Deadline() (time.Time, bool) { return c.deadline, true }

// Done returns a channel closed when the deadline passes, the parent is
// done or the call is cancelled.
func (c *Call) Done() <-chan struct{} { return c.materialize().ctx.Done() }

// Err returns context.DeadlineExceeded once the deadline has passed,
// context.Canceled once the call was cancelled, the parent's error once
// it is done, else nil; whichever came first, for good.
func (c *Call) Err() error {
	if r := c.real.Load(); r != nil {
		return r.ctx.Err()
	}
	var end *realContext
	switch err := c.parent.Err(); {
	case errors.Is(err, context.DeadlineExceeded):
		end = expired
	case err != nil:
		end = canceled
	case !time.Now().Before(c.deadline):
		end = expired
	default:
		return nil
	}
	c.real.CompareAndSwap(nil, end)
	return c.real.Load().ctx.Err()
}

// Value returns the parent's value for key. (context.Cause of a Call is
// its parent's cause until Done has been asked for.)
func (c *Call) Value(key any) any {
	if r := c.real.Load(); r != nil && !r.ended {
		return r.ctx.Value(key)
	}
	return c.parent.Value(key)
}

// Cancel ends the call: Done is closed and Err says context.Canceled,
// unless the deadline or the parent ended it first.
func (c *Call) Cancel() { c.CancelAt(time.Now()) }

// CancelAt is Cancel for a caller that read the clock at now: a call past
// its deadline by then says context.DeadlineExceeded from then on.
func (c *Call) CancelAt(now time.Time) {
	end := canceled
	if !now.Before(c.deadline) {
		end = expired
	}
	if c.real.CompareAndSwap(nil, end) {
		return
	}
	c.real.Load().cancel() // an ended one stays as it ended
}

// String describes the call, as the context package's own contexts do.
func (c *Call) String() string {
	return "runtime.Call(deadline " + c.deadline.Format(time.RFC3339Nano) + ")"
}

// materialize makes the context.WithDeadline that Done and Err read from
// then on, once.
func (c *Call) materialize() *realContext {
	if r := c.real.Load(); r != nil {
		return r
	}
	ctx, cancel := context.WithDeadline(c.parent, c.deadline)
	if r := (&realContext{ctx: ctx, cancel: cancel}); c.real.CompareAndSwap(nil, r) {
		return r
	}
	cancel()
	return c.real.Load()
}
