package controlclient

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/weft-dev/weft/agent/shared/snapshot"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// fakeJobs records the jobs it is given and answers RunNow from runs.
type fakeJobs struct {
	mu   sync.Mutex
	sets [][]string // the names of each Set's jobs
	ran  []string   // the jobs RunNow was asked for
	runs map[string]*agentv1.JobRun
}

var _ Jobs = (*fakeJobs)(nil)

func (f *fakeJobs) Set(jobs []*adminv1.Job) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var names []string
	for _, j := range jobs {
		names = append(names, j.GetName())
	}
	f.sets = append(f.sets, names)
}

func (f *fakeJobs) RunNow(_ context.Context, name string) (*agentv1.JobRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ran = append(f.ran, name)
	r, ok := f.runs[name]
	if !ok {
		return nil, errors.New(`job "` + name + `" is not in this agent's snapshot`)
	}
	return proto.Clone(r).(*agentv1.JobRun), nil
}

func (f *fakeJobs) setsSoFar() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sets)
}

func (f *fakeJobs) ranSoFar() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ran)
}

// withJobs returns snap with jobs, hashed again.
func withJobs(snap *agentv1.Desired, jobs ...*adminv1.Job) *agentv1.Desired {
	snap.Jobs = jobs
	snap.Hash = snapshot.Hash(snap)
	return snap
}

func TestJobsThroughTheClient(t *testing.T) {
	cp := &fakeControlPlane{
		snaps: make(chan *agentv1.Desired), acks: make(chan *agentv1.SyncRequest),
		cmds: make(chan *agentv1.Command), results: make(chan *agentv1.CommandResult),
	}
	addr := serve(t, cp)

	c, dir := newTestClient(t, addr, 2, nil)
	run := &agentv1.JobRun{
		Job: "tick", Cid: "cid-1", Trigger: "manual", Placement: "every",
		ScheduledAtUnixMs: testNow.UnixMilli(), StartedAtUnixMs: testNow.UnixMilli(), DurationUs: 42, Outcome: "ok",
	}
	jobs := &fakeJobs{runs: map[string]*agentv1.JobRun{"tick": run}}
	c.RunJobs(jobs)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	tick := &adminv1.Job{Name: "tick", Service: "hello.greet", Type: "interval", Interval: &adminv1.JobInterval{Minutes: 1}, Active: proto.Bool(true), Placement: "every"}
	cp.snaps <- withJobs(helloSnap(t, 10, 1, "Hello"), tick)
	if r := <-cp.acks; r.GetAck().GetRevision() != 10 {
		t.Fatalf("snapshot r10 with a good job: %v, want an ACK", r)
	}
	if sets := jobs.setsSoFar(); !slices.EqualFunc(sets, [][]string{{"tick"}}, slices.Equal) {
		t.Fatalf("jobs given %v, want [[tick]]", sets)
	}

	// A bad job refuses the whole snapshot, even its good package: nothing
	// of it is applied, saved or given to the scheduler.
	broken := &adminv1.Job{Name: "broken", Service: "hello.greet", Type: "cron", Cron: "* * *", Active: proto.Bool(true)}
	cp.snaps <- withJobs(helloSnap(t, 11, 2, "Howdy"), tick, broken)
	r := <-cp.acks
	want := &agentv1.Nack{Revision: 11, Nonce: "n", Errors: []*agentv1.ObjectError{{
		Kind: "job", Name: "broken", Message: `cron: expected 5 or 6 fields, found 3 in "* * *"`,
	}}}
	if !proto.Equal(r.GetNack(), want) {
		t.Fatalf("snapshot r11 with a bad job: %v, want NACK %v", r, want)
	}
	if cur := c.engine.Applied(); cur.GetRevision() != 10 {
		t.Fatalf("engine at revision %d after the NACK, want 10", cur.GetRevision())
	}
	if saved, err := dir.Load(); err != nil || saved.GetRevision() != 10 {
		t.Fatalf("saved snapshot r%d, %v after the NACK; want r10", saved.GetRevision(), err)
	}
	if sets := jobs.setsSoFar(); len(sets) != 1 {
		t.Fatalf("jobs given %v after the NACK, want the first set alone", sets)
	}

	// run_job reaches the scheduler and its run, or its error, comes back.
	commands := []struct {
		name string
		job  string
		want *agentv1.CommandResult
	}{
		{"a job of the snapshot", "tick", &agentv1.CommandResult{Id: "c1", Kind: &agentv1.CommandResult_JobRun{JobRun: run}}},
		{"an unknown job", "ghost", &agentv1.CommandResult{Id: "c2", Error: `job "ghost" is not in this agent's snapshot`}},
	}
	for i, tt := range commands {
		t.Run(tt.name, func(t *testing.T) {
			cp.cmds <- &agentv1.Command{Id: tt.want.GetId(), Kind: &agentv1.Command_RunJob{RunJob: &agentv1.RunJobCommand{Job: tt.job}}}
			if got := <-cp.results; !proto.Equal(got, tt.want) {
				t.Fatalf("result =\n%v\nwant\n%v", got, tt.want)
			}
			if ran := jobs.ranSoFar(); len(ran) != i+1 || ran[i] != tt.job {
				t.Fatalf("jobs run %v, want %s last", ran, tt.job)
			}
		})
	}
}

func TestRunJobWithoutScheduler(t *testing.T) {
	c, _ := newTestClient(t, "unused", 0, nil)
	r := c.run(context.Background(), &agentv1.Command{Id: "c1", Kind: &agentv1.Command_RunJob{RunJob: &agentv1.RunJobCommand{Job: "tick"}}})
	if r.GetId() != "c1" || r.GetJobRun() != nil || !strings.Contains(r.GetError(), "this agent runs no jobs") {
		t.Fatalf("run_job on a client without jobs = %v, want an error saying it runs no jobs", r)
	}
}
