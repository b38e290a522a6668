package api

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weft-dev/weft/agent/shared/statscale"
	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/controlplane/store/storetest"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// measured is a bucket of n durations of d each, errs of them failed.
func measured(kind, name string, start time.Time, n, errs int64, d time.Duration) store.StatsBucket {
	return store.StatsBucket{
		Kind: kind, Name: name, Start: start, Count: n, Errors: errs,
		SumUs: n * d.Microseconds(), MaxUs: d.Microseconds(),
		Histogram: map[int32]int64{statscale.BucketOf(d): n},
		Statuses:  map[int32]int64{200: n - errs, 500: errs},
		BytesIn:   n, BytesOut: 2 * n,
	}
}

// combine adds buckets of one object and minute together.
func combine(bs ...store.StatsBucket) store.StatsBucket {
	out := bs[0]
	out.Histogram, out.Statuses = map[int32]int64{}, map[int32]int64{}
	out.Count, out.Errors, out.SumUs, out.MaxUs, out.BytesIn, out.BytesOut = 0, 0, 0, 0, 0, 0
	for _, b := range bs {
		out.Add(b)
	}
	return out
}

// recordStatsFixture stores what two agents measured in the hour up to
// now, and before. Every row sits at least a minute away from the edges of
// the 5-minute periods of a one-hour stretch, so the answer is the same
// when the minute turns during the test. It returns the start the
// stretch has when the minute does not turn.
func recordStatsFixture(t *testing.T, s store.Store) time.Time {
	t.Helper()
	ctx := context.Background()
	from := time.Now().UTC().Truncate(time.Minute).Add(time.Minute - time.Hour)
	at := func(minutes int) time.Time { return from.Add(time.Duration(minutes) * time.Minute) }
	var a1, a2 []store.StatsBucket
	for k := range 12 {
		// a1: k+1 calls of 1ms, every other period one of them failed.
		a1 = append(a1, measured("service", "hello.greet", at(5*k+2), int64(k+1), int64(k%2), time.Millisecond))
		// a2: 9 calls of 2ms and one of 50ms.
		a2 = append(a2, combine(
			measured("service", "hello.greet", at(5*k+3), 9, 0, 2*time.Millisecond),
			measured("service", "hello.greet", at(5*k+3), 1, 0, 50*time.Millisecond)))
	}
	a1 = append(a1,
		measured("service", "hello.greet", at(-58), 50, 5, time.Millisecond), // the stretch before
		measured("service", "hello.list", at(-30), 7, 0, time.Millisecond),   // only before
		measured("service", "hello.old", at(-65), 1000, 0, time.Millisecond), // before the stretch before
		measured("channel", "api", at(10), 3, 0, time.Millisecond),
		// Two worker processes that overflowed their stacks, after 90s
		// each: no statuses, every one failed.
		store.StatsBucket{
			Kind: "worker", Name: "stack", Start: at(20), Count: 2, Errors: 2,
			SumUs: 2 * (90 * time.Second).Microseconds(), MaxUs: (90 * time.Second).Microseconds(),
			Histogram: map[int32]int64{statscale.BucketOf(90 * time.Second): 2},
		},
	)
	for agent, buckets := range map[string][]store.StatsBucket{"a1": a1, "a2": a2} {
		if err := s.RecordStats(ctx, agent, "", buckets); err != nil {
			t.Fatal(err)
		}
	}
	return from
}

// within fails unless got is at least want and at most 9% above it: the
// precision of the histogram's scale.
func within(t *testing.T, what string, got, want int64) {
	t.Helper()
	if got < want || float64(got) > float64(want)*1.09 {
		t.Errorf("%s = %dµs, want %dµs to 9%% above", what, got, want)
	}
}

