package scheduler

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weft-dev/weft/agent/shared/jobspec"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// step advances clk by d and waits until o has seen want firings in all.
func step(t *testing.T, clk *fakeClock, o *outcomes, d time.Duration, want int) {
	t.Helper()
	clk.Advance(d)
	waitFor(t, "firings", func() bool { return o.count() >= want })
}

func TestEachTypeFiresWithItsPayload(t *testing.T) {
	clk := newFakeClock()
	o := &outcomes{}
	a := newAgent(t, clk, agentOpts{outcomes: o})
	once := &adminv1.Job{Name: "once", Service: "once.svc", Type: jobspec.TypeOneTime, StartAt: timestamppb.New(t0.Add(2 * time.Second)),
		Payload: `{"kind":"once"}`, Active: proto.Bool(true), TimeoutMs: 1500}
	every := intervalJob("every", t0.Add(time.Second), 2*time.Second)
	every.Payload = `{"kind":"every"}`
	every.Repeats = 2
	cron := &adminv1.Job{Name: "cron", Service: "cron.svc", Type: jobspec.TypeCron, Cron: "*/3 * * * * *", Active: proto.Bool(true)} // no payload
	a.s.Set([]*adminv1.Job{once, every, cron})
	a.start(t)

	// Firings: every at 1 and 3 (2 repeats), once at 2, cron at 3 and 6.
	step(t, clk, o, time.Second, 1)
	step(t, clk, o, time.Second, 2)
	step(t, clk, o, time.Second, 4)
	step(t, clk, o, 3*time.Second, 5)
	a.stop()

	check := func(job string, input string, timeout time.Duration, at ...time.Duration) {
		t.Helper()
		calls := a.inv.callsOf(job)
		if len(calls) != len(at) {
			t.Fatalf("%s ran %d times, want %d: %+v", job, len(calls), len(at), calls)
		}
		for i, c := range calls {
			if !c.scheduledAt.Equal(t0.Add(at[i])) || c.input != input || c.timeout != timeout || c.method != JobMethod || c.trigger != TriggerSchedule || c.service != job+".svc" {
				t.Errorf("%s run %d: %+v; want at %s, input %s, timeout %s", job, i, c, t0.Add(at[i]), input, timeout)
			}
		}
	}
	check("once", `{"kind":"once"}`, 1500*time.Millisecond, 2*time.Second)
	check("every", `{"kind":"every"}`, 0, time.Second, 3*time.Second)
	check("cron", `{}`, 0, 3*time.Second, 6*time.Second)

	runs := a.s.reports.waiting() + len(reportedRuns(a))
	if runs != 5 {
		t.Errorf("%d runs recorded, want 5", runs)
	}
}

// reportedRuns is what a's fake control plane received.
func reportedRuns(a *agent) []*agentv1.JobRun {
	return a.s.reports.to.(agentCP).cp.reported()
}

func TestRunsAreRecordedAndReported(t *testing.T) {
	clk := newFakeClock()
	o := &outcomes{}
	a := newAgent(t, clk, agentOpts{outcomes: o})
	a.inv.status["bad.svc"] = 500
	a.inv.status["slow.svc"] = 504
	good := intervalJob("good", t0.Add(time.Second), time.Minute)
	bad := intervalJob("bad", t0.Add(time.Second), time.Minute)
	slow := intervalJob("slow", t0.Add(time.Second), time.Minute)
	slow.Placement = jobspec.PlacementEvery
	a.s.Set([]*adminv1.Job{good, bad, slow})
	a.start(t)
	step(t, clk, o, time.Second, 3)
	cp := a.s.reports.to.(agentCP).cp
	advanceUntil(t, clk, 50*time.Millisecond, "3 reports", func() bool { return len(cp.reported()) == 3 })

	want := map[string]struct{ outcome, err string }{
		"good": {OutcomeOK, ""},
		"bad":  {OutcomeError, "bad.svc failed with 500"},
		"slow": {OutcomeTimeout, "slow.svc failed with 504"},
	}
	for _, r := range cp.reported() {
		w := want[r.GetJob()]
		if r.GetOutcome() != w.outcome || r.GetError() != w.err || r.GetTrigger() != TriggerSchedule || r.GetPlacement() != jobspec.PlacementEvery ||
			r.GetScheduledAtUnixMs() != t0.Add(time.Second).UnixMilli() || r.GetStartedAtUnixMs() != t0.Add(time.Second).UnixMilli() ||
			!strings.HasPrefix(r.GetCid(), "agent-1-cid-") {
			t.Errorf("run %v; want outcome %q, error %q", r, w.outcome, w.err)
		}
	}
}

