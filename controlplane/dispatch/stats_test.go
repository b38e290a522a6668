package dispatch

import (
	"context"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/weft-dev/weft/agent/shared/statscale"
	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/controlplane/store/storetest"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// statsBucket is a good bucket of service p.svc at start.
func statsBucket(start time.Time) *agentv1.StatsBucket {
	return &agentv1.StatsBucket{
		Kind: "service", Name: "p.svc", StartUnixMs: start.UnixMilli(),
		Count: 5, Errors: 1, SumUs: 5000, MaxUs: 2500,
		Histogram: map[int32]int64{80: 4, 90: 1}, Statuses: map[int32]int64{200: 4, 500: 1},
		BytesIn: 50, BytesOut: 70,
	}
}

func TestReportStats(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			h := newJobsHarness(t, b)
			ctx := context.Background()
			if err := h.store.AgentHello(ctx, store.AgentHello{ID: "a1"}); err != nil {
				t.Fatal(err)
			}
			minute := h.clock.Now().Truncate(time.Minute)
			rev := revisionOf(t, h.store)

			job := statsBucket(minute.Add(-time.Hour))
			job.Kind, job.Name, job.Statuses = "job", "sweep", nil
			_, err := h.client.ReportStats(ctx, &agentv1.ReportStatsRequest{AgentId: "a1", Buckets: []*agentv1.StatsBucket{
				statsBucket(minute), statsBucket(minute.Add(maxStatsAhead)), job,
			}})
			if err != nil {
				t.Fatal(err)
			}
			if got := h.disp.StatsBuckets(); got != 3 {
				t.Errorf("StatsBuckets() = %d, want 3", got)
			}
			if got := revisionOf(t, h.store); got != rev {
				t.Errorf("revision %d after a report, want %d: statistics are not config", got, rev)
			}
			rows, err := h.store.QueryStats(ctx, store.StatsQuery{Resolution: store.ResolutionMinute, AgentID: "a1", Kind: "service"})
			if err != nil {
				t.Fatal(err)
			}
			want := store.StatsBucket{
				Kind: "service", Name: "p.svc", Start: minute, Count: 5, Errors: 1, SumUs: 5000, MaxUs: 2500,
				Histogram: map[int32]int64{80: 4, 90: 1}, Statuses: map[int32]int64{200: 4, 500: 1}, BytesIn: 50, BytesOut: 70,
			}
			if len(rows) != 2 || !reflect.DeepEqual(rows[0].StatsBucket, want) {
				t.Fatalf("rows %+v, want 2, the first %+v", rows, want)
			}
			days, err := h.store.QueryStats(ctx, store.StatsQuery{Resolution: store.ResolutionDay, Kind: "job"})
			if err != nil {
				t.Fatal(err)
			}
			if len(days) != 1 || days[0].Name != "sweep" || days[0].Count != 5 {
				t.Fatalf("job day rows %+v, want sweep with 5", days)
			}
		})
	}
}

func TestReportStatsWorker(t *testing.T) {
	h := newJobsHarness(t, storetest.SQLite(t))
	ctx := context.Background()
	if err := h.store.AgentHello(ctx, store.AgentHello{ID: "a1"}); err != nil {
		t.Fatal(err)
	}
	minute := h.clock.Now().Truncate(time.Minute)
	// A worker process that overflowed its stack after 90s, as the agent's
	// recorder counts it: no statuses, no bytes.
	worker := &agentv1.StatsBucket{
		Kind: "worker", Name: "stack", StartUnixMs: minute.UnixMilli(),
		Count: 1, Errors: 1, SumUs: 90_000_000, MaxUs: 90_000_000, Histogram: map[int32]int64{statscale.BucketOf(90 * time.Second): 1},
	}
	resp, err := h.client.ReportStats(ctx, &agentv1.ReportStatsRequest{AgentId: "a1", Buckets: []*agentv1.StatsBucket{worker}})
	if err != nil || len(resp.GetRefused()) != 0 {
		t.Fatalf("report: %v, refused %q; want the worker bucket recorded", err, resp.GetRefused())
	}
	rows, err := h.store.QueryStats(ctx, store.StatsQuery{Resolution: store.ResolutionMinute, AgentID: "a1", Kind: store.StatsKindWorker})
	if err != nil {
		t.Fatal(err)
	}
	want := store.StatsBucket{
		Kind: "worker", Name: "stack", Start: minute, Count: 1, Errors: 1, SumUs: 90_000_000, MaxUs: 90_000_000,
		Histogram: map[int32]int64{statscale.BucketOf(90 * time.Second): 1}, Statuses: map[int32]int64{},
	}
	if len(rows) != 1 || !reflect.DeepEqual(rows[0].StatsBucket, want) {
		t.Fatalf("rows %+v, want one %+v", rows, want)
	}
}