func TestGetStats(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			e := newAdminEnvOn(t, b)
			from := recordStatsFixture(t, e.store)
			client := adminv1.NewStatsServiceClient(e.conn)
			get := func(t *testing.T, req *adminv1.GetStatsRequest) *adminv1.GetStatsResponse {
				t.Helper()
				resp, err := client.GetStats(context.Background(), req)
				if err != nil {
					t.Fatal(err)
				}
				return resp
			}
			names := func(resp *adminv1.GetStatsResponse) string {
				var out []string
				for _, o := range resp.GetObjects() {
					out = append(out, o.GetKind()+" "+o.GetName())
				}
				return strings.Join(out, ", ")
			}

			t.Run("every agent", func(t *testing.T) {
				resp := get(t, &adminv1.GetStatsRequest{})
				if resp.GetResolution() != "1m" {
					t.Errorf("resolution %q, want 1m", resp.GetResolution())
				}
				if f := resp.GetFrom().AsTime(); !f.Equal(from) && !f.Equal(from.Add(time.Minute)) {
					t.Errorf("from %s, want %s", f, from)
				}
				if got := names(resp); got != "service hello.greet, service hello.list" {
					t.Fatalf("objects %s, want hello.greet and hello.list", got)
				}
				greet := resp.GetObjects()[0].GetTotals()
				// a1: 1+2+...+12 = 78 calls of 1ms, 6 failed; a2: 108 of
				// 2ms and 12 of 50ms.
				if greet.GetCount() != 198 || greet.GetErrors() != 6 || greet.GetMaxUs() != 50_000 {
					t.Errorf("totals count %d, errors %d, max %d; want 198, 6, 50000", greet.GetCount(), greet.GetErrors(), greet.GetMaxUs())
				}
				if want := int64((78*1000 + 108*2000 + 12*50_000) / 198); greet.GetMeanUs() != want {
					t.Errorf("mean %dµs, want %d", greet.GetMeanUs(), want)
				}
				within(t, "p50", greet.GetP50Us(), 2000)
				within(t, "p90", greet.GetP90Us(), 2000)
				if greet.GetP99Us() != 50_000 {
					t.Errorf("p99 = %dµs, want 50000 (the bucket's bound capped at the longest)", greet.GetP99Us())
				}
				if greet.GetStatuses()[200] != 192 || greet.GetStatuses()[500] != 6 || greet.GetBytesIn() != 198 || greet.GetBytesOut() != 396 {
					t.Errorf("statuses %v, bytes %d/%d; want 200:192 500:6, 198/396", greet.GetStatuses(), greet.GetBytesIn(), greet.GetBytesOut())
				}
				trend := resp.GetObjects()[0].GetTrend()
				if len(trend) != 12 {
					t.Fatalf("%d trend periods, want 12", len(trend))
				}
				for k, p := range trend {
					if p.GetCount() != int64(k+11) {
						t.Errorf("trend[%d] count %d, want %d", k, p.GetCount(), k+11)
					}
					if want := resp.GetFrom().AsTime().Add(time.Duration(5*k) * time.Minute); !p.GetFrom().AsTime().Equal(want) {
						t.Errorf("trend[%d] from %s, want %s", k, p.GetFrom().AsTime(), want)
					}
				}
				within(t, "trend[0] p50", trend[0].GetP50Us(), 2000)
				prev := resp.GetObjects()[0].GetPrevious()
				if prev.GetCount() != 50 || prev.GetErrors() != 5 || !prev.GetFrom().AsTime().Equal(resp.GetFrom().AsTime().Add(-time.Hour)) {
					t.Errorf("previous %v, want 50 calls, 5 failed, from an hour before", prev)
				}
				list := resp.GetObjects()[1]
				if list.GetTotals().GetCount() != 0 || list.GetPrevious().GetCount() != 7 || len(list.GetTrend()) != 12 {
					t.Errorf("hello.list %v, want no calls now, 7 before, 12 periods", list)
				}
			})

			t.Run("one agent", func(t *testing.T) {
				resp := get(t, &adminv1.GetStatsRequest{AgentId: "a2"})
				if got := names(resp); got != "service hello.greet" {
					t.Fatalf("objects %s, want hello.greet alone", got)
				}
				tot := resp.GetObjects()[0].GetTotals()
				if tot.GetCount() != 120 || tot.GetErrors() != 0 || resp.GetObjects()[0].GetPrevious().GetCount() != 0 {
					t.Errorf("a2's totals %v, previous %v; want 120 calls, none before", tot, resp.GetObjects()[0].GetPrevious())
				}
				within(t, "p50", tot.GetP50Us(), 2000)
				within(t, "p90", tot.GetP90Us(), 2000)
				within(t, "p99", tot.GetP99Us(), 50_000)
			})

			t.Run("one name", func(t *testing.T) {
				resp := get(t, &adminv1.GetStatsRequest{Name: "hello.list"})
				if got := names(resp); got != "service hello.list" {
					t.Fatalf("objects %s, want hello.list", got)
				}
			})

			t.Run("channels", func(t *testing.T) {
				resp := get(t, &adminv1.GetStatsRequest{Kind: "channel", Periods: 3})
				if got := names(resp); got != "channel api" {
					t.Fatalf("objects %s, want channel api", got)
				}
				trend := resp.GetObjects()[0].GetTrend()
				if len(trend) != 3 || trend[0].GetCount() != 3 || trend[1].GetCount() != 0 {
					t.Errorf("trend %v, want 3 periods, the first with 3 requests", trend)
				}
			})

			t.Run("workers", func(t *testing.T) {
				resp := get(t, &adminv1.GetStatsRequest{Kind: "worker"})
				if got := names(resp); got != "worker stack" {
					t.Fatalf("objects %s, want worker stack", got)
				}
				tot := resp.GetObjects()[0].GetTotals()
				if tot.GetCount() != 2 || tot.GetErrors() != 2 || len(tot.GetStatuses()) != 0 {
					t.Errorf("worker totals %v, want 2 exits, 2 failed, no statuses", tot)
				}
				within(t, "p50", tot.GetP50Us(), (90 * time.Second).Microseconds())
			})

			t.Run("resolutions", func(t *testing.T) {
				for _, tt := range []struct {
					since time.Duration
					want  string
				}{
					{24 * time.Hour, "1m"},
					{25 * time.Hour, "1h"},
					{17 * 24 * time.Hour, "1h"},
					{18 * 24 * time.Hour, "1d"},
					{400 * 24 * time.Hour, "1d"},
				} {
					resp := get(t, &adminv1.GetStatsRequest{Since: durationpb.New(tt.since)})
					if resp.GetResolution() != tt.want {
						t.Errorf("since %s: resolution %q, want %q", tt.since, resp.GetResolution(), tt.want)
					}
					step := store.ResolutionStep(tt.want)
					if f := resp.GetFrom().AsTime(); !f.Equal(f.Truncate(step)) {
						t.Errorf("since %s: from %s is not on a row of %s", tt.since, f, tt.want)
					}
					if got := resp.GetObjects(); len(got) == 0 || got[0].GetName() != "hello.greet" || got[0].GetTotals().GetCount() != 248 {
						t.Errorf("since %s: objects %v, want hello.greet first with every call, 248", tt.since, got)
					}
				}
			})
		})
	}
}

