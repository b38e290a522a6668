package controlclient

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// Retries of writes to the state directory: soon after a failure, then
// less and less often, but never so rarely that a repaired disk stays
// unused for long.
const (
	persistRetryMin = time.Second
	persistRetryMax = 30 * time.Second
)

// maxPendingBackups bounds the backups held in memory while the state
// directory cannot be written; each holds a whole snapshot.
const maxPendingBackups = 10

// persister keeps what the agent serves on disk: the snapshot it boots from
// and the backups of the states it replaced. A write that fails is kept
// and retried, on the next snapshot and with backoff in between, and the
// reason is reported to the control plane (Ack.not_persisted) until a
// write succeeds: the agent serves the new state all the same, but a
// restart without the control plane would serve an older one.
type persister struct {
	saver   Saver
	backups Backups // nil: none kept
	log     *slog.Logger
	now     func() time.Time

	mu      sync.Mutex
	snap    *agentv1.Desired // served and not yet on disk; nil when on disk
	pending []pendingBackup  // not yet on disk, oldest first
	reason  string           // why something is not on disk; "" when all is
	lost    int              // backups dropped beyond maxPendingBackups

	// changed holds a token when reason changed, for the Sync session to
	// report; work holds one when something waits to be written.
	changed chan struct{}
	work    chan struct{}
}

// pendingBackup is a backup not yet written.
type pendingBackup struct {
	replaced   *agentv1.Desired
	replacedBy int64
	at         time.Time
}

func newPersister(s Saver, log *slog.Logger, now func() time.Time) *persister {
	return &persister{saver: s, log: log, now: now, changed: make(chan struct{}, 1), work: make(chan struct{}, 1)}
}

// keep writes next, the state a swap just made current, and a backup of
// prev, the state it replaced, together with whatever earlier writes
// failed. It returns why something is not on disk; "" when all is.
func (p *persister) keep(prev, next *agentv1.Desired) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.backups != nil && prev != nil && prev.GetRevision() != 0 && prev.GetHash() != next.GetHash() {
		// Something was replaced (revision 0 is no config yet) and it
		// changed for this agent.
		p.pending = append(p.pending, pendingBackup{replaced: prev, replacedBy: next.GetRevision(), at: p.now()})
		if n := len(p.pending) - maxPendingBackups; n > 0 {
			for _, b := range p.pending[:n] {
				p.log.Error("dropped the backup of a replaced state that could not be written", "revision", b.replaced.GetRevision(), "replaced_by", b.replacedBy)
			}
			p.pending = append([]pendingBackup(nil), p.pending[n:]...)
			p.lost += n
		}
	}
	p.snap = next
	reason := p.flushLocked()
	if p.waitingLocked() {
		select {
		case p.work <- struct{}{}:
		default:
		}
	}
	return reason
}

// flush retries the writes that failed.
func (p *persister) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.flushLocked()
}

// waiting reports whether some writes failed and wait for a retry.
func (p *persister) waiting() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waitingLocked()
}

// Reason returns why something the agent serves is not on disk; "" when
// all is.
func (p *persister) Reason() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reason
}

func (p *persister) waitingLocked() bool { return p.snap != nil || len(p.pending) > 0 }

// flushLocked writes the pending backups, oldest first so that their order
// on disk stays the order of the swaps, then the snapshot, and returns the
// new reason. A failed backup leaves the later ones pending, but the
// snapshot is written regardless: it is what a restart serves.
func (p *persister) flushLocked() string {
	var why []string
	for len(p.pending) > 0 {
		b := p.pending[0]
		kept, err := p.backups.KeepBackup(b.replaced, b.replacedBy, b.at)
		if err != nil {
			why = append(why, fmt.Sprintf("cannot keep the backup of revision %d (replaced by %d): %v", b.replaced.GetRevision(), b.replacedBy, err))
			break
		}
		if kept.ID != "" {
			p.log.Debug("kept a backup of the replaced state", "backup", kept.ID, "revision", b.replaced.GetRevision(), "replaced_by", b.replacedBy, "bytes", kept.Size)
		}
		p.pending = p.pending[1:]
	}
	if len(p.pending) > 1 {
		why = append(why, fmt.Sprintf("%d backups wait to be written", len(p.pending)))
	}
	if p.lost > 0 {
		// Reported until the disk takes writes again, then only logged.
		if len(p.pending) > 0 {
			why = append(why, fmt.Sprintf("%d older backups were dropped", p.lost))
		} else {
			p.lost = 0
		}
	}
	if p.snap != nil {
		if err := p.saver.Save(p.snap); err != nil {
			// Serving goes on; only a restart without the control plane
			// would miss this revision.
			why = append([]string{fmt.Sprintf("%v; a restart without the control plane would serve an older state", err)}, why...)
		} else {
			p.snap = nil
		}
	}
	reason := strings.Join(why, "; ")
	if reason != p.reason {
		if reason != "" {
			p.log.Error("cannot keep the served state on disk; serving it all the same and retrying", "err", reason)
		} else {
			p.log.Info("the served state is on disk again")
		}
		p.reason = reason
		select {
		case p.changed <- struct{}{}:
		default:
		}
	}
	return reason
}

// retry writes what failed to be written, with backoff, until ctx ends.
func (p *persister) retry(ctx context.Context, b *Backoff) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.work:
		}
		b.Reset()
		for p.waiting() {
			if b.Sleep(ctx, b.Next()) != nil {
				return
			}
			p.flush()
		}
	}
}
