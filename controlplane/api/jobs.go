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
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weft-dev/weft/controlplane/configplan"
	"github.com/weft-dev/weft/controlplane/dispatch"
	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/controlplane/validate"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// JobStore is what the job service needs of the store: the jobs with
// their leases and runs, the services they invoke, and the agents a run
// by hand picks from.
type JobStore interface {
	CreateJob(ctx context.Context, j *adminv1.Job) (*adminv1.Job, error)
	GetJob(ctx context.Context, name string) (*adminv1.Job, error)
	ListJobs(ctx context.Context) ([]*adminv1.Job, error)
	UpdateJob(ctx context.Context, j *adminv1.Job) (*adminv1.Job, error)
	DeleteJob(ctx context.Context, name string) (int64, error)
	JobState(ctx context.Context, name string) (*store.JobLease, *store.JobRun, error)
	ListJobRuns(ctx context.Context, job string, limit int) ([]store.JobRun, error)
	ListServices(ctx context.Context) ([]*adminv1.Service, error)
	agentReader
}

var _ JobStore = store.Store(nil)

type jobs struct {
	adminv1.UnimplementedJobServiceServer
	*base
	store JobStore
}

var _ adminv1.JobServiceServer = (*jobs)(nil)

// Run history limits of ListJobRuns.
const (
	defaultRunsListed = 20
	maxRunsListed     = 1000
)

// CreateJob validates and stores a new job. A job with no start_at starts
// now, so that every agent counts its firings from the same instant.
func (s *jobs) CreateJob(ctx context.Context, req *adminv1.CreateJobRequest) (*adminv1.CreateJobResponse, error) {
	in := req.GetJob()
	if in == nil {
		return nil, status.Error(codes.InvalidArgument, "create job: job is required")
	}
	what := fmt.Sprintf("create job %q", in.GetName())
	j, err := configplan.JobToStore(in, nil)
	if err != nil {
		return nil, invalid(what, err)
	}
	if err := s.checkRefs(ctx, what, j, nil); err != nil {
		return nil, err
	}
	out, err := s.store.CreateJob(ctx, j)
	if err != nil {
		return nil, channelStoreError(what, err)
	}
	s.watch.Advance(out.Revision)
	s.log.Info("job created", "job", out.Name, "service", out.Service, "type", out.Type, "placement", out.Placement, "revision", out.Revision, "caller", caller(ctx))
	return &adminv1.CreateJobResponse{Job: s.jobOut(ctx, out)}, nil
}

// GetJob reads one job with its next firing, lease and newest run.
func (s *jobs) GetJob(ctx context.Context, req *adminv1.GetJobRequest) (*adminv1.GetJobResponse, error) {
	j, err := s.store.GetJob(ctx, req.GetName())
	if err != nil {
		return nil, storeError(fmt.Sprintf("get job %q", req.GetName()), err)
	}
	return &adminv1.GetJobResponse{Job: s.jobOut(ctx, j)}, nil
}

// ListJobs lists every job.
func (s *jobs) ListJobs(ctx context.Context, _ *adminv1.ListJobsRequest) (*adminv1.ListJobsResponse, error) {
	js, err := s.store.ListJobs(ctx)
	if err != nil {
		return nil, storeError("list jobs", err)
	}
	out := &adminv1.ListJobsResponse{}
	for _, j := range js {
		out.Jobs = append(out.Jobs, s.jobOut(ctx, j))
	}
	return out, nil
}

// UpdateJob changes the fields the mask names, or every field the request
// sets when it names none. Agents reschedule the job from now.
func (s *jobs) UpdateJob(ctx context.Context, req *adminv1.UpdateJobRequest) (*adminv1.UpdateJobResponse, error) {
	in := req.GetJob()
	if in == nil {
		return nil, status.Error(codes.InvalidArgument, "update job: job is required")
	}
	what := fmt.Sprintf("update job %q", in.GetName())
	out, err := s.update(ctx, what, in.GetName(), func(cur *adminv1.Job) error {
		return applyMask(cur, in, req.GetUpdateMask())
	})
	if err != nil {
		return nil, err
	}
	return &adminv1.UpdateJobResponse{Job: out}, nil
}

// PauseJob stops a job from firing.
func (s *jobs) PauseJob(ctx context.Context, req *adminv1.PauseJobRequest) (*adminv1.PauseJobResponse, error) {
	out, err := s.setActive(ctx, "pause", req.GetName(), false)
	if err != nil {
		return nil, err
	}
	return &adminv1.PauseJobResponse{Job: out}, nil
}

// ResumeJob lets a paused job fire again.
func (s *jobs) ResumeJob(ctx context.Context, req *adminv1.ResumeJobRequest) (*adminv1.ResumeJobResponse, error) {
	out, err := s.setActive(ctx, "resume", req.GetName(), true)
	if err != nil {
		return nil, err
	}
	return &adminv1.ResumeJobResponse{Job: out}, nil
}

