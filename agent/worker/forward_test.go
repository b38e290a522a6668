package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/weft-dev/weft/agent/observe"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
	workerv1 "github.com/weft-dev/weft/proto/weft/worker/v1"
	"github.com/weft-dev/weft/tests/testenv"
)

// serviceEvent is a successful invocation of svc that took d.
func serviceEvent(svc string, d time.Duration) *observe.Event {
	return &observe.Event{
		Kind: observe.KindService, Origin: observe.OriginChannel, Name: svc, Service: svc, Channel: "ch",
		CID: "cid-1", Status: 200, Duration: d, End: time.Unix(1700000000, 42),
		BytesIn: 3, BytesOut: 4, Input: []byte("in!"), Output: []byte("out!"),
	}
}

func TestForwarderQueuesWhatTheAgentNeeds(t *testing.T) {
	const threshold = time.Second
	slowAfter := func(service string) time.Duration {
		switch service {
		case "strict": // slow sooner than the default
			return 50 * time.Millisecond
		case "lenient": // slow later than the default
			return 5 * time.Second
		}
		return 0
	}
	failed := serviceEvent("svc", time.Millisecond)
	failed.Status, failed.Failed, failed.Error = 500, true, "boom"
	channelFast := serviceEvent("svc", time.Millisecond)
	channelFast.Kind, channelFast.Name = observe.KindChannel, "ch"
	channelFailed := serviceEvent("svc", 2*threshold)
	channelFailed.Kind, channelFailed.Name, channelFailed.Failed, channelFailed.Status = observe.KindChannel, "ch", true, 502

	tests := []struct {
		name       string
		all        bool
		tailing    bool
		event      *observe.Event
		wantQueued bool
		wantBodies bool
	}{
		{name: "fast success", event: serviceEvent("svc", time.Millisecond)},
		{name: "failed", event: failed, wantQueued: true, wantBodies: true},
		{name: "slow by the default threshold", event: serviceEvent("svc", threshold), wantQueued: true, wantBodies: true},
		{name: "slow by the service's own", event: serviceEvent("strict", 60*time.Millisecond), wantQueued: true, wantBodies: true},
		{name: "not slow by the service's own", event: serviceEvent("lenient", 2*threshold)},
		{name: "slow past the service's own", event: serviceEvent("lenient", 6*time.Second), wantQueued: true, wantBodies: true},
		{name: "channel fast", event: channelFast},
		{name: "channel failed or slow is no sample", event: channelFailed},
		{name: "channel tailing", tailing: true, event: channelFast, wantQueued: true, wantBodies: true},
		{name: "channel all", all: true, event: channelFast, wantQueued: true},
		{name: "fast success all", all: true, event: serviceEvent("svc", time.Millisecond), wantQueued: true},
		{name: "fast success tailing", tailing: true, event: serviceEvent("svc", time.Millisecond), wantQueued: true, wantBodies: true},
		{name: "failed all", all: true, event: failed, wantQueued: true, wantBodies: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newForwarder(threshold, tt.all)
			f.slowAfter = slowAfter
			f.tailing.Store(tt.tailing)
			f.Observe(tt.event)
			b := f.take()
			if !tt.wantQueued {
				if b != nil {
					t.Fatalf("queued %v, want nothing", b)
				}
				return
			}
			if b == nil || len(b.GetEvents()) != 1 {
				t.Fatalf("queued %v, want one event", b)
			}
			ev, e := b.GetEvents()[0], tt.event
			if ev.GetKind() != e.Kind || ev.GetOrigin() != e.Origin || ev.GetName() != e.Name || ev.GetService() != e.Service ||
				ev.GetChannel() != e.Channel || ev.GetCid() != e.CID || ev.GetStatus() != int32(e.Status) || ev.GetFailed() != e.Failed ||
				ev.GetError() != e.Error || ev.GetDurationNs() != int64(e.Duration) || ev.GetEndUnixNs() != e.End.UnixNano() ||
				ev.GetBytesIn() != e.BytesIn || ev.GetBytesOut() != e.BytesOut {
				t.Fatalf("queued %v, not the event %+v", ev, e)
			}
			if gotBodies := ev.GetInput() != nil || ev.GetOutput() != nil; gotBodies != tt.wantBodies {
				t.Fatalf("bodies %q, %q; want bodies: %v", ev.GetInput(), ev.GetOutput(), tt.wantBodies)
			}
			if tt.wantBodies && (string(ev.GetInput()) != "in!" || string(ev.GetOutput()) != "out!") {
				t.Fatalf("bodies %q, %q; want %q, %q", ev.GetInput(), ev.GetOutput(), "in!", "out!")
			}
		})
	}
}

