package stats

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-dev/weft/agent/observe"
	"github.com/weft-dev/weft/agent/shared/statscale"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// minute0 is a minute's start; the tests count events in it and after.
var minute0 = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

// at is the time minutes and seconds after minute0.
func at(minutes int, seconds float64) time.Time {
	return minute0.Add(time.Duration(minutes)*time.Minute + time.Duration(seconds*float64(time.Second)))
}

// event is an event of a service named name that ended at end.
func event(name string, end time.Time, d time.Duration, status int) *observe.Event {
	return &observe.Event{
		Kind: observe.KindService, Origin: observe.OriginChannel, Name: name, Service: name,
		Status: status, Failed: status >= 500, Duration: d, End: end, BytesIn: 10, BytesOut: 20,
	}
}

// byObject indexes buckets by "kind/name@minute", minutes counted from
// minute0; it fails on two buckets of one object and minute.
func byObject(t *testing.T, buckets []*agentv1.StatsBucket) map[string]*agentv1.StatsBucket {
	t.Helper()
	out := map[string]*agentv1.StatsBucket{}
	for _, b := range buckets {
		m := (b.GetStartUnixMs() - minute0.UnixMilli()) / time.Minute.Milliseconds()
		k := fmt.Sprintf("%s/%s@%d", b.GetKind(), b.GetName(), m)
		if out[k] != nil {
			t.Fatalf("two buckets of %s", k)
		}
		out[k] = b
	}
	return out
}

func keys(m map[string]*agentv1.StatsBucket) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestRecorderCountsExactlyAcrossGoroutines(t *testing.T) {
	r := NewRecorder()
	const goroutines, each = 32, 500
	objects := []string{"a", "b", "c"}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				name := objects[(g+i)%len(objects)]
				status := 200
				if i%10 == 0 {
					status = 503
				}
				r.Observe(event(name, at(0, float64(i%60)), time.Duration(i%7+1)*time.Millisecond, status))
			}
		})
	}
	wg.Wait()
	got := byObject(t, r.TakeAll())
	if want := []string{"service/a@0", "service/b@0", "service/c@0"}; !slices.Equal(keys(got), want) {
		t.Fatalf("buckets %v, want %v", keys(got), want)
	}
	var count, errs, sumUs, hist, ok, failed, bytesIn int64
	for _, b := range got {
		count += b.GetCount()
		errs += b.GetErrors()
		sumUs += b.GetSumUs()
		bytesIn += b.GetBytesIn()
		for _, n := range b.GetHistogram() {
			hist += n
		}
		ok += b.GetStatuses()[200]
		failed += b.GetStatuses()[503]
		if b.GetMaxUs() != 7000 {
			t.Errorf("%s: max %d µs, want 7000", b.GetName(), b.GetMaxUs())
		}
		if b.GetBytesOut() != 2*b.GetBytesIn() {
			t.Errorf("%s: %d bytes out for %d in, want twice", b.GetName(), b.GetBytesOut(), b.GetBytesIn())
		}
	}
	total := int64(goroutines * each)
	var wantSum int64
	for i := range each {
		wantSum += int64(i%7+1) * 1000
	}
	wantSum *= goroutines
	checks := []struct {
		what      string
		got, want int64
	}{
		{"count", count, total},
		{"errors", errs, total / 10},
		{"sum_us", sumUs, wantSum},
		{"histogram total", hist, total},
		{"status 200", ok, total - total/10},
		{"status 503", failed, total / 10},
		{"bytes_in", bytesIn, 10 * total},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.what, c.got, c.want)
		}
	}
	if left := r.TakeAll(); len(left) != 0 {
		t.Fatalf("TakeAll again returned %d buckets, want none", len(left))
	}
}

