package runtime

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
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
//
// When ctx is a *Call, Invoke waits for its deadline on a timer of its own
// and on its parent, so that the Call never has to make its Done channel.
func Invoke(ctx context.Context, svc *handler.Service, c *sdk.Context, input []byte) ([]byte, error) {
	j := jobs.Get().(*job)
	j.svc, j.c, j.input = svc, c, input
	var stopped <-chan struct{}
	var expired <-chan time.Time
	if call, ok := ctx.(*Call); ok {
		stopped = call.parent.Done()
		j.timer.Reset(time.Until(call.deadline))
		expired = j.timer.C
	} else {
		stopped = ctx.Done()
	}
	workers.run(j)
	select {
	case <-j.done:
		j.timer.Stop()
		out, err := j.out, j.err
		*j = job{done: j.done, timer: j.timer}
		jobs.Put(j)
		return out, stoppedLate(ctx, svc, err)
	case <-expired:
		// j stays with its worker, which may still write to it.
		return nil, deadlineError(svc.Name())
	case <-stopped:
		j.timer.Stop()
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, deadlineError(svc.Name())
		}
		return nil, fmt.Errorf("invoke %s: %w", svc.Name(), ctx.Err())
	}
}

// deadlineError is what a call that overran its deadline returns.
func deadlineError(service string) error {
	return fmt.Errorf("invoke %s: %w (%w)", service, ErrDeadline, context.DeadlineExceeded)
}

// stoppedLate returns the deadline's error for a call that returned err
// because its package was closed after its deadline had passed: another
// call's overrun closed it before this call's own deadline was seen to
// (its timer's goroutine had not run yet, as happens with more runaway
// calls than cores). The call overran as much as the other one. Any other
// err is returned as it is.
func stoppedLate(ctx context.Context, svc *handler.Service, err error) error {
	if err == nil || !errors.Is(err, handler.ErrClosed) {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return deadlineError(svc.Name())
	}
	return err
}

// job is one invocation handed to a worker. Jobs are reused: a call that
// returned in time puts its job back; one that was given up on leaves it to
// its worker and the collector.
type job struct {
	svc   *handler.Service
	c     *sdk.Context
	input []byte
	out   []byte
	err   error
	done  chan struct{} // buffered: the worker never waits to say it is done
	timer *time.Timer   // the caller's deadline, stopped between calls
}

var jobs = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &job{done: make(chan struct{}, 1), timer: t}
}}

// run invokes the job's service and says it is done; after that the job is
// the caller's again.
func (j *job) run() {
	j.out, j.err = callService(j.svc, j.c, j.input)
	j.done <- struct{}{}
}

// callService invokes svc. handler.Service.Invoke recovers; the recover here is
// the last line of defence, as a panic would end the agent.
func callService(svc *handler.Service, c *sdk.Context, input []byte) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, &handler.PanicError{Service: svc.Name(), Value: r, Stack: debug.Stack()}
		}
	}()
	return svc.Invoke(c, input)
}

// workers runs invocations on goroutines that outlive one call, so that a
// call starts on a stack the calls before it already grew: the interpreter
// runs deep, and growing a fresh goroutine's stack call after call costs
// more than the call itself. A worker blocked in an overrunning call is
// simply not idle; others are started as needed.
var workers = &pool{jobs: make(chan *job), idle: 2 * time.Second}

// pool is a set of worker goroutines that exit after idle with no work.
type pool struct {
	jobs chan *job // unbuffered: a send succeeds only to an idle worker
	idle time.Duration
}

// run runs j on an idle worker, or on a new one when none is idle.
func (p *pool) run(j *job) {
	select {
	case p.jobs <- j:
	default:
		go p.work(j)
	}
}

// work runs j, then whatever run hands it, until it has been idle for
// between idle and twice idle. The timer is not reset per call: that would
// cost more than the hand-over it saves.
func (p *pool) work(j *job) {
	j.run()
	t := time.NewTimer(p.idle)
	defer t.Stop()
	busy := false
	for {
		select {
		case j := <-p.jobs:
			j.run()
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
