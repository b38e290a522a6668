package recent

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weft-dev/weft/agent/observe"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// Bounds of a tail: the invocations waiting to be sent, and when a batch
// goes out.
const (
	TailQueue      = 1024
	TailBatch      = 100
	TailFlushEvery = 100 * time.Millisecond
)

// Filter says which invocations a tail gets.
type Filter struct {
	// Service keeps invocations of this service; empty means any.
	Service string
	// Channel keeps requests of this channel; empty means any.
	Channel string
	// Samples puts request and response samples in the invocations.
	Samples bool
}

// Tail is an observe.Observer that streams invocations to subscriptions,
// each with its filter and its own queue. Observe never waits: when a
// subscription's queue is full, the invocation is dropped and counted, and
// the next batch says how many. It is safe for concurrent use.
//
// A channel request shows once, as an invocation of kind channel: its
// service invocation is left out. An invocation that did not come through
// a channel shows as kind invoke, job or service; the job-run events, which
// repeat a job's service invocation, are left out.
type Tail struct {
	sampleBytes int
	log         *slog.Logger
	every       time.Duration

	mu     sync.Mutex
	byID   map[string]*subscription
	subs   atomic.Pointer[[]*subscription] // what Observe reads, rebuilt on each change
	active func(bool)                      // told when the first tail starts and the last ends
}

// OnActive makes t call f with true when its first tail starts and with
// false when its last one ends, with t's lock held: f must not call t.
// Call it before any tail starts.
func (t *Tail) OnActive(f func(active bool)) { t.active = f }

var _ observe.Observer = (*Tail)(nil)

// subscription is one tail.
type subscription struct {
	t       *Tail
	id      string
	filter  Filter
	send    func(*agentv1.TailEvents) error
	queue   chan *agentv1.Invocation
	dropped atomic.Int64
	stop    chan struct{}
	once    sync.Once
}

// NewTail returns a Tail with no subscriptions, whose samples are at most
// sampleBytes each (DefaultSampleBytes when 0).
func NewTail(sampleBytes int, log *slog.Logger) *Tail {
	if sampleBytes <= 0 {
		sampleBytes = DefaultSampleBytes
	}
	return &Tail{sampleBytes: sampleBytes, log: log.With("component", "tail"), every: TailFlushEvery, byID: map[string]*subscription{}}
}

// Start starts the tail id, replacing one of that id. Every TailFlushEvery,
// or as soon as TailBatch invocations wait, it calls send with them (in a
// goroutine of its own, one call at a time); when send fails, the tail
// ends. The returned stop ends this tail, and does nothing once another
// tail took its id.
func (t *Tail) Start(id string, f Filter, send func(*agentv1.TailEvents) error) (stop func()) {
	s := &subscription{t: t, id: id, filter: f, send: send, queue: make(chan *agentv1.Invocation, TailQueue), stop: make(chan struct{})}
	t.mu.Lock()
	if old := t.byID[id]; old != nil {
		old.end()
	}
	t.byID[id] = s
	t.publish()
	t.mu.Unlock()
	go s.run(t.every)
	return func() { t.remove(s) }
}

// Stop ends the tail id and reports whether there was one.
func (t *Tail) Stop(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.byID[id]
	if s == nil {
		return false
	}
	delete(t.byID, id)
	t.publish()
	s.end()
	return true
}

// StopAll ends every tail.
func (t *Tail) StopAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, s := range t.byID {
		delete(t.byID, id)
		s.end()
	}
	t.publish()
}

// Len returns how many tails run.
func (t *Tail) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byID)
}

// remove ends s, and forgets it unless its id was taken over.
func (t *Tail) remove(s *subscription) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byID[s.id] == s {
		delete(t.byID, s.id)
		t.publish()
	}
	s.end()
}

// publish makes Observe see t.byID. Call it with t.mu held.
func (t *Tail) publish() {
	subs := make([]*subscription, 0, len(t.byID))
	for _, s := range t.byID {
		subs = append(subs, s)
	}
	old := t.subs.Swap(&subs)
	if was := old != nil && len(*old) > 0; t.active != nil && was != (len(subs) > 0) {
		t.active(len(subs) > 0)
	}
}

// Observe queues e for every tail that wants it, without waiting.
func (t *Tail) Observe(e *observe.Event) {
	subs := t.subs.Load()
	if subs == nil || len(*subs) == 0 || !tailed(e) {
		return
	}
	var plain, sampled *agentv1.Invocation // made once, shared by the tails
	for _, s := range *subs {
		if !s.wants(e) {
			continue
		}
		if len(s.queue) == cap(s.queue) {
			// Full: dropped anyway, so build nothing for it.
			s.dropped.Add(1)
			continue
		}
		var inv *agentv1.Invocation
		if s.filter.Samples {
			if sampled == nil {
				sampled = invocation(e, t.sampleBytes, true)
			}
			inv = sampled
		} else {
			if plain == nil {
				plain = invocation(e, t.sampleBytes, false)
			}
			inv = plain
		}
		select {
		case s.queue <- inv:
		default:
			s.dropped.Add(1)
		}
	}
}

// tailed reports whether e shows in tails: a channel request, or a service
// invocation that came through no channel.
func tailed(e *observe.Event) bool {
	switch e.Kind {
	case observe.KindChannel:
		return true
	case observe.KindService:
		return e.Origin != observe.OriginChannel
	}
	return false
}

func (s *subscription) wants(e *observe.Event) bool {
	return (s.filter.Service == "" || e.Service == s.filter.Service) &&
		(s.filter.Channel == "" || e.Channel == s.filter.Channel)
}

// end stops the sender; what it has not sent is dropped.
func (s *subscription) end() { s.once.Do(func() { close(s.stop) }) }

// run sends the queue in batches until the tail ends or a send fails.
func (s *subscription) run(every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	var batch []*agentv1.Invocation
	flush := func() bool {
		select {
		case <-s.stop:
			return false // ended meanwhile: send nothing more
		default:
		}
		dropped := s.dropped.Swap(0)
		if len(batch) == 0 && dropped == 0 {
			return true
		}
		err := s.send(&agentv1.TailEvents{TailId: s.id, Invocations: batch, Dropped: dropped})
		batch = nil // the message owns the old one
		if err != nil {
			s.t.log.Debug("tail ended: cannot send", "tail", s.id, "err", err)
			s.t.remove(s)
			return false
		}
		return true
	}
	for {
		select {
		case <-s.stop:
			return
		case inv := <-s.queue:
			if batch = append(batch, inv); len(batch) >= TailBatch && !flush() {
				return
			}
		case <-tick.C:
			if !flush() {
				return
			}
		}
	}
}
