package stats

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/weft-dev/weft/agent/observe"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

func TestGatheredMergesBucketsOfOneObjectAndMinute(t *testing.T) {
	m0, m1 := minute0.UnixMilli(), minute0.Add(time.Minute).UnixMilli()
	g := Gather(NewRecorder())
	// Two workers counted service a in minute 0; the first has no
	// statuses, the second no histogram.
	g.Add([]*agentv1.StatsBucket{
		{Kind: "service", Name: "a", StartUnixMs: m0, Count: 3, Errors: 1, SumUs: 300, MaxUs: 200, Histogram: map[int32]int64{4: 2, 9: 1}, BytesIn: 10, BytesOut: 20},
		{Kind: "channel", Name: "a", StartUnixMs: m0, Count: 1, SumUs: 5, MaxUs: 5, Statuses: map[int32]int64{200: 1}},
	})
	g.Add([]*agentv1.StatsBucket{
		{Kind: "service", Name: "a", StartUnixMs: m0, Count: 2, Errors: 2, SumUs: 150, MaxUs: 100, Statuses: map[int32]int64{500: 2}, BytesIn: 1, BytesOut: 2},
		{Kind: "service", Name: "a", StartUnixMs: m1, Count: 1, SumUs: 7, MaxUs: 7},
		{Kind: "service", Name: "b", StartUnixMs: m0, Count: 1, SumUs: 9, MaxUs: 9},
	})
	g.Add([]*agentv1.StatsBucket{
		{Kind: "service", Name: "a", StartUnixMs: m0, Count: 1, SumUs: 50, MaxUs: 500, Histogram: map[int32]int64{4: 1, 12: 1}, Statuses: map[int32]int64{200: 1, 500: 1}},
	})

	got := g.Take(minute0)
	want := []*agentv1.StatsBucket{
		{Kind: "service", Name: "a", StartUnixMs: m0, Count: 6, Errors: 3, SumUs: 500, MaxUs: 500,
			Histogram: map[int32]int64{4: 3, 9: 1, 12: 1}, Statuses: map[int32]int64{200: 1, 500: 3}, BytesIn: 11, BytesOut: 22},
		{Kind: "channel", Name: "a", StartUnixMs: m0, Count: 1, SumUs: 5, MaxUs: 5, Statuses: map[int32]int64{200: 1}},
		{Kind: "service", Name: "a", StartUnixMs: m1, Count: 1, SumUs: 7, MaxUs: 7},
		{Kind: "service", Name: "b", StartUnixMs: m0, Count: 1, SumUs: 9, MaxUs: 9},
	}
	if !slices.EqualFunc(got, want, func(a, b *agentv1.StatsBucket) bool { return proto.Equal(a, b) }) {
		t.Fatalf("Take = %v\nwant (in the order added) %v", got, want)
	}
	if again := g.Take(minute0); len(again) != 0 {
		t.Fatalf("a second Take = %v, want nothing", again)
	}
	if all := g.TakeAll(); len(all) != 0 {
		t.Fatalf("TakeAll after Take = %v, want nothing", all)
	}
}

func TestGatheredTakesTheRecordersBucketsFirst(t *testing.T) {
	rec := NewRecorder()
	g := Gather(rec)
	rec.Observe(event("own", at(0, 10), 2*time.Millisecond, 200))
	added := &agentv1.StatsBucket{Kind: observe.KindWorker, Name: "memory", StartUnixMs: minute0.UnixMilli(), Count: 1, Errors: 1}
	g.Add([]*agentv1.StatsBucket{added})

	got := g.Take(at(0, 30))
	if len(got) != 2 || got[0].GetName() != "own" || got[0].GetCount() != 1 || got[1] != added {
		t.Fatalf("Take = %v, want the recorder's bucket of own, then the one added", got)
	}
	if again := g.Take(at(0, 40)); len(again) != 0 {
		t.Fatalf("a second Take = %v, want nothing", again)
	}

	// The same again through TakeAll.
	rec.Observe(event("own", at(1, 10), time.Millisecond, 503))
	g.Add([]*agentv1.StatsBucket{{Kind: observe.KindWorker, Name: "stack", StartUnixMs: minute0.Add(time.Minute).UnixMilli(), Count: 1}})
	got = g.TakeAll()
	if len(got) != 2 || got[0].GetName() != "own" || got[0].GetErrors() != 1 || got[1].GetName() != "stack" {
		t.Fatalf("TakeAll = %v, want the recorder's bucket of own, then stack", got)
	}
	if again := g.TakeAll(); len(again) != 0 {
		t.Fatalf("a second TakeAll = %v, want nothing", again)
	}
	// Added after a take, a bucket of a key taken before starts afresh.
	g.Add([]*agentv1.StatsBucket{{Kind: observe.KindWorker, Name: "stack", StartUnixMs: minute0.Add(time.Minute).UnixMilli(), Count: 4}})
	if got := g.TakeAll(); len(got) != 1 || got[0].GetCount() != 4 {
		t.Fatalf("TakeAll = %v, want one bucket of count 4", got)
	}
}