func TestRecorderMinutes(t *testing.T) {
	now := at(0, 0)
	r := NewRecorder(WithClock(func() time.Time { return now }))
	r.Observe(event("a", at(0, 1), time.Millisecond, 200))
	r.Observe(event("a", at(0, 59.999), time.Millisecond, 200))
	r.Observe(event("b", at(0, 30), time.Millisecond, 200))
	r.Observe(event("a", at(1, 0), time.Millisecond, 200)) // the next minute
	r.Observe(event("a", at(0, 59.5), time.Millisecond, 200))

	steps := []struct {
		name string
		take func() []*agentv1.StatsBucket
		want map[string]int64 // count by object and minute
	}{
		// What was counted so far, the minute in progress too. The late
		// event of minute 0 came after minute 1 began: it is counted in
		// minute 1, where the object was.
		{"minute 0 in progress", func() []*agentv1.StatsBucket { return r.Take(at(0, 59.999)) }, map[string]int64{"service/a@0": 2, "service/b@0": 1}},
		{"minute 1 begun", func() []*agentv1.StatsBucket { return r.Take(at(1, 0)) }, map[string]int64{"service/a@1": 2}},
		{"nothing new", func() []*agentv1.StatsBucket { return r.Take(at(1, 30)) }, map[string]int64{}},
		{"still nothing", func() []*agentv1.StatsBucket { return r.Take(at(2, 0)) }, map[string]int64{}},
		{"idle", func() []*agentv1.StatsBucket { return r.Take(at(5, 0)) }, map[string]int64{}},
	}
	for _, s := range steps {
		got := map[string]int64{}
		for k, b := range byObject(t, s.take()) {
			got[k] = b.GetCount()
		}
		if fmt.Sprint(got) != fmt.Sprint(s.want) {
			t.Fatalf("%s: took %v, want %v", s.name, got, s.want)
		}
	}

	// An event with no end time is counted at the clock's now; TakeAll
	// takes the minute in progress.
	now = at(7, 10)
	r.Observe(&observe.Event{Kind: observe.KindJob, Name: "nightly", Duration: time.Second})
	r.Observe(event("a", at(7, 20), time.Millisecond, 200))
	got := byObject(t, r.Take(at(7, 30)))
	if want := []string{"job/nightly@7", "service/a@7"}; !slices.Equal(keys(got), want) {
		t.Fatalf("Take in minute 7 took %v, want %v", keys(got), want)
	}
	// Counted again after a Take in the same minute: only what is new.
	r.Observe(event("a", at(7, 40), time.Millisecond, 200))
	if again := byObject(t, r.TakeAll()); !slices.Equal(keys(again), []string{"service/a@7"}) || again["service/a@7"].GetCount() != 1 {
		t.Fatalf("TakeAll after a Take took %v, want service/a@7 with 1", keys(again))
	}
	if s := got["job/nightly@7"].GetStatuses(); len(s) != 0 {
		t.Fatalf("a job run without a status counted statuses %v", s)
	}
}

func TestRecorderForgetsIdleObjects(t *testing.T) {
	r := NewRecorder()
	r.Observe(event("a", at(0, 0), time.Millisecond, 200))
	r.Observe(event("b", at(0, 0), time.Millisecond, 200))
	r.Take(at(1, 0))
	r.Observe(event("b", at(idleMinutes+1, 0), time.Millisecond, 200))
	r.Take(at(idleMinutes+1, 30)) // a: idle since minute 0
	entries := *r.entries.Load()
	_, a := entries[key{observe.KindService, "a"}]
	_, b := entries[key{observe.KindService, "b"}]
	if a || !b {
		t.Fatalf("after a's idle minutes: a kept %v, b kept %v; want a forgotten, b kept", a, b)
	}
	// A forgotten object that comes back is counted afresh.
	r.Observe(event("a", at(idleMinutes+1, 40), time.Millisecond, 200))
	got := byObject(t, r.TakeAll())
	if want := []string{fmt.Sprintf("service/a@%d", idleMinutes+1)}; !slices.Equal(keys(got), want) {
		t.Fatalf("took %v, want %v", keys(got), want)
	}
}

