package store_test

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/controlplane/store/storetest"
)

// statsDay is a day the statistics tests measure in.
var statsDay = time.Date(2026, 5, 6, 0, 0, 0, 0, time.UTC)

// bucket is one minute of service name at start.
// Its statuses are 200 for the successes and 500 for the errors.
func bucket(name string, start time.Time, count, errors, sumUs, maxUs int64, hist map[int32]int64) store.StatsBucket {
	statuses := map[int32]int64{}
	if count > errors {
		statuses[200] = count - errors
	}
	if errors > 0 {
		statuses[500] = errors
	}
	if hist == nil {
		hist = map[int32]int64{}
	}
	return store.StatsBucket{
		Kind: store.StatsKindService, Name: name, Start: start,
		Count: count, Errors: errors, SumUs: sumUs, MaxUs: maxUs,
		Histogram: hist, Statuses: statuses,
		BytesIn: 10 * count, BytesOut: 20 * count,
	}
}

// queryStats reads the rows of q, failing the test on an error.
func queryStats(t *testing.T, s store.Store, q store.StatsQuery) []store.StatsRow {
	t.Helper()
	rows, err := s.QueryStats(context.Background(), q)
	if err != nil {
		t.Fatalf("QueryStats(%+v): %v", q, err)
	}
	return rows
}

// row is the stored row of one agent and resolution.
func row(res, agent string, b store.StatsBucket) store.StatsRow {
	return store.StatsRow{Resolution: res, AgentID: agent, StatsBucket: b}
}

func TestRecordStats(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		m1 := statsDay.Add(10*time.Hour + 5*time.Minute)
		m2 := m1.Add(time.Minute)
		late := statsDay.Add(10*time.Hour + 59*time.Minute)
		err := s.RecordStats(ctx, "a1", "", []store.StatsBucket{
			bucket("hello.greet", m1, 10, 1, 5000, 900, map[int32]int64{60: 8, 70: 2}),
			bucket("hello.greet", m2, 4, 0, 2000, 700, map[int32]int64{60: 4}),
			bucket("hello.list", m1, 1, 1, 100, 100, map[int32]int64{53: 1}),
		})
		if err != nil {
			t.Fatal(err)
		}
		// The same minute again adds up; a late minute of the hour lands
		// in the hour and day rows too.
		err = s.RecordStats(ctx, "a1", "", []store.StatsBucket{
			bucket("hello.greet", m1, 2, 2, 3000, 2000, map[int32]int64{88: 2}),
			bucket("hello.greet", late, 1, 0, 50, 50, map[int32]int64{45: 1}),
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RecordStats(ctx, "a2", "", []store.StatsBucket{bucket("hello.greet", m1, 3, 0, 300, 120, map[int32]int64{55: 3})}); err != nil {
			t.Fatal(err)
		}
		wantRevision(t, s, 0)

		hello := func(start time.Time, count, errs, sum, mx int64, hist map[int32]int64) store.StatsBucket {
			return bucket("hello.greet", start, count, errs, sum, mx, hist)
		}
		tests := []struct {
			name string
			q    store.StatsQuery
			want []store.StatsRow
		}{
			{"minutes of one agent and service", store.StatsQuery{Resolution: "1m", Name: "hello.greet", AgentID: "a1"}, []store.StatsRow{
				row("1m", "a1", hello(m1, 12, 3, 8000, 2000, map[int32]int64{60: 8, 70: 2, 88: 2})),
				row("1m", "a1", hello(m2, 4, 0, 2000, 700, map[int32]int64{60: 4})),
				row("1m", "a1", hello(late, 1, 0, 50, 50, map[int32]int64{45: 1})),
			}},
			{"the hour sums its minutes", store.StatsQuery{Resolution: "1h", Kind: "service", Name: "hello.greet"}, []store.StatsRow{
				row("1h", "a1", hello(statsDay.Add(10*time.Hour), 17, 3, 10050, 2000, map[int32]int64{45: 1, 60: 12, 70: 2, 88: 2})),
				row("1h", "a2", hello(statsDay.Add(10*time.Hour), 3, 0, 300, 120, map[int32]int64{55: 3})),
			}},
			{"the day of one agent", store.StatsQuery{Resolution: "1d", AgentID: "a1"}, []store.StatsRow{
				row("1d", "a1", hello(statsDay, 17, 3, 10050, 2000, map[int32]int64{45: 1, 60: 12, 70: 2, 88: 2})),
				row("1d", "a1", bucket("hello.list", statsDay, 1, 1, 100, 100, map[int32]int64{53: 1})),
			}},
			{"from and to bound the start", store.StatsQuery{Resolution: "1m", AgentID: "a1", From: m2, To: late}, []store.StatsRow{
				row("1m", "a1", hello(m2, 4, 0, 2000, 700, map[int32]int64{60: 4})),
			}},
			{"another kind has none", store.StatsQuery{Resolution: "1d", Kind: "channel"}, []store.StatsRow{}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got := queryStats(t, s, tt.q)
				if !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("got\n%+v\nwant\n%+v", got, tt.want)
				}
			})
		}
	})
}

