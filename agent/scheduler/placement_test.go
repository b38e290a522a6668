package scheduler

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/weft-dev/weft/agent/shared/jobspec"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func oneJob(name string, period time.Duration) *adminv1.Job {
	j := intervalJob(name, t0.Add(period), period)
	j.Placement = jobspec.PlacementOne
	return j
}

// Three agents share a job placed on one agent: every firing runs exactly
// once, and when the holder is killed another takes over once the lease
// lapses, missing at most one firing and running none twice.
func TestPlacementOneAcrossThreeAgents(t *testing.T) {
	const firings, killAt = 30, 12
	clk := newFakeClock()
	cp := newFakeCP(clk, 1500*time.Millisecond)
	o := &outcomes{}
	agents := map[string]*agent{}
	job := oneJob("sync", time.Second)
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("agent-%d", i)
		a := newAgent(t, clk, agentOpts{id: id, cp: cp, outcomes: o})
		a.s.Set([]*adminv1.Job{job})
		a.start(t)
		agents[id] = a
	}

	live, killed := 3, ""
	for k := 1; k <= firings; k++ {
		step(t, clk, o, time.Second, o.count()+live)
		if k == killAt {
			killed = cp.holder("sync")
			agents[killed].stop()
			live--
		}
	}

	ran := map[time.Time][]string{}
	for _, x := range o.all() {
		if x.result == "ran" {
			ran[x.at] = append(ran[x.at], x.agent)
		}
		if x.result != "ran" && x.result != "refused" {
			t.Errorf("firing %s on %s: %s", x.at, x.agent, x.result)
		}
	}
	missed := 0
	for k := 1; k <= firings; k++ {
		at := t0.Add(time.Duration(k) * time.Second)
		switch who := ran[at]; {
		case len(who) > 1:
			t.Errorf("firing %d ran on %v", k, who)
		case len(who) == 0:
			missed++
			if k != killAt+1 { // the lease of the killed agent covers only the next firing
				t.Errorf("firing %d did not run", k)
			}
		case k > killAt && who[0] == killed:
			t.Errorf("firing %d ran on the killed agent", k)
		}
	}
	if missed > 1 {
		t.Errorf("%d firings missed at the takeover, want at most 1", missed)
	}
	// The runs that agents saw are the runs they invoked.
	invoked := 0
	for _, a := range agents {
		invoked += len(a.inv.callsOf("sync"))
	}
	if invoked != firings-missed {
		t.Errorf("%d invocations, want %d", invoked, firings-missed)
	}
}

// While the control plane is away, the holder keeps running the job on its
// lease, and stops when the lease would lapse.
func TestOfflineFiringInsideTheLeaseOnly(t *testing.T) {
	clk := newFakeClock()
	cp := newFakeCP(clk, 4*time.Second) // usable for 3 s after the claim is sent
	o := &outcomes{}
	a := newAgent(t, clk, agentOpts{cp: cp, outcomes: o})
	a.s.Set([]*adminv1.Job{oneJob("sync", time.Second)})
	a.start(t)
	step(t, clk, o, time.Second, 1) // 1 s: granted, lease until 4 s
	cp.setDown(true)
	for k := 2; k <= 6; k++ {
		step(t, clk, o, time.Second, k)
	}
	cp.setDown(false)
	step(t, clk, o, time.Second, 7) // 7 s: the control plane grants it again

	want := []string{"ran", "ran", "ran", "missed", "missed", "missed", "ran"}
	got := o.all()
	for i, x := range got {
		if at := t0.Add(time.Duration(i+1) * time.Second); !x.at.Equal(at) || x.result != want[i] {
			t.Errorf("firing %d: %s at %s, want %s at %s", i+1, x.result, x.at, want[i], at)
		}
	}
	if n := len(a.logs.find(slog.LevelWarn, "firing missed")); n != 3 {
		t.Errorf("%d warnings of missed firings, want 3", n)
	}
}

// A lease the control plane no longer grants on renewal is dropped, so the
// agent does not run the job offline on it.
func TestRenewalDropsLostLeases(t *testing.T) {
	clk := newFakeClock()
	cp := newFakeCP(clk, 24*time.Second) // renewed every 8 s, usable for 18 s
	o := &outcomes{}
	a := newAgent(t, clk, agentOpts{cp: cp, outcomes: o})
	a.s.Set([]*adminv1.Job{oneJob("sync", 20*time.Second)})
	a.start(t)
	step(t, clk, o, 20*time.Second, 1) // granted at 20 s
	waitFor(t, "a lease", func() bool { return a.s.hasLease("sync") })

	advanceUntil(t, clk, 100*time.Millisecond, "a renewal", func() bool {
		cp.mu.Lock()
		defer cp.mu.Unlock()
		return cp.leases["sync"].until.After(t0.Add(44 * time.Second))
	})
	// The control plane hands the lease to another agent: the next renewal
	// drops it here.
	cp.mu.Lock()
	cp.leases["sync"] = fakeLease{holder: "agent-2", until: clk.Now().Add(time.Hour)}
	cp.mu.Unlock()
	advanceUntil(t, clk, 100*time.Millisecond, "the lease to be dropped", func() bool { return !a.s.hasLease("sync") })
	cp.setDown(true)
	advanceUntil(t, clk, 100*time.Millisecond, "the next firing", func() bool { return o.count() == 2 })
	if got := o.all()[1]; got.result != "missed" || !got.at.Equal(t0.Add(40*time.Second)) {
		t.Errorf("firing %+v offline after losing the lease, want missed at 40 s", got)
	}
	if n := len(a.inv.callsOf("sync")); n != 1 {
		t.Errorf("%d runs, want 1", n)
	}
}

// A refused claim means another agent holds the job: the agent forgets its
// own lease and does not run the job offline on it.
func TestRefusedClaimForgetsTheLease(t *testing.T) {
	clk := newFakeClock()
	cp := newFakeCP(clk, 30*time.Second)
	o := &outcomes{}
	a := newAgent(t, clk, agentOpts{cp: cp, outcomes: o})
	a.s.Set([]*adminv1.Job{oneJob("sync", time.Second)})
	a.start(t)
	step(t, clk, o, time.Second, 1) // 1 s: granted, lease usable until 23.5 s
	cp.mu.Lock()
	cp.leases["sync"] = fakeLease{holder: "agent-2", until: clk.Now().Add(time.Hour)}
	cp.mu.Unlock()
	step(t, clk, o, time.Second, 2) // 2 s: refused
	cp.setDown(true)
	step(t, clk, o, time.Second, 3) // 3 s: no lease, so missed
	var results []string
	for _, x := range o.all() {
		results = append(results, x.result)
	}
	if got := fmt.Sprint(results); got != "[ran refused missed]" {
		t.Errorf("firings %s, want [ran refused missed]", got)
	}
}

func (s *Scheduler) hasLease(job string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.leases[job]
	return ok
}
