package auth

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// RevokedAgents lists the revoked agents, as the store does.
type RevokedAgents interface {
	RevokedAgents(ctx context.Context) (map[string]time.Time, error)
}

// Revocations holds the revoked agent ids in memory, so that checking an
// agent's every call costs no query. Run reloads them from the store, where
// other replicas' revocations appear; Add takes this replica's at once.
type Revocations struct {
	mu      sync.RWMutex
	revoked map[string]time.Time
}

// NewRevocations returns an empty set; Load or Run fills it.
func NewRevocations() *Revocations {
	return &Revocations{revoked: map[string]time.Time{}}
}

// At reports when id was revoked, and whether it was.
func (r *Revocations) At(id string) (time.Time, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	at, ok := r.revoked[id]
	return at, ok
}

// Add records that id was revoked at at.
func (r *Revocations) Add(id string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.revoked[id] = at
}

// Load replaces the set with the store's and returns the ids it did not
// hold before. Revocations are never undone, so what Add took stays even
// when the store read missed it.
func (r *Revocations) Load(ctx context.Context, s RevokedAgents) ([]string, error) {
	m, err := s.RevokedAgents(ctx)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var added []string
	for id := range m {
		if _, ok := r.revoked[id]; !ok {
			added = append(added, id)
		}
	}
	for id, at := range r.revoked {
		if _, ok := m[id]; !ok {
			m[id] = at
		}
	}
	r.revoked = m
	return added, nil
}

// Run reloads the set every interval until ctx ends; onNew is called with
// each id that appeared, so that its streams on this replica close.
func (r *Revocations) Run(ctx context.Context, s RevokedAgents, every time.Duration, onNew func(id string), log *slog.Logger) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		added, err := r.Load(ctx, s)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("cannot reload the revoked agents; keeping the ones known", "err", err)
			}
			continue
		}
		for _, id := range added {
			onNew(id)
		}
	}
}
