package scheduler

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

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
	a.s.Set([]*agentv1.Job{intervalJob("job", t0.Add(time.Second), time.Second)})
	a.start(t)
	for k := 1; k <= 5; k++ {
		step(t, clk, o, time.Second, k)
	}
	advanceUntil(t, clk, 50*time.Millisecond, "the waiting runs on disk", func() bool {
		return len(spooled(t, file)) > 0
	})
	a.stop() // the last flush fails too: all five are on disk
	if n := len(spooled(t, file)); n != 5 {
		t.Fatalf("%d runs on disk after the stop, want 5", n)
	}
	if n := len(cp.reported()); n != 0 {
		t.Fatalf("%d runs reported while refused", n)
	}

	// A new agent process on the same state directory, the control plane back.
	cp.setReportsDown(false)
	b := newAgent(t, clk, agentOpts{cp: cp, stateDir: dir})
	b.start(t)
	advanceUntil(t, clk, 50*time.Millisecond, "the kept runs to be reported", func() bool { return len(cp.reported()) >= 5 })
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
}

// While reports flow, nothing is written to disk.
func TestNoSpoolWhileReportsFlow(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	cp := newFakeCP(clk, 4*time.Second)
	o := &outcomes{}
	a := newAgent(t, clk, agentOpts{cp: cp, outcomes: o, stateDir: dir})
	a.s.Set([]*agentv1.Job{intervalJob("job", t0.Add(time.Second), time.Second)})
	a.start(t)
	for k := 1; k <= 5; k++ {
		step(t, clk, o, time.Second, k)
		if _, err := os.Stat(filepath.Join(dir, SpoolFile)); !os.IsNotExist(err) {
			t.Fatalf("after firing %d: %s exists (%v) while reports flow", k, SpoolFile, err)
		}
	}
	advanceUntil(t, clk, 50*time.Millisecond, "the runs to be reported", func() bool { return len(cp.reported()) >= 5 })
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
	if len(logs.find(slog.LevelError, "the unreported job runs kept on disk are damaged; set aside")) != 1 {
		t.Fatal("no error logged naming the damaged file")
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
