package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// Runs are kept while the control plane refuses them and sent once it is
// back, none lost; retries back off.
func TestReportsRetriedUntilAccepted(t *testing.T) {
	clk := newFakeClock()
	cp := newFakeCP(clk, 4*time.Second)
	cp.setReportsDown(true)
	o := &outcomes{}
	a := newAgent(t, clk, agentOpts{cp: cp, outcomes: o})
	a.s.Set([]*adminv1.Job{intervalJob("job", t0.Add(time.Second), time.Second)})
	a.start(t)
	for k := 1; k <= 5; k++ {
		step(t, clk, o, time.Second, k)
	}
	advanceUntil(t, clk, 50*time.Millisecond, "eight failed reports", func() bool {
		cp.mu.Lock()
		defer cp.mu.Unlock()
		return len(cp.reportCalls) >= 8
	})
	cp.mu.Lock()
	failed := cp.reportCalls
	cp.mu.Unlock()
	if n := len(cp.reported()); n != 0 {
		t.Fatalf("%d runs reported while refused", n)
	}
	cp.setReportsDown(false)
	advanceUntil(t, clk, 50*time.Millisecond, "the runs to be reported", func() bool { return len(cp.reported()) >= 5 })

	seen := map[int64]int{}
	for _, r := range cp.reported() {
		seen[r.GetScheduledAtUnixMs()]++
	}
	for k := 1; k <= 5; k++ {
		if n := seen[t0.Add(time.Duration(k)*time.Second).UnixMilli()]; n != 1 {
			t.Errorf("firing %d reported %d times, want once", k, n)
		}
	}
	// After failure i+1, the retry waits at least half of 100 ms doubled i
	// times, up to 5 s.
	for i := 0; i+1 < len(failed); i++ {
		if gap, least := failed[i+1].Sub(failed[i]), min(retryMin<<i, retryMax)/2; gap < least {
			t.Errorf("retry %d came %s after the failure before, want at least %s", i+1, gap, least)
		}
	}
}

func TestReportQueueDropsTheOldest(t *testing.T) {
	clk := newFakeClock()
	cp := newFakeCP(clk, 4*time.Second)
	logs := &logSink{}
	r := newReports(cp.agent("agent-1"), clk, slog.New(logs), newSpool("", nil))
	const extra = 5
	for i := range reportCap + extra {
		r.add(&agentv1.JobRun{Job: "job", Cid: fmt.Sprint(i)})
	}
	if n := r.waiting(); n != reportCap {
		t.Fatalf("%d runs waiting, want %d", n, reportCap)
	}
	if err := r.flush(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}
	got := cp.reported()
	if len(got) != reportCap || got[0].GetCid() != fmt.Sprint(extra) || got[len(got)-1].GetCid() != fmt.Sprint(reportCap+extra-1) {
		t.Fatalf("reported %d runs from %s to %s; want %d from %d", len(got), got[0].GetCid(), got[len(got)-1].GetCid(), reportCap, extra)
	}
	warned := logs.find(slog.LevelWarn, "dropped the oldest runs")
	if len(warned) != 1 || warned[0]["dropped"].Int64() != extra {
		t.Errorf("warnings %v, want one with dropped=%d", warned, extra)
	}
}

// reportFunc is a Coordinator that only reports.
type reportFunc func(context.Context, []*agentv1.JobRun) error

func (f reportFunc) Claim(context.Context, string, time.Time, string) (Claim, error) {
	return Claim{}, errDown
}
func (f reportFunc) Renew(context.Context, []string) ([]string, time.Duration, error) {
	return nil, 0, errDown
}
func (f reportFunc) Report(ctx context.Context, runs []*agentv1.JobRun) error { return f(ctx, runs) }

// A failed batch goes back in front of the runs queued meanwhile.
func TestFailedBatchKeepsItsPlace(t *testing.T) {
	var r *reports
	var got string
	fail := true
	r = newReports(reportFunc(func(_ context.Context, runs []*agentv1.JobRun) error {
		if fail {
			fail = false
			r.add(&agentv1.JobRun{Cid: "3"}) // a run ends while the call is under way
			return errDown
		}
		for _, run := range runs {
			got += run.GetCid()
		}
		return nil
	}), newFakeClock(), slog.New(&logSink{}), newSpool("", nil))
	for i := range 3 {
		r.add(&agentv1.JobRun{Cid: fmt.Sprint(i)})
	}
	if err := r.flush(context.Background(), time.Second); err == nil {
		t.Fatal("flush succeeded against a control plane that refuses reports")
	}
	if err := r.flush(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}
	if got != "0123" {
		t.Errorf("reported %q, want 0123", got)
	}
}

// Many runs are sent without waiting for the periodic flush.
func TestManyRunsAreSentAtOnce(t *testing.T) {
	clk := newFakeClock()
	cp := newFakeCP(clk, 4*time.Second)
	r := newReports(cp.agent("agent-1"), clk, slog.New(&logSink{}), newSpool("", nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	for i := range reportSoon {
		r.add(&agentv1.JobRun{Cid: fmt.Sprint(i)})
	}
	waitFor(t, "the runs to be sent with the clock standing still", func() bool { return len(cp.reported()) == reportSoon })
}

// Run's last act is to report what is still queued.
func TestRunReportsWhatIsLeftOnExit(t *testing.T) {
	clk := newFakeClock()
	cp := newFakeCP(clk, 4*time.Second)
	o := &outcomes{}
	a := newAgent(t, clk, agentOpts{cp: cp, outcomes: o})
	a.s.Set([]*adminv1.Job{intervalJob("job", t0.Add(time.Second), time.Hour)})
	a.start(t)
	step(t, clk, o, time.Second, 1)
	a.stop()
	if n := len(cp.reported()); n != 1 {
		t.Errorf("%d runs reported on exit, want 1", n)
	}
}
