package dispatch

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weft-dev/weft/controlplane/auth"
	"github.com/weft-dev/weft/controlplane/store"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// DefaultLeaseTTL is how long a lease on a job placed on one agent lasts
// unless renewed: the longest a job goes without a firing when its holder
// disappears.
const DefaultLeaseTTL = 15 * time.Second

// maxRunsReported bounds one ReportRuns.
const maxRunsReported = 10_000

// ClaimFiring grants one firing of a job placed on one agent, or says who
// runs it.
func (s *Server) ClaimFiring(ctx context.Context, req *agentv1.ClaimFiringRequest) (*agentv1.ClaimFiringResponse, error) {
	if !agentIDPattern.MatchString(req.GetAgentId()) || req.GetJob() == "" {
		return nil, status.Errorf(codes.InvalidArgument, "claim firing: agent_id %q and job %q are required", req.GetAgentId(), req.GetJob())
	}
	if err := auth.CheckAgent(ctx, req.GetAgentId()); err != nil {
		return nil, err
	}
	ttl := s.leaseTTL
	c, err := s.store.ClaimFiring(ctx, store.ClaimRequest{
		AgentID:     req.GetAgentId(),
		Job:         req.GetJob(),
		ScheduledAt: time.UnixMilli(req.GetScheduledAtUnixMs()).UTC(),
		CID:         req.GetCid(),
		Now:         s.now(),
		TTL:         ttl,
	})
	if err != nil {
		s.log.Error("cannot claim a firing", "agent", req.GetAgentId(), "job", req.GetJob(), "err", err)
		return nil, storeFailed("claim firing", err)
	}
	out := &agentv1.ClaimFiringResponse{Granted: c.Granted, Holder: c.Holder, Reason: c.Reason}
	// Refused for another agent's lease, the claim learns how long that
	// lease may still last unless renewed: the agent claims the firing
	// again once it would have lapsed, so that a holder that died just
	// before the firing does not cost it.
	if c.Granted || c.Holder != "" && c.Holder != req.GetAgentId() {
		out.LeaseTtlMs = ttl.Milliseconds()
	}
	return out, nil
}

// RenewLeases extends the leases an agent holds.
func (s *Server) RenewLeases(ctx context.Context, req *agentv1.RenewLeasesRequest) (*agentv1.RenewLeasesResponse, error) {
	if !agentIDPattern.MatchString(req.GetAgentId()) {
		return nil, status.Errorf(codes.InvalidArgument, "renew leases: agent_id %q is not an agent id", req.GetAgentId())
	}
	if err := auth.CheckAgent(ctx, req.GetAgentId()); err != nil {
		return nil, err
	}
	ttl := s.leaseTTL
	held, err := s.store.RenewLeases(ctx, req.GetAgentId(), req.GetJobs(), s.now(), ttl)
	if err != nil {
		s.log.Error("cannot renew leases", "agent", req.GetAgentId(), "err", err)
		return nil, storeFailed("renew leases", err)
	}
	return &agentv1.RenewLeasesResponse{Held: held, LeaseTtlMs: ttl.Milliseconds()}, nil
}

// ReportRuns records the runs an agent reports. A firing of a job on one
// agent that two agents ran is logged as an error: it is what the leases
// exist to prevent, and can only follow clocks far apart while the control
// plane was out of reach.
func (s *Server) ReportRuns(ctx context.Context, req *agentv1.ReportRunsRequest) (*agentv1.ReportRunsResponse, error) {
	id := req.GetAgentId()
	if !agentIDPattern.MatchString(id) {
		return nil, status.Errorf(codes.InvalidArgument, "report runs: agent_id %q is not an agent id", id)
	}
	if err := auth.CheckAgent(ctx, id); err != nil {
		return nil, err
	}
	if n := len(req.GetRuns()); n > maxRunsReported {
		return nil, status.Errorf(codes.InvalidArgument, "report runs: %d runs in one report; send at most %d", n, maxRunsReported)
	}
	runs := make([]store.JobRun, 0, len(req.GetRuns()))
	for _, r := range req.GetRuns() {
		runs = append(runs, store.JobRun{
			Job: r.GetJob(), AgentID: id, CID: r.GetCid(), Trigger: r.GetTrigger(), Placement: r.GetPlacement(),
			ScheduledAt: time.UnixMilli(r.GetScheduledAtUnixMs()).UTC(),
			StartedAt:   time.UnixMilli(r.GetStartedAtUnixMs()).UTC(),
			DurationUs:  r.GetDurationUs(), Outcome: r.GetOutcome(), Error: r.GetError(),
		})
	}
	doubles, err := s.store.RecordRuns(ctx, id, runs)
	if err != nil {
		s.log.Error("cannot record job runs", "agent", id, "runs", len(runs), "err", err)
		return nil, storeFailed("report runs", err)
	}
	for _, d := range doubles {
		s.log.Error("a firing of a job placed on one agent ran twice; check the agents' clocks", "job", d.Job, "agent", id,
			"scheduled_at", d.ScheduledAt, "cid", d.CID)
	}
	return &agentv1.ReportRunsResponse{}, nil
}
