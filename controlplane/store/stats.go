package store

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/weft-dev/weft/agent/shared/statscale"
)

// Statistics are not config: recording them never bumps the revision.
// Each reported minute is merged into three rows at once (its minute, its
// hour, its day), so a coarse row always equals the sum of its fine rows
// while both are kept, and a bucket that arrives late, from an agent that
// was offline, lands everywhere without a rollup job.
//
// Merging is read-modify-write. RecordStats first inserts an empty row for
// every key that has none (racing inserts of one key are skipped), then
// reads the rows locked (FOR UPDATE on MySQL; SQLite has one writer), then
// writes the sums. Keys go in primary key order, so two reports of one
// agent lock rows in the same order; a deadlock MySQL still reports is
// retried with the whole transaction.

// The resolutions of statistics rows.
const (
	ResolutionMinute = "1m"
	ResolutionHour   = "1h"
	ResolutionDay    = "1d"
)

// Resolutions lists the resolutions, finest first.
func Resolutions() []string {
	return []string{ResolutionMinute, ResolutionHour, ResolutionDay}
}

// ResolutionStep is the length of a row of resolution r; 0 for an unknown
// resolution.
func ResolutionStep(r string) time.Duration {
	switch r {
	case ResolutionMinute:
		return time.Minute
	case ResolutionHour:
		return time.Hour
	case ResolutionDay:
		return 24 * time.Hour
	default:
		return 0
	}
}

// Kinds of objects statistics are kept for.
const (
	StatsKindService = "service"
	StatsKindChannel = "channel"
	StatsKindJob     = "job"
	// StatsKindWorker counts an agent's worker processes that ended
	// unasked, named by the class of the cause (memory, stack, fatal,
	// signal, exit).
	StatsKindWorker = "worker"
)

// StatsBucket is what was measured of one object over one stretch of time:
// a minute as an agent reports it, or a row of any resolution.
type StatsBucket struct {
	Kind  string // service, channel, job or worker
	Name  string
	Start time.Time // on a minute
	// Count is how many invocations, requests or runs ended (for workers:
	// how many worker processes ended unasked); Errors how many of them
	// failed.
	Count, Errors int64
	// SumUs and MaxUs are their total and longest duration, in µs.
	SumUs, MaxUs int64
	// Histogram counts durations by bucket of the scale of
	// agent/shared/statscale.
	Histogram map[int32]int64
	// Statuses counts HTTP statuses.
	Statuses map[int32]int64
	// BytesIn and BytesOut are the sizes of the inputs and outputs.
	BytesIn, BytesOut int64
	// Seq numbers the bucket in its agent's epoch (0: not numbered).
	Seq int64
}

// StatsRow is one stored row: what one agent measured of one object over
// one minute, hour or day (UTC) starting at Start.
type StatsRow struct {
	Resolution string
	AgentID    string
	StatsBucket
}

// StatsQuery selects rows of one resolution.
type StatsQuery struct {
	Resolution string
	// Kind, Name and AgentID keep rows with those values; empty keeps all.
	Kind, Name, AgentID string
	// From and To keep rows with From <= Start < To; zero is unbounded.
	From, To time.Time
}

// StatsRetention is how long rows of each resolution are kept after they
// end.
type StatsRetention struct {
	Minute, Hour, Day time.Duration
}

// DefaultStatsRetention keeps minutes for two days, hours for 35 days and
// days for 400 days.
func DefaultStatsRetention() StatsRetention {
	return StatsRetention{Minute: 48 * time.Hour, Hour: 35 * 24 * time.Hour, Day: 400 * 24 * time.Hour}
}

// Of is the retention of resolution r; 0 for an unknown resolution.
func (k StatsRetention) Of(r string) time.Duration {
	switch r {
	case ResolutionMinute:
		return k.Minute
	case ResolutionHour:
		return k.Hour
	case ResolutionDay:
		return k.Day
	default:
		return 0
	}
}

// withDefaults fills the zero fields of k from DefaultStatsRetention.
func (k StatsRetention) withDefaults() StatsRetention {
	d := DefaultStatsRetention()
	return StatsRetention{Minute: cmp.Or(k.Minute, d.Minute), Hour: cmp.Or(k.Hour, d.Hour), Day: cmp.Or(k.Day, d.Day)}
}

