package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weft-dev/weft/controlplane/dispatch"
	"github.com/weft-dev/weft/controlplane/store"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

type fleet struct {
	adminv1.UnimplementedFleetServiceServer
	*Server
}

var _ adminv1.FleetServiceServer = (*fleet)(nil)

// ListAgents lists every agent with its sync status against the current
// revision.
func (s *fleet) ListAgents(ctx context.Context, _ *adminv1.ListAgentsRequest) (*adminv1.ListAgentsResponse, error) {
	rev, err := s.store.Revision(ctx)
	if err != nil {
		return nil, storeError("list agents", err)
	}
	agents, err := s.store.ListAgents(ctx)
	if err != nil {
		return nil, storeError("list agents", err)
	}
	out := &adminv1.ListAgentsResponse{}
	for _, a := range agents {
		out.Agents = append(out.Agents, agentOut(a, rev))
	}
	return out, nil
}

// GetAgent reads one agent.
func (s *fleet) GetAgent(ctx context.Context, req *adminv1.GetAgentRequest) (*adminv1.GetAgentResponse, error) {
	rev, err := s.store.Revision(ctx)
	if err != nil {
		return nil, storeError("get agent", err)
	}
	a, err := s.store.GetAgent(ctx, req.GetId())
	if err != nil {
		return nil, storeError(fmt.Sprintf("get agent %q", req.GetId()), err)
	}
	return &adminv1.GetAgentResponse{Agent: agentOut(a, rev)}, nil
}

// Invoke runs a service on an agent connected to this replica.
func (s *fleet) Invoke(ctx context.Context, req *adminv1.InvokeRequest) (*adminv1.InvokeResponse, error) {
	what := fmt.Sprintf("invoke %q", req.GetService())
	if req.GetService() == "" {
		return nil, status.Error(codes.InvalidArgument, "invoke: service is required")
	}
	input := req.GetInput()
	if len(input) == 0 {
		input = []byte("{}")
	}
	if !json.Valid(input) {
		var v any
		err := json.Unmarshal(input, &v)
		return nil, status.Errorf(codes.InvalidArgument, "%s: input is not valid JSON: %v", what, err)
	}
	if req.GetTimeoutMs() < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "%s: timeout_ms %d must not be negative", what, req.GetTimeoutMs())
	}
	svcs, err := s.store.ListServices(ctx)
	if err != nil {
		return nil, storeError(what, err)
	}
	found := false
	for _, v := range svcs {
		found = found || v.Name == req.GetService()
	}
	if !found {
		return nil, status.Errorf(codes.NotFound, "%s: no deployed package registers this service", what)
	}
	timeout := s.opts.InvokeTimeout
	if t := time.Duration(req.GetTimeoutMs()) * time.Millisecond; t > 0 {
		timeout = t
	}
	// The agent enforces the deadline; wait a little longer for its answer.
	ctx, cancel := context.WithTimeout(ctx, timeout+5*time.Second)
	defer cancel()
	id, res, err := s.dispatch.Run(ctx, req.GetAgentId(), &agentv1.Command{Kind: &agentv1.Command_Invoke{Invoke: &agentv1.InvokeCommand{
		Service:   req.GetService(),
		Input:     input,
		TimeoutMs: timeout.Milliseconds(),
	}}})
	switch {
	case errors.Is(err, dispatch.ErrNotConnected), errors.Is(err, dispatch.ErrNoAgent):
		return nil, status.Errorf(codes.Unavailable, "%s: %v", what, err)
	case err != nil:
		return nil, status.Errorf(status.Code(status.FromContextError(err).Err()), "%s on agent %q: %v", what, id, err)
	case res.GetError() != "":
		return nil, status.Errorf(codes.Internal, "%s on agent %q: %s", what, id, res.GetError())
	}
	r := res.GetInvoke()
	return &adminv1.InvokeResponse{
		AgentId:    id,
		Cid:        r.GetCid(),
		Output:     r.GetOutput(),
		Status:     r.GetStatus(),
		Error:      r.GetError(),
		DurationUs: r.GetDurationUs(),
	}, nil
}

// syncStatus compares what an agent applied with the current revision.
func syncStatus(a store.Agent, rev int64) adminv1.SyncStatus {
	switch {
	case a.AppliedRevision >= rev:
		return adminv1.SyncStatus_SYNC_STATUS_IN_SYNC
	case a.FailedRevision > a.AppliedRevision:
		return adminv1.SyncStatus_SYNC_STATUS_FAILED
	case !a.Connected:
		return adminv1.SyncStatus_SYNC_STATUS_DISCONNECTED
	default:
		return adminv1.SyncStatus_SYNC_STATUS_PENDING
	}
}

func agentOut(a store.Agent, rev int64) *adminv1.Agent {
	out := &adminv1.Agent{
		Id:              a.ID,
		Labels:          a.Labels,
		BuildVersion:    a.BuildVersion,
		Connected:       a.Connected,
		AppliedRevision: a.AppliedRevision,
		AppliedHash:     a.AppliedHash,
		DesiredRevision: rev,
		SyncStatus:      syncStatus(a, rev),
		FailedRevision:  a.FailedRevision,
		HttpAddress:     a.HTTPAddress,
		Pid:             a.PID,
		LastSeen:        timestamppb.New(a.LastSeen),
		FirstSeen:       timestamppb.New(a.FirstSeen),
	}
	if a.FailedRevision > a.AppliedRevision {
		out.LastError = a.LastError
	}
	if !a.StartedAt.IsZero() {
		out.StartedAt = timestamppb.New(a.StartedAt)
	}
	return out
}