func TestForwarderCopiesBodies(t *testing.T) {
	f := newForwarder(time.Second, false)
	f.tailing.Store(true)
	e := serviceEvent("svc", time.Millisecond)
	f.Observe(e)
	// The caller reuses its buffers once Observe returns.
	copy(e.Input, "XXX")
	copy(e.Output, "YYYY")
	b := f.take()
	if b == nil || len(b.GetEvents()) != 1 {
		t.Fatalf("queued %v, want one event", b)
	}
	if ev := b.GetEvents()[0]; string(ev.GetInput()) != "in!" || string(ev.GetOutput()) != "out!" {
		t.Fatalf("queued bodies %q, %q changed with the caller's buffers", ev.GetInput(), ev.GetOutput())
	}
}

func TestForwarderDropsPastMaxQueued(t *testing.T) {
	f := newForwarder(time.Second, true)
	// Fill the queue to one short of its bound, events and records
	// together: they share it.
	f.events = make([]*workerv1.Event, maxQueued/2)
	f.logs = make([]*workerv1.LogRecord, maxQueued/2-1)
	log := slog.New(&logHandler{f: f, level: slog.LevelInfo})

	f.Observe(serviceEvent("svc", time.Millisecond)) // the last place
	f.Observe(serviceEvent("svc", time.Millisecond)) // dropped
	log.Info("dropped too")
	f.addStats([]*agentv1.StatsBucket{{Kind: "service", Name: "svc", Count: 1}}) // statistics are not bounded by it

	b := f.take()
	if got := len(b.GetEvents()) + len(b.GetLogs()); got != maxQueued {
		t.Fatalf("queued %d events and records, want %d", got, maxQueued)
	}
	if b.GetDropped() != 2 {
		t.Fatalf("dropped %d, want 2", b.GetDropped())
	}
	if len(b.GetStats()) != 1 {
		t.Fatalf("stats %v, want one bucket", b.GetStats())
	}

	// Taking empties the queue and the count.
	if b := f.take(); b != nil {
		t.Fatalf("take after take = %v, want nil", b)
	}
	f.Observe(serviceEvent("svc", time.Millisecond))
	if b := f.take(); len(b.GetEvents()) != 1 || b.GetDropped() != 0 {
		t.Fatalf("after the queue emptied: %d events, %d dropped; want 1, 0", len(b.GetEvents()), b.GetDropped())
	}

	// Once closed, nothing more is queued.
	f.close()
	f.Observe(serviceEvent("svc", time.Millisecond))
	log.Info("late")
	if b := f.take(); len(b.GetEvents())+len(b.GetLogs()) != 0 || b.GetDropped() != 2 {
		t.Fatalf("after close: %d events, %d records, %d dropped; want 0, 0, 2", len(b.GetEvents()), len(b.GetLogs()), b.GetDropped())
	}
}

// batches collects what send sends.
type batches struct {
	mu  sync.Mutex
	got []*workerv1.EventsResponse
	err error // what send returns
}

func (s *batches) send(b *workerv1.EventsResponse) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, b)
	return s.err
}

func (s *batches) all() (events []*workerv1.Event, logs []*workerv1.LogRecord, stats []*agentv1.StatsBucket, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.got {
		events = append(events, b.GetEvents()...)
		logs = append(logs, b.GetLogs()...)
		stats = append(stats, b.GetStats()...)
	}
	return events, logs, stats, len(s.got)
}

// startSend runs f.send in a goroutine and returns its result's channel.
func startSend(ctx context.Context, f *forwarder, s *batches) <-chan error {
	done := make(chan error, 1)
	go func() { done <- f.send(ctx, s.send) }()
	return done
}

// awaitSend waits for send to return.
func awaitSend(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("send did not return")
		return nil
	}
}

// poll waits until cond holds (see testenv.Await).
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.Await(t, time.Minute, what, func() (bool, string) { return cond(), "not yet" })
}