func TestRecordStatsRefuses(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		good := bucket("hello.greet", statsDay, 1, 0, 10, 10, nil)
		bad := bucket("hello.greet", statsDay.Add(1500*time.Millisecond), 1, 0, 10, 10, nil)
		err := s.RecordStats(ctx, "a1", "", []store.StatsBucket{good, bad})
		wantErr(t, err, nil, `bucket 1 (service "hello.greet"): start 2026-05-06T00:00:01.5Z is not on a minute`)
		if rows := queryStats(t, s, store.StatsQuery{Resolution: "1d"}); len(rows) != 0 {
			t.Fatalf("rows after a refused report: %+v", rows)
		}
		_, err = s.QueryStats(ctx, store.StatsQuery{Resolution: "5m"})
		wantErr(t, err, nil, `resolution "5m": want 1m, 1h or 1d`)
	})
}

// TestRecordStatsConcurrent sends reports of one agent on the same rows
// from several goroutines at once, with another agent beside it: no count
// may be lost at any resolution.
func TestRecordStatsConcurrent(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		const (
			workers = 4
			reports = 25
			minutes = 5
		)
		ctx := context.Background()
		start := statsDay.Add(7 * time.Hour)
		var wg sync.WaitGroup
		errs := make(chan error, 2*workers*reports)
		for w := range workers {
			for _, agent := range []string{"a1", "a2"} {
				wg.Go(func() {
					for i := range reports {
						var buckets []store.StatsBucket
						for m := range minutes {
							// Each report starts at another minute, so
							// reports lock rows in varied orders.
							at := start.Add(time.Duration((m+i+w)%minutes) * time.Minute)
							buckets = append(buckets,
								bucket("svc.a", at, 2, 1, 200, int64(100+w), map[int32]int64{int32(w): 2}),
								bucket("svc.b", at, 1, 0, 50, 50, map[int32]int64{9: 1}))
						}
						if err := s.RecordStats(ctx, agent, "", buckets); err != nil {
							errs <- err
						}
					}
				})
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		perAgent := int64(workers * reports * minutes * 2)
		for _, res := range store.Resolutions() {
			var count, errCount, sum int64
			hist := map[int32]int64{}
			for _, r := range queryStats(t, s, store.StatsQuery{Resolution: res, Name: "svc.a"}) {
				count += r.Count
				errCount += r.Errors
				sum += r.SumUs
				for k, n := range r.Histogram {
					hist[k] += n
				}
			}
			if count != 2*perAgent || errCount != perAgent || sum != 200*perAgent {
				t.Errorf("%s: count %d, errors %d, sum %d; want %d, %d, %d", res, count, errCount, sum, 2*perAgent, perAgent, 200*perAgent)
			}
			for w := range workers {
				if want := 2 * perAgent / workers; hist[int32(w)] != want {
					t.Errorf("%s: histogram bucket %d = %d, want %d", res, w, hist[int32(w)], want)
				}
			}
		}
		hour := queryStats(t, s, store.StatsQuery{Resolution: "1h", Name: "svc.a", AgentID: "a1"})
		if len(hour) != 1 || hour[0].MaxUs != 100+workers-1 {
			t.Errorf("hour rows of a1: %+v, want one with max %d", hour, 100+workers-1)
		}
	})
}

