package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-dev/weft/controlplane/store/storetest"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	"github.com/weft-dev/weft/tests/testenv"
)

// jobLease is the control plane's --job-lease in these tests: half the
// one-second interval of the job placed on one agent, so that a takeover
// after its holder dies misses at most one firing even when the holder
// dies between claiming a firing and running it.
const jobLease = "500ms"

// jobWait is the slack of every wait of these tests for firings and their
// reports, on top of the time the awaited firings take by the schedule.
// A wait normally ends within a second of its last firing; the bound only
// says when to give up on a machine so slow that something must be wrong.
const jobWait = time.Minute

// TestScheduler walks jobs end to end with real time and second-scale
// jobs, on three agents and both backends. A witness server outside Weft
// hears of every run from the job's service, so runs are counted without
// trusting Weft's own history: each type fires on schedule with its
// payload; a job on every agent fires on each; a job on one agent runs
// exactly once per firing over more than 20 firings, also while its
// holder is killed (takeover, at most one firing missed); pause, edit and
// resume take effect with no restart; run now; run_missed replays once;
// jobs on every agent keep firing while the control plane is down, and
// jobs survive its restart; bad input is refused naming the field.
//
// The steps never sleep: each waits, with bounded polling, for the runs it
// checks to be heard, so a slow machine makes them slower, not red. A step
// that shows something did not happen (a paused job, a replay of a job
// without run_missed) first waits until the agents ran another job for a
// later firing, which proves their clocks went past the one that must not
// have happened.
func TestScheduler(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			w := newWitness(t)
			cp := testenv.StartControlPlane(t, b.DSN, testenv.WithArgs("--job-lease", jobLease))
			e := &env{cp: cp, example: filepath.Join(testenv.ModuleRoot(t), "deploy", "examples", "hello")}
			for i, tier := range []string{"a", "a", "b"} {
				e.agents = append(e.agents, testenv.StartAgent(t, cp, fmt.Sprintf("agent-%d", i+1),
					testenv.WithArgs("--labels", fmt.Sprintf("site=e2e,tier=%s", tier))))
			}
			pids := map[string]int{}
			for _, a := range e.agents {
				pids[a.ID] = a.PID()
			}
			var jobs createdJobs
			runSteps(t, []step{
				{"deploy", func(t *testing.T) {
					ticker := filepath.Join(testenv.ModuleRoot(t), "tests", "e2e", "testdata", "ticker")
					e.ctlOK(t, "deploy", e.example, ticker, "--wait")
					e.ctlOK(t, "outgoing", "create", "witness", "--address", w.srv.URL, "--path", "/tick", "--method", "POST")
					e.sync(t)
				}},
				{"bad jobs are refused naming the field", func(t *testing.T) { badJobs(t, e) }},
				{"each type fires on schedule with its payload", func(t *testing.T) {
					jobs = createJobs(t, e)
					typesFire(t, e, w, jobs)
				}},
				{"one placement: one run per firing, also when the holder dies", func(t *testing.T) {
					onePlacementTakeover(t, e, w)
				}},
				{"run_missed replays once after the agent was down", func(t *testing.T) {
					runMissed(t, e, w)
				}},
				{"pause, edit and resume with no restart", func(t *testing.T) { pauseEditResume(t, e, w) }},
				{"run now", func(t *testing.T) { runNow(t, e, w) }},
				{"control plane down and restarted", func(t *testing.T) { controlPlaneAway(t, e, w) }},
				{"undeploy refused while jobs invoke the package", func(t *testing.T) {
					res := testenv.Ctl(t, e.cp, "undeploy", "ticker")
					if res.ExitCode == 0 || !strings.Contains(res.Stderr, `jobs "cron" (ticker.report), "every" (ticker.report)`) {
						t.Fatalf("undeploy ticker: %s; want a refusal naming the jobs", res)
					}
				}},
				{"no restarts", func(t *testing.T) {
					for _, a := range e.agents {
						if a.ID == killed {
							continue
						}
						if a.PID() != pids[a.ID] || !a.Running() {
							t.Errorf("agent %s restarted: pid %d, was %d", a.ID, a.PID(), pids[a.ID])
						}
					}
				}},
			})
		})
	}
}

