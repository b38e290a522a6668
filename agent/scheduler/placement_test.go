package scheduler

import (
	"fmt"
	"log/slog"
	"strings"
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

// The takeover tests run job sync, every second on one agent, on three
// agents and a control plane whose leases last half the interval: the
// longest lease with which no firing may be missed.
const (
	takeoverInterval = time.Second
	takeoverLease    = takeoverInterval / 2
	takeoverFrom     = 3 // the holder of this firing is killed or cut off in the interval after it
	takeoverLast     = 7 // the last firing checked
)

// fleet is the agents of a takeover test and what they share.
type fleet struct {
	clk    *fakeClock
	cp     *fakeCP
	o      *outcomes
	agents map[string]*agent
}

func newFleet(t *testing.T) *fleet {
	t.Helper()
	clk := newFakeClock()
	f := &fleet{clk: clk, cp: newFakeCP(clk, takeoverLease), o: &outcomes{}, agents: map[string]*agent{}}
	job := oneJob("sync", takeoverInterval)
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("agent-%d", i)
		a := newAgent(t, clk, agentOpts{id: id, cp: f.cp, outcomes: f.o})
		a.s.Set([]*adminv1.Job{job})
		a.start(t)
		f.agents[id] = a
	}
	return f
}

// firing is when job sync fires for the k-th time.
func (f *fleet) firing(k int) time.Time { return t0.Add(time.Duration(k) * takeoverInterval) }

// advanceTo moves the clock to at in steps of 10 ms, a fiftieth of the
// lease, so that renewals come about when they would.
func (f *fleet) advanceTo(t *testing.T, at time.Time) {
	t.Helper()
	advanceUntil(t, f.clk, 10*time.Millisecond, "the clock to reach "+at.Sub(t0).String(), func() bool { return !f.clk.Now().Before(at) })
}

// ranBy returns the agents that ran the firing at.
func (f *fleet) ranBy(at time.Time) []string {
	var who []string
	for _, x := range f.o.all() {
		if x.at.Equal(at) && x.result == "ran" {
			who = append(who, x.agent)
		}
	}
	return who
}

// holderOf waits until firing k ran and returns the agent that ran it.
func (f *fleet) holderOf(t *testing.T, k int) string {
	t.Helper()
	waitFor(t, fmt.Sprintf("firing %d to run", k), func() bool { return len(f.ranBy(f.firing(k))) > 0 })
	return f.ranBy(f.firing(k))[0]
}

// finish advances past the second claims of the last firing, waits until
// every agent dealt with every firing up to it (want outcomes in all), and
// checks that each ran exactly once, and after takeoverFrom not on
// without. It returns the firings missed and the firings run on a second
// claim, as "4s on agent-1, 625ms late".
func (f *fleet) finish(t *testing.T, want int, without string) (missed []int, late []string) {
	t.Helper()
	f.advanceTo(t, f.firing(takeoverLast).Add(takeoverInterval*3/4))
	waitFor(t, "every agent to deal with every firing", func() bool { return f.o.count() >= want })
	for _, x := range f.o.all() {
		if x.result != "ran" && x.result != "refused" && x.result != "missed" {
			t.Errorf("firing %s on %s: %s", x.at.Sub(t0), x.agent, x.result)
		}
	}
	invoked := 0
	for id, a := range f.agents {
		invoked += len(a.inv.callsOf("sync"))
		for _, r := range a.logs.find(slog.LevelInfo, "firing granted on its second claim") {
			at := r["scheduled_at"].Time()
			late = append(late, fmt.Sprintf("%s on %s, %s late", at.Sub(t0), id, r["late_by"].Duration()))
		}
	}
	for k := 1; k <= takeoverLast; k++ {
		switch who := f.ranBy(f.firing(k)); {
		case len(who) == 0:
			missed = append(missed, k)
		case len(who) > 1:
			t.Errorf("firing %d ran %d times, on %v", k, len(who), who)
		case k > takeoverFrom && who[0] == without:
			t.Errorf("firing %d ran on %s, which was killed or cut off before it", k, without)
		}
	}
	if invoked != takeoverLast-len(missed) {
		t.Errorf("%d invocations, want %d", invoked, takeoverLast-len(missed))
	}
	return missed, late
}

// A holder killed at any moment of its interval costs no firing when the
// interval is twice the lease, and no firing runs twice: a holder killed
// late in the interval renewed its lease past the next firing, so the
// others are refused then and claim the firing again once it has lapsed.
func TestTakeoverMissesNoFiring(t *testing.T) {
	for _, pct := range []int{10, 50, 90} {
		t.Run(fmt.Sprintf("killed at %d%%", pct), func(t *testing.T) {
			f := newFleet(t)
			f.advanceTo(t, f.firing(takeoverFrom))
			holder := f.holderOf(t, takeoverFrom)
			killAt := f.firing(takeoverFrom).Add(takeoverInterval * time.Duration(pct) / 100)
			f.advanceTo(t, killAt)
			f.agents[holder].stop()
			f.cp.mu.Lock()
			leaseUntil := f.cp.leases["sync"].until
			f.cp.mu.Unlock()
			if pct == 90 && !leaseUntil.After(f.firing(takeoverFrom+1)) {
				t.Fatalf("the killed holder's lease lasts until %s, not past the next firing: the test does not test the takeover it is for",
					leaseUntil.Sub(t0))
			}

			missed, late := f.finish(t, 3*takeoverFrom+2*(takeoverLast-takeoverFrom), holder)
			if len(missed) > 0 {
				t.Errorf("firings %v missed", missed)
			}
			t.Logf("holder %s killed at %s, its lease lasting until %s: %d firings of %d missed %v, run late on a second claim: %v",
				holder, killAt.Sub(t0), leaseUntil.Sub(t0), len(missed), takeoverLast, missed, late)
		})
	}
}