func TestPruneStats(t *testing.T) {
	now := statsDay.Add(12 * time.Hour)
	ages := []time.Duration{
		time.Hour,           // kept everywhere
		49 * time.Hour,      // past the minutes' 48h
		36 * 24 * time.Hour, // past the hours' 35 days
		402 * 24 * time.Hour,
	}
	eachBackend(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		if got := s.StatsRetention(); got != store.DefaultStatsRetention() {
			t.Fatalf("retention %+v, want the default %+v", got, store.DefaultStatsRetention())
		}
		for _, age := range ages {
			b := bucket(fmt.Sprint("svc.", age.Hours()), now.Add(-age).Truncate(time.Minute), 1, 0, 1, 1, nil)
			if err := s.RecordStats(ctx, "a1", "", []store.StatsBucket{b}); err != nil {
				t.Fatal(err)
			}
		}
		deleted, err := s.PruneStats(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		if deleted != 6 {
			t.Errorf("deleted %d rows, want 6", deleted)
		}
		want := map[string][]string{
			"1m": {"svc.1"},
			"1h": {"svc.1", "svc.49"},
			"1d": {"svc.1", "svc.49", "svc.864"},
		}
		for res, names := range want {
			var got []string
			for _, r := range queryStats(t, s, store.StatsQuery{Resolution: res}) {
				got = append(got, r.Name)
			}
			if !sameSet(got, names) {
				t.Errorf("%s rows after prune: %v, want %v", res, got, names)
			}
		}
		if again, err := s.PruneStats(ctx, now); err != nil || again != 0 {
			t.Errorf("prune again: %d rows, %v; want 0, nil", again, err)
		}
	})
}

func TestStatsRetentionOption(t *testing.T) {
	b := storetest.SQLite(t)
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	keep := store.StatsRetention{Minute: time.Hour}
	s, err := store.Open(context.Background(), b.DSN, log, store.WithStatsRetention(keep))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := store.DefaultStatsRetention()
	want.Minute = time.Hour
	if got := s.StatsRetention(); got != want {
		t.Fatalf("retention %+v, want %+v", got, want)
	}
	now := statsDay.Add(12 * time.Hour)
	if err := s.RecordStats(context.Background(), "a1", "", []store.StatsBucket{bucket("svc", now.Add(-3*time.Hour), 1, 0, 1, 1, nil)}); err != nil {
		t.Fatal(err)
	}
	if deleted, err := s.PruneStats(context.Background(), now); err != nil || deleted != 1 {
		t.Fatalf("prune: %d rows, %v; want the minute row gone", deleted, err)
	}
}

// sameSet says whether a and b hold the same strings, in any order.
func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		seen[s]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

// A report sent again after its answer was lost counts once: buckets of an
// epoch numbered no higher than the highest recorded are skipped.
func TestRecordStatsOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		m := statsDay.Add(time.Hour)
		numbered := func(seq int64, count int64) store.StatsBucket {
			b := bucket("svc", m, count, 0, count, 1, nil)
			b.Seq = seq
			return b
		}
		report := []store.StatsBucket{numbered(1, 2), numbered(2, 3)}
		for range 2 { // the second is the same report sent again
			if err := s.RecordStats(ctx, "a1", "e1", report); err != nil {
				t.Fatal(err)
			}
		}
		// The next report holds one bucket sent before and one new.
		if err := s.RecordStats(ctx, "a1", "e1", []store.StatsBucket{numbered(2, 3), numbered(3, 4)}); err != nil {
			t.Fatal(err)
		}
		// Another epoch (the agent restarted) numbers from 1 again.
		if err := s.RecordStats(ctx, "a1", "e2", []store.StatsBucket{numbered(1, 10)}); err != nil {
			t.Fatal(err)
		}
		rows, err := s.QueryStats(ctx, store.StatsQuery{Resolution: store.ResolutionMinute, Kind: "service", Name: "svc"})
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 1 || rows[0].Count != 2+3+4+10 {
			t.Fatalf("rows %+v; want one minute counting %d", rows, 2+3+4+10)
		}
	})
}