// killed is the agent onePlacementTakeover kills (and restarts).
var killed string

func badJobs(t *testing.T, e *env) {
	before := e.cp.DesiredRevision(t)
	start := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"job", "create", "x", "--service", "nope.none", "--type", "interval", "--every", "1s"}, `service "nope.none" is not deployed`},
		{[]string{"job", "create", "x", "--service", "ticker.report", "--type", "cron", "--cron", "* * * *"}, "cron"},
		{[]string{"job", "create", "x", "--service", "ticker.report", "--type", "cron", "--cron", "61 * * * *"}, `cron: end of range (61) above maximum (59)`},
		{[]string{"job", "create", "x", "--service", "ticker.report", "--type", "one_time", "--start", "2020-01-01T00:00:00Z"}, "start_at: 2020-01-01T00:00:00Z is in the past"},
		{[]string{"job", "create", "x", "--service", "ticker.report", "--type", "cron", "--cron", "0 * * * *", "--tz", "Mars/Base"}, "time_zone"},
		{[]string{"job", "create", "x", "--service", "ticker.report", "--type", "interval"}, "interval"},
		{[]string{"job", "create", "x", "--service", "ticker.report", "--type", "weekly", "--start", start}, "type"},
		{[]string{"job", "create", "x", "--service", "ticker.report", "--type", "interval", "--every", "1s", "--placement", "two"}, "placement"},
		{[]string{"job", "create", "x", "--service", "ticker.report", "--type", "interval", "--every", "1s", "--payload", "[1,2]"}, "payload"},
	}
	for _, c := range cases {
		res := testenv.Ctl(t, e.cp, c.args...)
		if res.ExitCode == 0 || !strings.Contains(res.Stderr, c.want) {
			t.Errorf("weftctl %s: %s\nwant a refusal naming %q", strings.Join(c.args, " "), res, c.want)
		}
	}
	if got := e.cp.DesiredRevision(t); got != before {
		t.Fatalf("revision moved from %d to %d after refused jobs", before, got)
	}
}

// createdJobs is what createJobs made, and when.
type createdJobs struct {
	start     time.Time   // the first firing of the interval jobs, a whole second
	synced    time.Time   // every agent had the interval and cron jobs by then
	once      time.Time   // the one firing of job once
	abandoned []time.Time // the firings of attempts at job once deleted again
}

// createJobs creates the jobs the later steps watch: three interval jobs
// every second from the next whole second on, one of them placed on one
// agent; a cron job on the agent with tier=b; and job once.
func createJobs(t *testing.T, e *env) createdJobs {
	start := time.Now().Add(1500 * time.Millisecond).Truncate(time.Second).UTC()
	at := start.Format(time.RFC3339)
	e.ctlOK(t, "job", "create", "every", "--service", "ticker.report", "--type", "interval", "--every", "1s", "--start", at, "--payload", `{"tag":"every"}`)
	e.ctlOK(t, "job", "create", "one", "--service", "ticker.report", "--type", "interval", "--every", "1s", "--start", at, "--placement", "one", "--payload", `{"tag":"one"}`)
	e.ctlOK(t, "job", "create", "cron", "--service", "ticker.report", "--type", "cron", "--cron", "*/2 * * * * *", "--tz", "Europe/Berlin", "--agent-label", "tier=b", "--payload", `{"tag":"cron"}`)
	e.ctlOK(t, "job", "create", "recover", "--service", "ticker.report", "--type", "interval", "--every", "1s", "--start", at, "--run-missed", "--payload", `{"tag":"recover"}`)
	e.sync(t)
	c := createdJobs{start: start, synced: time.Now()}
	c.once, c.abandoned = createOnce(t, e)
	return c
}

