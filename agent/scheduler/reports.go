package scheduler

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

const (
	reportCap     = 10_000                 // runs kept while the control plane is away; the oldest go first
	reportSoon    = 256                    // this many waiting are sent at once
	reportBatch   = 1_000                  // runs per Report call
	reportEvery   = 250 * time.Millisecond // waiting runs are sent at least this often
	reportTimeout = 5 * time.Second        // one Report call
	finalTimeout  = 2 * time.Second        // the last flush when the scheduler stops
	retryMin      = 100 * time.Millisecond
	retryMax      = 5 * time.Second
)

// reports queues runs and sends them to the control plane in batches. A
// failed batch is kept and sent again after a backoff, so nothing is lost
// while the control plane is away, up to reportCap runs; while they wait
// they are also kept on disk (spool), at most once per saveEvery, so that
// a restart loses none.
type reports struct {
	to    Coordinator // nil: runs are dropped
	clock Clock
	log   *slog.Logger
	spool *spool    // used by the run loop and finalFlush only
	saved time.Time // when the spool was last written

	mu      sync.Mutex
	queue   []*agentv1.JobRun
	dropped int           // runs dropped for room since the last warning
	added   bool          // runs were added since the spool was last written
	soon    chan struct{} // reportSoon runs are waiting
}

func newReports(to Coordinator, clock Clock, log *slog.Logger, sp *spool) *reports {
	r := &reports{to: to, clock: clock, log: log, spool: sp, soon: make(chan struct{}, 1)}
	if to != nil {
		r.queue = sp.load()
		r.trim()
	}
	return r
}

// keep writes the waiting runs to the spool when runs were added since it
// was last written, at most once per saveEvery, or at once when now is
// set; with none waiting it removes the spool.
func (r *reports) keep(now bool) {
	r.mu.Lock()
	if len(r.queue) > 0 && !now && (!r.added || r.clock.Now().Sub(r.saved) < saveEvery) {
		r.mu.Unlock()
		return
	}
	runs := append([]*agentv1.JobRun(nil), r.queue...)
	r.added = false
	r.mu.Unlock()
	if !r.spool.save(runs) {
		r.mu.Lock()
		r.added = true // try again next time
		r.mu.Unlock()
	}
	r.saved = r.clock.Now()
}

// add queues run, dropping the oldest run when the queue is full.
func (r *reports) add(run *agentv1.JobRun) {
	if r.to == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queue = append(r.queue, run)
	r.added = true
	r.trim()
	if len(r.queue) >= reportSoon {
		select {
		case r.soon <- struct{}{}:
		default:
		}
	}
}

// trim drops the oldest runs beyond reportCap. Caller holds mu.
func (r *reports) trim() {
	if n := len(r.queue) - reportCap; n > 0 {
		clear(r.queue[:n])
		r.queue = r.queue[n:]
		r.dropped += n
	}
}

// waiting returns the number of queued runs.
func (r *reports) waiting() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.queue)
}

// run sends queued runs every reportEvery, or as soon as reportSoon are
// waiting, until ctx ends; after a failure it waits a growing backoff,
// meanwhile writing the runs that end to the spool every saveEvery.
func (r *reports) run(ctx context.Context) {
	if r.to == nil {
		return
	}
	var retry time.Duration
	var retryAt time.Time
	for {
		wait, soon := reportEvery, r.soon
		if retry > 0 {
			wait, soon = min(retryAt.Sub(r.clock.Now()), saveEvery), nil
		}
		t := r.clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-soon:
			t.Stop()
		case <-t.C():
		}
		if retry > 0 && r.clock.Now().Before(retryAt) {
			r.keep(false) // runs that ended during the backoff
			continue
		}
		if err := r.flush(ctx, reportTimeout); err != nil {
			retry = min(max(retry*2, retryMin), retryMax)
			wait := jitter(retry)
			retryAt = r.clock.Now().Add(wait)
			r.log.Warn("could not report job runs; keeping them and retrying", "waiting", r.waiting(), "retry_in", wait, "file", r.spool.path, "err", err)
			r.keep(false)
			continue
		}
		if retry > 0 || r.spool.held {
			r.keep(true) // everything went: the spool goes too
		}
		retry = 0
	}
}

// jitter returns a duration in [d/2, d], so that a fleet's retries spread
// out after a control plane restart.
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

// flush sends the queued runs in batches until none is left or a call
// fails; a failed batch goes back to the front of the queue.
func (r *reports) flush(ctx context.Context, timeout time.Duration) error {
	for {
		r.mu.Lock()
		if r.dropped > 0 {
			r.log.Warn("job run queue full: dropped the oldest runs unreported", "dropped", r.dropped, "cap", reportCap)
			r.dropped = 0
		}
		n := min(len(r.queue), reportBatch)
		batch := make([]*agentv1.JobRun, n)
		copy(batch, r.queue)
		clear(r.queue[:n])
		r.queue = r.queue[n:]
		r.mu.Unlock()
		if n == 0 {
			return nil
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		err := r.to.Report(cctx, batch)
		cancel()
		if err != nil {
			r.mu.Lock()
			r.queue = append(batch, r.queue...)
			r.trim()
			r.mu.Unlock()
			return err
		}
	}
}

// finalFlush tries once, briefly, to send what is left when the scheduler
// stops, and keeps on disk what could not be sent.
func (r *reports) finalFlush() {
	if r.to == nil {
		return
	}
	if r.waiting() > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), finalTimeout)
		defer cancel()
		if err := r.flush(ctx, finalTimeout); err != nil {
			r.log.Warn("job runs left unreported at shutdown; kept on disk for the next start", "runs", r.waiting(), "file", r.spool.path, "err", err)
		}
	}
	r.keep(true) // nothing to do unless runs wait or the spool exists
}