// WithStatsRetention sets how long statistics are kept; zero fields keep
// their default.
func WithStatsRetention(k StatsRetention) Option {
	return func(s *sqlStore) { s.statsKeep = k }
}

// StatsRetention is how long the statistics of each resolution are kept.
func (s *sqlStore) StatsRetention() StatsRetention { return s.statsKeep.withDefaults() }

// statsKey names one row of one agent.
type statsKey struct {
	resolution string
	startMs    int64
	kind, name string
}

// compareStatsKeys orders keys as the primary key does (the agent is the
// same): binary collation on MySQL compares strings byte by byte, as Go.
func compareStatsKeys(a, b statsKey) int {
	return cmp.Or(cmp.Compare(a.resolution, b.resolution), cmp.Compare(a.startMs, b.startMs),
		cmp.Compare(a.kind, b.kind), cmp.Compare(a.name, b.name))
}

// statsBatch bounds the keys of one statement: 4 placeholders each.
const statsBatch = 200

// RecordStats merges the buckets agentID reports into its rows.
func (s *sqlStore) RecordStats(ctx context.Context, agentID, epoch string, buckets []StatsBucket) error {
	if len(buckets) == 0 {
		return nil
	}
	err := s.write(ctx, func(tx *gorm.DB) error {
		fresh, last, err := s.unseen(tx, agentID, epoch, buckets)
		if err != nil || len(fresh) == 0 {
			return err
		}
		adds, err := statsAdds(fresh)
		if err != nil {
			return err
		}
		keys := slices.SortedFunc(maps.Keys(adds), compareStatsKeys)
		for chunk := range slices.Chunk(keys, statsBatch) {
			if err := s.mergeStats(tx, agentID, chunk, adds); err != nil {
				return err
			}
		}
		if epoch == "" {
			return nil
		}
		seen := statsSeenRow{AgentID: agentID, Epoch: epoch, LastSeq: last, UpdatedAt: now()}
		return tx.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "agent_id"}, {Name: "epoch"}},
			DoUpdates: clause.AssignmentColumns([]string{"last_seq", "updated_at"}),
		}).Create(&seen).Error
	})
	if err != nil {
		return fmt.Errorf("record the statistics of agent %q: %w", agentID, err)
	}
	return nil
}

