package recent

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/weft-dev/weft/agent/observe"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
	"github.com/weft-dev/weft/tests/testenv"
)

// collector is a tail's send func that keeps what it is sent.
type collector struct {
	mu      sync.Mutex
	batches []*agentv1.TailEvents
	got     chan struct{} // a signal per batch, never blocking
}

func newCollector() *collector { return &collector{got: make(chan struct{}, 1)} }

func (c *collector) send(ev *agentv1.TailEvents) error {
	c.mu.Lock()
	c.batches = append(c.batches, ev)
	c.mu.Unlock()
	select {
	case c.got <- struct{}{}:
	default:
	}
	return nil
}

// invocations returns every invocation received, in order, and the sum of
// the drops reported.
func (c *collector) invocations() (invs []*agentv1.Invocation, dropped int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range c.batches {
		invs = append(invs, b.GetInvocations()...)
		dropped += b.GetDropped()
	}
	return invs, dropped
}

// await polls until the collector holds n invocations plus drops.
func (c *collector) await(t *testing.T, n int) []*agentv1.Invocation {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		invs, dropped := c.invocations()
		if len(invs)+int(dropped) >= n {
			return invs
		}
		select {
		case <-c.got:
		case <-deadline:
			t.Fatalf("got %d invocations and %d drops, want %d in all", len(invs), dropped, n)
		}
	}
}

func newTestTail(every time.Duration) *Tail {
	t := NewTail(16, slog.New(slog.DiscardHandler))
	t.every = every
	return t
}

// tailEvents are what ran: a channel request with its service invocation,
// a weftctl invoke, a job run with its service invocation, and a service
// another service invoked. The CID says which.
func tailEvents() []*observe.Event {
	in := []byte(`{"password":"hunter2","x":1}`)
	return []*observe.Event{
		{Kind: observe.KindService, Origin: observe.OriginChannel, Name: "orders.get", Service: "orders.get", Channel: "orders", CID: "ch-svc", Input: in},
		{Kind: observe.KindChannel, Name: "orders", Service: "orders.get", Channel: "orders", CID: "ch", Status: 200, Input: in},
		{Kind: observe.KindChannel, Name: "orders", Channel: "orders", CID: "ch-refused", Status: 401},
		{Kind: observe.KindService, Origin: observe.OriginInvoke, Name: "orders.get", Service: "orders.get", CID: "inv", Input: in},
		{Kind: observe.KindService, Origin: observe.OriginJob, Name: "billing.run", Service: "billing.run", Job: "nightly", CID: "job-svc"},
		{Kind: observe.KindJob, Name: "nightly", Service: "billing.run", Job: "nightly", CID: "job"},
		{Kind: observe.KindService, Origin: observe.OriginService, Name: "billing.tax", Service: "billing.tax", CID: "svc"},
	}
}

func TestTailFilters(t *testing.T) {
	tests := []struct {
		name   string
		filter Filter
		want   []string // CIDs
		kinds  []string
	}{
		{"everything", Filter{}, []string{"ch", "ch-refused", "inv", "job-svc", "svc"}, []string{"channel", "channel", "invoke", "job", "service"}},
		{"one service", Filter{Service: "orders.get"}, []string{"ch", "inv"}, []string{"channel", "invoke"}},
		{"one channel", Filter{Channel: "orders"}, []string{"ch", "ch-refused"}, []string{"channel", "channel"}},
		{"service and channel", Filter{Service: "orders.get", Channel: "orders"}, []string{"ch"}, []string{"channel"}},
		{"nothing matches", Filter{Service: "nobody"}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tail := newTestTail(5 * time.Millisecond)
			defer tail.StopAll()
			c := newCollector()
			tail.Start("t", tt.filter, c.send)
			for _, e := range tailEvents() {
				tail.Observe(e)
			}
			var got, kinds []string
			if len(tt.want) > 0 {
				for _, inv := range c.await(t, len(tt.want)) {
					got, kinds = append(got, inv.GetCid()), append(kinds, inv.GetKind())
				}
			}
			if !slices.Equal(got, tt.want) || !slices.Equal(kinds, tt.kinds) {
				t.Fatalf("got %v %v, want %v %v", got, kinds, tt.want, tt.kinds)
			}
			// Several batches' time later, nothing more came.
			time.Sleep(30 * time.Millisecond)
			if invs, _ := c.invocations(); len(invs) != len(tt.want) {
				t.Fatalf("%d invocations sent in all, want %d", len(invs), len(tt.want))
			}
		})
	}
}

