package stats

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"time"

	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// Defaults of a Reporter.
const (
	DefaultInterval     = 10 * time.Second
	DefaultMaxPending   = 10_000          // buckets kept while the control plane is away
	DefaultDrainTimeout = 2 * time.Second // the last report when the agent stops
	sendTimeout         = 10 * time.Second
	sendBatch           = 1_000 // buckets per Send, well under a gRPC message's limit
)

// Sender sends buckets to the control plane; it fails unless they were
// recorded.
type Sender interface {
	// Send sends buckets numbered in epoch (see ReportStatsRequest).
	Send(ctx context.Context, epoch string, buckets []*agentv1.StatsBucket) error
}

// Reporter sends a Recorder's finished minutes to the control plane every
// interval. Buckets it could not send are kept, up to a bound, and sent
// with the next report; when it stops it sends everything, the minute in
// progress too, once more.
type Reporter struct {
	rec          Source
	send         Sender
	log          *slog.Logger
	now          func() time.Time
	interval     time.Duration
	maxPending   int
	drainTimeout time.Duration

	pending []*agentv1.StatsBucket // not sent yet, oldest first; only Run touches it
	// epoch and seq number the buckets, so that the control plane adds a
	// bucket sent again (its answer lost) only once.
	epoch string
	seq   int64
}

// ReporterOption adjusts a Reporter.
type ReporterOption func(*Reporter)

// WithInterval sets how often the Reporter reports (DefaultInterval).
func WithInterval(d time.Duration) ReporterOption {
	return func(r *Reporter) { r.interval = d }
}

// WithMaxPending sets how many unsent buckets the Reporter keeps
// (DefaultMaxPending); beyond it the oldest are dropped.
func WithMaxPending(n int) ReporterOption {
	return func(r *Reporter) { r.maxPending = n }
}

// WithDrainTimeout bounds the last report when the Reporter stops
// (DefaultDrainTimeout).
func WithDrainTimeout(d time.Duration) ReporterOption {
	return func(r *Reporter) { r.drainTimeout = d }
}

// WithReportClock makes the Reporter read the time from now: it decides
// which minutes are finished.
func WithReportClock(now func() time.Time) ReporterOption {
	return func(r *Reporter) { r.now = now }
}

// NewReporter returns a Reporter of rec's buckets to send.
func NewReporter(rec Source, send Sender, log *slog.Logger, opts ...ReporterOption) *Reporter {
	r := &Reporter{
		rec: rec, send: send, log: log.With("component", "stats"), now: time.Now,
		interval: DefaultInterval, maxPending: DefaultMaxPending, drainTimeout: DefaultDrainTimeout,
		epoch: newEpoch(),
	}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Run reports every interval until ctx ends, then drains: it takes every
// bucket and sends what it holds once more, within the drain timeout. It
// returns nil.
func (r *Reporter) Run(ctx context.Context) error {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			r.Drain()
			return nil
		case <-t.C:
			r.Report(ctx)
		}
	}
}

// Report takes the finished minutes and sends them with those kept from
// before; what cannot be sent is kept for the next report. Run calls it;
// it must not be called at the same time as Run.
func (r *Reporter) Report(ctx context.Context) {
	r.add(r.rec.Take(r.now()))
	if err := r.flush(ctx, sendTimeout); err != nil && ctx.Err() == nil {
		r.log.Warn("could not report statistics; keeping them for the next report", "buckets", len(r.pending), "err", err)
	}
}

// Drain takes every bucket, the minute in progress too, and sends what it
// holds once, within the drain timeout; what cannot be sent is lost.
func (r *Reporter) Drain() {
	r.add(r.rec.TakeAll())
	if len(r.pending) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.drainTimeout)
	defer cancel()
	if err := r.flush(ctx, r.drainTimeout); err != nil {
		r.log.Warn("statistics left unreported at shutdown", "buckets", len(r.pending), "err", err)
	}
}

// Pending returns how many buckets wait to be sent.
func (r *Reporter) Pending() int { return len(r.pending) }

// newEpoch is a name for this Reporter's numbering, unique in practice.
func newEpoch() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails
	return hex.EncodeToString(b)
}

// add numbers buckets and keeps them to send, dropping the oldest beyond
// the bound.
func (r *Reporter) add(buckets []*agentv1.StatsBucket) {
	for _, b := range buckets {
		r.seq++
		b.Seq = r.seq
	}
	r.pending = append(r.pending, buckets...)
	if n := len(r.pending) - r.maxPending; n > 0 {
		r.log.Warn("too many statistics waiting for the control plane: dropped the oldest", "dropped", n, "kept", r.maxPending)
		clear(r.pending[:n])
		r.pending = append(r.pending[:0], r.pending[n:]...)
	}
}

// flush sends the pending buckets in batches, each under timeout, until
// none is left or a Send fails.
func (r *Reporter) flush(ctx context.Context, timeout time.Duration) error {
	for len(r.pending) > 0 {
		n := min(len(r.pending), sendBatch)
		sctx, cancel := context.WithTimeout(ctx, timeout)
		err := r.send.Send(sctx, r.epoch, r.pending[:n])
		cancel()
		if err != nil {
			return err
		}
		clear(r.pending[:n])
		r.pending = r.pending[n:]
	}
	r.pending = nil
	return nil
}