func TestForwarderSendDeliversEverythingThenEndsOnClose(t *testing.T) {
	f := newForwarder(time.Second, true)
	log := slog.New(&logHandler{f: f, level: slog.LevelInfo})
	// What waits before the stream starts goes out as one batch.
	for i := range 10 {
		e := serviceEvent("svc", time.Millisecond)
		e.CID = fmt.Sprint(i)
		f.Observe(e)
	}
	var s batches
	done := startSend(context.Background(), f, &s)
	poll(t, "the first batch", func() bool { _, _, _, n := s.all(); return n > 0 })
	if events, _, _, n := s.all(); n != 1 || len(events) != 10 {
		t.Fatalf("%d batches of %d events, want one batch of the 10 queued", n, len(events))
	}

	// One event alone goes out too, after the linger.
	f.Observe(serviceEvent("svc", time.Millisecond))
	poll(t, "a lone event", func() bool { events, _, _, _ := s.all(); return len(events) == 11 })

	// More than a batch, records and statistics: close makes send deliver
	// all of them, then return.
	const more = 2*batchSize + 5
	for i := range more {
		e := serviceEvent("svc", time.Millisecond)
		e.CID = fmt.Sprint(11 + i)
		f.Observe(e)
	}
	for i := range 3 {
		log.Info("record", "i", i)
	}
	f.addStats([]*agentv1.StatsBucket{{Kind: "service", Name: "a", Count: 1}, {Kind: "channel", Name: "b", Count: 2}})
	f.close()
	if err := awaitSend(t, done); err != nil {
		t.Fatalf("send after close = %v, want nil", err)
	}
	events, logs, stats, _ := s.all()
	if len(events) != 11+more || len(logs) != 3 || len(stats) != 2 {
		t.Fatalf("delivered %d events, %d records, %d buckets; want %d, 3, 2", len(events), len(logs), len(stats), 11+more)
	}
	for i, e := range events[11:] {
		if e.GetCid() != fmt.Sprint(11+i) {
			t.Fatalf("event %d has cid %q: out of order", 11+i, e.GetCid())
		}
	}
}

func TestForwarderSendEnds(t *testing.T) {
	t.Run("closed with nothing queued", func(t *testing.T) {
		f := newForwarder(time.Second, true)
		f.close()
		var s batches
		if err := awaitSend(t, startSend(context.Background(), f, &s)); err != nil {
			t.Fatalf("send = %v, want nil", err)
		}
		if _, _, _, n := s.all(); n != 0 {
			t.Fatalf("sent %d batches of nothing", n)
		}
	})
	t.Run("closed with statistics only", func(t *testing.T) {
		f := newForwarder(time.Second, false)
		f.addStats([]*agentv1.StatsBucket{{Kind: "service", Name: "a", Count: 1}})
		f.close()
		var s batches
		if err := awaitSend(t, startSend(context.Background(), f, &s)); err != nil {
			t.Fatalf("send = %v, want nil", err)
		}
		if _, _, stats, _ := s.all(); len(stats) != 1 {
			t.Fatalf("sent %d buckets, want 1", len(stats))
		}
	})
	t.Run("context ends", func(t *testing.T) {
		f := newForwarder(time.Second, true)
		ctx, cancel := context.WithCancel(context.Background())
		var s batches
		done := startSend(ctx, f, &s)
		cancel()
		if err := awaitSend(t, done); !errors.Is(err, context.Canceled) {
			t.Fatalf("send = %v, want context.Canceled", err)
		}
	})
	t.Run("send fails", func(t *testing.T) {
		f := newForwarder(time.Second, true)
		s := batches{err: errors.New("hung up")}
		done := startSend(context.Background(), f, &s)
		f.Observe(serviceEvent("svc", time.Millisecond))
		if err := awaitSend(t, done); err == nil || err.Error() != "hung up" {
			t.Fatalf("send = %v, want the send's error", err)
		}
	})
}

// lazy is a slog.LogValuer, resolved when the record is handled.
type lazy string

func (l lazy) LogValue() slog.Value { return slog.StringValue(string(l)) }