// createOnce creates job once, placed on one agent, with its one firing
// at a whole second some seconds ahead, and returns that firing. A
// one_time job whose instant passed before an agent applied it never fires
// there (firings before a job is applied are not replayed), so when the
// fleet took longer than the margin to apply it, the job is deleted and
// created again with twice the margin: a slow machine makes this slower,
// not red. abandoned are the firings of the deleted attempts, which an
// agent that applied one in time may have run.
func createOnce(t *testing.T, e *env) (at time.Time, abandoned []time.Time) {
	t.Helper()
	for margin := 3 * time.Second; ; margin *= 2 {
		if margin > 2*time.Minute {
			t.Fatalf("the agents never applied job once before its firing, with margins up to %v", margin/2)
		}
		at = time.Now().Add(margin + time.Second).Truncate(time.Second).UTC()
		args := []string{"job", "create", "once", "--service", "ticker.report", "--type", "one_time", "--start", at.Format(time.RFC3339), "--placement", "one", "--payload", `{"tag":"once"}`}
		res := testenv.Ctl(t, e.cp, args...)
		if res.ExitCode != 0 && strings.Contains(res.Stderr, "is in the past") {
			t.Logf("job once at %s: the create took longer than its margin of %v; again with twice the margin", at.Format(time.TimeOnly), margin)
			continue
		}
		if res.ExitCode != 0 {
			t.Fatalf("weftctl %s: %s", strings.Join(args, " "), res)
		}
		e.sync(t)
		if time.Now().Before(at) {
			return at, abandoned
		}
		t.Logf("job once at %s: the agents applied it only at %s; deleted, and again with twice the margin of %v",
			at.Format(time.TimeOnly), time.Now().Format(time.TimeOnly), margin)
		abandoned = append(abandoned, at)
		e.ctlOK(t, "job", "delete", "once")
		e.sync(t)
	}
}

func typesFire(t *testing.T, e *env, w *witness, c createdJobs) {
	// every fires on each of the three agents each second. The first four
	// firings after every agent had the job are checked for a run on
	// each; a firing a second after job once's, heard from each agent,
	// shows that none was still to run that one.
	const checked = 4
	var heard *witness // what the witness had heard when the wait ended
	var firstChecked []time.Time
	testenv.Await(t, time.Until(c.once)+checked*time.Second+jobWait, "jobs every, cron and once fire", func() (bool, string) {
		heard = w.frozen()
		every := heard.firingsAfter("every", c.synced, len(e.agents))
		firstChecked = every[:min(len(every), checked)]
		pastOnce := slices.ContainsFunc(every, func(at time.Time) bool { return !at.Before(c.once.Add(time.Second)) })
		cron := len(heard.byFiring("cron", "schedule"))
		once := len(heard.byFiring("once", "schedule")[c.once])
		seen := fmt.Sprintf("every: %d firings after %s heard from each agent, one past job once's: %t; cron: %d firings; once: %d runs at %s",
			len(every), c.synced.Format(time.StampMilli), pastOnce, cron, once, c.once.Format(time.TimeOnly))
		return len(firstChecked) == checked && pastOnce && cron >= 2 && once >= 1, seen
	})
	w = heard
	agents := e.runAgents(t, w, "every", "cron")

	// every: on its schedule; no agent twice in a firing; each agent in
	// the firings checked.
	for at, ticks := range w.byFiring("every", "schedule") {
		if at.Before(c.start) || at.Sub(c.start)%time.Second != 0 {
			t.Errorf("job every fired at %s, off its schedule from %s every 1s", at, c.start)
		}
		ids := agentsOf(ticks, agents)
		if slices.Contains(firstChecked, at) && !slices.Equal(ids, e.ids()) || len(slices.Compact(slices.Clone(ids))) != len(ids) {
			t.Errorf("firing %s of job every ran on %v, want every agent once", at.Format(time.StampMilli), ids)
		}
	}

	// cron: on even seconds, only on the agent with tier=b.
	for at, ticks := range w.byFiring("cron", "schedule") {
		if at.Second()%2 != 0 || at.Nanosecond() != 0 {
			t.Errorf("job cron (*/2 * * * * *) fired at %s", at.Format(time.StampMilli))
		}
		if ids := agentsOf(ticks, agents); !slices.Equal(ids, []string{"agent-3"}) {
			t.Errorf("job cron fired on %v, want only agent-3 (tier=b)", ids)
		}
	}

	// once: exactly one run, at its start (a deleted attempt at it may
	// have run at its own).
	for at, ticks := range w.byFiring("once", "schedule") {
		if slices.ContainsFunc(c.abandoned, at.Equal) {
			continue
		}
		if !at.Equal(c.once) || len(ticks) != 1 {
			t.Errorf("job once ran %d times at %s, want exactly one run at %s", len(ticks), at.Format(time.StampMilli), c.once.Format(time.StampMilli))
		}
	}
	for _, tk := range w.ticks("") {
		if tk.Tag != tk.Job {
			t.Fatalf("job %s ran with payload tag %q, want its own payload", tk.Job, tk.Tag)
		}
	}
}