func TestRecorderStatusesAndPercentiles(t *testing.T) {
	r := NewRecorder()
	// 90 calls of 1 ms, 9 of 100 ms that answer 404, one of 2 s that fails.
	for range 90 {
		r.Observe(event("orders", at(0, 1), time.Millisecond, 200))
	}
	for range 9 {
		r.Observe(event("orders", at(0, 2), 100*time.Millisecond, 404))
	}
	r.Observe(event("orders", at(0, 3), 2*time.Second, 500))
	b := r.Take(at(1, 0))[0]
	if want := map[int32]int64{200: 90, 404: 9, 500: 1}; fmt.Sprint(b.GetStatuses()) != fmt.Sprint(want) {
		t.Errorf("statuses %v, want %v", b.GetStatuses(), want)
	}
	if b.GetErrors() != 1 {
		t.Errorf("errors %d, want 1: a 404 is not a failure", b.GetErrors())
	}
	longest := time.Duration(b.GetMaxUs()) * time.Microsecond
	tests := []struct {
		q        float64
		from, to time.Duration
	}{
		{0.5, time.Millisecond, 1091 * time.Microsecond},
		{0.9, time.Millisecond, 1091 * time.Microsecond},
		{0.95, 100 * time.Millisecond, 109100 * time.Microsecond},
		{0.99, 100 * time.Millisecond, 109100 * time.Microsecond},
		{1, 2 * time.Second, 2 * time.Second},
	}
	for _, tt := range tests {
		if got := statscale.Percentile(b.GetHistogram(), tt.q, longest); got < tt.from || got > tt.to {
			t.Errorf("p%g = %s, want within [%s, %s]", tt.q*100, got, tt.from, tt.to)
		}
	}
	for i, n := range b.GetHistogram() {
		if n == 0 {
			t.Errorf("histogram bucket %d holds 0: empty buckets are left out", i)
		}
	}
}

func TestRecorderObserveAllocatesNothing(t *testing.T) {
	r := NewRecorder()
	ev := event("a", at(0, 1), time.Millisecond, 200)
	r.Observe(ev) // the entry and its status exist now
	if n := testing.AllocsPerRun(1000, func() { r.Observe(ev) }); n != 0 {
		t.Fatalf("Observe allocates %g times per event, want 0", n)
	}
}

func BenchmarkRecorderObserve(b *testing.B) {
	r := NewRecorder()
	names := make([]string, 16)
	for i := range names {
		names[i] = "service." + strings.Repeat("x", i)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			r.Observe(event(names[i%len(names)], at(0, 1), time.Millisecond, 200))
			i++
		}
	})
}

func TestRecorderCountsWorkerExits(t *testing.T) {
	r := NewRecorder()
	// As the supervisor reports a worker process that overflowed its stack
	// after living 90s: no status, no bytes.
	r.Observe(&observe.Event{
		Kind: observe.KindWorker, Name: "stack", Failed: true,
		Error: "goroutine stack exceeds 1000000000-byte limit", Duration: 90 * time.Second, End: at(3, 15),
	})
	got := byObject(t, r.TakeAll())
	if want := []string{"worker/stack@3"}; !slices.Equal(keys(got), want) {
		t.Fatalf("buckets %v, want %v", keys(got), want)
	}
	b := got["worker/stack@3"]
	if b.GetKind() != "worker" || b.GetName() != "stack" || b.GetCount() != 1 || b.GetErrors() != 1 {
		t.Fatalf("bucket kind %q name %q count %d errors %d; want worker, stack, 1, 1", b.GetKind(), b.GetName(), b.GetCount(), b.GetErrors())
	}
	if len(b.GetStatuses()) != 0 || b.GetBytesIn() != 0 || b.GetBytesOut() != 0 {
		t.Fatalf("bucket statuses %v, bytes %d/%d; want none", b.GetStatuses(), b.GetBytesIn(), b.GetBytesOut())
	}
}