func TestTailSamples(t *testing.T) {
	tail := newTestTail(5 * time.Millisecond)
	defer tail.StopAll()
	with, without := newCollector(), newCollector()
	tail.Start("with", Filter{Service: "orders.get", Samples: true}, with.send)
	tail.Start("without", Filter{Service: "orders.get"}, without.send)
	for _, e := range tailEvents() {
		tail.Observe(e)
	}
	w, wo := with.await(t, 2), without.await(t, 2)
	if got := string(w[0].GetRequestSample()); got != `{"password":"•` || !w[0].GetTruncated() {
		t.Errorf("with samples: %q truncated %v; want 16 bytes, redacted", got, w[0].GetTruncated())
	}
	if wo[0].GetRequestSample() != nil || wo[0].GetBytesIn() != 28 {
		t.Errorf("without samples: %v", wo[0])
	}
}

func TestTailDropsWhenTheSenderIsBlocked(t *testing.T) {
	tail := newTestTail(5 * time.Millisecond)
	defer tail.StopAll()
	release := make(chan struct{})
	c := newCollector()
	tail.Start("t", Filter{}, func(ev *agentv1.TailEvents) error {
		<-release
		return c.send(ev)
	})
	const n = 5000
	observed := make(chan struct{})
	go func() {
		defer close(observed)
		for i := range n {
			tail.Observe(&observe.Event{Kind: observe.KindService, Origin: observe.OriginInvoke, Service: "a", CID: fmt.Sprint(i)})
		}
	}()
	select {
	case <-observed:
	case <-time.After(10 * time.Second):
		t.Fatal("Observe waited for a blocked tail")
	}
	close(release)
	invs := c.await(t, n)
	_, dropped := c.invocations()
	if dropped == 0 || len(invs)+int(dropped) != n || len(invs) > TailQueue+TailBatch {
		t.Fatalf("%d sent, %d dropped of %d", len(invs), dropped, n)
	}
	for i := 1; i < len(invs); i++ { // oldest first
		var a, b int
		fmt.Sscan(invs[i-1].GetCid(), &a)
		fmt.Sscan(invs[i].GetCid(), &b)
		if a >= b {
			t.Fatalf("invocation %d (%s) after %s", i, invs[i].GetCid(), invs[i-1].GetCid())
		}
	}
}

func TestTailBatches(t *testing.T) {
	t.Run("by count", func(t *testing.T) {
		tail := newTestTail(time.Hour) // never by time
		defer tail.StopAll()
		c := newCollector()
		tail.Start("t", Filter{}, c.send)
		for i := range 2*TailBatch + 50 {
			tail.Observe(&observe.Event{Kind: observe.KindService, Origin: observe.OriginInvoke, Service: "a", CID: fmt.Sprint(i)})
		}
		c.await(t, 2*TailBatch)
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.batches) != 2 || len(c.batches[0].GetInvocations()) != TailBatch || c.batches[1].GetTailId() != "t" {
			t.Fatalf("%d batches: %v", len(c.batches), c.batches)
		}
	})
	t.Run("by time", func(t *testing.T) {
		tail := newTestTail(10 * time.Millisecond)
		defer tail.StopAll()
		c := newCollector()
		tail.Start("t", Filter{}, c.send)
		for i := range 3 {
			tail.Observe(&observe.Event{Kind: observe.KindService, Origin: observe.OriginInvoke, Service: "a", CID: fmt.Sprint(i)})
		}
		c.await(t, 3)
	})
}