func TestGetStatsRefuses(t *testing.T) {
	e := newAdminEnv(t)
	client := adminv1.NewStatsServiceClient(e.conn)
	tests := []struct {
		name string
		req  *adminv1.GetStatsRequest
		want string
	}{
		{"unknown kind", &adminv1.GetStatsRequest{Kind: "package"}, `kind "package": want service, channel, job or worker`},
		{"no time", &adminv1.GetStatsRequest{Since: durationpb.New(0)}, "since 0s: want more than 0 and at most 400 days"},
		{"negative since", &adminv1.GetStatsRequest{Since: durationpb.New(-time.Second)}, "since -1s: want more than 0"},
		{"since too long", &adminv1.GetStatsRequest{Since: durationpb.New(401 * 24 * time.Hour)}, "since 9624h0m0s: want more than 0 and at most 400 days"},
		{"too many periods", &adminv1.GetStatsRequest{Periods: 121}, "periods 121: want 1 to 120"},
		{"negative periods", &adminv1.GetStatsRequest{Periods: -1}, "periods -1: want 1 to 120"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := client.GetStats(context.Background(), tt.req)
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want InvalidArgument containing %q", err, tt.want)
			}
		})
	}
}

func TestStatsWindow(t *testing.T) {
	now := time.Date(2026, 5, 6, 10, 34, 12, 0, time.UTC)
	keep := store.DefaultStatsRetention()
	tests := []struct {
		name              string
		since             time.Duration
		periods           int
		res               string
		from              time.Time
		bounds            int
		lastPeriodStarted time.Time
	}{
		{"an hour of minutes", time.Hour, 12, "1m", time.Date(2026, 5, 6, 9, 35, 0, 0, time.UTC), 12, time.Date(2026, 5, 6, 10, 30, 0, 0, time.UTC)},
		{"periods finer than rows", 5 * time.Minute, 120, "1m", time.Date(2026, 5, 6, 10, 30, 0, 0, time.UTC), 5, time.Date(2026, 5, 6, 10, 34, 0, 0, time.UTC)},
		{"since not a whole row", 90 * time.Second, 12, "1m", time.Date(2026, 5, 6, 10, 33, 0, 0, time.UTC), 2, time.Date(2026, 5, 6, 10, 34, 0, 0, time.UTC)},
		{"a week of hours", 7 * 24 * time.Hour, 7, "1h", time.Date(2026, 4, 29, 11, 0, 0, 0, time.UTC), 7, time.Date(2026, 5, 5, 11, 0, 0, 0, time.UTC)},
		{"a year of days", 365 * 24 * time.Hour, 12, "1d", time.Date(2025, 5, 7, 0, 0, 0, 0, time.UTC), 12, time.Date(2026, 4, 6, 0, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newStatsWindow(now, tt.since, tt.periods, keep)
			if w.resolution != tt.res || !w.from.Equal(tt.from) || len(w.bounds) != tt.bounds || !w.bounds[len(w.bounds)-1].Equal(tt.lastPeriodStarted) {
				t.Fatalf("window %s from %s, %d periods, the last from %s; want %s from %s, %d, %s",
					w.resolution, w.from, len(w.bounds), w.bounds[len(w.bounds)-1], tt.res, tt.from, tt.bounds, tt.lastPeriodStarted)
			}
			if !w.bounds[0].Equal(w.from) || w.from.Sub(w.prevFrom) != w.end.Sub(w.from) {
				t.Errorf("bounds start %s, previous %s..%s, stretch %s..%s: want the first period at from and stretches of one length",
					w.bounds[0], w.prevFrom, w.from, w.from, w.end)
			}
			for _, tc := range []struct {
				at   time.Time
				want int
			}{{w.prevFrom, -1}, {w.from.Add(-time.Nanosecond), -1}, {w.from, 0}, {w.bounds[len(w.bounds)-1], len(w.bounds) - 1}, {w.end.Add(-time.Nanosecond), len(w.bounds) - 1}} {
				if got := w.period(tc.at); got != tc.want {
					t.Errorf("period(%s) = %d, want %d", tc.at, got, tc.want)
				}
			}
		})
	}
}
