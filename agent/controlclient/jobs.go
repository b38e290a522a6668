package controlclient

import (
	"context"
	"errors"
	"time"

	"github.com/weft-dev/weft/agent/scheduler"
	"github.com/weft-dev/weft/agent/shared/jobspec"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// Jobs is the agent's scheduler as the client drives it.
type Jobs interface {
	// Set gives it the jobs of the snapshot just applied.
	Set(jobs []*adminv1.Job)
	// RunNow runs a job at once, for the control plane's run_job.
	RunNow(ctx context.Context, name string) (*agentv1.JobRun, error)
}

var _ Jobs = (*scheduler.Scheduler)(nil)

// RunJobs makes the client hand each applied snapshot's jobs to j and
// answer run_job from it. Call it before Run. (It is not an Option: the
// scheduler needs the client's Coordinator first.)
func (c *Client) RunJobs(j Jobs) { c.jobs = j }

// errNotConnected is what a coordinator call meets before the client has
// a connection: the scheduler treats it as the control plane being away.
var errNotConnected = errors.New("not connected to the control plane yet")

// Coordinator returns the control plane's side of the scheduler: claims,
// leases and run reports, over this client's connection.
func (c *Client) Coordinator() scheduler.Coordinator { return coordinator{c} }

type coordinator struct{ c *Client }

func (k coordinator) api() (agentv1.AgentServiceClient, error) {
	api, _ := k.c.api.Load().(agentv1.AgentServiceClient)
	if api == nil {
		return nil, errNotConnected
	}
	return api, nil
}

func (k coordinator) Claim(ctx context.Context, job string, scheduledAt time.Time, cid string) (scheduler.Claim, error) {
	api, err := k.api()
	if err != nil {
		return scheduler.Claim{}, err
	}
	resp, err := api.ClaimFiring(ctx, &agentv1.ClaimFiringRequest{
		AgentId: k.c.id.ID, Job: job, ScheduledAtUnixMs: scheduledAt.UnixMilli(), Cid: cid,
	})
	if err != nil {
		return scheduler.Claim{}, err
	}
	return scheduler.Claim{
		Granted: resp.GetGranted(),
		Holder:  resp.GetHolder(),
		TTL:     time.Duration(resp.GetLeaseTtlMs()) * time.Millisecond,
		Reason:  resp.GetReason(),
	}, nil
}

func (k coordinator) Renew(ctx context.Context, jobs []string) ([]string, time.Duration, error) {
	api, err := k.api()
	if err != nil {
		return nil, 0, err
	}
	resp, err := api.RenewLeases(ctx, &agentv1.RenewLeasesRequest{AgentId: k.c.id.ID, Jobs: jobs})
	if err != nil {
		return nil, 0, err
	}
	return resp.GetHeld(), time.Duration(resp.GetLeaseTtlMs()) * time.Millisecond, nil
}

func (k coordinator) Report(ctx context.Context, runs []*agentv1.JobRun) error {
	api, err := k.api()
	if err != nil {
		return err
	}
	_, err = api.ReportRuns(ctx, &agentv1.ReportRunsRequest{AgentId: k.c.id.ID, Runs: runs})
	return err
}

// checkJobs returns an error per job of snap the scheduler could not run.
func checkJobs(snap *agentv1.Desired) []*agentv1.ObjectError {
	var errs []*agentv1.ObjectError
	for _, j := range snap.GetJobs() {
		if err := jobspec.Validate(j); err != nil {
			errs = append(errs, &agentv1.ObjectError{Kind: "job", Name: j.GetName(), Message: err.Error()})
		}
	}
	return errs
}
