package dispatch

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Watch tells waiters when the global revision moves. Local changes advance
// it at once; a poll of the database advances it for changes made by other
// replicas sharing the database.
type Watch struct {
	mu      sync.Mutex
	rev     int64
	changed chan struct{}
}

// NewWatch returns a watch at revision rev.
func NewWatch(rev int64) *Watch {
	return &Watch{rev: rev, changed: make(chan struct{})}
}

// Current returns the revision and a channel closed when it next moves.
func (w *Watch) Current() (int64, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rev, w.changed
}

// Advance moves the watch to rev, waking every waiter; an older or equal
// revision is ignored, so replicas and the poller may race freely.
func (w *Watch) Advance(rev int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if rev <= w.rev {
		return
	}
	w.rev = rev
	close(w.changed)
	w.changed = make(chan struct{})
}

// RevisionReader reads the current revision.
type RevisionReader interface {
	Revision(ctx context.Context) (int64, error)
}

// Poll reads the revision every interval and advances the watch until ctx
// ends. A failed read is logged and retried: the database may be restarting.
func (w *Watch) Poll(ctx context.Context, r RevisionReader, interval time.Duration, log *slog.Logger) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		rev, err := r.Revision(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !failing {
				log.Warn("cannot read the revision; retrying", "err", err)
			}
			failing = true
			continue
		}
		if failing {
			log.Info("reading the revision again")
			failing = false
		}
		w.Advance(rev)
	}
}
