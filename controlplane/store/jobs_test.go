package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weft-dev/weft/controlplane/store"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// job is an interval job on every agent calling hello.greet.
func job(name string) *adminv1.Job {
	return &adminv1.Job{
		Name:        name,
		Service:     "hello.greet",
		Type:        "interval",
		StartAt:     timestamppb.New(time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)),
		Interval:    &adminv1.JobInterval{Minutes: 1, Seconds: 30},
		Repeats:     5,
		Payload:     `{"name":"Ada"}`,
		Active:      proto.Bool(true),
		AgentLabels: map[string]string{"site": "berlin"},
		Placement:   store.PlacementEvery,
		TimeoutMs:   2000,
	}
}

func oneJob(name string) *adminv1.Job {
	j := job(name)
	j.Placement, j.AgentLabels = store.PlacementOne, map[string]string{}
	return j
}

func hello(t *testing.T, s store.Store, id string, labels map[string]string) {
	t.Helper()
	if err := s.AgentHello(context.Background(), store.AgentHello{ID: id, Labels: labels}); err != nil {
		t.Fatal(err)
	}
	applied(t, s, id)
}

// applied records that the agents ids run the current revision: claims
// need the job's current definition.
func applied(t *testing.T, s store.Store, ids ...string) {
	t.Helper()
	rev := revision(t, s)
	for _, id := range ids {
		if err := s.AgentApplied(context.Background(), id, rev, "hash"); err != nil {
			t.Fatal(err)
		}
	}
}

func TestJobs(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		if _, err := s.CreateJob(ctx, job("nightly")); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("create before the service is deployed: err = %v, want ErrNotFound", err)
		} else {
			wantErr(t, err, store.ErrNotFound, `job "nightly": service "hello.greet" is not deployed`)
		}
		deploy(t, s, pkg("hello", []string{"hello.greet", "hello.list"}, "a"))

		created, err := s.CreateJob(ctx, job("nightly"))
		if err != nil {
			t.Fatal(err)
		}
		wantRevision(t, s, 2)
		want := job("nightly")
		want.CreatedAt, want.UpdatedAt, want.Revision = created.CreatedAt, created.CreatedAt, 2
		if !proto.Equal(created, want) {
			t.Fatalf("created\n%+v\nwant\n%+v", created, want)
		}
		got, err := s.GetJob(ctx, "nightly")
		if err != nil || !proto.Equal(got, want) {
			t.Fatalf("get = %+v, %v\nwant %+v", got, err, want)
		}
		_, err = s.CreateJob(ctx, job("nightly"))
		wantErr(t, err, store.ErrConflict, `job "nightly" already exists`)
		wantRevision(t, s, 2)

		// An update that changes nothing keeps the revision.
		if _, err := s.UpdateJob(ctx, job("nightly")); err != nil {
			t.Fatal(err)
		}
		wantRevision(t, s, 2)
		ch := job("nightly")
		ch.Type, ch.Interval, ch.Repeats, ch.Cron, ch.TimeZone = "cron", nil, 0, "0 3 * * *", "Europe/Berlin"
		ch.Service = "hello.list"
		updated, err := s.UpdateJob(ctx, ch)
		if err != nil {
			t.Fatal(err)
		}
		if updated.Revision != 3 || updated.Cron != "0 3 * * *" || updated.TimeZone != "Europe/Berlin" || updated.Service != "hello.list" || !proto.Equal(updated.CreatedAt, created.CreatedAt) {
			t.Fatalf("updated = %+v", updated)
		}
		ch.Service = "nope.none"
		_, err = s.UpdateJob(ctx, ch)
		wantErr(t, err, store.ErrNotFound, `service "nope.none" is not deployed`)
		_, err = s.UpdateJob(ctx, job("absent"))
		wantErr(t, err, store.ErrNotFound, `job "absent" does not exist`)
		wantRevision(t, s, 3)

		if _, err := s.CreateJob(ctx, oneJob("audit")); err != nil {
			t.Fatal(err)
		}
		list, err := s.ListJobs(ctx)
		if err != nil || len(list) != 2 || list[0].Name != "audit" || list[1].Name != "nightly" {
			t.Fatalf("list = %+v, %v", list, err)
		}
		d, err := s.Desired(ctx)
		if err != nil || len(d.Jobs) != 2 || d.Jobs[1].Cron != "0 3 * * *" || d.Revision != 4 {
			t.Fatalf("desired jobs = %+v at %d, %v", d.Jobs, d.Revision, err)
		}

		rev, err := s.DeleteJob(ctx, "nightly")
		if err != nil || rev != 5 {
			t.Fatalf("delete = %d, %v", rev, err)
		}
		_, err = s.DeleteJob(ctx, "nightly")
		wantErr(t, err, store.ErrNotFound, `job "nightly" does not exist`)
		if _, err := s.GetJob(ctx, "nightly"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("get after delete: %v", err)
		}
	})
}