func TestReportStatsRefuses(t *testing.T) {
	h := newJobsHarness(t, storetest.SQLite(t))
	ctx := context.Background()
	if err := h.store.AgentHello(ctx, store.AgentHello{ID: "a1"}); err != nil {
		t.Fatal(err)
	}
	minute := h.clock.Now().Truncate(time.Minute)
	with := func(change func(b *agentv1.StatsBucket)) []*agentv1.StatsBucket {
		bad := statsBucket(minute)
		change(bad)
		return []*agentv1.StatsBucket{statsBucket(minute), bad}
	}
	tests := []struct {
		name    string
		agent   string
		buckets []*agentv1.StatsBucket
		want    string
	}{
		{"no agent id", "", with(func(*agentv1.StatsBucket) {}), `agent_id "" is not an agent id`},
		{"unknown agent", "a9", with(func(*agentv1.StatsBucket) {}), `agent_id "a9" is unknown`},
		{"empty name", "a1", with(func(b *agentv1.StatsBucket) { b.Name = "" }), "buckets[1].name: is empty"},
		{"unknown kind", "a1", with(func(b *agentv1.StatsBucket) { b.Kind = "package" }), `buckets[1].kind "package": want service, channel, job or worker`},
		{"no kind", "a1", with(func(b *agentv1.StatsBucket) { b.Kind = "" }), `buckets[1].kind "": want`},
		{"start off the minute", "a1", with(func(b *agentv1.StatsBucket) { b.StartUnixMs += 1000 }), "buckets[1].start_unix_ms " + itoa(minute.UnixMilli()+1000) + ": not on a minute"},
		{"start in the future", "a1", with(func(b *agentv1.StatsBucket) { b.StartUnixMs = minute.Add(6 * time.Minute).UnixMilli() }), "buckets[1].start_unix_ms " + itoa(minute.Add(6*time.Minute).UnixMilli()) + ": " + minute.Add(6*time.Minute).Format(time.RFC3339) + " is more than 5m0s ahead"},
		{"negative count", "a1", with(func(b *agentv1.StatsBucket) { b.Count, b.Errors = -1, 0 }), "buckets[1].count -1: negative"},
		{"negative sum", "a1", with(func(b *agentv1.StatsBucket) { b.SumUs = -5 }), "buckets[1].sum_us -5: negative"},
		{"negative bytes", "a1", with(func(b *agentv1.StatsBucket) { b.BytesOut = -5 }), "buckets[1].bytes_out -5: negative"},
		{"errors over count", "a1", with(func(b *agentv1.StatsBucket) { b.Errors = 6 }), "buckets[1].errors 6: more than count 5"},
		{"no such histogram bucket", "a1", with(func(b *agentv1.StatsBucket) { b.Histogram[300] = 1 }), "buckets[1].histogram[300]: no such bucket; want 0 to 256"},
		{"negative histogram count", "a1", with(func(b *agentv1.StatsBucket) { b.Histogram[80] = -1 }), "buckets[1].histogram[80] -1: negative"},
		{"not a status", "a1", with(func(b *agentv1.StatsBucket) { b.Statuses[42] = 1 }), "buckets[1].statuses[42]: not an HTTP status"},
		{"name too long", "a1", with(func(b *agentv1.StatsBucket) { b.Name = strings.Repeat("n", 256) }), "buckets[1].name \"nnnn"},
		{"name with a trailing space", "a1", with(func(b *agentv1.StatsBucket) { b.Name += " " }), `buckets[1].name "p.svc ": starts or ends with a space`},
	}
	var good int64
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &agentv1.ReportStatsRequest{AgentId: tt.agent, Buckets: tt.buckets}
			resp, err := h.client.ReportStats(ctx, proto.Clone(req).(*agentv1.ReportStatsRequest))
			if tt.agent != "a1" {
				// The report itself is wrong: nothing is recorded.
				if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v, want InvalidArgument containing %q", err, tt.want)
				}
				return
			}
			// A bad bucket is left out and named; the good one is recorded.
			if err != nil || len(resp.GetRefused()) != 1 || !strings.Contains(resp.GetRefused()[0], tt.want) {
				t.Fatalf("report: %v, refused %q; want the bad bucket alone refused, saying %q", err, resp.GetRefused(), tt.want)
			}
			good++
		})
	}
	if h.disp.StatsBuckets() != good {
		t.Fatalf("recorded %d buckets, want the %d good ones", h.disp.StatsBuckets(), good)
	}
}

func revisionOf(t *testing.T, s store.Store) int64 {
	t.Helper()
	rev, err := s.Revision(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
