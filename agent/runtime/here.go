package runtime

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weft-dev/weft/agent/handler"
	"github.com/weft-dev/weft/agent/sdk"
)

// Late is told that a call run by InvokeHere overran its deadline, at the
// deadline and while the call still runs: err is what Invoke would have
// returned (ErrDeadline). Late runs on a goroutine of its own, so it must
// not panic.
type Late interface {
	Late(err error)
}

// ErrAnsweredLate is returned by InvokeHere for a call that overran its
// deadline, once late.Late has returned.
var ErrAnsweredLate = errors.New("the call overran its deadline and was answered when it passed")

// InvokeHere calls svc with c and input like Invoke, but on the calling
// goroutine, which saves handing the call to another: a channel request
// answers sooner. If call's deadline passes before the service returns,
// InvokeHere calls late.Late then, and returns ErrAnsweredLate only once
// the service has returned (see Package.Close for a runaway) and
// late.Late has: the caller must not answer again. The call's parent being
// done does not end the wait. The deadline is armed as the time from the
// call's start to its deadline: make call (NewCall) just before.
func InvokeHere(call *Call, svc *handler.Service, c *sdk.Context, input []byte, late Late) ([]byte, error) {
	w := watches.Get().(*watch)
	w.late, w.service = late, svc.Name()
	w.state.Store(watchRunning)
	w.timer.Reset(call.remaining()) // the call starts now
	out, err := callService(svc, c, input)
	if w.state.CompareAndSwap(watchRunning, watchFinished) {
		if w.timer.Stop() { // it will not fire: w can watch another call
			w.late, w.service = nil, ""
			watches.Put(w)
		}
		return out, stoppedLate(call, svc, err)
	}
	<-w.answered
	return nil, ErrAnsweredLate
}

// The states of a watch: whichever of the call and the deadline ends the
// running state decides who answers.
const (
	watchRunning int32 = iota + 1
	watchFinished
	watchLate
)

// watch is the deadline of one call run by InvokeHere. A watch whose timer
// may have fired is never reused, so a late fire never meets another call.
type watch struct {
	state    atomic.Int32
	timer    *time.Timer // runs fire at the deadline; stopped between calls
	late     Late
	service  string
	answered chan struct{} // closed once late.Late has returned
}

var watches = sync.Pool{New: func() any {
	w := &watch{answered: make(chan struct{})}
	w.timer = time.AfterFunc(time.Hour, w.fire)
	w.timer.Stop()
	return w
}}

func (w *watch) fire() {
	if !w.state.CompareAndSwap(watchRunning, watchLate) {
		return // the call returned in time
	}
	defer close(w.answered)
	w.late.Late(deadlineError(w.service))
}