func TestLabelsSelectTheJobs(t *testing.T) {
	clk := newFakeClock()
	o := &outcomes{}
	a := newAgent(t, clk, agentOpts{labels: map[string]string{"region": "eu", "tier": "edge"}, outcomes: o})
	jobs := map[string]map[string]string{
		"any":      nil,
		"eu":       {"region": "eu"},
		"eu-edge":  {"region": "eu", "tier": "edge"},
		"us":       {"region": "us"},
		"eu-extra": {"region": "eu", "rack": "7"},
	}
	var list []*adminv1.Job
	for name, labels := range jobs {
		j := intervalJob(name, t0.Add(time.Second), time.Minute)
		j.AgentLabels = labels
		list = append(list, j)
	}
	a.s.Set(list)
	a.start(t)
	step(t, clk, o, time.Second, 3)
	a.stop()
	for name := range jobs {
		want := name == "any" || name == "eu" || name == "eu-edge"
		if ran := len(a.inv.callsOf(name)) == 1; ran != want {
			t.Errorf("job %s ran: %v, want %v", name, ran, want)
		}
	}
	if _, err := a.s.RunNow(context.Background(), "us"); err == nil || !strings.Contains(err.Error(), `job "us": not run by agent "agent-1"`) || !strings.Contains(err.Error(), "region=us") {
		t.Errorf("RunNow of a job for other agents: %v", err)
	}
}

func TestSetPausesEditsAndRemoves(t *testing.T) {
	clk := newFakeClock()
	o := &outcomes{}
	a := newAgent(t, clk, agentOpts{outcomes: o})
	job := intervalJob("job", t0.Add(time.Second), time.Second)
	job.Payload = `{"v":1}`
	canary := intervalJob("canary", t0.Add(time.Second), time.Second)
	a.s.Set([]*adminv1.Job{job, canary})
	a.start(t)
	step(t, clk, o, time.Second, 2) // 1 s: both

	// Unchanged (a copy that is proto.Equal) keeps firing; the edit takes
	// effect at once, from now: every 2 s counted from its start.
	a.s.Set([]*adminv1.Job{clone(job), canary})
	step(t, clk, o, time.Second, 4) // 2 s: both
	edited := clone(job)
	edited.Payload = `{"v":2}`
	edited.Interval = &adminv1.JobInterval{Seconds: 2}
	a.s.Set([]*adminv1.Job{edited, canary})
	step(t, clk, o, time.Second, 6) // 3 s: both (1 + 2k)
	step(t, clk, o, time.Second, 7) // 4 s: canary
	step(t, clk, o, time.Second, 9) // 5 s: both

	paused := clone(edited)
	paused.Active = proto.Bool(false)
	a.s.Set([]*adminv1.Job{paused, canary})
	step(t, clk, o, time.Second, 10) // 6 s: canary
	step(t, clk, o, time.Second, 11) // 7 s: canary; job is paused

	resumed := clone(edited)
	a.s.Set([]*adminv1.Job{resumed, canary})
	step(t, clk, o, time.Second, 12) // 8 s: canary
	step(t, clk, o, time.Second, 14) // 9 s: both; 7 s was not replayed

	a.s.Set([]*adminv1.Job{canary})
	step(t, clk, o, time.Second, 15) // 10 s: canary
	step(t, clk, o, time.Second, 16) // 11 s: canary; job is gone
	a.stop()

	var got []string
	for _, c := range a.inv.callsOf("job") {
		got = append(got, c.scheduledAt.Sub(t0).String()+" "+c.input)
	}
	want := []string{`1s {"v":1}`, `2s {"v":1}`, `3s {"v":2}`, `5s {"v":2}`, `9s {"v":2}`}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("job ran at %v, want %v", got, want)
	}
	if n := len(a.inv.callsOf("canary")); n != 11 {
		t.Errorf("canary ran %d times, want 11", n)
	}
}

