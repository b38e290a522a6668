package api

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weft-dev/weft/agent/shared/statscale"
	"github.com/weft-dev/weft/controlplane/store"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// stats answers what the agents measured.
type stats struct {
	adminv1.UnimplementedStatsServiceServer
	*base
	store StatsStore
}

// StatsStore is what the stats service needs of the store: the
// statistics, and the agents, to say why one cannot answer a tail or a
// request for samples.
type StatsStore interface {
	agentReader
	ListAgents(ctx context.Context) ([]store.Agent, error)
	QueryStats(ctx context.Context, q store.StatsQuery) ([]store.StatsRow, error)
	StatsRetention() store.StatsRetention
}

var _ StatsStore = store.Store(nil)

var _ adminv1.StatsServiceServer = (*stats)(nil)

// The bounds of a GetStats request.
const (
	defaultStatsSince = time.Hour
	maxStatsSince     = 400 * 24 * time.Hour
	defaultPeriods    = 12
	maxPeriods        = 120
)

// GetStats sums the statistics of the stretch up to now, per object, with
// its trend and the stretch before it. It reads the finest resolution
// whose retention still holds both stretches, in one query.
func (s *stats) GetStats(ctx context.Context, req *adminv1.GetStatsRequest) (*adminv1.GetStatsResponse, error) {
	q, err := statsQueryOf(req)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "get stats: %v", err)
	}
	w := newStatsWindow(time.Now(), q.since, q.periods, s.store.StatsRetention())
	rows, err := s.store.QueryStats(ctx, store.StatsQuery{
		Resolution: w.resolution, Kind: q.kind, Name: q.name, AgentID: q.agentID,
		From: w.prevFrom, To: w.end,
	})
	if err != nil {
		return nil, storeError("get stats", err)
	}
	return &adminv1.GetStatsResponse{
		From:       timestamppb.New(w.from),
		To:         timestamppb.New(w.now),
		Resolution: w.resolution,
		Objects:    w.sum(rows),
	}, nil
}

// statsRequest is a checked GetStatsRequest with its defaults filled in.
type statsRequest struct {
	kind, name, agentID string
	since               time.Duration
	periods             int
}

// statsQueryOf checks req, naming the field that is wrong.
func statsQueryOf(req *adminv1.GetStatsRequest) (statsRequest, error) {
	q := statsRequest{kind: cmp.Or(req.GetKind(), store.StatsKindService), name: req.GetName(), agentID: req.GetAgentId(),
		since: defaultStatsSince, periods: defaultPeriods}
	switch q.kind {
	case store.StatsKindService, store.StatsKindChannel, store.StatsKindJob, store.StatsKindWorker:
	default:
		return q, fmt.Errorf("kind %q: want service, channel, job or worker", q.kind)
	}
	if req.GetSince() != nil {
		if err := req.GetSince().CheckValid(); err != nil {
			return q, fmt.Errorf("since: %v", err)
		}
		q.since = req.GetSince().AsDuration()
		if q.since <= 0 || q.since > maxStatsSince {
			return q, fmt.Errorf("since %s: want more than 0 and at most 400 days", q.since)
		}
	}
	if p := req.GetPeriods(); p != 0 {
		if p < 1 || p > maxPeriods {
			return q, fmt.Errorf("periods %d: want 1 to %d", p, maxPeriods)
		}
		q.periods = int(p)
	}
	return q, nil
}

// statsWindow is the stretch a GetStats sums, cut into rows of one
// resolution: the stretch [from, end), its periods, and the stretch of the
// same length before it, [prevFrom, from). end is the end of the row
// holding now, so the current minute (hour, day) counts.
type statsWindow struct {
	resolution          string
	now                 time.Time
	prevFrom, from, end time.Time
	// bounds are the starts of the periods, oldest first. Each period holds
	// whole rows, so periods are never finer than a row.
	bounds []time.Time
}

// newStatsWindow lays out the stretch of length since up to now, in
// periods, on the finest resolution keep holds for twice since.
func newStatsWindow(now time.Time, since time.Duration, periods int, keep store.StatsRetention) statsWindow {
	w := statsWindow{resolution: store.ResolutionDay, now: now}
	for _, r := range store.Resolutions() {
		if 2*since <= keep.Of(r) {
			w.resolution = r
			break
		}
	}
	step := store.ResolutionStep(w.resolution)
	steps := int64((since + step - 1) / step) // whole rows, rounded up
	w.end = now.UTC().Truncate(step).Add(step)
	w.from = w.end.Add(-time.Duration(steps) * step)
	w.prevFrom = w.from.Add(-time.Duration(steps) * step)
	n := min(int64(periods), steps)
	for k := range n {
		w.bounds = append(w.bounds, w.from.Add(time.Duration(k*steps/n)*step))
	}
	return w
}

// period is the index of the period holding start, -1 for the stretch
// before.
func (w statsWindow) period(start time.Time) int {
	if start.Before(w.from) {
		return -1
	}
	i, _ := slices.BinarySearchFunc(w.bounds, start, func(b, t time.Time) int { return b.Compare(t) })
	if i == len(w.bounds) || w.bounds[i].After(start) {
		i--
	}
	return i
}

// objectSums gathers the rows of one object.
type objectSums struct {
	kind, name string
	trend      []statsSum
	previous   statsSum
}

// sum adds up rows (of the window's resolution, between prevFrom and end)
// per object, sorted by name.
func (w statsWindow) sum(rows []store.StatsRow) []*adminv1.ObjectStats {
	byName := map[string]*objectSums{}
	for _, r := range rows {
		o := byName[r.Name]
		if o == nil {
			o = &objectSums{kind: r.Kind, name: r.Name, trend: make([]statsSum, len(w.bounds))}
			byName[r.Name] = o
		}
		if i := w.period(r.Start); i < 0 {
			o.previous.Add(r.StatsBucket)
		} else {
			o.trend[i].Add(r.StatsBucket)
		}
	}
	out := make([]*adminv1.ObjectStats, 0, len(byName))
	for _, o := range byName {
		var total statsSum
		trend := make([]*adminv1.StatsTotals, len(o.trend))
		for i := range o.trend {
			total.Add(o.trend[i].StatsBucket)
			trend[i] = o.trend[i].totals(w.bounds[i])
		}
		out = append(out, &adminv1.ObjectStats{
			Kind: o.kind, Name: o.name,
			Totals:   total.totals(w.from),
			Trend:    trend,
			Previous: o.previous.totals(w.prevFrom),
		})
	}
	slices.SortFunc(out, func(a, b *adminv1.ObjectStats) int { return cmp.Compare(a.GetName(), b.GetName()) })
	return out
}

// statsSum adds up buckets.
type statsSum struct{ store.StatsBucket }

// totals renders the sum of a stretch starting at from, with its mean and
// percentiles (read from the histogram, capped at the longest duration).
func (s *statsSum) totals(from time.Time) *adminv1.StatsTotals {
	t := &adminv1.StatsTotals{
		From: timestamppb.New(from), Count: s.Count, Errors: s.Errors, MaxUs: s.MaxUs,
		Statuses: s.Statuses, BytesIn: s.BytesIn, BytesOut: s.BytesOut,
	}
	if s.Count > 0 {
		t.MeanUs = s.SumUs / s.Count
	}
	longest := time.Duration(s.MaxUs) * time.Microsecond
	t.P50Us = statscale.Percentile(s.Histogram, 0.50, longest).Microseconds()
	t.P90Us = statscale.Percentile(s.Histogram, 0.90, longest).Microseconds()
	t.P99Us = statscale.Percentile(s.Histogram, 0.99, longest).Microseconds()
	return t
}