// unseen are the buckets of epoch not recorded yet: those numbered above
// the highest recorded (all of them without an epoch), and the highest
// number among them. The epoch's row stays locked until the transaction
// ends, so two reports of one epoch are recorded one after the other.
func (s *sqlStore) unseen(tx *gorm.DB, agentID, epoch string, buckets []StatsBucket) ([]StatsBucket, int64, error) {
	if epoch == "" {
		return buckets, 0, nil
	}
	q := tx.Where("agent_id = ? AND epoch = ?", agentID, epoch)
	if s.mysql {
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	var seen []statsSeenRow
	if err := q.Limit(1).Find(&seen).Error; err != nil {
		return nil, 0, fmt.Errorf("read the statistics already recorded: %w", err)
	}
	var recorded int64
	if len(seen) > 0 {
		recorded = seen[0].LastSeq
	}
	last := recorded
	var fresh []StatsBucket
	for _, b := range buckets {
		if b.Seq > recorded {
			fresh = append(fresh, b)
			last = max(last, b.Seq)
		}
	}
	return fresh, last, nil
}

// statsAdds sums buckets into what each row of every resolution gains.
func statsAdds(buckets []StatsBucket) (map[statsKey]*StatsBucket, error) {
	adds := make(map[statsKey]*StatsBucket, 3*len(buckets))
	for i, b := range buckets {
		ms := b.Start.UnixMilli()
		if ms%time.Minute.Milliseconds() != 0 {
			return nil, fmt.Errorf("bucket %d (%s %q): start %s is not on a minute", i, b.Kind, b.Name, b.Start.UTC().Format(time.RFC3339Nano))
		}
		for _, r := range Resolutions() {
			k := statsKey{resolution: r, startMs: floorMs(ms, ResolutionStep(r)), kind: b.Kind, name: b.Name}
			sum := adds[k]
			if sum == nil {
				sum = &StatsBucket{Kind: b.Kind, Name: b.Name, Start: time.UnixMilli(k.startMs).UTC()}
				adds[k] = sum
			}
			sum.Add(b)
		}
	}
	return adds, nil
}

// floorMs is the start, in Unix ms, of the step-long stretch holding ms.
func floorMs(ms int64, step time.Duration) int64 {
	n := step.Milliseconds()
	f := ms - ms%n
	if ms%n < 0 {
		f -= n
	}
	return f
}

// Add adds o into b: counts add up, the longest stays, histograms and
// statuses merge.
func (b *StatsBucket) Add(o StatsBucket) {
	b.Count += o.Count
	b.Errors += o.Errors
	b.SumUs += o.SumUs
	b.MaxUs = max(b.MaxUs, o.MaxUs)
	b.BytesIn += o.BytesIn
	b.BytesOut += o.BytesOut
	if b.Histogram == nil {
		b.Histogram = map[int32]int64{}
	}
	if b.Statuses == nil {
		b.Statuses = map[int32]int64{}
	}
	statscale.Merge(b.Histogram, o.Histogram)
	statscale.Merge(b.Statuses, o.Statuses)
}

// statsValueColumns are the columns a merge writes.
var statsValueColumns = []string{"count", "errors", "sum_us", "max_us", "histogram", "statuses", "bytes_in", "bytes_out"}

// mergeStats adds adds[k] to agentID's row k for the keys, sorted.
func (s *sqlStore) mergeStats(tx *gorm.DB, agentID string, keys []statsKey, adds map[statsKey]*StatsBucket) error {
	empty := make([]statsRow, 0, len(keys))
	tuples := make([][]any, 0, len(keys))
	for _, k := range keys {
		empty = append(empty, statsRow{Resolution: k.resolution, StartMs: k.startMs, AgentID: agentID, Kind: k.kind, Name: k.name, Histogram: "{}", Statuses: "{}"})
		tuples = append(tuples, []any{k.resolution, k.startMs, k.kind, k.name})
	}
	// Every row exists from here on, so the locking read below takes
	// record locks only, in key order.
	if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&empty).Error; err != nil {
		return fmt.Errorf("create statistics rows: %w", err)
	}
	q := tx.Where("agent_id = ? AND (resolution, start_ms, kind, name) IN ?", agentID, tuples).
		Order("resolution, start_ms, kind, name")
	if s.mysql {
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	var rows []statsRow
	if err := q.Find(&rows).Error; err != nil {
		return fmt.Errorf("read statistics rows: %w", err)
	}
	if len(rows) != len(keys) {
		return fmt.Errorf("read statistics rows: %d of %d found", len(rows), len(keys))
	}
	for i := range rows {
		r := &rows[i]
		k := statsKey{resolution: r.Resolution, startMs: r.StartMs, kind: r.Kind, name: r.Name}
		sum, err := r.toRow()
		if err != nil {
			return err
		}
		add := adds[k]
		if add == nil {
			// MySQL's collation took another name for this one (it
			// ignores trailing spaces, for one).
			return fmt.Errorf("read statistics rows: %s %q at %d: the database returned %q for it", k.kind, k.name, k.startMs, r.Name)
		}
		sum.Add(*add)
		if err := r.set(sum.StatsBucket); err != nil {
			return err
		}
	}
	err := tx.Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "resolution"}, {Name: "start_ms"}, {Name: "agent_id"}, {Name: "kind"}, {Name: "name"}},
		DoUpdates: clause.AssignmentColumns(statsValueColumns),
	}).Create(&rows).Error
	if err != nil {
		return fmt.Errorf("write statistics rows: %w", err)
	}
	return nil
}

// set writes the sums of b into r.
func (r *statsRow) set(b StatsBucket) error {
	hist, err := encodeCounts(b.Histogram)
	if err != nil {
		return fmt.Errorf("encode the histogram of %s %q: %w", r.Kind, r.Name, err)
	}
	statuses, err := encodeCounts(b.Statuses)
	if err != nil {
		return fmt.Errorf("encode the statuses of %s %q: %w", r.Kind, r.Name, err)
	}
	r.Count, r.Errors, r.SumUs, r.MaxUs = b.Count, b.Errors, b.SumUs, b.MaxUs
	r.BytesIn, r.BytesOut = b.BytesIn, b.BytesOut
	r.Histogram, r.Statuses = hist, statuses
	return nil
}

