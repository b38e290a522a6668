package scheduler

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// missedJobs are two jobs firing every 10 s from 10 s; only "catch-up"
// runs a missed firing on recovery.
func missedJobs() []*adminv1.Job {
	catchUp := intervalJob("catch-up", t0.Add(10*time.Second), 10*time.Second)
	catchUp.RunMissed = true
	plain := intervalJob("plain", t0.Add(10*time.Second), 10*time.Second)
	return []*adminv1.Job{catchUp, plain}
}

// runOnce runs a scheduler on dir until the 10 s firings of jobs ran, and
// stops it.
func runOnce(t *testing.T, clk *fakeClock, dir string, jobs []*adminv1.Job) {
	t.Helper()
	o := &outcomes{}
	a := newAgent(t, clk, agentOpts{stateDir: dir, outcomes: o})
	a.s.Set(jobs)
	a.start(t)
	step(t, clk, o, 10*time.Second, len(jobs))
	a.stop()
}

func TestRunMissedOnRestart(t *testing.T) {
	clk := newFakeClock()
	dir := t.TempDir()
	runOnce(t, clk, dir, missedJobs())

	info, err := os.Stat(filepath.Join(dir, RecordFile))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", RecordFile, info.Mode().Perm())
	}
	clk.Advance(35 * time.Second) // down at 20, 30 and 40 s: now 45 s

	o := &outcomes{}
	b := newAgent(t, clk, agentOpts{stateDir: dir, outcomes: o})
	b.s.Set(missedJobs())
	b.start(t)
	waitFor(t, "the recovery run", func() bool { return o.count() == 1 })
	b.s.Set(missedJobs()[:1])         // a later Set replays nothing
	step(t, clk, o, 5*time.Second, 2) // 50 s
	b.stop()

	calls := b.inv.callsOf("catch-up")
	if len(calls) != 2 || calls[0].trigger != TriggerRecovery || !calls[0].scheduledAt.Equal(t0.Add(40*time.Second)) ||
		calls[1].trigger != TriggerSchedule || !calls[1].scheduledAt.Equal(t0.Add(50*time.Second)) {
		t.Errorf("catch-up runs %+v; want the 40 s firing on recovery, then 50 s", calls)
	}
	if calls := b.inv.callsOf("plain"); len(calls) != 0 {
		t.Errorf("plain ran %+v; without run_missed, want nothing replayed", calls)
	}
	var f recordFile
	b2, err := os.ReadFile(filepath.Join(dir, RecordFile))
	if err == nil {
		err = json.Unmarshal(b2, &f)
	}
	if err != nil || f.LastFiring["catch-up"] != t0.Add(50*time.Second).UnixMilli() || len(f.LastFiring) != 1 {
		t.Errorf("record %+v, %v; want catch-up at 50 s only", f, err)
	}
}

func TestNoRecordNoReplay(t *testing.T) {
	for _, tt := range []struct {
		name    string
		prepare func(t *testing.T, clk *fakeClock, dir string)
		warning string
	}{
		{"no record file", func(*testing.T, *fakeClock, string) {}, ""},
		{"no state dir", nil, ""},
		{"damaged record file", func(t *testing.T, clk *fakeClock, dir string) {
			if err := os.WriteFile(filepath.Join(dir, RecordFile), []byte(`{"last_firing_unix_ms": {"catch-up": `), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "ignoring the record of job firings"},
		{"job not run before", func(t *testing.T, clk *fakeClock, dir string) {
			runOnce(t, clk, dir, missedJobs()[1:])
		}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			dir := ""
			if tt.prepare != nil {
				dir = t.TempDir()
				tt.prepare(t, clk, dir)
			}
			clk.Advance(t0.Add(45 * time.Second).Sub(clk.Now()))
			o := &outcomes{}
			a := newAgent(t, clk, agentOpts{stateDir: dir, outcomes: o})
			a.s.Set(missedJobs())
			a.start(t)
			step(t, clk, o, 5*time.Second, 2) // 50 s: both
			a.stop()
			for _, x := range o.all() {
				if !x.at.Equal(t0.Add(50 * time.Second)) {
					t.Errorf("firing %+v; want only the 50 s ones", x)
				}
			}
			if tt.warning != "" && len(a.logs.find(slog.LevelWarn, tt.warning)) != 1 {
				t.Errorf("no warning %q", tt.warning)
			}
		})
	}
}

// A run_missed job placed on one agent claims its recovery firing like any
// other.
func TestRecoveryOfAOneJobIsClaimed(t *testing.T) {
	clk := newFakeClock()
	dir := t.TempDir()
	job := oneJob("catch-up", 10*time.Second)
	job.RunMissed = true
	runOnce(t, clk, dir, []*adminv1.Job{job})
	clk.Advance(25 * time.Second) // 35 s

	cp := newFakeCP(clk, 4*time.Second)
	cp.granted[fmt.Sprintf("catch-up@%d", t0.Add(30*time.Second).UnixMilli())] = "agent-2" // another agent ran it
	o := &outcomes{}
	a := newAgent(t, clk, agentOpts{stateDir: dir, cp: cp, outcomes: o})
	a.s.Set([]*adminv1.Job{job})
	a.start(t)
	waitFor(t, "the recovery firing", func() bool { return o.count() == 1 })
	a.stop()
	if got := o.all()[0]; got.result != "refused" || !got.at.Equal(t0.Add(30*time.Second)) {
		t.Errorf("recovery firing %+v, want 30 s refused", got)
	}
}
