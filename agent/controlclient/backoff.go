package controlclient

import (
	"context"
	"math/rand/v2"
	"time"
)

// Clock is the time source of a Backoff, so tests need not wait.
type Clock interface {
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Backoff yields jittered, exponentially growing waits between reconnects,
// from min up to max, and starts again from min after Reset. Jitter spreads
// a fleet's reconnects after a control plane restart.
type Backoff struct {
	min, max time.Duration
	clock    Clock
	next     time.Duration
}

// NewBackoff returns a backoff from min to max; a nil clock is the real one.
func NewBackoff(min, max time.Duration, clock Clock) *Backoff {
	if clock == nil {
		clock = realClock{}
	}
	return &Backoff{min: min, max: max, clock: clock, next: min}
}

// Next returns the next wait: a random duration in [d/2, d) where d
// doubles on every call up to max.
func (b *Backoff) Next() time.Duration {
	d := b.next
	b.next = min(b.next*2, b.max)
	half := d / 2
	return half + rand.N(half+1)
}

// Reset starts the waits again from min.
func (b *Backoff) Reset() { b.next = b.min }

// Sleep waits d or until ctx ends, returning ctx's error then.
func (b *Backoff) Sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-b.clock.After(d):
		return nil
	}
}
