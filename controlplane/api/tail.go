package api

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weft-dev/weft/controlplane/dispatch"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// Tail streams the invocations of the agents connected to this replica
// (or of one) until the caller hangs up.
func (s *stats) Tail(req *adminv1.TailRequest, stream adminv1.StatsService_TailServer) error {
	ctx := stream.Context()
	const what = "tail"
	var ids []string
	if id := req.GetAgentId(); id != "" {
		ids = []string{id}
	}
	filter := &agentv1.TailCommand{Service: req.GetService(), Channel: req.GetChannel(), Samples: req.GetSamples()}
	batches, failed, err := s.dispatch.Tail(ctx, ids, filter)
	switch {
	case errors.Is(err, dispatch.ErrNoAgent):
		return status.Errorf(codes.Unavailable, "%s: %v", what, err)
	case len(ids) == 1 && errors.Is(failed[ids[0]], dispatch.ErrNotConnected):
		return notConnected(ctx, s.store, what, ids[0])
	case err != nil:
		return status.Errorf(codes.Unavailable, "%s: %v", what, err)
	}
	s.log.Info("tail started", "service", req.GetService(), "channel", req.GetChannel(), "agent", req.GetAgentId(),
		"failed", len(failed), "caller", caller(ctx))
	defer s.log.Info("tail ended", "caller", caller(ctx))
	for id, err := range failed {
		// The tail runs on the others; say which are missing.
		s.log.Warn("an agent did not start the tail", "agent", id, "err", err)
	}
	if len(failed) > 0 {
		var missing []string
		for id, err := range failed {
			missing = append(missing, fmt.Sprintf("%s (%v)", id, err))
		}
		md := strings.Join(missing, "; ")
		if err := stream.SendHeader(map[string][]string{"weft-tail-missing": {md}}); err != nil {
			return err
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
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
