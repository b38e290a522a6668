package scheduler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/weft-dev/weft/agent/channel"
	"github.com/weft-dev/weft/agent/observe"
	"github.com/weft-dev/weft/agent/sdk"
	"github.com/weft-dev/weft/agent/shared/jobspec"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// Headers of the request a job's service gets, so that it can tell which
// job called it and for which firing.
const (
	JobHeader         = "X-Weft-Job"
	TriggerHeader     = "X-Weft-Trigger"
	ScheduledAtHeader = "X-Weft-Scheduled-At" // RFC 3339, UTC
)

// JobMethod is the sdk.Request method of a job's call.
const JobMethod = "JOB"

// minRenew bounds how often leases are renewed, whatever the TTL.
const minRenew = 100 * time.Millisecond

// fire runs firing f unless the job is still running, another agent runs it
// (placement one) or the firing cannot be claimed.
func (s *Scheduler) fire(ctx context.Context, f firing) {
	name := f.job.GetName()
	cid := s.newCID()
	// A firing of a job on one agent is claimed first: only the agent it
	// is granted to may report on it, even to say it skipped it.
	if f.job.GetPlacement() == jobspec.PlacementOne {
		if result := s.claim(ctx, f, cid); result != "" {
			s.done(f, result)
			return
		}
	}
	if prev, ok := s.begin(name, cid); !ok {
		s.reports.add(s.skipped(f.job, cid, f.trigger, f.at, prev))
		s.done(f, "skipped")
		return
	}
	s.record.ran(name, f.at)
	if f.job.GetRunMissed() {
		// Written before the run, so a crash during it cannot make the
		// restarted agent replay this very firing as missed.
		s.record.save()
	}
	run := s.invoke(ctx, f.job, cid, f.trigger, f.at)
	s.end(name, cid)
	s.reports.add(run)
	s.done(f, "ran")
}

func (s *Scheduler) done(f firing, result string) {
	if s.afterFiring != nil {
		s.afterFiring(f.job.GetName(), f.at, result)
	}
}

// claim asks the control plane for firing f. It returns "" when this agent
// runs the firing, else why not: refused, missed or canceled. When the
// control plane cannot be reached, the agent runs the firing only while
// its lease is valid: nobody else can take the job over before it lapses.
func (s *Scheduler) claim(ctx context.Context, f firing, cid string) string {
	name := f.job.GetName()
	sent := s.clock.Now()
	cctx, cancel := context.WithTimeout(ctx, claimTimeout)
	c, err := s.coord.Claim(cctx, name, f.at, cid)
	cancel()
	if ctx.Err() != nil {
		return "canceled"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err == nil && c.Granted:
		if c.TTL > 0 && s.jobs[name] != nil {
			s.leases[name] = leaseUntil(sent, c.TTL)
			s.ttl = c.TTL
			select {
			case s.leaseNew <- struct{}{}:
			default:
			}
		}
		return ""
	case err == nil:
		delete(s.leases, name)
		s.log.Debug("firing left to another agent", "job", name, "scheduled_at", f.at, "holder", c.Holder, "reason", c.Reason)
		return "refused"
	}
	if until, ok := s.leases[name]; ok && s.clock.Now().Before(until) {
		s.log.Info("control plane unreachable: running the firing on this agent's lease", "job", name, "scheduled_at", f.at, "lease_until", until, "err", err)
		return ""
	}
	s.log.Warn("firing missed: control plane unreachable and this agent holds no valid lease", "job", name, "scheduled_at", f.at, "err", err)
	return "missed"
}

// leaseUntil is how long a lease granted on a request sent at sent may be
// relied on, on this agent's own clock: a quarter of the TTL is kept back
// for what that cannot see, clocks that run at different rates and the
// clocks of several control plane replicas differing (each stamps the
// expiry with its own). Keep them in step with NTP.
func leaseUntil(sent time.Time, ttl time.Duration) time.Time {
	return sent.Add(ttl - ttl/4)
}

// renewLoop renews the leases every TTL/3 while this agent holds any.
func (s *Scheduler) renewLoop(ctx context.Context) {
	for {
		s.mu.Lock()
		n, ttl := len(s.leases), s.ttl
		s.mu.Unlock()
		if n == 0 || ttl <= 0 {
			select {
			case <-ctx.Done():
				return
			case <-s.leaseNew:
				continue
			}
		}
		t := s.clock.NewTimer(max(ttl/3, minRenew))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
		s.renew(ctx)
	}
}

