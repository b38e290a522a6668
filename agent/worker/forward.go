package worker

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weft-dev/weft/agent/observe"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
	workerv1 "github.com/weft-dev/weft/proto/weft/worker/v1"
)

// maxQueued and maxQueuedBytes (of bodies) bound the events and log
// records waiting for the agent to read them; past them they are dropped
// and counted, never waited for.
const (
	maxQueued      = 1 << 16
	maxQueuedBytes = 64 << 20
)

// Batching of the Events stream: a batch goes out linger after its first
// event, or as soon as it holds batchSize, so that a busy worker sends
// about a hundred messages a second rather than one per request.
const (
	linger     = 10 * time.Millisecond
	batchSize  = 1024
	batchBytes = 16 << 20 // of bodies: a batch stays far below MaxMessage
)

// forwarder is the worker's observer and log sink: it queues what ran and
// what was logged for the Events stream to the agent, where the agent's
// observers (statistics, metrics, samples, tails) and log take them.
type forwarder struct {
	slowThreshold time.Duration
	slowAfter     func(service string) time.Duration // the service's own threshold, 0 for none
	all           bool                               // the agent has metrics: every event goes
	tailing       atomic.Bool

	mu      sync.Mutex
	events  []*workerv1.Event
	bytes   int64 // of the queued events' bodies
	logs    []*workerv1.LogRecord
	stats   []*agentv1.StatsBucket
	dropped int64
	ready   chan struct{} // a send when something was queued
	closed  bool
}

var _ observe.Observer = (*forwarder)(nil)

func newForwarder(slowThreshold time.Duration, all bool) *forwarder {
	return &forwarder{slowThreshold: slowThreshold, all: all, ready: make(chan struct{}, 1)}
}

// Observe queues e when the agent needs it: for its metrics (every event),
// a tail, or its samples (a failed or slow service invocation). The
// worker's own statistics count every event. Bodies go along only for the
// samples and the tails.
func (f *forwarder) Observe(e *observe.Event) {
	tailing := f.tailing.Load()
	sample := e.Kind == observe.KindService && (e.Failed || e.Duration >= f.threshold(e.Service))
	if !f.all && !tailing && !sample {
		return
	}
	ev := &workerv1.Event{
		Kind: e.Kind, Origin: e.Origin, Name: e.Name, Service: e.Service, Channel: e.Channel, Job: e.Job,
		Cid: e.CID, Status: int32(e.Status), Failed: e.Failed, Error: e.Error, Stack: e.Stack,
		DurationNs: int64(e.Duration), EndUnixNs: e.End.UnixNano(), BytesIn: e.BytesIn, BytesOut: e.BytesOut,
	}
	if tailing || sample {
		ev.Input, ev.Output = slices.Clone(e.Input), slices.Clone(e.Output) // the event's belong to the caller
	}
	size := int64(len(ev.Input) + len(ev.Output))
	f.mu.Lock()
	if len(f.events)+len(f.logs) >= maxQueued || f.bytes+size > maxQueuedBytes || f.closed {
		f.dropped++
	} else {
		f.events = append(f.events, ev)
		f.bytes += size
	}
	f.mu.Unlock()
	f.signal()
}

func (f *forwarder) threshold(service string) time.Duration {
	if f.slowAfter != nil {
		if d := f.slowAfter(service); d > 0 {
			return d
		}
	}
	return f.slowThreshold
}

func (f *forwarder) log(r *workerv1.LogRecord) {
	f.mu.Lock()
	if len(f.events)+len(f.logs) >= maxQueued || f.closed {
		f.dropped++
	} else {
		f.logs = append(f.logs, r)
	}
	f.mu.Unlock()
	f.signal()
}

// addStats queues statistics buckets.
func (f *forwarder) addStats(b []*agentv1.StatsBucket) {
	if len(b) == 0 {
		return
	}
	f.mu.Lock()
	f.stats = append(f.stats, b...)
	f.mu.Unlock()
	f.signal()
}

func (f *forwarder) signal() {
	select {
	case f.ready <- struct{}{}:
	default:
	}
}

// take returns what is queued and empties the queue; nil when nothing is.
func (f *forwarder) take() *workerv1.EventsResponse {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.events) == 0 && len(f.logs) == 0 && len(f.stats) == 0 && f.dropped == 0 {
		return nil
	}
	// The events up to batchBytes of bodies (at least one); the rest wait
	// for the next batch.
	n, size := 0, int64(0)
	for n < len(f.events) {
		e := int64(len(f.events[n].GetInput()) + len(f.events[n].GetOutput()))
		if n > 0 && size+e > batchBytes {
			break
		}
		n, size = n+1, size+e
	}
	b := &workerv1.EventsResponse{Events: f.events[:n:n], Logs: f.logs, Stats: f.stats, Dropped: f.dropped}
	f.events, f.bytes = f.events[n:], f.bytes-size
	if len(f.events) == 0 {
		f.events = nil
	} else {
		f.signal() // more to send
	}
	f.logs, f.stats, f.dropped = nil, nil, 0
	return b
}

// full says whether a batch should go without waiting: it is big enough,
// or the worker stops.
func (f *forwarder) full() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed || len(f.events)+len(f.logs) >= batchSize
}

// close makes the stream send what is queued and end.
func (f *forwarder) close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.signal()
}

// send streams batches to send until ctx ends or, once closed, the queue is
// empty.
func (f *forwarder) send(ctx context.Context, send func(*workerv1.EventsResponse) error) error {
	timer := time.NewTimer(linger)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-f.ready:
		}
		// Let the batch fill, unless it is full or the worker stops.
		if !f.full() {
			timer.Reset(linger)
		wait:
			for {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-timer.C:
					break wait
				case <-f.ready:
					if f.full() {
						timer.Stop()
						break wait
					}
				}
			}
		}
		if b := f.take(); b != nil {
			if err := send(b); err != nil {
				return err
			}
		}
		f.mu.Lock()
		done := f.closed && len(f.events) == 0 && len(f.logs) == 0 && len(f.stats) == 0
		f.mu.Unlock()
		if done {
			return nil
		}
	}
}

// logHandler is a slog.Handler that hands records to a forwarder, for the
// agent to log; before the agent reads them they wait in the queue.
type logHandler struct {
	f      *forwarder
	level  slog.Leveler
	attrs  []*workerv1.LogAttr // from WithAttrs, keys already prefixed
	prefix string              // the open groups, dotted, with a trailing dot
}

var _ slog.Handler = (*logHandler)(nil)

func (h *logHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	rec := &workerv1.LogRecord{TimeUnixNs: r.Time.UnixNano(), Level: int32(r.Level), Message: r.Message, Attrs: slices.Clone(h.attrs)}
	r.Attrs(func(a slog.Attr) bool {
		rec.Attrs = appendAttr(rec.Attrs, h.prefix, a)
		return true
	})
	h.f.log(rec)
	return nil
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = slices.Clone(h.attrs)
	for _, a := range attrs {
		c.attrs = appendAttr(c.attrs, h.prefix, a)
	}
	return &c
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.prefix = h.prefix + name + "."
	return &c
}

// appendAttr appends a, groups flattened into dotted keys.
func appendAttr(out []*workerv1.LogAttr, prefix string, a slog.Attr) []*workerv1.LogAttr {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range v.Group() {
			out = appendAttr(out, p, g)
		}
		return out
	}
	if a.Key == "" {
		return out
	}
	return append(out, &workerv1.LogAttr{Key: prefix + a.Key, Value: v.String()})
}
