// Package stats measures what an agent runs: the Recorder counts every
// service invocation, channel request and job run, and every worker
// process that ended unasked, into per-minute buckets of each object (of
// whatever kind the event names), and the Reporter sends what was counted
// since its last report to the control plane, which adds the buckets up.
// The latency scale (package agent/shared/statscale) is shared with the
// control plane, which merges the buckets of a fleet.
package stats

import (
	"maps"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weft-dev/weft/agent/observe"
	"github.com/weft-dev/weft/agent/shared/statscale"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// idleMinutes is how many minutes an object may go without an event before
// the Recorder forgets its entry; it makes a new one if the object returns.
const idleMinutes = 10

// Recorder aggregates events into per-minute buckets keyed by kind, name
// and minute. It is safe for concurrent use: the entries are found in a
// map that is never modified, only replaced (objects come and go rarely),
// so that finding one writes to no memory other requests' goroutines
// share; each entry is counted under a lock of its own, and counting an
// event allocates nothing once its object's entry exists.
type Recorder struct {
	now func() time.Time // the minute of an event without an end time

	mu      sync.Mutex                     // held to replace entries
	entries atomic.Pointer[map[key]*entry] // never modified once stored
}

var _ observe.Observer = (*Recorder)(nil)

// key names one object.
type key struct{ kind, name string }

// entry counts one object: the minute in progress and the finished minutes
// not yet taken.
type entry struct {
	mu     sync.Mutex
	dead   bool  // forgotten by the Recorder: count elsewhere
	minute int64 // of the counts below, as Unix minutes
	counts counts
	done   []*agentv1.StatsBucket // finished minutes, oldest first
}

// counts is what one object did in one minute. The histogram is an array,
// so that counting into it never allocates; only the buckets with a count
// go into the StatsBucket.
type counts struct {
	count, errors     int64
	sumUs, maxUs      int64
	bytesIn, bytesOut int64
	hist              [statscale.MaxBucket + 1]int64
	statuses          map[int32]int64 // kept across minutes: its keys are few
}

// RecorderOption adjusts a Recorder.
type RecorderOption func(*Recorder)

// WithClock makes the Recorder read the time from now, for the events that
// carry no end time.
func WithClock(now func() time.Time) RecorderOption {
	return func(r *Recorder) { r.now = now }
}

// NewRecorder returns a Recorder with no counts.
func NewRecorder(opts ...RecorderOption) *Recorder {
	r := &Recorder{now: time.Now}
	r.entries.Store(&map[key]*entry{})
	for _, o := range opts {
		o(r)
	}
	return r
}

// Observe counts e in the minute it ended in. An event older than the
// object's minute in progress is counted in that minute: events of two
// goroutines may arrive a little out of order at a minute's edge.
func (r *Recorder) Observe(e *observe.Event) {
	end := e.End
	if end.IsZero() {
		end = r.now()
	}
	minute := unixMinute(end)
	k := key{e.Kind, e.Name}
	for {
		en := r.entry(k, minute)
		en.mu.Lock()
		if en.dead {
			en.mu.Unlock()
			continue
		}
		if minute > en.minute {
			en.roll(k)
			en.minute = minute
		}
		en.counts.add(e)
		en.mu.Unlock()
		return
	}
}

// entry returns the entry of k, making it if there is none.
func (r *Recorder) entry(k key, minute int64) *entry {
	if en := (*r.entries.Load())[k]; en != nil {
		return en
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	entries := *r.entries.Load()
	if en := entries[k]; en != nil {
		return en
	}
	en := &entry{minute: minute}
	next := maps.Clone(entries)
	next[k] = en
	r.entries.Store(&next)
	return en
}

// Take returns what was counted since the last Take, as one bucket per
// object and minute (the minute in progress too, so far), and forgets it:
// the control plane adds up the buckets of a minute, so a report every few
// seconds shows in the statistics at once. Objects idle for some minutes
// are forgotten too.
func (r *Recorder) Take(now time.Time) []*agentv1.StatsBucket {
	minute := unixMinute(now)
	return r.take(minute+1, minute-idleMinutes)
}

// TakeAll returns every bucket, the minute in progress too, and forgets
// them: for the last report when the agent stops.
func (r *Recorder) TakeAll() []*agentv1.StatsBucket {
	return r.take(math.MaxInt64, math.MinInt64)
}

// take returns the buckets of the minutes before minute, oldest first for
// each object, and forgets the objects idle since before idleBefore.
func (r *Recorder) take(minute, idleBefore int64) []*agentv1.StatsBucket {
	var out []*agentv1.StatsBucket
	var idle []key
	for k, en := range *r.entries.Load() {
		en.mu.Lock()
		if en.minute < minute {
			en.roll(k)
		}
		out = en.takeDone(out, minute)
		if en.minute < idleBefore {
			idle = append(idle, k)
		}
		en.mu.Unlock()
	}
	if len(idle) > 0 {
		r.forget(idle, idleBefore)
	}
	return out
}

// forget removes the entries of keys that are still idle since before
// idleBefore.
func (r *Recorder) forget(keys []key, idleBefore int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	next := maps.Clone(*r.entries.Load())
	for _, k := range keys {
		en := next[k]
		if en == nil {
			continue
		}
		en.mu.Lock()
		if en.minute < idleBefore && en.counts.count == 0 && len(en.done) == 0 {
			en.dead = true
			delete(next, k)
		}
		en.mu.Unlock()
	}
	r.entries.Store(&next)
}

// roll moves the minute in progress, if anything was counted in it, to the
// finished ones. Caller holds en.mu.
func (en *entry) roll(k key) {
	if en.counts.count == 0 {
		return
	}
	en.done = append(en.done, en.counts.bucket(k, en.minute))
	en.counts.reset()
}

// takeDone appends to out the finished minutes before minute and forgets
// them. Caller holds en.mu.
func (en *entry) takeDone(out []*agentv1.StatsBucket, minute int64) []*agentv1.StatsBucket {
	kept := en.done[:0]
	for _, b := range en.done {
		if b.GetStartUnixMs()/time.Minute.Milliseconds() < minute { // a whole minute: exact
			out = append(out, b)
		} else {
			kept = append(kept, b)
		}
	}
	clear(en.done[len(kept):])
	en.done = kept
	return out
}

// add counts e.
func (c *counts) add(e *observe.Event) {
	us := e.Duration.Microseconds()
	c.count++
	if e.Failed {
		c.errors++
	}
	c.sumUs += us
	c.maxUs = max(c.maxUs, us)
	c.hist[statscale.BucketOf(e.Duration)]++
	// A status outside 100-999 (a service may set any) is no HTTP status:
	// the call counts, its status does not.
	if e.Status >= 100 && e.Status <= 999 {
		if c.statuses == nil {
			c.statuses = make(map[int32]int64, 4)
		}
		c.statuses[int32(e.Status)]++
	}
	c.bytesIn += e.BytesIn
	c.bytesOut += e.BytesOut
}

// bucket returns the counts as the bucket of object k in minute.
func (c *counts) bucket(k key, minute int64) *agentv1.StatsBucket {
	b := &agentv1.StatsBucket{
		Kind:        k.kind,
		Name:        k.name,
		StartUnixMs: minute * time.Minute.Milliseconds(),
		Count:       c.count,
		Errors:      c.errors,
		SumUs:       c.sumUs,
		MaxUs:       c.maxUs,
		Histogram:   make(map[int32]int64),
		BytesIn:     c.bytesIn,
		BytesOut:    c.bytesOut,
	}
	for i, n := range c.hist {
		if n > 0 {
			b.Histogram[int32(i)] = n
		}
	}
	for s, n := range c.statuses {
		if n > 0 {
			if b.Statuses == nil {
				b.Statuses = make(map[int32]int64, len(c.statuses))
			}
			b.Statuses[s] = n
		}
	}
	return b
}

// reset zeroes the counts, keeping the statuses' map and its keys.
func (c *counts) reset() {
	statuses := c.statuses
	for s := range statuses {
		statuses[s] = 0
	}
	*c = counts{statuses: statuses}
}

// unixMinute is the minute t falls in, as minutes since the Unix epoch.
func unixMinute(t time.Time) int64 {
	ms := t.UnixMilli()
	m := ms / time.Minute.Milliseconds()
	if ms < 0 && ms%time.Minute.Milliseconds() != 0 {
		m-- // floor, not truncation, before 1970
	}
	return m
}