// onePlacementTakeover waits for more than 20 firings of the job placed
// on one agent, killing its lease holder half way, and checks each firing
// ran exactly once, with at most one missed around the takeover. With the
// interval twice the lease, a firing is missed only when the holder died
// between claiming it and running it; but the holder is killed at no
// chosen moment of its interval, and a machine too slow to claim a firing
// again within the interval misses it too, so the test allows one and
// logs each missed firing with what the history says of it. (The agent's
// scheduler tests kill the holder at chosen moments and allow none.)
func onePlacementTakeover(t *testing.T, e *env, w *witness) {
	var j adminv1.GetJobResponse
	testenv.CtlJSON(t, e.cp, &j, "job", "get", "one")
	holder := j.GetJob().GetLease().GetAgentId()
	if holder == "" {
		t.Fatalf("job one has no lease holder: %v", j.GetJob())
	}
	w.awaitFirings(t, "one", 10)
	a := e.agent(holder)
	a.Kill()
	killed = holder
	killedAt := time.Now()
	t.Logf("killed the lease holder %s after %d firings", holder, len(w.byFiring("one", "schedule")))
	w.awaitFirings(t, "one", 22)
	one := w.frozen().byFiring("one", "schedule")
	firings := keys(one)
	agents := e.runAgents(t, w, "one")
	for _, at := range firings {
		if n := len(one[at]); n != 1 {
			t.Errorf("firing %s of job one ran %d times (%v), want exactly once", at.Format(time.StampMilli), n, agentsOf(one[at], agents))
		}
	}
	first, last := firings[0], firings[len(firings)-1]
	missed := int(last.Sub(first)/time.Second) + 1 - len(firings)
	gaps := missedFirings(t, e, one, first, last)
	into := killedAt.Sub(first) % time.Second // how far into its interval the holder was killed
	if missed > 1 {
		t.Errorf("job one missed %d firings between %s and %s (%s), want at most one (the takeover); killed at %s, %s into its interval",
			missed, first.Format(time.StampMilli), last.Format(time.StampMilli), strings.Join(gaps, ", "), killedAt.Format(time.StampMilli), into)
	}
	t.Logf("job one: holder %s killed at %s, %s into its interval; missed firings: %d [%s]",
		holder, killedAt.Format(time.StampMilli), into, missed, strings.Join(gaps, ", "))
	var after []string
	for _, at := range firings {
		if at.After(killedAt.Add(2 * time.Second)) {
			after = append(after, agentsOf(one[at], agents)...)
		}
	}
	if len(after) == 0 || slices.Contains(after, holder) {
		t.Fatalf("after killing %s, job one ran on %v", holder, after)
	}
	testenv.CtlJSON(t, e.cp, &j, "job", "get", "one")
	if l := j.GetJob().GetLease(); l.GetAgentId() == holder || l.GetToken() < 2 {
		t.Fatalf("lease after the takeover = %v, want another holder and a token of at least 2", l)
	}
	t.Logf("job one: %d firings, %d missed, new holder %s", len(firings), missed, j.GetJob().GetLease().GetAgentId())
}

// missedFirings lists the firings of job one from first to last that the
// witness did not hear of, each with what the control plane's history
// says of it: a firing the killed holder claimed and never ran shows its
// agent and outcome unknown.
func missedFirings(t *testing.T, e *env, heard map[time.Time][]tick, first, last time.Time) []string {
	t.Helper()
	var h adminv1.ListJobRunsResponse
	testenv.CtlJSON(t, e.cp, &h, "job", "history", "one", "--limit", "1000")
	var gaps []string
	for at := first; at.Before(last); at = at.Add(time.Second) {
		if _, ok := heard[at]; ok {
			continue
		}
		what := "not claimed"
		for _, r := range h.GetRuns() {
			if r.GetTrigger() == "schedule" && r.GetScheduledAt().AsTime().Equal(at) {
				what = fmt.Sprintf("claimed by %s, %s", r.GetAgentId(), r.GetOutcome())
			}
		}
		gaps = append(gaps, at.Format(time.StampMilli)+" ("+what+")")
	}
	return gaps
}