func TestTailStop(t *testing.T) {
	tail := newTestTail(5 * time.Millisecond)
	a, b := newCollector(), newCollector()
	stopFirst := tail.Start("a", Filter{}, a.send)
	tail.Start("a", Filter{}, b.send) // takes the id over
	stopFirst()                       // does not stop the second
	if tail.Len() != 1 {
		t.Fatalf("%d tails, want the second a", tail.Len())
	}
	tail.Observe(&observe.Event{Kind: observe.KindService, Origin: observe.OriginInvoke, CID: "x"})
	b.await(t, 1)
	if invs, _ := a.invocations(); len(invs) != 0 {
		t.Fatalf("the replaced tail got %v", cids(invs))
	}
	if !tail.Stop("a") || tail.Stop("a") || tail.Len() != 0 {
		t.Fatalf("Stop: %d tails left", tail.Len())
	}
	tail.Start("c", Filter{}, a.send)
	tail.Start("d", Filter{}, a.send)
	tail.StopAll()
	if tail.Len() != 0 {
		t.Fatalf("StopAll left %d", tail.Len())
	}
	if n := testing.AllocsPerRun(100, func() { tail.Observe(&observe.Event{Kind: observe.KindChannel}) }); n != 0 {
		t.Fatalf("%v allocations per event with no tail", n)
	}
}

func TestTailEndsWhenSendFails(t *testing.T) {
	tail := newTestTail(5 * time.Millisecond)
	failed := make(chan struct{})
	tail.Start("t", Filter{}, func(*agentv1.TailEvents) error {
		close(failed)
		return errors.New("stream closed")
	})
	tail.Observe(&observe.Event{Kind: observe.KindService, Origin: observe.OriginInvoke, CID: "x"})
	<-failed
	testenv.Await(t, time.Minute, "the tail to end with its stream", func() (bool, string) {
		return tail.Len() == 0, fmt.Sprintf("%d tails", tail.Len())
	})
}

func TestTailOnActive(t *testing.T) {
	tail := newTestTail(5 * time.Millisecond)
	var mu sync.Mutex
	var calls []bool
	tail.OnActive(func(active bool) {
		mu.Lock()
		calls = append(calls, active)
		mu.Unlock()
	})
	want := func(what string, w ...bool) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(calls, w) {
			t.Fatalf("after %s: OnActive calls %v, want %v", what, calls, w)
		}
	}
	nop := func(*agentv1.TailEvents) error { return nil }

	want("nothing")
	stopA := tail.Start("a", Filter{}, nop)
	want("the first tail", true)
	tail.Start("b", Filter{}, nop)
	tail.Start("a", Filter{}, nop) // takes the id over: still two
	stopA()                        // of the replaced one: does nothing
	tail.Stop("a")
	want("tails that are not the last", true)
	tail.Stop("b")
	want("the last tail's end", true, false)
	tail.Stop("b")
	want("stopping a tail that ended", true, false)

	stopC := tail.Start("c", Filter{}, nop)
	stopC()
	stopC()
	want("a tail's own stop", true, false, true, false)

	tail.Start("d", Filter{}, nop)
	tail.Start("e", Filter{}, nop)
	tail.StopAll()
	want("StopAll", true, false, true, false, true, false)
	tail.StopAll()
	want("StopAll of nothing", true, false, true, false, true, false)

	// A tail whose stream fails ends, and was the last.
	tail.Start("f", Filter{}, func(*agentv1.TailEvents) error { return errors.New("stream closed") })
	tail.Observe(&observe.Event{Kind: observe.KindService, Origin: observe.OriginInvoke, CID: "x"})
	testenv.Await(t, time.Minute, "the tail to end with its stream", func() (bool, string) {
		return tail.Len() == 0, fmt.Sprintf("%d tails", tail.Len())
	})
	want("the last tail's failed send", true, false, true, false, true, false, true, false)
}
