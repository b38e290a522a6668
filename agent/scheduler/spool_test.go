package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// Runs waiting for a control plane that is away are kept on disk, so an
// agent restarted meanwhile reports them once it is back; the file goes
// once they are sent.
func TestUnreportedRunsSurviveARestart(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, SpoolFile)
	clk := newFakeClock()
	cp := newFakeCP(clk, 4*time.Second)
	cp.setReportsDown(true)
	o := &outcomes{}
	a := newAgent(t, clk, agentOpts{cp: cp, outcomes: o, stateDir: dir})
	a.s.Set([]*adminv1.Job{intervalJob("job", t0.Add(time.Second), time.Second)})
	a.start(t)
	for k := 1; k <= 5; k++ {
		step(t, clk, o, time.Second, k)
	}
	advanceUntil(t, clk, 50*time.Millisecond, "the waiting runs on disk", func() bool {
		return len(spooled(t, file)) > 0
	})
	// A run that ends with the clock standing still is written only by the
	// stop, whose last flush fails too.
	a.s.reports.add(&agentv1.JobRun{Job: "job", Cid: "late", Trigger: TriggerManual})
	a.stop()
	if n := len(spooled(t, file)); n != 6 {
		t.Fatalf("%d runs on disk after the stop, want 6", n)
	}
	if n := len(cp.reported()); n != 0 {
		t.Fatalf("%d runs reported while refused", n)
	}

	// A new agent process on the same state directory, the control plane back.
	cp.setReportsDown(false)
	b := newAgent(t, clk, agentOpts{cp: cp, stateDir: dir})
	b.start(t)
	advanceUntil(t, clk, 50*time.Millisecond, "the kept runs to be reported", func() bool { return len(cp.reported()) >= 6 })
	advanceUntil(t, clk, 50*time.Millisecond, "the file to go", func() bool {
		_, err := os.Stat(file)
		return os.IsNotExist(err)
	})
	seen := map[int64]int{}
	for _, r := range cp.reported() {
		seen[r.GetScheduledAtUnixMs()]++
	}
	for k := 1; k <= 5; k++ {
		if n := seen[t0.Add(time.Duration(k)*time.Second).UnixMilli()]; n != 1 {
			t.Errorf("firing %d reported %d times, want once", k, n)
		}
	}
	if got := cp.reported(); got[len(got)-1].GetCid() != "late" {
		t.Errorf("last run reported %s, want late", got[len(got)-1].GetCid())
	}
}

// Runs that end while reports back off are written within saveEvery, not
// only at the next failed report.
func TestSpoolWrittenDuringTheBackoff(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, SpoolFile)
	clk := newFakeClock()
	cp := newFakeCP(clk, 4*time.Second)
	cp.setReportsDown(true)
	logs := slog.New(&logSink{})
	r := newReports(cp.agent("agent-1"), clk, logs, newSpool(dir, logs))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	r.add(&agentv1.JobRun{Job: "job", Cid: "first"})
	calls := func() int {
		cp.mu.Lock()
		defer cp.mu.Unlock()
		return len(cp.reportCalls)
	}
	// From the eighth failure on, retries wait at least retryMax/2.
	advanceUntil(t, clk, 50*time.Millisecond, "eight failed reports", func() bool { return calls() >= 8 })
	waitFor(t, "the loop to wait for its retry", func() bool {
		clk.mu.Lock()
		defer clk.mu.Unlock()
		return len(clk.timers) == 1
	})
	failed := calls()
	r.add(&agentv1.JobRun{Job: "job", Cid: "late"})
	advanceUntil(t, clk, 50*time.Millisecond, "the late run on disk", func() bool { return len(spooled(t, file)) == 2 })
	if n := calls(); n != failed {
		t.Errorf("the late run reached the disk after %d more report calls, want none", n-failed)
	}
}

