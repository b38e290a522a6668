package dispatch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weft-dev/weft/agent/shared/snapshot"
	"github.com/weft-dev/weft/controlplane/auth"
	"github.com/weft-dev/weft/controlplane/pki"
	"github.com/weft-dev/weft/controlplane/store"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// agentIDPattern is what an agent id may look like, as its certificate
// binds it.
var agentIDPattern = pki.AgentIDPattern

// agentConn is one agent connected to this replica.
type agentConn struct {
	id     string
	cancel context.CancelFunc

	// Guarded by Server.mu.
	applied int64         // revision the agent ACKed last
	cmd     *commandsConn // nil until the agent opens Commands
}

// Sync serves one agent's config stream: hello, then snapshots answered by
// ACK or NACK, until the agent goes away.
func (s *Server) Sync(stream agentv1.AgentService_SyncServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	hello := first.GetHello()
	if hello == nil {
		return status.Error(codes.InvalidArgument, "sync: the first message must be a hello")
	}
	id := hello.GetAgentId()
	if !agentIDPattern.MatchString(id) {
		return status.Errorf(codes.InvalidArgument, "sync: agent_id %q: want 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit", id)
	}
	if err := auth.CheckAgent(stream.Context(), id); err != nil {
		return err
	}
	if v := hello.GetProtocolVersion(); v != snapshot.ProtocolVersion {
		older := "the agent"
		if v > snapshot.ProtocolVersion {
			older = "the control plane"
		}
		return status.Errorf(codes.FailedPrecondition, "sync: agent %q speaks protocol %d; this control plane speaks %d: upgrade %s (it keeps serving what it has until then)", id, v, snapshot.ProtocolVersion, older)
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()

	prev, err := s.store.GetAgent(ctx, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Error("cannot read an agent saying hello", "agent", id, "err", err)
		return storeFailed(fmt.Sprintf("sync: read agent %q", id), err)
	}
	if err := s.store.AgentHello(ctx, store.AgentHello{
		ID:              id,
		Labels:          hello.GetLabels(),
		BuildVersion:    hello.GetBuildVersion(),
		HTTPAddress:     hello.GetHttpAddress(),
		PID:             hello.GetPid(),
		StartedAt:       time.UnixMilli(hello.GetStartedAtUnixMs()).UTC(),
		AppliedRevision: hello.GetAppliedRevision(),
		AppliedHash:     hello.GetAppliedHash(),
		Replica:         s.replica,
	}); err != nil {
		s.log.Error("cannot record an agent saying hello", "agent", id, "err", err)
		return storeFailed(fmt.Sprintf("sync: record agent %q", id), err)
	}

	conn := s.register(id, cancel, hello.GetAppliedRevision())
	defer s.unregister(conn)
	log := s.log.With("agent", id)
	log.Info("agent connected", "applied_revision", hello.GetAppliedRevision(), "pid", hello.GetPid(), "version", hello.GetBuildVersion())

	// sent starts at 0, so the agent always gets the current snapshot: it
	// confirms an agent in sync cheaply (it holds every package), and moves
	// an agent whose applied revision is ahead of this database back to it.
	a := &syncState{
		held:    make(map[string]bool),
		applied: hello.GetAppliedRevision(),
	}
	for _, h := range hello.GetPackageHashes() {
		a.held[h] = true
	}
	// A revision this very process refused is not sent again: it would be
	// refused again. A restarted agent (another pid) may be a fixed build, so
	// it gets one more try.
	if prev.FailedRevision > 0 && prev.FailedRevision != a.applied && prev.PID == hello.GetPid() {
		a.refused = prev.FailedRevision
	}

	msgs := make(chan *agentv1.SyncRequest)
	recvErr := make(chan error, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				return
			}
		}
	}()

	// While the stream lives the agent is seen: gRPC keepalives would end
	// it otherwise. Record that now and then, so last seen stays honest for
	// an agent with nothing to say.
	seen := time.NewTicker(s.seenInterval)
	defer seen.Stop()
	for {
		rev, changed := s.watch.Current()
		if a.pending == nil && rev > a.sent && rev != a.refused && rev > 0 {
			full, err := s.desired(ctx, rev)
			if err != nil {
				log.Error("cannot build snapshot", "revision", rev, "err", err)
				return storeFailed("sync", err)
			}
			snap := forAgent(full, a.held, newNonce())
			if err := stream.Send(&agentv1.SyncResponse{Kind: &agentv1.SyncResponse_Desired{Desired: snap}}); err != nil {
				return err
			}
			a.pending, a.sent = snap, snap.GetRevision()
			log.Debug("snapshot sent", "revision", snap.GetRevision(), "nonce", snap.GetNonce())
		}
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case err := <-recvErr:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case <-changed:
		case <-seen.C:
			if err := s.store.AgentSeen(ctx, id); err != nil {
				log.Warn("cannot record that the agent is alive", "err", err)
			}
		case m := <-msgs:
			if err := s.handle(ctx, conn, a, m); err != nil {
				return err
			}
		}
	}
}