func clone(j *adminv1.Job) *adminv1.Job { return proto.Clone(j).(*adminv1.Job) }

// Set keeps the next firing of an unchanged job even when it is already
// due; a changed job is scheduled from now.
func TestUnchangedJobKeepsItsFiring(t *testing.T) {
	clk := newFakeClock()
	o := &outcomes{}
	a := newAgent(t, clk, agentOpts{outcomes: o})
	same := intervalJob("same", t0.Add(time.Second), time.Second)
	changed := intervalJob("changed", t0.Add(time.Second), time.Second)
	a.s.Set([]*adminv1.Job{same, changed})
	clk.Advance(1500 * time.Millisecond) // the 1 s firings are due, Run has not started
	edited := clone(changed)
	edited.Payload = `{"v":2}`
	a.s.Set([]*adminv1.Job{clone(same), edited})
	a.start(t)
	waitFor(t, "the due firing", func() bool { return o.count() == 1 })
	step(t, clk, o, 500*time.Millisecond, 3) // 2 s: both
	a.stop()
	if got := o.all()[0]; got.job != "same" || !got.at.Equal(t0.Add(time.Second)) {
		t.Errorf("first firing %+v, want same at 1 s", got)
	}
	if n := len(a.inv.callsOf("changed")); n != 1 {
		t.Errorf("changed ran %d times, want once (at 2 s)", n)
	}
}

func TestOverlappingFiringIsSkipped(t *testing.T) {
	clk := newFakeClock()
	o := &outcomes{}
	a := newAgent(t, clk, agentOpts{outcomes: o})
	hold := make(chan struct{})
	a.inv.hold["job.svc"] = hold
	a.s.Set([]*adminv1.Job{intervalJob("job", t0.Add(time.Second), time.Second)})
	a.start(t)
	clk.Advance(time.Second)
	waitFor(t, "the first run to start", func() bool { return len(a.inv.callsOf("job")) == 1 })
	first := a.inv.callsOf("job")[0].cid
	step(t, clk, o, time.Second, 1) // 2 s: skipped, the first still runs
	if got := o.all()[0]; got.result != "skipped" || !got.at.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("firing at 2 s: %+v, want skipped", got)
	}
	// Removing the job lets the run in progress finish.
	a.s.Set(nil)
	close(hold)
	waitFor(t, "the first run to end", func() bool { return o.count() == 2 })
	a.stop()

	runs := append(reportedRuns(a), a.s.reports.queue...)
	if len(runs) != 2 {
		t.Fatalf("runs %v, want 2", runs)
	}
	for _, r := range runs {
		switch r.GetScheduledAtUnixMs() {
		case t0.Add(time.Second).UnixMilli():
			if r.GetOutcome() != OutcomeOK || r.GetCid() != first {
				t.Errorf("first run %v, want ok", r)
			}
		case t0.Add(2 * time.Second).UnixMilli():
			if r.GetOutcome() != OutcomeSkipped || !strings.Contains(r.GetError(), first) || r.GetCid() == first {
				t.Errorf("second run %v, want skipped naming %s", r, first)
			}
		default:
			t.Errorf("unexpected run %v", r)
		}
	}
}