// runMissed restarts the killed agent: the job with run_missed replays
// its newest missed firing once; the others replay none.
func runMissed(t *testing.T, e *env, w *witness) {
	a := e.agent(killed)
	before := len(w.byFiring("recover", "recovery"))
	a.Start(t)
	restarted := time.Now()
	e.sync(t)
	// The agent starts its replays as it boots, before it even connects;
	// once it ran job recover on schedule for a firing a second after
	// that, a replay of any job would have been heard.
	e.awaitRun(t, w, "recover", killed, restarted.Add(time.Second))
	testenv.Await(t, jobWait, "job recover replays a missed firing", func() (bool, string) {
		n := len(w.byFiring("recover", "recovery")) - before
		return n > 0, fmt.Sprintf("%d replays", n)
	})
	rec := w.byFiring("recover", "recovery")
	if len(rec)-before != 1 {
		t.Fatalf("job recover replayed %d firings on restart, want exactly one", len(rec)-before)
	}
	for _, job := range []string{"every", "one", "cron"} {
		if n := len(w.byFiring(job, "recovery")); n != 0 {
			t.Fatalf("job %s without run_missed replayed %d firings", job, n)
		}
	}
}

// pauseEditResume pauses job every, checks it does not fire while job
// recover, on the same one-second grid, fires on every agent, then makes
// it fire every two seconds and resumes it.
func pauseEditResume(t *testing.T, e *env, w *witness) {
	e.ctlOK(t, "job", "pause", "every")
	e.sync(t)
	paused := time.Now() // every agent had the job paused by then
	// A firing of every after paused would start on an agent together
	// with recover's of the same instant: once each agent ran recover
	// for a firing 3 s later, none may have been heard.
	for _, id := range e.ids() {
		e.awaitRun(t, w, "recover", id, paused.Add(3*time.Second))
	}
	firedWhilePaused := func(until time.Time) {
		t.Helper()
		var late []string
		for _, at := range w.firingsAfter("every", paused, 1) {
			if at.Before(until) {
				late = append(late, at.Format(time.StampMilli))
			}
		}
		if len(late) > 0 {
			t.Fatalf("job every, paused at %s, fired at %s", paused.Format(time.StampMilli), strings.Join(late, ", "))
		}
	}
	firedWhilePaused(time.Now())

	e.ctlOK(t, "job", "update", "every", "--every", "2s", "--payload", `{"tag":"every"}`)
	resumed := time.Now() // before the resume: any later firing is one of the new schedule
	e.ctlOK(t, "job", "resume", "every")
	e.sync(t)
	const want = 2
	w.awaitFiringsAfter(t, "every", resumed, want, 2*time.Second, len(e.agents))
	since := w.firingsAfter("every", resumed, 1)
	for i := 1; i < len(since); i++ {
		if d := since[i].Sub(since[i-1]); d%(2*time.Second) != 0 || i < want && d != 2*time.Second {
			t.Fatalf("resumed job every fired %s apart, want 2s: %v", d, since)
		}
	}
	// Checked again now that the runs of the resumed job were heard: a
	// run of a firing while paused would have come before them.
	firedWhilePaused(resumed)
}

func runNow(t *testing.T, e *env, w *witness) {
	res := e.ctlOK(t, "job", "run", "cron", "--agent", "agent-3")
	if !strings.Contains(res.Stdout, "agent-3") || !strings.Contains(res.Stdout, "ok") {
		t.Fatalf("job run: %s", res)
	}
	// job run answers after the run, which told the witness before it
	// ended.
	if n := len(w.byFiring("cron", "manual")); n != 1 {
		t.Fatalf("the witness heard %d manual runs of job cron, want 1", n)
	}
	// A run on an agent the job does not select is refused.
	res = testenv.Ctl(t, e.cp, "job", "run", "cron", "--agent", "agent-1")
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "tier=b") {
		t.Fatalf("job run on an agent without the label: %s", res)
	}
	// The run reaches the history with the agent's next report.
	testenv.Await(t, jobWait, "the manual run in the history", func() (bool, string) {
		var h adminv1.ListJobRunsResponse
		testenv.CtlJSON(t, e.cp, &h, "job", "history", "cron", "--limit", "100")
		trig := map[string]int{}
		for _, r := range h.GetRuns() {
			trig[r.GetTrigger()]++
			if r.GetOutcome() != "ok" && r.GetOutcome() != "running" {
				t.Fatalf("run %s of job cron: outcome %s (%s)", r.GetCid(), r.GetOutcome(), r.GetError())
			}
		}
		return trig["manual"] == 1 && trig["schedule"] >= 3, fmt.Sprintf("runs by trigger: %v, want 1 manual and some scheduled", trig)
	})
}