// toRow decodes r.
func (r *statsRow) toRow() (StatsRow, error) {
	hist, err := decodeCounts(r.Histogram)
	if err != nil {
		return StatsRow{}, fmt.Errorf("decode the histogram of %s %q at %s %d: %w", r.Kind, r.Name, r.Resolution, r.StartMs, err)
	}
	statuses, err := decodeCounts(r.Statuses)
	if err != nil {
		return StatsRow{}, fmt.Errorf("decode the statuses of %s %q at %s %d: %w", r.Kind, r.Name, r.Resolution, r.StartMs, err)
	}
	return StatsRow{Resolution: r.Resolution, AgentID: r.AgentID, StatsBucket: StatsBucket{
		Kind: r.Kind, Name: r.Name, Start: time.UnixMilli(r.StartMs).UTC(),
		Count: r.Count, Errors: r.Errors, SumUs: r.SumUs, MaxUs: r.MaxUs,
		Histogram: hist, Statuses: statuses, BytesIn: r.BytesIn, BytesOut: r.BytesOut,
	}}, nil
}

// encodeCounts encodes a map of counts as a JSON object; nil is {}.
func encodeCounts(m map[int32]int64) (string, error) {
	if m == nil {
		m = map[int32]int64{}
	}
	return encodeJSON(m)
}

// decodeCounts decodes a JSON object of counts; "" is empty.
func decodeCounts(s string) (map[int32]int64, error) {
	m := map[int32]int64{}
	if s == "" {
		return m, nil
	}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, err
	}
	return m, nil
}

// QueryStats reads the rows q selects.
func (s *sqlStore) QueryStats(ctx context.Context, q StatsQuery) ([]StatsRow, error) {
	if ResolutionStep(q.Resolution) == 0 {
		return nil, fmt.Errorf("query statistics: resolution %q: want 1m, 1h or 1d", q.Resolution)
	}
	db := s.r.WithContext(ctx).Where("resolution = ?", q.Resolution)
	if q.Kind != "" {
		db = db.Where("kind = ?", q.Kind)
	}
	if q.Name != "" {
		db = db.Where("name = ?", q.Name)
	}
	if q.AgentID != "" {
		db = db.Where("agent_id = ?", q.AgentID)
	}
	if !q.From.IsZero() {
		db = db.Where("start_ms >= ?", q.From.UnixMilli())
	}
	if !q.To.IsZero() {
		db = db.Where("start_ms < ?", q.To.UnixMilli())
	}
	var rows []statsRow
	if err := db.Order("start_ms, agent_id, kind, name").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("query statistics: %w", err)
	}
	out := make([]StatsRow, 0, len(rows))
	for i := range rows {
		r, err := rows[i].toRow()
		if err != nil {
			return nil, fmt.Errorf("query statistics: %w", err)
		}
		out = append(out, r)
	}
	return out, nil
}

// PruneStats deletes the rows past their retention.
func (s *sqlStore) PruneStats(ctx context.Context, now time.Time) (int64, error) {
	keep := s.StatsRetention()
	var deleted int64
	for _, r := range Resolutions() {
		// A row ends one step after it starts; it goes when that end is
		// older than the retention.
		cutoff := now.Add(-keep.Of(r) - ResolutionStep(r)).UnixMilli()
		res := s.w.WithContext(ctx).Where("resolution = ? AND start_ms < ?", r, cutoff).Delete(&statsRow{})
		if res.Error != nil {
			return deleted, fmt.Errorf("prune %s statistics: %w", r, res.Error)
		}
		deleted += res.RowsAffected
	}
	// An epoch no report came from for as long as minutes are kept is over.
	old := now.Add(-keep.Of(ResolutionMinute))
	if err := s.w.WithContext(ctx).Where("updated_at < ?", old).Delete(&statsSeenRow{}).Error; err != nil {
		return deleted, fmt.Errorf("prune the statistics epochs: %w", err)
	}
	return deleted, nil
}