// While reports flow, nothing is written to disk: not while runs wait for
// their batch (looked at during each Report call), not at shutdown.
func TestNoSpoolWhileReportsFlow(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, SpoolFile)
	clk := newFakeClock()
	cp := newFakeCP(clk, 4*time.Second)
	var seen []string // the file's state at each Report call
	var mu sync.Mutex
	to := reportFunc(func(ctx context.Context, runs []*agentv1.JobRun) error {
		_, err := os.Stat(file)
		mu.Lock()
		seen = append(seen, fmt.Sprint(err))
		mu.Unlock()
		return cp.agent("agent-1").Report(ctx, runs)
	})
	logs := slog.New(&logSink{})
	r := newReports(to, clk, logs, newSpool(dir, logs))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.run(ctx); close(done) }()
	for k := 1; k <= 5; k++ {
		r.add(&agentv1.JobRun{Job: "job", Cid: fmt.Sprint(k)})
		advanceUntil(t, clk, 50*time.Millisecond, "the run to be reported", func() bool { return len(cp.reported()) >= k })
	}
	r.add(&agentv1.JobRun{Job: "job", Cid: "last"})
	cancel()
	<-done
	r.finalFlush()
	if n := len(cp.reported()); n != 6 {
		t.Fatalf("%d runs reported, want 6", n)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, err := range seen {
		if !strings.Contains(err, "no such file") {
			t.Errorf("report call %d: %s: %s, want no such file", i+1, SpoolFile, err)
		}
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("%s after the stop: %v, want no such file", SpoolFile, err)
	}
}

// A file holding more than reportCap runs loses the oldest, with a warning
// naming how many.
func TestSpoolKeepsTheCap(t *testing.T) {
	dir := t.TempDir()
	const extra = 3
	runs := make([]*agentv1.JobRun, reportCap+extra)
	for i := range runs {
		runs[i] = &agentv1.JobRun{Job: "job", Cid: fmt.Sprint(i)}
	}
	b, err := protojson.Marshal(&agentv1.ReportRunsRequest{Runs: runs})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, SpoolFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	clk := newFakeClock()
	cp := newFakeCP(clk, time.Second)
	logs := &logSink{}
	r := newReports(cp.agent("agent-1"), clk, slog.New(logs), newSpool(dir, slog.New(logs)))
	if err := r.flush(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}
	got := cp.reported()
	if len(got) != reportCap || got[0].GetCid() != fmt.Sprint(extra) {
		t.Fatalf("reported %d runs from %s; want %d from %d", len(got), got[0].GetCid(), reportCap, extra)
	}
	warned := logs.find(slog.LevelWarn, "dropped the oldest runs")
	if len(warned) != 1 || warned[0]["dropped"].Int64() != extra {
		t.Errorf("warnings %v, want one with dropped=%d", warned, extra)
	}
}

// A damaged file is set aside and logged; the scheduler starts anyway.
func TestDamagedSpoolSetAside(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, SpoolFile)
	if err := os.WriteFile(file, []byte(`{"runs": [`), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &logSink{}
	r := newReports(newFakeCP(newFakeClock(), time.Second).agent("agent-1"), newFakeClock(), slog.New(logs), newSpool(dir, slog.New(logs)))
	if n := r.waiting(); n != 0 {
		t.Fatalf("%d runs loaded from a damaged file", n)
	}
	if _, err := os.Stat(file + ".bad"); err != nil {
		t.Fatalf("the damaged file was not set aside: %v", err)
	}
	logged := logs.find(slog.LevelError, "the unreported job runs kept on disk are damaged; set aside")
	if len(logged) != 1 || logged[0]["file"].String() != file || logged[0]["err"].String() == "" {
		t.Fatalf("errors logged %v, want one naming %s and the error", logged, file)
	}
}

// spooled reads the runs kept in file; none when it does not exist.
func spooled(t *testing.T, file string) []*agentv1.JobRun {
	t.Helper()
	b, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var kept agentv1.ReportRunsRequest
	if err := protojson.Unmarshal(b, &kept); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return kept.GetRuns()
}