func TestUndeployAndDeployCheckJobs(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		deploy(t, s, pkg("hello", []string{"hello.greet"}, "a"))
		if _, err := s.CreateJob(ctx, oneJob("audit")); err != nil {
			t.Fatal(err)
		}
		_, err := s.Deploy(ctx, "tester", []*adminv1.Package{pkg("hello", []string{"hello.other"}, "b.go", "package b")})
		wantErr(t, err, store.ErrConflict, `package "hello" would drop service "hello.greet", which job "audit" invokes`)

		_, err = s.Undeploy(ctx, "tester", "hello", false)
		wantErr(t, err, store.ErrConflict, `package "hello" is used by job "audit" (hello.greet); deactivate or delete it first`)
		wantRevision(t, s, 2)

		hello(t, s, "agent-1", nil)
		claim(t, s, "agent-1", "audit", time.Now(), true)
		res, err := s.Undeploy(ctx, "tester", "hello", true)
		if err != nil || !slices.Equal(res.PausedJobs, []string{"audit"}) {
			t.Fatalf("forced undeploy = %+v, %v", res, err)
		}
		j, err := s.GetJob(ctx, "audit")
		if err != nil || j.GetActive() || j.Revision != res.Revision {
			t.Fatalf("job after forced undeploy = %+v, %v", j, err)
		}
		applied(t, s, "agent-1")
		c := claim(t, s, "agent-1", "audit", time.Now().Add(time.Second), false)
		wantText(t, c.Reason, "paused")
	})
}

// claim claims job's firing at, as agent, with a 10 s lease from at.
func claim(t *testing.T, s store.Store, agent, job string, at time.Time, granted bool) store.Claim {
	t.Helper()
	c, err := s.ClaimFiring(context.Background(), store.ClaimRequest{
		AgentID: agent, Job: job, ScheduledAt: at, CID: agent + "-" + at.Format("150405.000"), Now: at, TTL: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Granted != granted {
		t.Fatalf("%s claims %s at %s: %+v, want granted=%v", agent, job, at.Format(time.RFC3339Nano), c, granted)
	}
	return c
}

func TestClaimFiring(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		deploy(t, s, pkg("hello", []string{"hello.greet"}, "a"))
		if _, err := s.CreateJob(ctx, oneJob("audit")); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"agent-1", "agent-2"} {
			hello(t, s, id, map[string]string{"site": "berlin"})
		}
		hello(t, s, "agent-3", map[string]string{"site": "paris"})
		t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

		// The first claimant takes the lease; the other is refused and told who holds it.
		claim(t, s, "agent-1", "audit", t0, true)
		c := claim(t, s, "agent-2", "audit", t0, false)
		if c.Holder != "agent-1" {
			t.Fatalf("refused claim names holder %q, want agent-1", c.Holder)
		}
		// The same firing is never granted twice, not even to the holder.
		c = claim(t, s, "agent-1", "audit", t0, false)
		wantText(t, c.Reason, `already run by agent "agent-1"`)

		// While the lease holds, only its holder gets the next firings.
		for i := 1; i <= 5; i++ {
			at := t0.Add(time.Duration(i) * 2 * time.Second)
			claim(t, s, "agent-2", "audit", at, false)
			claim(t, s, "agent-1", "audit", at, true)
		}
		lease, last, err := s.JobState(ctx, "audit")
		if err != nil || lease.AgentID != "agent-1" || lease.Token != 1 || last.Outcome != store.OutcomeRunning || last.AgentID != "agent-1" {
			t.Fatalf("state = %+v, %+v, %v", lease, last, err)
		}
		// agent-1 goes away: its lease (10 s from its last claim at t0+10s)
		// lapses at t0+20s, and then another agent takes over.
		claim(t, s, "agent-2", "audit", t0.Add(19*time.Second), false)
		claim(t, s, "agent-2", "audit", t0.Add(21*time.Second), true)
		lease, _, _ = s.JobState(ctx, "audit")
		if lease.AgentID != "agent-2" || lease.Token != 2 {
			t.Fatalf("lease after takeover = %+v, want agent-2 with token 2", lease)
		}
		// agent-1's claimed runs, never reported, are no longer shown running.
		runs, err := s.ListJobRuns(ctx, "audit", 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range runs[1:] {
			if r.AgentID != "agent-1" || r.Outcome != store.OutcomeUnknown || !strings.Contains(r.Error, `agent "agent-1" lost the lease`) {
				t.Fatalf("run of the old holder after takeover = %+v", r)
			}
		}
		// agent-1 comes back: refused while agent-2 holds.
		c = claim(t, s, "agent-1", "audit", t0.Add(22*time.Second), false)
		wantText(t, c.Reason, `agent "agent-2" holds the lease`)

		// Renewal: only the holder's lease is renewed.
		held, err := s.RenewLeases(ctx, "agent-1", []string{"audit"}, t0.Add(23*time.Second), 10*time.Second)
		if err != nil || len(held) != 0 {
			t.Fatalf("agent-1 renews = %v, %v; want none", held, err)
		}
		held, err = s.RenewLeases(ctx, "agent-2", []string{"audit", "gone"}, t0.Add(29*time.Second), 10*time.Second)
		if err != nil || !slices.Equal(held, []string{"audit"}) {
			t.Fatalf("agent-2 renews = %v, %v; want audit", held, err)
		}
		claim(t, s, "agent-1", "audit", t0.Add(35*time.Second), false) // renewed until t0+39s

		// Labels: an agent the job does not select is refused.
		j := oneJob("audit")
		j.AgentLabels = map[string]string{"site": "paris"}
		if _, err := s.UpdateJob(ctx, j); err != nil {
			t.Fatal(err)
		}
		// An agent that has not applied the change yet is refused.
		c = claim(t, s, "agent-3", "audit", t0.Add(36*time.Second), false)
		wantText(t, c.Reason, "older than job")
		applied(t, s, "agent-1", "agent-2", "agent-3")
		// The lease stays with agent-2 until it lapses (t0+39s): agent-2 may
		// be out of reach and firing on it. agent-2 itself is refused now.
		c = claim(t, s, "agent-3", "audit", t0.Add(37*time.Second), false)
		wantText(t, c.Reason, `agent "agent-2" holds the lease`)
		c = claim(t, s, "agent-2", "audit", t0.Add(40*time.Second), false)
		wantText(t, c.Reason, `does not carry the label site=paris`)
		claim(t, s, "agent-3", "audit", t0.Add(40*time.Second), true)

		// Unknown agents are refused.
		c = claim(t, s, "agent-9", "audit", t0.Add(41*time.Second), false)
		wantText(t, c.Reason, `agent "agent-9" is unknown`)

		// Paused, unknown and every-agent jobs take no claims.
		j.Active = proto.Bool(false)
		if _, err := s.UpdateJob(ctx, j); err != nil {
			t.Fatal(err)
		}
		applied(t, s, "agent-1", "agent-2", "agent-3")
		c = claim(t, s, "agent-3", "audit", t0.Add(42*time.Second), false)
		wantText(t, c.Reason, "paused")
		c = claim(t, s, "agent-3", "nope", t0, false)
		wantText(t, c.Reason, `job "nope" does not exist`)
		if _, err := s.CreateJob(ctx, job("everywhere")); err != nil {
			t.Fatal(err)
		}
		applied(t, s, "agent-1")
		c = claim(t, s, "agent-1", "everywhere", t0, false)
		wantText(t, c.Reason, "runs on every agent")
	})
}

