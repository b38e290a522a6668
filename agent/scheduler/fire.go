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
// runs the firing, else why not: refused, missed or canceled.
//
// A firing refused because another agent holds the lease, or not answered
// because the control plane is out of reach, is claimed once more a lease
// and a quarter later when that comes before the job's next firing. An
// agent claims a firing only at its own firing time, so without this a
// holder that died in the last lease before a firing would cost that
// firing: its lease still blocks the others' claims then, and lapses
// before the next. Claimed again, the firing goes to one of the others,
// late by about a lease; a live holder has claimed it by then, and the
// second claim is refused like the first.
func (s *Scheduler) claim(ctx context.Context, f firing, cid string) string {
	result, again := s.claimOnce(ctx, f, cid, true)
	if again.IsZero() {
		return result
	}
	t := s.clock.NewTimer(again.Sub(s.clock.Now()))
	select {
	case <-ctx.Done():
		t.Stop()
		return "canceled"
	case <-t.C():
	}
	if !s.current(f) {
		return result // paused, edited or removed meanwhile
	}
	result, _ = s.claimOnce(ctx, f, cid, false)
	return result
}

// claimOnce claims firing f once. It returns "" when this agent runs the
// firing, else why not; again is when to claim it once more (zero: never),
// which only a first claim may ask for. When the control plane cannot be
// reached, the agent runs the firing only while its lease is valid, since
// nobody else can take the job over before it lapses, and only when no
// other agent may claim the firing again after that: this agent's run
// would not be recorded, so a second claim could be granted and run it
// twice.
func (s *Scheduler) claimOnce(ctx context.Context, f firing, cid string, first bool) (result string, again time.Time) {
	name := f.job.GetName()
	sent := s.clock.Now()
	cctx, cancel := context.WithTimeout(ctx, claimTimeout)
	c, err := s.coord.Claim(cctx, name, f.at, cid)
	cancel()
	if ctx.Err() != nil {
		return "canceled", time.Time{}
	}
	now := s.clock.Now()
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
		if !first {
			s.log.Info("firing granted on its second claim: running it late", "job", name, "scheduled_at", f.at, "late_by", now.Sub(f.at))
		}
		return "", time.Time{}
	case err == nil:
		delete(s.leases, name)
		ttl := c.TTL
		if ttl <= 0 {
			ttl = s.ttl
		}
		// Only another agent's lease may lapse by itself; the other
		// refusals (the firing already run, the job paused or not for
		// this agent) stand.
		if first && c.Holder != "" && c.Holder != s.agentID {
			if at, ok := againAt(f, sent, now, ttl); ok {
				s.log.Debug("firing left to the lease holder; claiming it again in case the holder died", "job", name, "scheduled_at", f.at,
					"holder", c.Holder, "again_at", at)
				return "refused", at
			}
		}
		s.log.Debug("firing left to another agent", "job", name, "scheduled_at", f.at, "holder", c.Holder, "reason", c.Reason)
		return "refused", time.Time{}
	}
	until, held := s.leases[name]
	held = held && now.Before(until)
	if held && !mayBeClaimedAgain(f, s.ttl) {
		s.log.Info("control plane unreachable: running the firing on this agent's lease", "job", name, "scheduled_at", f.at, "lease_until", until, "err", err)
		return "", time.Time{}
	}
	if first {
		if at, ok := againAt(f, sent, now, s.ttl); ok {
			s.log.Info("control plane unreachable: claiming the firing again later", "job", name, "scheduled_at", f.at, "again_at", at, "err", err)
			return "missed", at
		}
	}
	if held {
		s.log.Warn("firing missed: control plane unreachable, and another agent may still take the firing over once this agent's lease lapses",
			"job", name, "scheduled_at", f.at, "lease_until", until, "err", err)
		return "missed", time.Time{}
	}
	s.log.Warn("firing missed: control plane unreachable and this agent holds no valid lease", "job", name, "scheduled_at", f.at, "err", err)
	return "missed", time.Time{}
}

// current reports whether firing f's job is still scheduled here with the
// definition f was fired from.
func (s *Scheduler) current(f firing) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.jobs[f.job.GetName()]
	return e != nil && e.job == f.job
}

// claimAgainAfter is how long after a claim that was not granted an agent
// claims the firing again: a lease, which a holder that died before the
// firing cannot have renewed since, and a quarter more for clocks that run
// at different rates and for a holder that died just after that claim.
func claimAgainAfter(ttl time.Duration) time.Duration { return ttl + ttl/4 }

// mayBeClaimedAgain reports whether some agent may claim firing f again
// (see againAt), for leases of ttl: whether a claim a lease and a quarter
// after the firing still comes before the job's next firing. It looks at
// the firing time, not when a claim was sent, so it holds whenever againAt
// does on any agent.
func mayBeClaimedAgain(f firing, ttl time.Duration) bool {
	if ttl <= 0 {
		return false
	}
	next, ok := f.sched.Next(f.at)
	return !ok || f.at.Add(claimAgainAfter(ttl)).Before(next)
}

// againAt returns when to claim firing f again after a claim sent at sent
// was not granted (answered at now), for leases of ttl, and false when it
// is not to be claimed again: it is not a scheduled firing (a recovery
// one is old already), the lease is unknown, or the time would not come
// before the job's next firing, whose claim takes over then. Keeping it
// before the next firing keeps the job's runs in order.
func againAt(f firing, sent, now time.Time, ttl time.Duration) (time.Time, bool) {
	if ttl <= 0 || f.trigger != TriggerSchedule {
		return time.Time{}, false
	}
	at := sent.Add(claimAgainAfter(ttl))
	if at.Before(now) {
		at = now
	}
	if next, ok := f.sched.Next(f.at); ok && !at.Before(next) {
		return time.Time{}, false
	}
	return at, true
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
