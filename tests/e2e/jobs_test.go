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
			var started time.Time
			runSteps(t, []step{
				{"deploy", func(t *testing.T) {
					ticker := filepath.Join(testenv.ModuleRoot(t), "tests", "e2e", "testdata", "ticker")
					e.ctlOK(t, "deploy", e.example, ticker, "--wait")
					e.ctlOK(t, "outgoing", "create", "witness", "--address", w.srv.URL, "--path", "/tick", "--method", "POST")
					e.sync(t)
				}},
				{"bad jobs are refused naming the field", func(t *testing.T) { badJobs(t, e) }},
				{"each type fires on schedule with its payload", func(t *testing.T) {
					started = createJobs(t, e)
					time.Sleep(6 * time.Second)
					typesFire(t, e, w, started)
				}},
				{"one placement: one run per firing, also when the holder dies", func(t *testing.T) {
					onePlacementTakeover(t, e, w, started)
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

// createJobs creates the jobs the later steps watch, all starting on the
// next whole second, and returns that second.
func createJobs(t *testing.T, e *env) time.Time {
	start := time.Now().Add(1500 * time.Millisecond).Truncate(time.Second).UTC()
	at := start.UTC().Format(time.RFC3339)
	e.ctlOK(t, "job", "create", "every", "--service", "ticker.report", "--type", "interval", "--every", "1s", "--start", at, "--payload", `{"tag":"every"}`)
	e.ctlOK(t, "job", "create", "one", "--service", "ticker.report", "--type", "interval", "--every", "1s", "--start", at, "--placement", "one", "--payload", `{"tag":"one"}`)
	e.ctlOK(t, "job", "create", "cron", "--service", "ticker.report", "--type", "cron", "--cron", "*/2 * * * * *", "--tz", "Europe/Berlin", "--agent-label", "tier=b", "--payload", `{"tag":"cron"}`)
	e.ctlOK(t, "job", "create", "once", "--service", "ticker.report", "--type", "one_time", "--start", start.Add(3*time.Second).UTC().Format(time.RFC3339), "--placement", "one", "--payload", `{"tag":"once"}`)
	e.ctlOK(t, "job", "create", "recover", "--service", "ticker.report", "--type", "interval", "--every", "1s", "--start", at, "--run-missed", "--payload", `{"tag":"recover"}`)
	e.sync(t)
	return start
}

func typesFire(t *testing.T, e *env, w *witness, start time.Time) {
	w = w.frozen()
	agents := e.runAgents(t, w, "every", "cron", "once", "one")

	// every: each second, once on each of the three agents.
	every := w.byFiring("every", "schedule")
	if len(every) < 4 {
		t.Fatalf("job every fired %d times in 6 s, want at least 4", len(every))
	}
	for at, ticks := range every {
		if at.Before(start) || at.Sub(start)%time.Second != 0 {
			t.Errorf("job every fired at %s, off its schedule from %s every 1s", at, start)
		}
		if ids := agentsOf(ticks, agents); !slices.Equal(ids, e.ids()) && at.Before(w.last("every")) {
			t.Errorf("firing %s of job every ran on %v, want every agent once", at.Format(time.StampMilli), ids)
		}
	}

	// cron: on even seconds, only on the agent with tier=b.
	cron := w.byFiring("cron", "schedule")
	if len(cron) < 2 {
		t.Fatalf("job cron fired %d times in 6 s, want at least 2", len(cron))
	}
	for at, ticks := range cron {
		if at.Second()%2 != 0 || at.Nanosecond() != 0 {
			t.Errorf("job cron (*/2 * * * * *) fired at %s", at.Format(time.StampMilli))
		}
		if ids := agentsOf(ticks, agents); !slices.Equal(ids, []string{"agent-3"}) {
			t.Errorf("job cron fired on %v, want only agent-3 (tier=b)", ids)
		}
	}

	// once: exactly one run, at its start.
	once := w.byFiring("once", "schedule")
	if len(once) != 1 || len(once[start.Add(3*time.Second)]) != 1 {
		t.Fatalf("job once fired %v, want exactly one run at %s", keys(once), start.Add(3*time.Second).Format(time.StampMilli))
	}
	for _, tk := range w.ticks("") {
		if tk.Tag != tk.Job {
			t.Fatalf("job %s ran with payload tag %q, want its own payload", tk.Job, tk.Tag)
		}
	}
}

// onePlacementTakeover waits for more than 20 firings of the job placed
// on one agent, killing its lease holder half way, and checks each firing
// ran exactly once, with at most one missed around the takeover.
func onePlacementTakeover(t *testing.T, e *env, w *witness, start time.Time) {
	var j adminv1.GetJobResponse
	testenv.CtlJSON(t, e.cp, &j, "job", "get", "one")
	holder := j.GetJob().GetLease().GetAgentId()
	if holder == "" {
		t.Fatalf("job one has no lease holder: %v", j.GetJob())
	}
	for len(w.byFiring("one", "schedule")) < 10 {
		time.Sleep(200 * time.Millisecond)
	}
	a := e.agent(holder)
	a.Kill()
	killed = holder
	killedAt := time.Now()
	t.Logf("killed the lease holder %s after %d firings", holder, len(w.byFiring("one", "schedule")))
	deadline := time.Now().Add(40 * time.Second)
	for len(w.byFiring("one", "schedule")) < 22 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	one := w.frozen().byFiring("one", "schedule")
	firings := keys(one)
	if len(firings) < 22 {
		t.Fatalf("job one fired %d times, want at least 22", len(firings))
	}
	agents := e.runAgents(t, w, "one")
	for _, at := range firings {
		if n := len(one[at]); n != 1 {
			t.Errorf("firing %s of job one ran %d times (%v), want exactly once", at.Format(time.StampMilli), n, agentsOf(one[at], agents))
		}
	}
	first, last := firings[0], firings[len(firings)-1]
	missed := int(last.Sub(first)/time.Second) + 1 - len(firings)
	if missed > 1 {
		var gaps []string
		for at := first; at.Before(last); at = at.Add(time.Second) {
			if _, ok := one[at]; !ok {
				gaps = append(gaps, at.Format(time.StampMilli))
			}
		}
		t.Errorf("job one missed %d firings between %s and %s (%s), want at most one (the takeover); killed at %s",
			missed, first.Format(time.StampMilli), last.Format(time.StampMilli), strings.Join(gaps, ", "), killedAt.Format(time.StampMilli))
	}
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

// runMissed restarts the killed agent: the job with run_missed replays
// its newest missed firing once; the others replay none.
func runMissed(t *testing.T, e *env, w *witness) {
	a := e.agent(killed)
	before := len(w.byFiring("recover", "recovery"))
	a.Start(t)
	e.sync(t)
	time.Sleep(1500 * time.Millisecond)
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

func pauseEditResume(t *testing.T, e *env, w *witness) {
	e.ctlOK(t, "job", "pause", "every")
	e.sync(t)
	time.Sleep(300 * time.Millisecond) // a firing already started may still report
	n := len(w.ticks("every"))
	time.Sleep(2500 * time.Millisecond)
	if got := len(w.ticks("every")); got != n {
		t.Fatalf("paused job every ran %d more times", got-n)
	}
	e.ctlOK(t, "job", "update", "every", "--every", "2s", "--payload", `{"tag":"every"}`)
	e.ctlOK(t, "job", "resume", "every")
	e.sync(t)
	resumed := time.Now()
	time.Sleep(4500 * time.Millisecond)
	var since []time.Time
	for at := range w.byFiring("every", "schedule") {
		if at.After(resumed) {
			since = append(since, at)
		}
	}
	slices.SortFunc(since, func(a, b time.Time) int { return a.Compare(b) })
	if len(since) < 2 {
		t.Fatalf("resumed job every fired at %v in 4.5 s, want at least 2 firings", since)
	}
	for i := 1; i < len(since); i++ {
		if d := since[i].Sub(since[i-1]); d != 2*time.Second {
			t.Fatalf("resumed job every fired %s apart, want 2s: %v", d, since)
		}
	}
}

func runNow(t *testing.T, e *env, w *witness) {
	res := e.ctlOK(t, "job", "run", "cron", "--agent", "agent-3")
	if !strings.Contains(res.Stdout, "agent-3") || !strings.Contains(res.Stdout, "ok") {
		t.Fatalf("job run: %s", res)
	}
	if n := len(w.byFiring("cron", "manual")); n != 1 {
		t.Fatalf("the witness heard %d manual runs of job cron, want 1", n)
	}
	// A run on an agent the job does not select is refused.
	res = testenv.Ctl(t, e.cp, "job", "run", "cron", "--agent", "agent-1")
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "tier=b") {
		t.Fatalf("job run on an agent without the label: %s", res)
	}
	// The run reaches the history with the agent's next report.
	testenv.Await(t, 5*time.Second, "the manual run in the history", func() (bool, string) {
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
	time.Sleep(3 * time.Second)
	var during []tick
	for _, tk := range w.ticks("cron") {
		if tk.at.After(down) {
			during = append(during, tk)
		}
	}
	if len(during) == 0 {
		t.Fatal("job cron did not fire while the control plane was down")
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
	testenv.Await(t, 10*time.Second, "the runs made while the control plane was down reach the history", func() (bool, string) {
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

// runAgents maps the CIDs of the runs of jobs that the witness heard of
// to the agents that ran them, from the control plane's history, waiting
// for the agents' reports.
func (e *env) runAgents(t *testing.T, w *witness, jobs ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	testenv.Await(t, 5*time.Second, "runs reported", func() (bool, string) {
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

// last is the newest firing of job the witness heard of.
func (w *witness) last(job string) time.Time {
	var last time.Time
	for _, tk := range w.ticks(job) {
		if tk.scheduled.After(last) {
			last = tk.scheduled
		}
	}
	return last
}