// TestClaimRace has three agents claim each of 20 firings at once: each
// firing is granted exactly once.
func TestClaimRace(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		deploy(t, s, pkg("hello", []string{"hello.greet"}, "a"))
		if _, err := s.CreateJob(ctx, oneJob("audit")); err != nil {
			t.Fatal(err)
		}
		agents := []string{"agent-1", "agent-2", "agent-3"}
		for _, id := range agents {
			hello(t, s, id, nil)
		}
		t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
		for i := range 20 {
			// Each firing comes after the last lease lapsed, so every agent may take it.
			at := t0.Add(time.Duration(i) * time.Minute)
			var mu sync.Mutex
			granted := 0
			var wg sync.WaitGroup
			for _, id := range agents {
				wg.Go(func() {
					c, err := s.ClaimFiring(ctx, store.ClaimRequest{AgentID: id, Job: "audit", ScheduledAt: at, CID: id, Now: at, TTL: time.Second})
					if err != nil {
						t.Error(err)
						return
					}
					if c.Granted {
						mu.Lock()
						granted++
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if granted != 1 {
				t.Fatalf("firing %d granted %d times, want 1", i, granted)
			}
		}
		runs, err := s.ListJobRuns(ctx, "audit", 0)
		if err != nil || len(runs) != 20 {
			t.Fatalf("runs = %d, %v; want 20", len(runs), err)
		}

		// The holder claiming one firing several times at once (a retry
		// racing the first try) gets it once: the unique key decides even
		// when a transaction's snapshot predates the other's insert.
		holder := runs[0].AgentID
		at := t0.Add(20*time.Minute + 100*time.Millisecond)
		var mu sync.Mutex
		granted := 0
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				c, err := s.ClaimFiring(ctx, store.ClaimRequest{AgentID: holder, Job: "audit", ScheduledAt: at, CID: fmt.Sprint("retry-", i), Now: at.Add(-100 * time.Millisecond), TTL: time.Second})
				if err != nil {
					t.Error(err)
					return
				}
				if c.Granted {
					mu.Lock()
					granted++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if granted != 1 {
			t.Fatalf("one firing claimed 4 times at once by its holder: granted %d times, want 1", granted)
		}
	})
}

func TestRecordRuns(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		deploy(t, s, pkg("hello", []string{"hello.greet"}, "a"))
		for _, j := range []*adminv1.Job{job("every"), oneJob("audit")} {
			if _, err := s.CreateJob(ctx, j); err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range []string{"agent-1", "agent-2"} {
			hello(t, s, id, nil)
		}
		t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
		claim(t, s, "agent-1", "audit", t0, true)

		run := func(job, placement, trigger string, at time.Time, outcome string) store.JobRun {
			return store.JobRun{
				Job: job, CID: fmt.Sprintf("cid-%s-%d", job, at.Unix()), Trigger: trigger, Placement: placement,
				ScheduledAt: at, StartedAt: at.Add(3 * time.Millisecond), DurationUs: 1500, Outcome: outcome,
			}
		}
		reports := []store.JobRun{
			run("every", store.PlacementEvery, "schedule", t0, "ok"),
			run("audit", store.PlacementOne, "schedule", t0, "error"),               // completes the claimed firing
			run("audit", store.PlacementOne, "schedule", t0.Add(time.Minute), "ok"), // fired while the control plane was down
			run("deleted", store.PlacementEvery, "schedule", t0, "ok"),
		}
		reports[1].Error = "boom"
		doubles, err := s.RecordRuns(ctx, "agent-1", reports)
		if err != nil || len(doubles) != 0 {
			t.Fatalf("record = %v, %v", doubles, err)
		}
		// A report sent again (its answer was lost) changes nothing.
		if doubles, err = s.RecordRuns(ctx, "agent-1", reports); err != nil || len(doubles) != 0 {
			t.Fatalf("record again = %v, %v", doubles, err)
		}
		// Every-agent jobs keep a run per agent; a firing of a one-agent job
		// run by a second agent is a double, reported and not stored.
		doubles, err = s.RecordRuns(ctx, "agent-2", []store.JobRun{
			run("every", store.PlacementEvery, "schedule", t0, "ok"),
			run("audit", store.PlacementOne, "schedule", t0.Add(time.Minute), "ok"),
		})
		if err != nil || len(doubles) != 1 || doubles[0].Job != "audit" {
			t.Fatalf("record of agent-2 = %v, %v; want the audit run as a double", doubles, err)
		}
		// Manual runs never collide with scheduled ones.
		manual := run("audit", store.PlacementOne, store.TriggerManual, t0, "ok")
		manual.CID = "manual-1"
		if _, err := s.RecordRuns(ctx, "agent-2", []store.JobRun{manual}); err != nil {
			t.Fatal(err)
		}

		runs, err := s.ListJobRuns(ctx, "audit", 0)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range runs {
			got = append(got, fmt.Sprintf("%s %s %s %s %s", r.ScheduledAt.Format("15:04"), r.AgentID, r.Trigger, r.Outcome, r.Error))
		}
		want := []string{
			"10:01 agent-1 schedule ok ",
			"10:00 agent-2 manual ok ",
			"10:00 agent-1 schedule error boom",
		}
		if !slices.Equal(got, want) {
			t.Fatalf("audit runs:\n%q\nwant\n%q", got, want)
		}
		if runs[2].CID != "cid-audit-"+fmt.Sprint(t0.Unix()) || !runs[2].StartedAt.Equal(t0.Add(3*time.Millisecond)) || runs[2].DurationUs != 1500 || runs[2].Placement != store.PlacementOne {
			t.Fatalf("claimed run after its report = %+v", runs[2])
		}
		runs, err = s.ListJobRuns(ctx, "every", 1)
		if err != nil || len(runs) != 1 {
			t.Fatalf("every runs limited to 1 = %+v, %v", runs, err)
		}
		if _, err := s.ListJobRuns(ctx, "deleted", 0); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("runs of an unknown job: %v", err)
		}
		// Delete takes the runs along; a job of the same name starts afresh.
		if _, err := s.DeleteJob(ctx, "audit"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateJob(ctx, oneJob("audit")); err != nil {
			t.Fatal(err)
		}
		lease, last, err := s.JobState(ctx, "audit")
		if err != nil || lease != nil || last != nil {
			t.Fatalf("state of a recreated job = %+v, %+v, %v", lease, last, err)
		}
	})
}

func wantText(t *testing.T, got, want string) {
	t.Helper()
	if !strings.Contains(got, want) {
		t.Fatalf("%q does not contain %q", got, want)
	}
}
