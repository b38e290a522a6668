package api

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weft-dev/weft/controlplane/dispatch"
	"github.com/weft-dev/weft/controlplane/store"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// samplesTimeout bounds asking the agents for their samples.
const samplesTimeout = 5 * time.Second

// ListSamples asks the connected agents (or one) for the slow or failed
// invocations they kept, and merges them newest first.
func (s *stats) ListSamples(ctx context.Context, req *adminv1.ListSamplesRequest) (*adminv1.ListSamplesResponse, error) {
	which := req.GetWhich()
	if which == "" {
		which = "failed"
	}
	what := fmt.Sprintf("list %s invocations", which)
	if which != "failed" && which != "slow" {
		return nil, status.Errorf(codes.InvalidArgument, "%s: which %q: want failed or slow", what, req.GetWhich())
	}
	if req.GetLimit() < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "%s: limit %d must not be negative", what, req.GetLimit())
	}
	ids := s.dispatch.Connected()
	if id := req.GetAgentId(); id != "" {
		if !slices.Contains(ids, id) {
			return nil, s.notConnected(ctx, s.store, what, id)
		}
		ids = []string{id}
	}
	fleetWide := req.GetAgentId() == "" && !forwarded(ctx)
	if len(ids) == 0 && !fleetWide {
		return nil, status.Errorf(codes.Unavailable, "%s: %v", what, dispatch.ErrNoAgent)
	}
	// The other replicas are asked meanwhile, each within a budget of its
	// own (it asks its agents within samplesTimeout), so that one slow
	// agent here does not count their agents as unreachable.
	peers, peersAsked := &adminv1.ListSamplesResponse{}, make(chan int, 1)
	if fleetWide {
		pctx, pcancel := context.WithTimeout(ctx, samplesTimeout+2*time.Second)
		defer pcancel()
		go func() { peersAsked <- s.peerSamples(pctx, req, peers) }()
	} else {
		peersAsked <- 0
	}
	ctx, cancel := context.WithTimeout(ctx, samplesTimeout)
	defer cancel()
	cmd := &agentv1.SamplesCommand{Service: req.GetService(), Which: which, Limit: req.GetLimit()}
	var (
		mu  sync.Mutex
		out = &adminv1.ListSamplesResponse{}
		wg  sync.WaitGroup
	)
	for _, id := range ids {
		wg.Go(func() {
			_, res, err := s.dispatch.Run(ctx, id, &agentv1.Command{Kind: &agentv1.Command_Samples{Samples: cmd}})
			if err == nil && res.GetError() != "" {
				err = errors.New(res.GetError())
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				out.Unreachable = append(out.Unreachable, fmt.Sprintf("%s: %v", id, err))
				return
			}
			for _, inv := range res.GetSamples().GetInvocations() {
				out.Samples = append(out.Samples, sampleOut(id, inv))
			}
		})
	}
	wg.Wait()
	asked := len(ids) + <-peersAsked
	out.Samples = append(out.Samples, peers.GetSamples()...)
	out.Unreachable = append(out.Unreachable, peers.GetUnreachable()...)
	if asked == 0 {
		return nil, status.Errorf(codes.Unavailable, "%s: %v", what, dispatch.ErrNoAgent)
	}
	slices.Sort(out.Unreachable)
	slices.SortStableFunc(out.Samples, func(a, b *adminv1.Sample) int { return b.GetAt().AsTime().Compare(a.GetAt().AsTime()) })
	if n := int(req.GetLimit()); n > 0 && len(out.Samples) > n {
		out.Samples = out.Samples[:n]
	}
	if len(out.Samples) == 0 && len(out.Unreachable) >= asked {
		return nil, status.Errorf(codes.Unavailable, "%s: no agent answered: %v", what, out.Unreachable)
	}
	return out, nil
}

// peerSamples adds to out the samples of the agents the other live
// replicas hold, asking each replica once for its own; the agents of a
// replica that cannot be reached go to out.Unreachable, each named. It
// returns how many agents it asked for.
func (s *stats) peerSamples(ctx context.Context, req *adminv1.ListSamplesRequest, out *adminv1.ListSamplesResponse) int {
	asked, unreachable := s.eachPeer(ctx, func(r store.Replica) (func(), error) {
		resp := &adminv1.ListSamplesResponse{}
		if err := s.opts.Peers.Call(ctx, r.Address, adminv1.StatsService_ListSamples_FullMethodName, req, resp); err != nil {
			return nil, err
		}
		return func() {
			out.Samples = append(out.Samples, resp.GetSamples()...)
			out.Unreachable = append(out.Unreachable, resp.GetUnreachable()...)
		}, nil
	})
	out.Unreachable = append(out.Unreachable, unreachable...)
	return asked
}

// eachPeer calls ask, concurrently, once for each other live replica that
// holds connected agents, and runs the merge each returns one at a time.
// It returns how many agents those replicas hold, and the agents that were
// not reached, each with why: those of a replica whose ask failed.
func (s *stats) eachPeer(ctx context.Context, ask func(r store.Replica) (merge func(), err error)) (int, []string) {
	if s.opts.Peers == nil {
		return 0, nil
	}
	held, replicas, err := s.otherReplicas(ctx)
	if err != nil {
		return 1, []string{fmt.Sprintf("the agents of other replicas: %v", err)}
	}
	var (
		mu          sync.Mutex
		wg          sync.WaitGroup
		asked       int
		unreachable []string
	)
	for _, r := range replicas {
		ids := held[r.ID]
		if len(ids) == 0 {
			continue
		}
		asked += len(ids)
		wg.Go(func() {
			merge, err := ask(r)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				for _, id := range ids {
					unreachable = append(unreachable, fmt.Sprintf("%s: its replica %q (at %s) cannot be reached: %s", id, r.ID, r.Address, status.Convert(err).Message()))
				}
				return
			}
			merge()
		})
	}
	wg.Wait()
	return asked, unreachable
}

// otherReplicas are the live replicas other than this one, and the ids of
// the connected agents each holds.
func (s *stats) otherReplicas(ctx context.Context) (map[string][]string, []store.Replica, error) {
	agents, err := s.store.ListAgents(ctx)
	if err != nil {
		return nil, nil, err
	}
	held := map[string][]string{} // replica -> its connected agents
	for _, a := range agents {
		if a.Connected && a.Replica != "" && a.Replica != s.opts.Peers.Self() {
			held[a.Replica] = append(held[a.Replica], a.ID)
		}
	}
	if len(held) == 0 {
		return held, nil, nil
	}
	replicas, err := s.store.ListReplicas(ctx)
	return held, replicas, err
}

// sampleOut is an agent's invocation as the admin API shows it.
func sampleOut(agentID string, in *agentv1.Invocation) *adminv1.Sample {
	return &adminv1.Sample{
		AgentId:        agentID,
		Cid:            in.GetCid(),
		Kind:           in.GetKind(),
		Service:        in.GetService(),
		Channel:        in.GetChannel(),
		Job:            in.GetJob(),
		Status:         in.GetStatus(),
		DurationUs:     in.GetDurationUs(),
		At:             timestamppb.New(time.UnixMilli(in.GetAtUnixMs())),
		Error:          in.GetError(),
		Stack:          in.GetStack(),
		RequestSample:  in.GetRequestSample(),
		ResponseSample: in.GetResponseSample(),
		Truncated:      in.GetTruncated(),
		BytesIn:        in.GetBytesIn(),
		BytesOut:       in.GetBytesOut(),
	}
}