func TestLateLoopSkipsToTheFirstFiringAfterNow(t *testing.T) {
	clk := newFakeClock()
	o := &outcomes{}
	a := newAgent(t, clk, agentOpts{outcomes: o})
	a.s.Set([]*adminv1.Job{intervalJob("job", t0.Add(time.Second), time.Second)})
	a.start(t)
	step(t, clk, o, 5*time.Second, 1) // woke at 5 s: runs 1 s, skips 2..5 s
	step(t, clk, o, time.Second, 2)   // 6 s
	a.stop()
	var at []time.Duration
	for _, c := range a.inv.callsOf("job") {
		at = append(at, c.scheduledAt.Sub(t0))
	}
	if len(at) != 2 || at[0] != time.Second || at[1] != 6*time.Second {
		t.Errorf("ran at %v, want [1s 6s]", at)
	}
	warned := a.logs.find(slog.LevelWarn, "skipped firings")
	if len(warned) != 1 || warned[0]["skipped"].Int64() != 4 {
		t.Errorf("warnings %v, want one with skipped=4", warned)
	}
}

func TestRunNow(t *testing.T) {
	clk := newFakeClock()
	a := newAgent(t, clk, agentOpts{})
	paused := intervalJob("paused", t0.Add(time.Hour), time.Hour)
	paused.Active = proto.Bool(false)
	paused.Payload = `{"now":true}`
	paused.Placement = jobspec.PlacementOne // a manual run asks no claim
	failing := intervalJob("failing", t0.Add(time.Hour), time.Hour)
	a.inv.status["failing.svc"] = 500
	a.s.Set([]*adminv1.Job{paused, failing})

	run, err := a.s.RunNow(context.Background(), "paused")
	if err != nil {
		t.Fatal(err)
	}
	if run.GetTrigger() != TriggerManual || run.GetOutcome() != OutcomeOK || run.GetJob() != "paused" || run.GetPlacement() != jobspec.PlacementOne ||
		run.GetStartedAtUnixMs() != t0.UnixMilli() || run.GetCid() != "agent-1-cid-1" {
		t.Errorf("run %v", run)
	}
	calls := a.inv.callsOf("paused")
	if len(calls) != 1 || calls[0].input != `{"now":true}` || calls[0].trigger != TriggerManual {
		t.Errorf("calls %+v", calls)
	}
	if run, err := a.s.RunNow(context.Background(), "failing"); err != nil || run.GetOutcome() != OutcomeError || run.GetError() != "failing.svc failed with 500" {
		t.Errorf("failing run %v, %v", run, err)
	}
	if _, err := a.s.RunNow(context.Background(), "nope"); err == nil || err.Error() != `job "nope": not known to agent "agent-1"` {
		t.Errorf("unknown job: %v", err)
	}
	if n := a.s.reports.waiting(); n != 2 {
		t.Errorf("%d runs queued for report, want 2", n)
	}
}

func TestRunNowWhileRunningIsSkipped(t *testing.T) {
	clk := newFakeClock()
	a := newAgent(t, clk, agentOpts{})
	hold := make(chan struct{})
	a.inv.hold["job.svc"] = hold
	a.s.Set([]*adminv1.Job{intervalJob("job", t0.Add(time.Hour), time.Hour)})
	done := make(chan *agentv1.JobRun)
	go func() {
		run, _ := a.s.RunNow(context.Background(), "job")
		done <- run
	}()
	waitFor(t, "the first run to start", func() bool { return len(a.inv.callsOf("job")) == 1 })
	run, err := a.s.RunNow(context.Background(), "job")
	if err != nil || run.GetOutcome() != OutcomeSkipped || !strings.Contains(run.GetError(), "agent-1-cid-1") {
		t.Errorf("second run %v, %v; want skipped", run, err)
	}
	close(hold)
	if first := <-done; first.GetOutcome() != OutcomeOK {
		t.Errorf("first run %v", first)
	}
}