// A holder cut off from the control plane late in its interval does not
// run the next firing on its lease, as it would if no other agent could
// claim that firing again: another agent takes it over once the lease has
// lapsed, and it runs once, not on both.
func TestTakeoverOfACutOffHolderRunsOnce(t *testing.T) {
	f := newFleet(t)
	f.advanceTo(t, f.firing(takeoverFrom))
	holder := f.holderOf(t, takeoverFrom)
	f.advanceTo(t, f.firing(takeoverFrom).Add(takeoverInterval*9/10))
	f.cp.setCut(holder, true)

	missed, late := f.finish(t, 3*takeoverLast, holder)
	if len(missed) > 0 {
		t.Errorf("firings %v missed", missed)
	}
	if len(late) != 1 {
		t.Errorf("firings run late on a second claim: %v, want the first after the holder was cut off", late)
	}
	// The holder's lease was still valid on its own clock at the next
	// firing: it left the firing to a second claim instead of running it.
	var again []time.Duration
	for _, r := range f.agents[holder].logs.find(slog.LevelInfo, "control plane unreachable: claiming the firing again later") {
		again = append(again, r["scheduled_at"].Time().Sub(t0))
	}
	if len(again) == 0 || again[0] != f.firing(takeoverFrom+1).Sub(t0) {
		t.Errorf("the cut off holder claimed firings again at %v, want first the one at %s", again, f.firing(takeoverFrom+1).Sub(t0))
	}
	if n := len(f.agents[holder].logs.find(slog.LevelInfo, "running the firing on this agent's lease")); n != 0 {
		t.Errorf("the cut off holder ran %d firings on its lease, want none", n)
	}
}

// When the control plane is away for less than a lease around a firing,
// the holder claims it again when it is back rather than run it on its
// lease, and runs it once, late.
func TestShortOutageClaimsTheFiringAgain(t *testing.T) {
	f := newFleet(t)
	f.advanceTo(t, f.firing(takeoverFrom))
	holder := f.holderOf(t, takeoverFrom)
	f.advanceTo(t, f.firing(takeoverFrom).Add(takeoverInterval*9/10))
	f.cp.setDown(true)
	f.advanceTo(t, f.firing(takeoverFrom+1).Add(takeoverLease*3/5))
	f.cp.setDown(false)

	missed, late := f.finish(t, 3*takeoverLast, "")
	if len(missed) > 0 {
		t.Errorf("firings %v missed", missed)
	}
	if want := fmt.Sprintf("%s on %s, ", f.firing(takeoverFrom+1).Sub(t0), holder); len(late) != 1 || !strings.HasPrefix(late[0], want) {
		t.Errorf("firings run late on a second claim: %v, want the one at %s on %s", late, f.firing(takeoverFrom+1).Sub(t0), holder)
	}
}

// A firing refused for another agent's lease is claimed once more a lease
// and a quarter later: granted when that lease lapsed (its holder died),
// refused when it was renewed (its holder lives), and not claimed at all
// when the job changed meanwhile.
func TestSecondClaim(t *testing.T) {
	tests := []struct {
		name   string
		until  time.Duration // the other agent's lease from the firing, as renewed after the first claim
		edit   bool          // the job changes before the second claim
		result string
		claims int
	}{
		{"the holder died", 400 * time.Millisecond, false, "ran", 2},
		{"the holder lives", time.Second, false, "refused", 2},
		{"the job changed", 400 * time.Millisecond, true, "refused", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			cp := newFakeCP(clk, takeoverLease)
			o := &outcomes{}
			a := newAgent(t, clk, agentOpts{cp: cp, outcomes: o})
			job := oneJob("sync", takeoverInterval)
			a.s.Set([]*adminv1.Job{job})
			at := job.GetStartAt().AsTime()
			cp.mu.Lock()
			cp.leases["sync"] = fakeLease{holder: "agent-2", until: at.Add(takeoverLease)}
			cp.mu.Unlock()
			a.start(t)
			clk.Advance(at.Sub(clk.Now()))
			waitFor(t, "the first claim", func() bool {
				cp.mu.Lock()
				defer cp.mu.Unlock()
				return cp.claims == 1
			})
			cp.mu.Lock()
			cp.leases["sync"] = fakeLease{holder: "agent-2", until: at.Add(tt.until)}
			cp.mu.Unlock()
			if tt.edit {
				edited := clone(job)
				edited.Payload = `{"v":2}`
				a.s.Set([]*adminv1.Job{edited})
			}
			step(t, clk, o, claimAgainAfter(takeoverLease), 1)
			if got := o.all()[0]; got.result != tt.result || !got.at.Equal(at) {
				t.Errorf("firing %+v, want %s at %s", got, tt.result, at.Sub(t0))
			}
			cp.mu.Lock()
			claims := cp.claims
			cp.mu.Unlock()
			if claims != tt.claims {
				t.Errorf("%d claims, want %d", claims, tt.claims)
			}
		})
	}
}
