package api

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/weft-dev/weft/controlplane/dispatch"
	"github.com/weft-dev/weft/controlplane/store"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// tailStartTimeout bounds starting a tail on another replica: it answers
// once its own agents have started it (within their own bound).
const tailStartTimeout = 10 * time.Second

// tailMissing is the header of a tail that names the agents it does not
// cover, each with why: it is sent at the start of every tail.
const tailMissing = "weft-tail-missing"

// Tail streams the invocations of every connected agent (or of one) until
// the caller hangs up: those connected to this replica, and those of the
// other live replicas, which relay theirs. The header names the agents not
// tailed.
func (s *stats) Tail(req *adminv1.TailRequest, stream adminv1.StatsService_TailServer) error {
	ctx := stream.Context()
	const what = "tail"
	var ids []string
	if id := req.GetAgentId(); id != "" {
		ids = []string{id}
	}
	fleetWide := len(ids) == 0 && !forwarded(ctx) && s.opts.Peers != nil
	filter := &agentv1.TailCommand{Service: req.GetService(), Channel: req.GetChannel(), Samples: req.GetSamples()}
	batches, failed, err := s.dispatch.Tail(ctx, ids, filter)
	var missing []string
	peers := make(chan *adminv1.TailResponse)
	var relayEnded chan error // a single agent's tail, relayed: why it ended
	switch {
	case len(ids) == 1 && errors.Is(failed[ids[0]], dispatch.ErrNotConnected):
		on := s.elsewhere(ctx, s.store, what, ids[0])
		if on == nil || forwarded(ctx) || s.opts.Peers == nil {
			return s.notConnected(ctx, s.store, what, ids[0])
		}
		relayEnded = make(chan error, 1)
		notTailed, err := s.relayTail(ctx, on.Address, req, peers, relayEnded)
		if err != nil {
			return status.Errorf(codes.Unavailable, "%s; it cannot be reached: %v", on.Error(), status.Convert(err).Message())
		}
		failed, missing = nil, notTailed
	case errors.Is(err, dispatch.ErrNoAgent) && !fleetWide:
		return status.Errorf(codes.Unavailable, "%s: %v", what, err)
	case err != nil && !errors.Is(err, dispatch.ErrNoAgent) && !fleetWide:
		return status.Errorf(codes.Unavailable, "%s: %v", what, err)
	}
	if fleetWide {
		asked, notTailed := s.peerTails(ctx, req, peers)
		missing = append(missing, notTailed...)
		if asked == 0 && err != nil { // nothing here, nobody elsewhere
			return status.Errorf(codes.Unavailable, "%s: %v", what, err)
		}
	}
	s.log.Info("tail started", "service", req.GetService(), "channel", req.GetChannel(), "agent", req.GetAgentId(),
		"failed", len(failed), "caller", caller(ctx))
	defer s.log.Info("tail ended", "caller", caller(ctx))
	for id, err := range failed {
		// The tail runs on the others; say which are missing.
		s.log.Warn("an agent did not start the tail", "agent", id, "err", err)
		missing = append(missing, fmt.Sprintf("%s (%v)", id, err))
	}
	md := metadata.MD{}
	if len(missing) > 0 {
		md.Set(tailMissing, strings.Join(missing, "; "))
	}
	if err := stream.SendHeader(md); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case r := <-peers:
			if err := stream.Send(r); err != nil {
				return err
			}
		case err := <-relayEnded:
			return status.Errorf(codes.Unavailable, "%s: the replica that holds agent %q ended the tail: %s", what, ids[0], status.Convert(err).Message())
		case b := <-batches:
			if dropped := b.Events.GetDropped(); dropped > 0 || b.Dropped > 0 {
				n := dropped + b.Dropped // left out by the agent, and by this replica
				if err := stream.Send(&adminv1.TailResponse{Kind: &adminv1.TailResponse_Dropped{Dropped: &adminv1.TailDropped{AgentId: b.AgentID, Count: n}}}); err != nil {
					return err
				}
			}
			for _, inv := range b.Events.GetInvocations() {
				if err := stream.Send(&adminv1.TailResponse{Kind: &adminv1.TailResponse_Sample{Sample: sampleOut(b.AgentID, inv)}}); err != nil {
					return err
				}
			}
		}
	}
}

// peerTails starts the tail on each other live replica that holds agents,
// relaying what they send to out until ctx ends. It returns how many
// agents those replicas hold, and the agents not tailed, each with why.
func (s *stats) peerTails(ctx context.Context, req *adminv1.TailRequest, out chan<- *adminv1.TailResponse) (int, []string) {
	var missing []string // merged one at a time
	asked, unreachable := s.eachPeer(ctx, func(r store.Replica) (func(), error) {
		notTailed, err := s.relayTail(ctx, r.Address, req, out, nil)
		return func() { missing = append(missing, notTailed...) }, err
	})
	return asked, append(missing, unreachable...)
}

// relayTail starts req's tail on the replica at address, and relays what
// it sends to out until ctx or that stream ends; why it ended before ctx
// goes to ended, when not nil, and to the log. It returns once the tail
// started there, with the agents that replica does not tail, or with why
// it did not start.
func (s *stats) relayTail(ctx context.Context, address string, req *adminv1.TailRequest, out chan<- *adminv1.TailResponse, ended chan<- error) ([]string, error) {
	cs, md, stop, err := s.opts.Peers.Stream(ctx, address, adminv1.StatsService_Tail_FullMethodName, req, tailStartTimeout)
	if err != nil {
		return nil, err
	}
	if md == nil { // it ended at once: its status says why
		defer stop()
		return nil, cs.RecvMsg(&adminv1.TailResponse{})
	}
	go func() {
		defer stop()
		for {
			r := &adminv1.TailResponse{}
			if err := cs.RecvMsg(r); err != nil {
				if ctx.Err() == nil {
					s.log.Warn("a tail relayed from another replica ended", "replica", address, "err", err)
					if ended != nil {
						ended <- err
					}
				}
				return
			}
			select {
			case out <- r:
			case <-ctx.Done():
				return
			}
		}
	}()
	var missing []string
	for _, m := range md.Get(tailMissing) {
		missing = append(missing, strings.Split(m, "; ")...)
	}
	return missing, nil
}