// controlPlaneAway stops the control plane: jobs on every agent keep
// firing; after it starts again, the jobs are all there and the runs made
// while it was down are in their history.
func controlPlaneAway(t *testing.T, e *env, w *witness) {
	e.cp.Stop(t)
	down := time.Now()
	w.awaitFiringsAfter(t, "cron", down, 2, 2*time.Second, 1)
	var during []tick
	for _, tk := range w.ticks("cron") {
		if tk.Trigger == "schedule" && tk.scheduled.After(down) {
			during = append(during, tk)
		}
	}
	e.cp.Start(t)
	var list adminv1.ListJobsResponse
	testenv.CtlJSON(t, e.cp, &list, "job", "list")
	var names []string
	for _, j := range list.GetJobs() {
		names = append(names, j.GetName())
	}
	if want := []string{"cron", "every", "once", "one", "recover"}; !slices.Equal(names, want) {
		t.Fatalf("jobs after the restart = %v, want %v", names, want)
	}
	testenv.Await(t, jobWait, "the runs made while the control plane was down reach the history", func() (bool, string) {
		var h adminv1.ListJobRunsResponse
		testenv.CtlJSON(t, e.cp, &h, "job", "history", "cron", "--limit", "100")
		have := map[string]bool{}
		for _, r := range h.GetRuns() {
			have[r.GetCid()] = true
		}
		for _, tk := range during {
			if !have[tk.CID] {
				return false, fmt.Sprintf("run %s (%s) is not in the history", tk.CID, tk.ScheduledAt)
			}
		}
		return true, ""
	})
}