// syncState is what one Sync stream knows of its agent.
type syncState struct {
	held    map[string]bool  // package sha256s the agent holds
	sent    int64            // newest revision sent or applied
	applied int64            // newest revision ACKed
	refused int64            // newest revision NACKed, not to be sent again
	pending *agentv1.Desired // sent and not yet answered
	acked   *agentv1.Desired // ACKed last on this stream: what the agent serves
}

func (s *Server) handle(ctx context.Context, conn *agentConn, a *syncState, m *agentv1.SyncRequest) error {
	log := s.log.With("agent", conn.id)
	switch k := m.GetKind().(type) {
	case *agentv1.SyncRequest_Ack:
		ack := k.Ack
		if a.acked != nil && ack.GetNonce() == a.acked.GetNonce() && ack.GetHash() == a.acked.GetHash() {
			// The same ACK again: what the agent keeps on disk changed.
			return s.acked(ctx, conn.id, a.acked, ack, true, log)
		}
		if a.pending == nil || ack.GetNonce() != a.pending.GetNonce() {
			log.Warn("ignoring an ACK for a snapshot not pending", "revision", ack.GetRevision(), "nonce", ack.GetNonce())
			return nil
		}
		snap := a.pending
		a.pending = nil
		if ack.GetHash() != snap.GetHash() {
			msg := fmt.Sprintf("agent serves hash %s, want %s", ack.GetHash(), snap.GetHash())
			a.refused = snap.GetRevision()
			log.Error("snapshot hash mismatch", "revision", snap.GetRevision(), "err", msg)
			return s.store.AgentFailed(ctx, conn.id, snap.GetRevision(), msg)
		}
		// The agent holds exactly what it now serves: a package it dropped
		// must travel with its files again, as after a rollback.
		a.held = make(map[string]bool, len(snap.GetPackages()))
		for _, p := range snap.GetPackages() {
			a.held[p.GetSha256()] = true
		}
		a.applied, a.acked = snap.GetRevision(), snap
		s.setApplied(conn, a.applied)
		log.Info("agent applied revision", "revision", a.applied)
		return s.acked(ctx, conn.id, snap, ack, false, log)
	case *agentv1.SyncRequest_Nack:
		nack := k.Nack
		if a.pending == nil || nack.GetNonce() != a.pending.GetNonce() {
			log.Warn("ignoring a NACK for a snapshot not pending", "revision", nack.GetRevision(), "nonce", nack.GetNonce())
			return nil
		}
		a.refused = a.pending.GetRevision()
		a.pending = nil
		msg := nackMessage(nack)
		log.Warn("agent refused revision", "revision", a.refused, "err", msg)
		return s.store.AgentFailed(ctx, conn.id, a.refused, msg)
	default:
		return status.Errorf(codes.InvalidArgument, "sync: unexpected %T after hello", k)
	}
}

// acked records an ACK of snap with what the agent said of its disk. again
// is true for the ACK of the snapshot the agent already serves, sent again
// because that changed.
func (s *Server) acked(ctx context.Context, id string, snap *agentv1.Desired, ack *agentv1.Ack, again bool, log *slog.Logger) error {
	switch why := ack.GetNotPersisted(); {
	case why != "":
		log.Warn("agent serves a revision it could not keep on disk", "revision", snap.GetRevision(), "err", why)
	case again:
		log.Info("agent keeps the revision it serves on disk again", "revision", snap.GetRevision())
	}
	return s.store.AgentAcked(ctx, id, store.AgentAck{Revision: snap.GetRevision(), Hash: snap.GetHash(), NotPersisted: ack.GetNotPersisted()})
}

// nackMessage joins a NACK's errors into one message, one line per object.
func nackMessage(n *agentv1.Nack) string {
	var lines []string
	for _, e := range n.GetErrors() {
		lines = append(lines, fmt.Sprintf("%s %q: %s", e.GetKind(), e.GetName(), e.GetMessage()))
	}
	if len(lines) == 0 {
		return "refused with no reason given"
	}
	return strings.Join(lines, "\n")
}

func (s *Server) register(id string, cancel context.CancelFunc, applied int64) *agentConn {
	c := &agentConn{id: id, cancel: cancel, applied: applied}
	s.mu.Lock()
	old := s.agents[id]
	s.agents[id] = c
	s.mu.Unlock()
	if old != nil {
		// The same agent dialled again before its old stream was seen to
		// die, or two agents share an id: the newest wins.
		s.log.Warn("agent connected again; closing its older stream", "agent", id)
		old.cancel()
	}
	return c
}

func (s *Server) unregister(c *agentConn) {
	s.mu.Lock()
	current := s.agents[c.id] == c
	if current {
		delete(s.agents, c.id)
	}
	cmd := c.cmd
	s.mu.Unlock()
	if cmd != nil {
		cmd.close()
	}
	if !current {
		return
	}
	s.log.Info("agent disconnected", "agent", c.id)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.store.AgentGone(ctx, c.id, s.replica); err != nil {
		s.log.Warn("cannot record agent disconnect", "agent", c.id, "err", err)
	}
}

func (s *Server) setApplied(c *agentConn, rev int64) {
	s.mu.Lock()
	c.applied = rev
	s.mu.Unlock()
}

func newNonce() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}
