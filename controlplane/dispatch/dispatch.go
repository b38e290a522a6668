// Package dispatch streams the desired config to agents and keeps what each
// agent actually runs. It implements the agent side of the control plane's
// gRPC API (weft.agent.v1): the Sync stream (hello, snapshot, ACK or NACK)
// and the Commands stream (requests such as invoke, answered by the agent).
package dispatch

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weft-dev/weft/agent/shared/snapshot"
	"github.com/weft-dev/weft/controlplane/pki"
	"github.com/weft-dev/weft/controlplane/store"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// Store is what dispatch needs of the control plane's store.
type Store interface {
	Revision(ctx context.Context) (int64, error)
	Desired(ctx context.Context) (store.Desired, error)
	GetAgent(ctx context.Context, id string) (store.Agent, error)
	AgentHello(ctx context.Context, a store.AgentHello) error
	AgentAcked(ctx context.Context, id string, ack store.AgentAck) error
	AgentFailed(ctx context.Context, id string, revision int64, message string) error
	AgentSeen(ctx context.Context, id string) error
	AgentGone(ctx context.Context, id, replica string) error
	ClaimFiring(ctx context.Context, c store.ClaimRequest) (store.Claim, error)
	RenewLeases(ctx context.Context, agentID string, jobs []string, now time.Time, ttl time.Duration) ([]string, error)
	RecordRuns(ctx context.Context, agentID string, runs []store.JobRun) ([]store.JobRun, error)
	RecordStats(ctx context.Context, agentID, epoch string, buckets []store.StatsBucket) error
	Enroll(ctx context.Context, hash, agentID string, now time.Time, issue func() (store.Certificate, error)) (store.JoinToken, error)
	AgentCertified(ctx context.Context, agentID string, c store.Certificate) error
}

var _ Store = store.Store(nil)

// Server serves the agent API. One Server runs per control plane replica
// and knows the agents connected to that replica.
type Server struct {
	agentv1.UnimplementedAgentServiceServer

	store        Store
	replica      string // this replica's id, as it registers (SetReplica)
	watch        *Watch
	log          *slog.Logger
	seenInterval time.Duration // how often a live stream records its agent as seen
	leaseTTL     time.Duration // how long a job lease lasts unless renewed
	now          func() time.Time
	ca           *pki.CA       // signs agents' certificates; nil: no enrollment
	certTTL      time.Duration // how long an agent's certificate is valid

	mu     sync.Mutex
	agents map[string]*agentConn // connected agents by id

	statsBuckets atomic.Int64 // statistics buckets recorded since start

	buildMu sync.Mutex       // one database read at a time builds the cache
	cache   *agentv1.Desired // full snapshot at the newest revision built; under mu
}

// New returns a Server reading config from s and woken by w.
func New(s Store, w *Watch, log *slog.Logger) *Server {
	return &Server{
		store:        s,
		watch:        w,
		log:          log.With("component", "dispatch"),
		agents:       make(map[string]*agentConn),
		seenInterval: 15 * time.Second,
		leaseTTL:     DefaultLeaseTTL,
		now:          time.Now,
	}
}

// SetReplica names this replica: agents' streams are recorded as held by
// it, and count as connected while it beats. Call it before serving.
func (s *Server) SetReplica(id string) { s.replica = id }

// SetLeaseTTL sets how long a job lease lasts unless renewed; the default
// is DefaultLeaseTTL. Call it before serving.
func (s *Server) SetLeaseTTL(d time.Duration) { s.leaseTTL = d }

// Connected returns the ids of the agents connected to this replica that
// hold a Commands stream, sorted.
func (s *Server) Connected() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id, c := range s.agents {
		if c.cmd != nil {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// storeFailed is the status of an agent call the store failed: Unavailable,
// for the agent tries again. When the database cannot be reached the
// message says only that: the store's error names the database's address
// and user, which agents on edge hosts have no business knowing. The
// caller logs the error itself.
func storeFailed(op string, err error) error {
	if store.Unavailable(err) {
		return status.Errorf(codes.Unavailable, "%s: %v", op, store.ErrUnavailable)
	}
	return status.Errorf(codes.Unavailable, "%s: %v", op, err)
}

// desired returns the full snapshot, with every package's files, at
// revision atLeast or newer. Agents woken by one revision share one read of
// the database.
func (s *Server) desired(ctx context.Context, atLeast int64) (*agentv1.Desired, error) {
	if c := s.cached(atLeast); c != nil {
		return c, nil
	}
	s.buildMu.Lock()
	defer s.buildMu.Unlock()
	if c := s.cached(atLeast); c != nil {
		return c, nil
	}
	d, err := s.store.Desired(ctx)
	if err != nil {
		return nil, fmt.Errorf("read desired config: %w", err)
	}
	snap := snapshotOf(d)
	s.mu.Lock()
	if s.cache == nil || snap.GetRevision() > s.cache.GetRevision() {
		s.cache = snap
	}
	s.mu.Unlock()
	return snap, nil
}

// snapshotOf builds the full snapshot of d, hash included. It carries only
// the security definitions that an active channel or an active outgoing
// connection names: agents hold no secret they do not use, and a change to
// a definition nothing active uses leaves the hash as it was.
func snapshotOf(d store.Desired) *agentv1.Desired {
	snap := &agentv1.Desired{Revision: d.Revision}
	for _, p := range d.Packages {
		snap.Packages = append(snap.Packages, snapshot.ForAgent(p))
	}
	for _, c := range d.Channels {
		snap.Channels = append(snap.Channels, snapshot.ForAgent(c))
	}
	used := usedSecurity(d)
	for _, def := range d.Security {
		if !used[def.Name] {
			continue
		}
		snap.Security = append(snap.Security, snapshot.ForAgent(def))
	}
	for _, c := range d.Outgoing {
		snap.Outgoing = append(snap.Outgoing, snapshot.ForAgent(c))
	}
	for _, j := range d.Jobs {
		snap.Jobs = append(snap.Jobs, snapshot.ForAgent(j))
	}
	snap.Hash = snapshot.Hash(snap)
	return snap
}

// usedSecurity returns the names of the security definitions the active
// channels and active outgoing connections of d name. Inactive ones are not
// served or built by agents (see agent/engine), so they need none; the
// snapshot that activates one carries its definition.
func usedSecurity(d store.Desired) map[string]bool {
	used := map[string]bool{}
	for _, c := range d.Channels {
		if c.GetActive() && c.Security != "" {
			used[c.Security] = true
		}
	}
	for _, c := range d.Outgoing {
		if c.GetActive() && c.Security != "" {
			used[c.Security] = true
		}
	}
	return used
}

func (s *Server) cached(atLeast int64) *agentv1.Desired {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cache != nil && s.cache.GetRevision() >= atLeast {
		return s.cache
	}
	return nil
}

// forAgent returns a copy of full for one agent: packages whose sha256 the
// agent holds go without their files.
func forAgent(full *agentv1.Desired, held map[string]bool, nonce string) *agentv1.Desired {
	out := &agentv1.Desired{
		Revision: full.GetRevision(),
		Nonce:    nonce,
		Hash:     full.GetHash(),
		Channels: full.GetChannels(),
		Security: full.GetSecurity(),
		Outgoing: full.GetOutgoing(),
		Jobs:     full.GetJobs(),
	}
	for _, p := range full.GetPackages() {
		if held[p.GetSha256()] {
			p = snapshot.WithoutSources(p)
		}
		out.Packages = append(out.Packages, p)
	}
	return out
}

// Close ends every agent stream of this replica, so that a graceful stop
// need not wait for streams that only end when agents go away.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.agents {
		c.cancel()
	}
}