// awaitRun waits until the witness heard a scheduled run of job for a
// firing after after that the control plane's history says agent id ran.
func (e *env) awaitRun(t *testing.T, w *witness, job, id string, after time.Time) {
	t.Helper()
	testenv.Await(t, time.Until(after)+jobWait, fmt.Sprintf("agent %s runs job %s for a firing after %s", id, job, after.Format(time.StampMilli)), func() (bool, string) {
		heard := map[string]bool{}
		for _, tk := range w.ticks(job) {
			if tk.Trigger == "schedule" && tk.scheduled.After(after) {
				heard[tk.CID] = true
			}
		}
		if len(heard) == 0 {
			return false, "no such run heard"
		}
		var h adminv1.ListJobRunsResponse
		testenv.CtlJSON(t, e.cp, &h, "job", "history", job, "--limit", "100")
		for _, r := range h.GetRuns() {
			if r.GetAgentId() == id && heard[r.GetCid()] {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d such runs heard, none in the history as agent %s's", len(heard), id)
	})
}

// runAgents maps the CIDs of the runs of jobs that the witness heard of
// to the agents that ran them, from the control plane's history, waiting
// for the agents' reports.
func (e *env) runAgents(t *testing.T, w *witness, jobs ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	testenv.Await(t, jobWait, "runs reported", func() (bool, string) {
		for _, j := range jobs {
			var h adminv1.ListJobRunsResponse
			testenv.CtlJSON(t, e.cp, &h, "job", "history", j, "--limit", "1000")
			for _, r := range h.GetRuns() {
				out[r.GetCid()] = r.GetAgentId()
			}
			for _, tk := range w.ticks(j) {
				if out[tk.CID] == "" {
					return false, fmt.Sprintf("run %s of job %s is not in the history yet", tk.CID, j)
				}
			}
		}
		return true, ""
	})
	return out
}

func (e *env) agent(id string) *testenv.Agent {
	for _, a := range e.agents {
		if a.ID == id {
			return a
		}
	}
	panic("no agent " + id)
}

// agentsOf lists, sorted, the agents that ran ticks.
func agentsOf(ticks []tick, agents map[string]string) []string {
	var ids []string
	for _, tk := range ticks {
		id := agents[tk.CID]
		if id == "" {
			id = "unknown cid " + tk.CID
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func keys(m map[time.Time][]tick) []time.Time {
	out := make([]time.Time, 0, len(m))
	for at := range m {
		out = append(out, at)
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return out
}

// witness is an HTTP server outside Weft that the ticker service tells of
// every run.
type witness struct {
	srv *httptest.Server

	mu  sync.Mutex
	all []tick
}

// tick is what the ticker service sends, and when it arrived.
type tick struct {
	Tag         string `json:"tag"`
	Job         string `json:"job"`
	Trigger     string `json:"trigger"`
	ScheduledAt string `json:"scheduled_at"`
	CID         string `json:"cid"`

	scheduled time.Time
	at        time.Time
}

func newWitness(t *testing.T) *witness {
	w := &witness{}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var tk tick
		if err := json.NewDecoder(r.Body).Decode(&tk); err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		sched, err := time.Parse(time.RFC3339Nano, tk.ScheduledAt)
		if err != nil {
			http.Error(rw, "scheduled_at: "+err.Error(), http.StatusBadRequest)
			return
		}
		tk.scheduled, tk.at = sched.UTC(), time.Now()
		w.mu.Lock()
		w.all = append(w.all, tk)
		w.mu.Unlock()
		rw.Header().Set("Content-Type", "application/json")
		_, _ = rw.Write([]byte(`{}`))
	}))
	t.Cleanup(w.srv.Close)
	return w
}

// frozen returns a witness that knows the ticks heard so far and hears no
// more.
func (w *witness) frozen() *witness {
	w.mu.Lock()
	defer w.mu.Unlock()
	return &witness{srv: w.srv, all: slices.Clone(w.all)}
}

// ticks returns the ticks of job, or every tick when job is empty.
func (w *witness) ticks(job string) []tick {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []tick
	for _, tk := range w.all {
		if job == "" || tk.Job == job {
			out = append(out, tk)
		}
	}
	return out
}

// byFiring groups the ticks of job with trigger by their firing.
func (w *witness) byFiring(job, trigger string) map[time.Time][]tick {
	out := map[time.Time][]tick{}
	for _, tk := range w.ticks(job) {
		if tk.Trigger == trigger {
			out[tk.scheduled] = append(out[tk.scheduled], tk)
		}
	}
	return out
}

// firingsAfter returns, in order, the firings of job by its schedule
// after after that ticks came from, each from at least runs agents.
func (w *witness) firingsAfter(job string, after time.Time, runs int) []time.Time {
	var out []time.Time
	for at, ticks := range w.byFiring(job, "schedule") {
		if at.After(after) && len(ticks) >= runs {
			out = append(out, at)
		}
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return out
}

// awaitFirings waits until the witness heard of n firings of job by its
// schedule, which fires each second.
func (w *witness) awaitFirings(t *testing.T, job string, n int) {
	t.Helper()
	testenv.Await(t, time.Duration(n)*time.Second+jobWait, fmt.Sprintf("%d firings of job %s", n, job), func() (bool, string) {
		got := len(w.byFiring(job, "schedule"))
		return got >= n, fmt.Sprintf("%d firings", got)
	})
}

// awaitFiringsAfter waits until the witness heard of n firings of job by
// its schedule, which fires each period, after after, each from at least
// runs agents.
func (w *witness) awaitFiringsAfter(t *testing.T, job string, after time.Time, n int, period time.Duration, runs int) {
	t.Helper()
	what := fmt.Sprintf("%d firings of job %s after %s, each run by %d agents", n, job, after.Format(time.StampMilli), runs)
	testenv.Await(t, time.Until(after)+time.Duration(n)*period+jobWait, what, func() (bool, string) {
		got := w.firingsAfter(job, after, runs)
		return len(got) >= n, fmt.Sprintf("%d such firings", len(got))
	})
}