func TestLogHandlerFlattensGroupsAndAttrs(t *testing.T) {
	f := newForwarder(time.Second, false)
	base := slog.New(&logHandler{f: f, level: slog.LevelInfo}).With("component", "engine")
	log := base.WithGroup("req").With("id", 7)
	sibling := base.With("other", "x") // must not see req's attrs, nor they its

	log.Debug("below the level")
	log.Info("hello", "status", 200,
		slog.Group("peer", "addr", "10.0.0.1", slog.Group("tls", "v", "1.3")),
		slog.Group("", "inline", true), // an empty group's key is left out
		slog.Any("", "no key"),         // an attr without a key is left out
		slog.Any("who", lazy("resolved")))
	sibling.Warn("again", "k", "v")
	base.WithGroup("").Error("no group", "k", "v")

	b := f.take()
	if b == nil || len(b.GetLogs()) != 3 {
		t.Fatalf("queued %v, want three records", b)
	}
	type kv struct{ k, v string }
	attrs := func(r *workerv1.LogRecord) []kv {
		var out []kv
		for _, a := range r.GetAttrs() {
			out = append(out, kv{a.GetKey(), a.GetValue()})
		}
		return out
	}
	tests := []struct {
		msg   string
		level slog.Level
		attrs []kv
	}{
		{"hello", slog.LevelInfo, []kv{
			{"component", "engine"}, {"req.id", "7"}, {"req.status", "200"}, {"req.peer.addr", "10.0.0.1"},
			{"req.peer.tls.v", "1.3"}, {"req.inline", "true"}, {"req.who", "resolved"},
		}},
		{"again", slog.LevelWarn, []kv{{"component", "engine"}, {"other", "x"}, {"k", "v"}}},
		{"no group", slog.LevelError, []kv{{"component", "engine"}, {"k", "v"}}},
	}
	for i, tt := range tests {
		r := b.GetLogs()[i]
		if r.GetMessage() != tt.msg || slog.Level(r.GetLevel()) != tt.level || r.GetTimeUnixNs() == 0 {
			t.Fatalf("record %d = %q at %v (time %d), want %q at %v", i, r.GetMessage(), slog.Level(r.GetLevel()), r.GetTimeUnixNs(), tt.msg, tt.level)
		}
		if got := attrs(r); !slices.Equal(got, tt.attrs) {
			t.Fatalf("record %q attrs = %v, want %v", tt.msg, got, tt.attrs)
		}
	}
}

func TestForwarderBoundsQueuedBodies(t *testing.T) {
	f := newForwarder(time.Second, true)
	f.tailing.Store(true)
	const body = int64(len("in!") + len("out!"))
	f.bytes = maxQueuedBytes - body                  // as if other bodies waited
	f.Observe(serviceEvent("svc", time.Millisecond)) // fills the bound exactly
	f.Observe(serviceEvent("svc", time.Millisecond)) // dropped: its bodies do not fit
	f.tailing.Store(false)
	f.Observe(serviceEvent("svc", time.Millisecond)) // no bodies (metrics only): still fits
	b := f.take()
	if len(b.GetEvents()) != 2 || b.GetDropped() != 1 {
		t.Fatalf("queued %d events, dropped %d; want 2, 1", len(b.GetEvents()), b.GetDropped())
	}
	if f.bytes != maxQueuedBytes-body {
		t.Fatalf("queued bytes after take = %d, want the %d queued before", f.bytes, maxQueuedBytes-body)
	}
}

func TestForwarderSplitsBatchesByBodies(t *testing.T) {
	f := newForwarder(time.Second, true)
	big := make([]byte, batchBytes+1) // alone past a batch: it goes by itself
	third := make([]byte, batchBytes/3)
	var total int64
	for i, in := range [][]byte{big, third, third, third, third} {
		f.events = append(f.events, &workerv1.Event{Cid: fmt.Sprint(i), Input: in})
		total += int64(len(in))
	}
	f.bytes = total
	var got [][]string // the cids of each batch
	for b := f.take(); b != nil; b = f.take() {
		var cids []string
		var size int
		for _, e := range b.GetEvents() {
			cids = append(cids, e.GetCid())
			size += len(e.GetInput())
		}
		if len(cids) > 1 && size > batchBytes {
			t.Fatalf("a batch of %d events with %d bytes of bodies, past %d", len(cids), size, batchBytes)
		}
		got = append(got, cids)
	}
	if want := [][]string{{"0"}, {"1", "2", "3"}, {"4"}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("batches of events %v, want %v", got, want)
	}
	if f.bytes != 0 {
		t.Fatalf("queued bytes after taking everything = %d, want 0", f.bytes)
	}

	// Through send, everything goes, in more than one message.
	for i := range 4 {
		f.Observe(&observe.Event{Kind: observe.KindService, Service: "svc", CID: fmt.Sprint(i), Failed: true, Input: third})
	}
	f.close()
	var s batches
	if err := awaitSend(t, startSend(context.Background(), f, &s)); err != nil {
		t.Fatal(err)
	}
	if events, _, _, n := s.all(); len(events) != 4 || n < 2 {
		t.Fatalf("sent %d events in %d messages, want 4 in at least 2", len(events), n)
	}
}