// renew asks to extend the leases held. Leases the control plane no longer
// grants are dropped; on an error they are kept and simply lapse.
func (s *Scheduler) renew(ctx context.Context) {
	s.mu.Lock()
	jobs := slices.Sorted(maps.Keys(s.leases))
	s.mu.Unlock()
	if len(jobs) == 0 {
		return
	}
	sent := s.clock.Now()
	rctx, cancel := context.WithTimeout(ctx, claimTimeout)
	held, ttl, err := s.coord.Renew(rctx, jobs)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("could not renew job leases; they lapse unless renewed in time", "jobs", len(jobs), "err", err)
		}
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range jobs {
		if !slices.Contains(held, name) || s.jobs[name] == nil || ttl <= 0 {
			if _, ok := s.leases[name]; ok {
				s.log.Info("lost the lease of a job to another agent", "job", name)
			}
			delete(s.leases, name)
			continue
		}
		s.leases[name] = leaseUntil(sent, ttl)
	}
	if ttl > 0 {
		s.ttl = ttl
	}
}

// invoke runs job j's service once and returns the run.
func (s *Scheduler) invoke(ctx context.Context, j *adminv1.Job, cid, trigger string, at time.Time) *agentv1.JobRun {
	input := []byte(j.GetPayload())
	if len(bytes.TrimSpace(input)) == 0 {
		input = []byte("{}")
	}
	req := sdk.Request{
		CID:     cid,
		Service: j.GetService(),
		Method:  JobMethod,
		Header: http.Header{
			JobHeader:         {j.GetName()},
			TriggerHeader:     {trigger},
			ScheduledAtHeader: {at.UTC().Format(time.RFC3339Nano)},
		},
	}
	started := s.clock.Now()
	out := s.inv.Invoke(ctx, j.GetService(), req, input, time.Duration(j.GetTimeoutMs())*time.Millisecond)
	took := s.clock.Now().Sub(started)
	run := s.newRun(j, cid, trigger, at, started)
	run.DurationUs = took.Microseconds()
	run.Outcome, run.Error = outcomeOf(out)
	if run.Outcome != OutcomeOK {
		s.log.Warn("job run failed", "job", j.GetName(), "cid", cid, "outcome", run.Outcome, "err", run.Error)
	}
	if s.obs != nil {
		ev := observe.Event{
			Kind: observe.KindJob, Name: j.GetName(), Service: j.GetService(), Job: j.GetName(),
			CID: cid, Status: out.Status, Failed: run.Outcome != OutcomeOK, Error: run.Error,
			Duration: took, End: started.Add(took),
			BytesIn: int64(len(input)), BytesOut: int64(len(out.Output)), Input: input, Output: out.Output,
		}
		observe.Emit(s.obs, &ev)
	}
	return run
}

func outcomeOf(out channel.Outcome) (outcome, msg string) {
	switch {
	case out.Status >= 200 && out.Status < 300:
		return OutcomeOK, ""
	case out.Status == http.StatusGatewayTimeout:
		return OutcomeTimeout, out.Error
	case out.Error != "":
		return OutcomeError, out.Error
	default:
		return OutcomeError, fmt.Sprintf("the service answered with status %d", out.Status)
	}
}

// skipped is the run of a firing that came while the job's previous run,
// prevCID, was still running.
func (s *Scheduler) skipped(j *adminv1.Job, cid, trigger string, at time.Time, prevCID string) *agentv1.JobRun {
	run := s.newRun(j, cid, trigger, at, s.clock.Now())
	run.Outcome = OutcomeSkipped
	run.Error = fmt.Sprintf("the previous run (cid %s) was still running", prevCID)
	return run
}

func (s *Scheduler) newRun(j *adminv1.Job, cid, trigger string, at, started time.Time) *agentv1.JobRun {
	placement := j.GetPlacement()
	if placement == "" {
		placement = jobspec.PlacementEvery
	}
	return &agentv1.JobRun{
		Job:               j.GetName(),
		Cid:               cid,
		Trigger:           trigger,
		Placement:         placement,
		ScheduledAtUnixMs: at.UnixMilli(),
		StartedAtUnixMs:   started.UnixMilli(),
	}
}

// noCoordinator stands in for a missing control plane: every call fails.
type noCoordinator struct{}

var errNoCoordinator = errors.New("no control plane configured")

func (noCoordinator) Claim(context.Context, string, time.Time, string) (Claim, error) {
	return Claim{}, errNoCoordinator
}
func (noCoordinator) Renew(context.Context, []string) ([]string, time.Duration, error) {
	return nil, 0, errNoCoordinator
}
func (noCoordinator) Report(context.Context, []*agentv1.JobRun) error { return errNoCoordinator }

var _ Coordinator = noCoordinator{}
