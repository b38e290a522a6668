// Package observe is how an agent's parts report what ran: every service
// invocation, channel request and job run ends in one Event, handed to the
// observers (statistics, samples, the live tail, metrics). Observers are
// called on the request's goroutine, so each must be quick and must not
// block: a slow consumer drops and counts, it never waits.
package observe

import (
	"sync"
	"time"
)

// The kinds of Event.
const (
	KindService = "service" // a service invocation, whatever its origin
	KindChannel = "channel" // a channel request, with or without an invocation
	KindJob     = "job"     // a job run
	// KindWorker is a worker process that ended unasked and was replaced;
	// its Name is the class of the cause (memory, stack, fatal, signal,
	// exit) and its Error the cause.
	KindWorker = "worker"
)

// The origins of a service invocation.
const (
	OriginChannel = "channel" // through a channel
	OriginInvoke  = "invoke"  // weftctl invoke
	OriginJob     = "job"     // a job's run
	OriginService = "service" // another service's ctx.Invoke
)

// Event is one thing that ran and ended.
type Event struct {
	Kind   string // KindService, KindChannel or KindJob
	Origin string // for KindService: OriginChannel, OriginInvoke, OriginJob or OriginService
	Name   string // the service, channel or job, by Kind

	Service string // the service invoked; empty for a channel request refused before any
	Channel string // the channel, for channel requests and what they invoked
	Job     string // the job, for job runs and what they invoked

	CID      string
	Status   int    // the HTTP status answered, or the one the outcome maps to
	Failed   bool   // a service error, a status of 500 or more, or a run that did not end ok
	Error    string // what went wrong; empty on success
	Stack    string // the service's stack when it panicked
	Duration time.Duration
	End      time.Time

	BytesIn, BytesOut int64
	// Input and Output are the request and response bodies (or the
	// service's input and output). They belong to the caller: an observer
	// that keeps any of them copies it.
	Input, Output []byte
}

// Observer receives events.
type Observer interface {
	Observe(e *Event)
}

// Observers fans an event out to each of its observers, in order.
type Observers []Observer

// Observe hands e to every observer.
func (os Observers) Observe(e *Event) {
	for _, o := range os {
		o.Observe(e)
	}
}

// events holds spare events, so that handing one to an observer, which
// makes it escape, costs no allocation.
var events = sync.Pool{New: func() any { return new(Event) }}

// Emit hands a copy of ev to o; ev itself stays on its caller's stack,
// and the copy is cleared when o is done, letting go of the bodies.
func Emit(o Observer, ev *Event) {
	p := events.Get().(*Event)
	*p = *ev
	o.Observe(p)
	*p = Event{}
	events.Put(p)
}
