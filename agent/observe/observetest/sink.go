// Package observetest holds what tests of observed parts share: an
// observer that keeps every event.
package observetest

import (
	"bytes"
	"sync"

	"github.com/weft-dev/weft/agent/observe"
)

// Sink is an observer that keeps a copy of every event. It is safe for
// concurrent use.
type Sink struct {
	mu  sync.Mutex
	got []observe.Event
}

var _ observe.Observer = (*Sink)(nil)

// Observe keeps a copy of e, its bodies too: they are the caller's.
func (s *Sink) Observe(e *observe.Event) {
	c := *e
	c.Input, c.Output = bytes.Clone(e.Input), bytes.Clone(e.Output)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, c)
}

// Take returns the events observed since it was last called.
func (s *Sink) Take() []observe.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	got := s.got
	s.got = nil
	return got
}