func (s *jobs) setActive(ctx context.Context, verb, name string, active bool) (*adminv1.Job, error) {
	return s.update(ctx, fmt.Sprintf("%s job %q", verb, name), name, func(cur *adminv1.Job) error {
		cur.Active = proto.Bool(active)
		return nil
	})
}

// update reads the job name, lets change edit it, and stores the result.
func (s *jobs) update(ctx context.Context, what, name string, change func(cur *adminv1.Job) error) (*adminv1.Job, error) {
	cur, err := s.store.GetJob(ctx, name)
	if err != nil {
		return nil, storeError(what, err)
	}
	next := proto.CloneOf(cur)
	if err := change(next); err != nil {
		return nil, invalid(what, err)
	}
	j, err := configplan.JobIn(next)
	if err != nil {
		return nil, invalid(what, err)
	}
	if err := validate.Job(j); err != nil {
		return nil, invalid(what, err)
	}
	if err := s.checkRefs(ctx, what, j, cur); err != nil {
		return nil, err
	}
	out, err := s.store.UpdateJob(ctx, j)
	if err != nil {
		return nil, updateStoreError(what, err)
	}
	s.watch.Advance(out.Revision)
	s.log.Info("job updated", "job", out.Name, "active", out.GetActive(), "revision", out.Revision, "caller", caller(ctx))
	return s.jobOut(ctx, out), nil
}

// checkRefs checks, unless j is cur unchanged (cur is nil for a new job),
// that the service j invokes is deployed, as an import of j would: the
// store checks it again in its transaction.
func (s *jobs) checkRefs(ctx context.Context, what string, j, cur *adminv1.Job) error {
	if cur != nil && configplan.Unchanged(cur, j) {
		return nil
	}
	svcs, err := s.store.ListServices(ctx)
	if err != nil {
		return storeError(what, err)
	}
	if err := configplan.CheckJob(j, configplan.LiveTargets(svcs, nil)); err != nil {
		return checkError(what, err, cur != nil)
	}
	return nil
}

// DeleteJob removes a job with its lease and runs.
func (s *jobs) DeleteJob(ctx context.Context, req *adminv1.DeleteJobRequest) (*adminv1.DeleteJobResponse, error) {
	rev, err := s.store.DeleteJob(ctx, req.GetName())
	if err != nil {
		return nil, storeError(fmt.Sprintf("delete job %q", req.GetName()), err)
	}
	s.watch.Advance(rev)
	s.log.Info("job deleted", "job", req.GetName(), "revision", rev, "caller", caller(ctx))
	return &adminv1.DeleteJobResponse{Revision: rev}, nil
}

// ListJobRuns lists a job's newest runs.
func (s *jobs) ListJobRuns(ctx context.Context, req *adminv1.ListJobRunsRequest) (*adminv1.ListJobRunsResponse, error) {
	limit := int(req.GetLimit())
	switch {
	case limit < 0 || limit > maxRunsListed:
		return nil, status.Errorf(codes.InvalidArgument, "list runs of job %q: limit %d: want 0 (%d) to %d", req.GetName(), limit, defaultRunsListed, maxRunsListed)
	case limit == 0:
		limit = defaultRunsListed
	}
	runs, err := s.store.ListJobRuns(ctx, req.GetName(), limit)
	if err != nil {
		return nil, storeError(fmt.Sprintf("list runs of job %q", req.GetName()), err)
	}
	out := &adminv1.ListJobRunsResponse{}
	for _, r := range runs {
		out.Runs = append(out.Runs, runOut(r))
	}
	return out, nil
}

// runSlack is how much longer than a run's own timeout the control plane
// waits for an agent to answer a RunJob.
const runSlack = 10 * time.Second

// RunJob runs a job now on the agents connected to this replica that it
// selects: the one asked for; for a job on one agent the lease holder, or
// else the first selected agent; for a job on every agent all of them.
func (s *jobs) RunJob(ctx context.Context, req *adminv1.RunJobRequest) (*adminv1.RunJobResponse, error) {
	what := fmt.Sprintf("run job %q", req.GetName())
	j, err := s.store.GetJob(ctx, req.GetName())
	if err != nil {
		return nil, storeError(what, err)
	}
	targets, err := s.runTargets(ctx, j, req.GetAgentId())
	if err != nil {
		if _, ok := status.FromError(err); ok {
			return nil, err
		}
		return nil, status.Errorf(codes.FailedPrecondition, "%s: %v", what, err)
	}
	timeout := validate.MaxTimeout
	if j.TimeoutMs > 0 {
		timeout = time.Duration(j.TimeoutMs) * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, timeout+runSlack)
	defer cancel()

	runs := make([]*adminv1.JobRun, len(targets))
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, id := range targets {
		wg.Go(func() {
			runs[i], errs[i] = s.runOn(ctx, id, j.Name)
		})
	}
	wg.Wait()
	out := &adminv1.RunJobResponse{}
	for i := range targets {
		if errs[i] != nil {
			return nil, status.Errorf(status.Code(errs[i]), "%s: %s", what, status.Convert(errs[i]).Message())
		}
		out.Runs = append(out.Runs, runs[i])
	}
	s.log.Info("job run by hand", "job", j.Name, "agents", targets, "caller", caller(ctx))
	return out, nil
}

// runOn asks agent id to run the job now.
func (s *jobs) runOn(ctx context.Context, id, job string) (*adminv1.JobRun, error) {
	_, res, err := s.dispatch.Run(ctx, id, &agentv1.Command{Kind: &agentv1.Command_RunJob{RunJob: &agentv1.RunJobCommand{Job: job}}})
	switch {
	case errors.Is(err, dispatch.ErrNotConnected):
		return nil, status.Errorf(codes.FailedPrecondition, "agent %q is not connected to this control plane", id)
	case errors.Is(err, context.DeadlineExceeded):
		return nil, status.Errorf(codes.DeadlineExceeded, "agent %q did not answer in time", id)
	case errors.Is(err, context.Canceled):
		return nil, status.FromContextError(err).Err()
	case err != nil: // the agent went away before it answered
		return nil, status.Errorf(codes.Unavailable, "agent %q: %v", id, err)
	case res.GetError() != "":
		return nil, status.Errorf(codes.FailedPrecondition, "agent %q says: %s", id, res.GetError())
	}
	return agentRunOut(id, res.GetJobRun()), nil
}

// runTargets picks the agents a RunJob runs on. A store error comes back
// as a status; any other error says why no agent fits.
func (s *jobs) runTargets(ctx context.Context, j *adminv1.Job, agentID string) ([]string, error) {
	connected := s.dispatch.Connected()
	if agentID != "" {
		if !slices.Contains(connected, agentID) {
			if on := s.elsewhere(ctx, s.store, fmt.Sprintf("run job %q", j.Name), agentID); on != nil {
				return nil, on
			}
			return nil, fmt.Errorf("agent %q is not connected to this control plane", agentID)
		}
		return []string{agentID}, nil
	}
	var selected []string
	for _, id := range connected {
		a, err := s.store.GetAgent(ctx, id)
		if err != nil {
			return nil, storeError(fmt.Sprintf("run job %q: read agent %q", j.Name, id), err)
		}
		if carries(a.Labels, j.AgentLabels) {
			selected = append(selected, id)
		}
	}
	if len(selected) == 0 {
		carriesLabels := func(a store.Agent) bool { return carries(a.Labels, j.AgentLabels) }
		if on := s.anyElsewhere(ctx, s.store, fmt.Sprintf("run job %q", j.Name), carriesLabels); on != nil {
			return nil, on // another replica's agents may carry them
		}
		return nil, fmt.Errorf("no agent connected to this control plane carries the labels %v the job selects", j.AgentLabels)
	}
	if j.Placement != store.PlacementOne {
		return selected, nil
	}
	if lease, _, err := s.store.JobState(ctx, j.Name); err == nil && lease != nil && slices.Contains(selected, lease.AgentID) {
		return []string{lease.AgentID}, nil
	}
	return selected[:1], nil
}

// carries says whether an agent with labels have is selected by want.
func carries(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// jobOut is j with its next firing, lease and newest run. A failure to
// read the state is logged and leaves them out: the job itself was read.
func (s *jobs) jobOut(ctx context.Context, j *adminv1.Job) *adminv1.Job {
	out := proto.CloneOf(j)
	if next, ok := validate.NextRun(j, time.Now()); ok && j.GetActive() {
		out.NextRunAt = timestamppb.New(next)
	}
	lease, last, err := s.store.JobState(ctx, j.Name)
	if err != nil {
		s.log.Warn("cannot read a job's lease and runs", "job", j.Name, "err", err)
		return out
	}
	if lease != nil {
		out.Lease = &adminv1.JobLease{AgentId: lease.AgentID, ExpiresAt: timestamppb.New(lease.ExpiresAt), Token: lease.Token}
	}
	if last != nil {
		out.LastRun = runOut(*last)
	}
	return out
}

func runOut(r store.JobRun) *adminv1.JobRun {
	out := &adminv1.JobRun{
		Job: r.Job, AgentId: r.AgentID, Cid: r.CID, Trigger: r.Trigger,
		ScheduledAt: timestamppb.New(r.ScheduledAt), DurationUs: r.DurationUs,
		Outcome: r.Outcome, Error: r.Error,
	}
	if !r.StartedAt.IsZero() {
		out.StartedAt = timestamppb.New(r.StartedAt)
	}
	return out
}

// agentRunOut is a run an agent answered a run_job with.
func agentRunOut(agentID string, r *agentv1.JobRun) *adminv1.JobRun {
	return &adminv1.JobRun{
		Job: r.GetJob(), AgentId: agentID, Cid: r.GetCid(), Trigger: r.GetTrigger(),
		ScheduledAt: timestamppb.New(time.UnixMilli(r.GetScheduledAtUnixMs())),
		StartedAt:   timestamppb.New(time.UnixMilli(r.GetStartedAtUnixMs())),
		DurationUs:  r.GetDurationUs(), Outcome: r.GetOutcome(), Error: r.GetError(),
	}
}
