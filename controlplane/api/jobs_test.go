package api

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/controlplane/store/storetest"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// jobsEnv is the admin API over a real store on one backend, served as
// newAdminEnv serves it, with a JobService client.
type jobsEnv struct {
	*adminEnv
	jobs adminv1.JobServiceClient
}

func newJobsEnv(t *testing.T, b storetest.Backend) *jobsEnv {
	t.Helper()
	e := newAdminEnvOn(t, b)
	return &jobsEnv{adminEnv: e, jobs: adminv1.NewJobServiceClient(e.conn)}
}

// eachJobsEnv runs test on a fresh env per backend: SQLite, and MySQL when
// it is reachable.
func eachJobsEnv(t *testing.T, test func(t *testing.T, e *jobsEnv)) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) { test(t, newJobsEnv(t, b)) })
	}
}

// create creates j and fails the test on an error.
func (e *jobsEnv) create(t *testing.T, j *adminv1.Job) *adminv1.Job {
	t.Helper()
	res, err := e.jobs.CreateJob(context.Background(), &adminv1.CreateJobRequest{Job: j})
	if err != nil {
		t.Fatalf("create job %q: %v", j.GetName(), err)
	}
	return res.GetJob()
}

func (e *jobsEnv) get(t *testing.T, name string) *adminv1.Job {
	t.Helper()
	res, err := e.jobs.GetJob(context.Background(), &adminv1.GetJobRequest{Name: name})
	if err != nil {
		t.Fatalf("get job %q: %v", name, err)
	}
	return res.GetJob()
}

// stored reads a job from the store as the API shows it, without the
// output-only fields.
func (e *jobsEnv) stored(t *testing.T, name string) *adminv1.Job {
	t.Helper()
	j, err := e.store.GetJob(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return withoutOutput(j)
}

// withoutOutput clears the output-only fields of a copy of j.
func withoutOutput(j *adminv1.Job) *adminv1.Job {
	j = proto.Clone(j).(*adminv1.Job)
	j.CreatedAt, j.UpdatedAt, j.Revision, j.NextRunAt, j.Lease, j.LastRun = nil, nil, 0, nil, nil, nil
	return j
}

// storeAt fails unless both the store and the watch are at revision want.
func (e *jobsEnv) storeAt(t *testing.T, want int64) {
	t.Helper()
	if rev, err := e.store.Revision(context.Background()); err != nil || rev != want {
		t.Fatalf("store at revision %d, %v; want %d", rev, err, want)
	}
	e.watchAt(t, want)
}

func TestCreateJobDefaults(t *testing.T) {
	eachJobsEnv(t, func(t *testing.T, e *jobsEnv) {
		e.deployServices(t, "orders.sweep")
		before := time.Now().UTC().Truncate(time.Second)
		sweep := e.create(t, &adminv1.Job{
			Name: "sweep", Service: "orders.sweep", Type: "interval",
			Interval: &adminv1.JobInterval{Minutes: 90}, Payload: `{"full":true}`,
		})
		after := time.Now().UTC()
		start := sweep.GetStartAt().AsTime()
		if sweep.GetStartAt() == nil || start.Before(before) || start.After(after) {
			t.Errorf("interval start_at %v, want the create's time, in [%v, %v]", sweep.GetStartAt(), before, after)
		}
		if !sweep.GetActive() || sweep.Active == nil || sweep.GetPlacement() != store.PlacementEvery || sweep.GetRevision() != 2 {
			t.Errorf("interval job %v, want active, placement every, revision 2", sweep)
		}
		if !proto.Equal(sweep.GetInterval(), &adminv1.JobInterval{Hours: 1, Minutes: 30}) {
			t.Errorf("interval %v, want 1 hour 30 minutes", sweep.GetInterval())
		}
		if next := sweep.GetNextRunAt().AsTime(); !next.Equal(start.Add(90 * time.Minute)) {
			t.Errorf("next_run_at %v, want start_at + 90m = %v", next, start.Add(90*time.Minute))
		}
		if st := e.stored(t, "sweep"); !proto.Equal(st, withoutOutput(sweep)) {
			t.Errorf("stored %v, want %v", st, withoutOutput(sweep))
		}

		report := e.create(t, &adminv1.Job{
			Name: "report", Service: "orders.sweep", Type: "cron", Cron: "0 6 * * 1-5", TimeZone: "Europe/Berlin",
			Placement: store.PlacementOne, Active: proto.Bool(false),
		})
		if start := report.GetStartAt().AsTime(); report.GetStartAt() == nil || start.Before(before) || start.After(time.Now()) {
			t.Errorf("cron start_at %v, want the create's time", report.GetStartAt())
		}
		if report.GetActive() || report.GetPlacement() != store.PlacementOne || report.GetNextRunAt() != nil {
			t.Errorf("paused cron job %v, want inactive, placement one, no next_run_at", report)
		}

		_, err := e.jobs.CreateJob(context.Background(), &adminv1.CreateJobRequest{Job: &adminv1.Job{Name: "once", Service: "orders.sweep", Type: "one_time"}})
		wantCode(t, err, codes.InvalidArgument, `create job "once": job "once": start_at: required for a one_time job`)
		e.storeAt(t, 3)

		at := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
		once := e.create(t, &adminv1.Job{Name: "once", Service: "orders.sweep", Type: "one_time", StartAt: timestamppb.New(at)})
		if !once.GetStartAt().AsTime().Equal(at) || !once.GetNextRunAt().AsTime().Equal(at) {
			t.Errorf("one_time job %v, want start_at and next_run_at %v", once, at)
		}
		e.storeAt(t, 4)
	})
}

func TestJobIntervalRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		in, out *adminv1.JobInterval
	}{
		{"minutes carry into hours", &adminv1.JobInterval{Minutes: 90}, &adminv1.JobInterval{Hours: 1, Minutes: 30}},
		{"seconds carry into every part", &adminv1.JobInterval{Seconds: 8*86400 + 3600 + 61}, &adminv1.JobInterval{Weeks: 1, Days: 1, Hours: 1, Minutes: 1, Seconds: 1}},
		{"hours carry into days", &adminv1.JobInterval{Hours: 48}, &adminv1.JobInterval{Days: 2}},
		{"days carry into weeks", &adminv1.JobInterval{Days: 15}, &adminv1.JobInterval{Weeks: 2, Days: 1}},
		{"parts add up", &adminv1.JobInterval{Weeks: 1, Days: 6, Hours: 23, Minutes: 59, Seconds: 60}, &adminv1.JobInterval{Weeks: 2}},
		{"normal parts stay", &adminv1.JobInterval{Weeks: 2, Days: 3, Hours: 4, Minutes: 5, Seconds: 6}, &adminv1.JobInterval{Weeks: 2, Days: 3, Hours: 4, Minutes: 5, Seconds: 6}},
	}
	eachJobsEnv(t, func(t *testing.T, e *jobsEnv) {
		e.deployServices(t, "orders.sweep")
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				name := fmt.Sprintf("iv%d", i)
				created := e.create(t, &adminv1.Job{Name: name, Service: "orders.sweep", Type: "interval", Interval: tt.in})
				if !proto.Equal(created.GetInterval(), tt.out) {
					t.Errorf("create answers interval %v, want %v", created.GetInterval(), tt.out)
				}
				if got := e.get(t, name).GetInterval(); !proto.Equal(got, tt.out) {
					t.Errorf("get answers interval %v, want %v", got, tt.out)
				}
			})
		}
	})
}

func TestCreateJobRefusals(t *testing.T) {
	eachJobsEnv(t, func(t *testing.T, e *jobsEnv) {
		e.deployServices(t, "orders.sweep")
		e.create(t, &adminv1.Job{Name: "sweep", Service: "orders.sweep", Type: "interval", Interval: &adminv1.JobInterval{Minutes: 5}})
		e.storeAt(t, 2)
		interval := func(name string, iv *adminv1.JobInterval) *adminv1.Job {
			return &adminv1.Job{Name: name, Service: "orders.sweep", Type: "interval", Interval: iv}
		}
		cron := func(name, expr, zone string) *adminv1.Job {
			return &adminv1.Job{Name: name, Service: "orders.sweep", Type: "cron", Cron: expr, TimeZone: zone}
		}
		tests := []struct {
			name string
			job  *adminv1.Job
			code codes.Code
			text string
		}{
			{"no job", nil, codes.InvalidArgument, "create job: job is required"},
			{"a missing service", &adminv1.Job{Name: "x", Service: "orders.ghost", Type: "interval", Interval: &adminv1.JobInterval{Minutes: 1}},
				codes.FailedPrecondition, `create job "x": job "x": service: service "orders.ghost" is not deployed`},
			{"no service", &adminv1.Job{Name: "x", Type: "interval", Interval: &adminv1.JobInterval{Minutes: 1}},
				codes.InvalidArgument, `job "x": service is required`},
			{"a taken name", interval("sweep", &adminv1.JobInterval{Minutes: 1}), codes.AlreadyExists, `create job "sweep": job "sweep" already exists`},
			{"a bad name", interval("a b", &adminv1.JobInterval{Minutes: 1}), codes.InvalidArgument, `job name "a b"`},
			{"three cron fields", cron("x", "* * *", ""), codes.InvalidArgument, `create job "x": job "x": cron: expected 5 or 6 fields, found 3 in "* * *"`},
			{"a cron field out of range", cron("x", "61 * * * *", ""), codes.InvalidArgument, `job "x": cron: `},
			{"no cron expression", cron("x", "", ""), codes.InvalidArgument, `job "x": cron: required for a cron job`},
			{"a zone in the expression", cron("x", "CRON_TZ=UTC 0 * * * *", ""), codes.InvalidArgument, `job "x": cron: set the zone in time_zone`},
			{"an unknown time zone", cron("x", "0 6 * * *", "Mars/Olympus"), codes.InvalidArgument, `job "x": time_zone: unknown time zone "Mars/Olympus"`},
			{"the Local time zone", cron("x", "0 6 * * *", "Local"), codes.InvalidArgument, `job "x": time_zone: "Local"`},
			{"a zone on an interval job", &adminv1.Job{Name: "x", Service: "orders.sweep", Type: "interval", Interval: &adminv1.JobInterval{Minutes: 1}, TimeZone: "UTC"},
				codes.InvalidArgument, `job "x": time_zone: not used by interval jobs`},
			{"no interval", interval("x", nil), codes.InvalidArgument, `job "x": interval: must be at least 1s, not 0s`},
			{"a negative interval part", interval("x", &adminv1.JobInterval{Hours: 1, Minutes: -1}), codes.InvalidArgument, `create job "x": interval.minutes -1: want 0 to`},
			{"an interval part too large", interval("x", &adminv1.JobInterval{Weeks: 10_001}), codes.InvalidArgument, `interval.weeks 10001: want 0 to 10000`},
			{"an interval on a cron job", &adminv1.Job{Name: "x", Service: "orders.sweep", Type: "cron", Cron: "@hourly", Interval: &adminv1.JobInterval{Minutes: 1}},
				codes.InvalidArgument, `job "x": interval: not used by cron jobs`},
			{"a payload that is an array", &adminv1.Job{Name: "x", Service: "orders.sweep", Type: "cron", Cron: "@hourly", Payload: `[1, 2]`},
				codes.InvalidArgument, `create job "x": payload: want a JSON object`},
			{"a payload that is not JSON", &adminv1.Job{Name: "x", Service: "orders.sweep", Type: "cron", Cron: "@hourly", Payload: `{"a":`},
				codes.InvalidArgument, `create job "x": payload: want a JSON object`},
			{"a payload that is null", &adminv1.Job{Name: "x", Service: "orders.sweep", Type: "cron", Cron: "@hourly", Payload: `null`},
				codes.InvalidArgument, `job "x": payload: must be a JSON object`},
			{"an invalid start_at", &adminv1.Job{Name: "x", Service: "orders.sweep", Type: "cron", Cron: "@hourly", StartAt: &timestamppb.Timestamp{Nanos: -1}},
				codes.InvalidArgument, `create job "x": start_at: `},
			{"an unknown placement", &adminv1.Job{Name: "x", Service: "orders.sweep", Type: "cron", Cron: "@hourly", Placement: "some"},
				codes.InvalidArgument, `job "x": placement: must be every or one, not "some"`},
			{"an unknown type", &adminv1.Job{Name: "x", Service: "orders.sweep", Type: "hourly"},
				codes.InvalidArgument, `job "x": type: must be one_time, interval or cron, not "hourly"`},
			{"no type", &adminv1.Job{Name: "x", Service: "orders.sweep"},
				codes.InvalidArgument, `job "x": type: must be one_time, interval or cron, not ""`},
			{"a negative timeout", &adminv1.Job{Name: "x", Service: "orders.sweep", Type: "cron", Cron: "@hourly", TimeoutMs: -1},
				codes.InvalidArgument, `job "x": timeout_ms -1`},
			{"a start before 1970", &adminv1.Job{Name: "x", Service: "orders.sweep", Type: "one_time", StartAt: timestamppb.New(time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC))},
				codes.InvalidArgument, `job "x": start_at: must not be before 1970`},
			{"an unknown field", withUnknown(interval("x", &adminv1.JobInterval{Minutes: 1}), 99), codes.InvalidArgument, "job.#99"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := e.jobs.CreateJob(context.Background(), &adminv1.CreateJobRequest{Job: tt.job})
				wantCode(t, err, tt.code, tt.text)
				e.storeAt(t, 2)
			})
		}
		list, err := e.jobs.ListJobs(context.Background(), &adminv1.ListJobsRequest{})
		if err != nil || len(list.GetJobs()) != 1 {
			t.Fatalf("jobs after the refusals = %v, %v; want sweep alone", list, err)
		}
	})
}

// Each part of an interval is within its bound, but parts that add up past
// what a time.Duration holds (about 15,250 weeks) must be refused too, not
// wrap around into another interval.
func TestCreateJobRefusesIntervalOverflow(t *testing.T) {
	tests := []struct {
		name string
		iv   *adminv1.JobInterval
	}{
		{"a sum that wraps to a positive interval", &adminv1.JobInterval{Weeks: 10_000, Days: 70_000, Hours: 1_680_000, Minutes: 100_800_000}},
		{"a sum that wraps to a negative interval", &adminv1.JobInterval{Weeks: 10_000, Days: 70_000}},
	}
	eachJobsEnv(t, func(t *testing.T, e *jobsEnv) {
		e.deployServices(t, "orders.sweep")
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				res, err := e.jobs.CreateJob(context.Background(), &adminv1.CreateJobRequest{Job: &adminv1.Job{
					Name: "huge", Service: "orders.sweep", Type: "interval", Interval: tt.iv,
				}})
				if err == nil {
					_, derr := e.jobs.DeleteJob(context.Background(), &adminv1.DeleteJobRequest{Name: "huge"})
					t.Fatalf("created with interval %v (delete: %v); want it refused naming interval", res.GetJob().GetInterval(), derr)
				}
				wantCode(t, err, codes.InvalidArgument, "interval")
			})
		}
	})
}

func TestListJobsSorted(t *testing.T) {
	eachJobsEnv(t, func(t *testing.T, e *jobsEnv) {
		e.deployServices(t, "orders.sweep")
		for _, n := range []string{"zeta", "alpha", "mid"} {
			e.create(t, &adminv1.Job{Name: n, Service: "orders.sweep", Type: "cron", Cron: "@daily"})
		}
		list, err := e.jobs.ListJobs(context.Background(), &adminv1.ListJobsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, j := range list.GetJobs() {
			names = append(names, j.GetName())
			if j.GetNextRunAt() == nil {
				t.Errorf("listed job %s has no next_run_at", j.GetName())
			}
		}
		if want := []string{"alpha", "mid", "zeta"}; !slices.Equal(names, want) {
			t.Fatalf("listed %v, want %v", names, want)
		}
	})
}

func TestJobStateAndRuns(t *testing.T) {
	eachJobsEnv(t, func(t *testing.T, e *jobsEnv) {
		ctx := context.Background()
		e.deployServices(t, "orders.sweep")
		start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		created := e.create(t, &adminv1.Job{
			Name: "sweep", Service: "orders.sweep", Type: "interval", Interval: &adminv1.JobInterval{Minutes: 1},
			StartAt: timestamppb.New(start), Placement: store.PlacementOne,
		})
		got := e.get(t, "sweep")
		next := got.GetNextRunAt().AsTime()
		if got.GetNextRunAt() == nil || !next.After(time.Now().Add(-time.Second)) || next.Sub(start)%time.Minute != 0 {
			t.Fatalf("next_run_at %v, want a whole minute after %v, after now", got.GetNextRunAt(), start)
		}
		if got.GetLease() != nil || got.GetLastRun() != nil {
			t.Fatalf("before any claim lease %v, last_run %v; want neither", got.GetLease(), got.GetLastRun())
		}

		claimedAt := time.Now().UTC().Truncate(time.Millisecond)
		scheduled := next.Add(-time.Minute)
		// Claims come from known agents that run the job's revision.
		cur, err := e.store.Revision(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.store.AgentHello(ctx, store.AgentHello{ID: "edge-1"}); err != nil {
			t.Fatal(err)
		}
		if err := e.store.AgentApplied(ctx, "edge-1", cur, "hash"); err != nil {
			t.Fatal(err)
		}
		c, err := e.store.ClaimFiring(ctx, store.ClaimRequest{
			AgentID: "edge-1", Job: "sweep", ScheduledAt: scheduled, CID: "cid-1", Now: claimedAt, TTL: time.Minute,
		})
		if err != nil || !c.Granted {
			t.Fatalf("claim = %+v, %v; want granted", c, err)
		}
		got = e.get(t, "sweep")
		wantLease := &adminv1.JobLease{AgentId: "edge-1", ExpiresAt: timestamppb.New(claimedAt.Add(time.Minute)), Token: 1}
		if !proto.Equal(got.GetLease(), wantLease) {
			t.Errorf("lease %v, want %v", got.GetLease(), wantLease)
		}
		wantRun := &adminv1.JobRun{Job: "sweep", AgentId: "edge-1", Cid: "cid-1", Trigger: "schedule", ScheduledAt: timestamppb.New(scheduled), Outcome: store.OutcomeRunning}
		if !proto.Equal(got.GetLastRun(), wantRun) {
			t.Errorf("last_run %v, want %v", got.GetLastRun(), wantRun)
		}
		if got.GetRevision() != created.GetRevision() {
			t.Errorf("a claim moved the job's revision from %d to %d", created.GetRevision(), got.GetRevision())
		}

		// Runs are listed newest first, 20 unless asked for more.
		var runs []store.JobRun
		for i := range 30 {
			runs = append(runs, store.JobRun{
				Job: "sweep", CID: fmt.Sprintf("cid-m%d", i), Trigger: store.TriggerManual, Placement: store.PlacementOne,
				ScheduledAt: start.Add(time.Duration(i) * time.Second), StartedAt: start.Add(time.Duration(i) * time.Second), Outcome: "ok",
			})
		}
		if _, err := e.store.RecordRuns(ctx, "edge-2", runs); err != nil {
			t.Fatal(err)
		}
		listRuns := func(limit int32) []*adminv1.JobRun {
			t.Helper()
			res, err := e.jobs.ListJobRuns(ctx, &adminv1.ListJobRunsRequest{Name: "sweep", Limit: limit})
			if err != nil {
				t.Fatalf("list runs, limit %d: %v", limit, err)
			}
			return res.GetRuns()
		}
		if list := listRuns(0); len(list) != defaultRunsListed || list[0].GetCid() != "cid-1" || list[1].GetCid() != "cid-m29" {
			t.Errorf("runs with no limit = %d, first %v; want %d, the claimed firing first", len(list), list[:min(len(list), 2)], defaultRunsListed)
		}
		if list := listRuns(5); len(list) != 5 {
			t.Errorf("runs with limit 5 = %d", len(list))
		}
		if list := listRuns(maxRunsListed); len(list) != 31 {
			t.Errorf("runs with limit %d = %d, want all 31", maxRunsListed, len(list))
		}
		for _, limit := range []int32{-1, maxRunsListed + 1} {
			_, err := e.jobs.ListJobRuns(ctx, &adminv1.ListJobRunsRequest{Name: "sweep", Limit: limit})
			wantCode(t, err, codes.InvalidArgument, fmt.Sprintf(`list runs of job "sweep": limit %d: want 0 (20) to 1000`, limit))
		}
		_, err = e.jobs.ListJobRuns(ctx, &adminv1.ListJobRunsRequest{Name: "ghost"})
		wantCode(t, err, codes.NotFound, `list runs of job "ghost": job "ghost" does not exist`)

		// Pausing drops next_run_at; resuming brings it back.
		rev := created.GetRevision()
		for _, step := range []struct {
			verb   string
			call   func() (*adminv1.Job, error)
			active bool
		}{
			{"pause", func() (*adminv1.Job, error) {
				res, err := e.jobs.PauseJob(ctx, &adminv1.PauseJobRequest{Name: "sweep"})
				return res.GetJob(), err
			}, false},
			{"resume", func() (*adminv1.Job, error) {
				res, err := e.jobs.ResumeJob(ctx, &adminv1.ResumeJobRequest{Name: "sweep"})
				return res.GetJob(), err
			}, true},
		} {
			j, err := step.call()
			if err != nil {
				t.Fatalf("%s: %v", step.verb, err)
			}
			rev++
			if j.GetActive() != step.active || j.GetRevision() != rev || (j.GetNextRunAt() != nil) != step.active {
				t.Errorf("%s = %v; want active %v, revision %d, next_run_at only when active", step.verb, j, step.active, rev)
			}
			e.storeAt(t, rev)
			if got := e.get(t, "sweep"); got.GetActive() != step.active || (got.GetNextRunAt() != nil) != step.active {
				t.Errorf("get after %s = %v", step.verb, got)
			}
			if st, _ := e.store.GetJob(ctx, "sweep"); st.GetActive() != step.active {
				t.Errorf("stored active %v after %s", st.GetActive(), step.verb)
			}
		}
	})
}

func TestUpdateJob(t *testing.T) {
	eachJobsEnv(t, func(t *testing.T, e *jobsEnv) {
		ctx := context.Background()
		e.deployServices(t, "orders.sweep", "orders.other")
		start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		sweep := &adminv1.Job{
			Name: "sweep", Service: "orders.sweep", Type: "interval", Interval: &adminv1.JobInterval{Minutes: 5},
			StartAt: timestamppb.New(start), Payload: `{"a":1}`, AgentLabels: map[string]string{"site": "berlin"}, TimeoutMs: 1000,
		}
		e.create(t, sweep)
		want := proto.Clone(sweep).(*adminv1.Job)
		want.Active, want.Placement = proto.Bool(true), store.PlacementEvery
		if st := e.stored(t, "sweep"); !proto.Equal(st, want) {
			t.Fatalf("stored %v, want %v", st, want)
		}

		steps := []struct {
			name   string
			in     *adminv1.Job
			mask   []string
			change func(*adminv1.Job)
		}{
			{"the mask names payload alone",
				&adminv1.Job{Name: "sweep", Payload: `{"a":2}`, Interval: &adminv1.JobInterval{Hours: 1}, TimeoutMs: 9}, []string{"payload"},
				func(j *adminv1.Job) { j.Payload = `{"a":2}` }},
			{"the mask names interval and repeats",
				&adminv1.Job{Name: "sweep", Interval: &adminv1.JobInterval{Seconds: 90}, Repeats: 3, Payload: `{"b":1}`}, []string{"interval", "repeats"},
				func(j *adminv1.Job) { j.Interval, j.Repeats = &adminv1.JobInterval{Minutes: 1, Seconds: 30}, 3 }},
			{"the mask clears what is not given",
				&adminv1.Job{Name: "sweep", Payload: `{"c":1}`}, []string{"agent_labels", "repeats"},
				func(j *adminv1.Job) { j.AgentLabels, j.Repeats = nil, 0 }},
			{"no mask sets what is given",
				&adminv1.Job{Name: "sweep", Service: "orders.other", Placement: store.PlacementOne, RunMissed: true}, nil,
				func(j *adminv1.Job) { j.Service, j.Placement, j.RunMissed = "orders.other", store.PlacementOne, true }},
			{"no mask keeps an unset active",
				&adminv1.Job{Name: "sweep", TimeoutMs: 2000}, nil,
				func(j *adminv1.Job) { j.TimeoutMs = 2000 }},
			{"the mask switches the type",
				&adminv1.Job{Name: "sweep", Type: "cron", Cron: "30 6 * * *", TimeZone: "Europe/Berlin"}, []string{"type", "interval", "cron", "time_zone"},
				func(j *adminv1.Job) {
					j.Type, j.Interval, j.Cron, j.TimeZone = "cron", nil, "30 6 * * *", "Europe/Berlin"
				}},
		}
		rev := int64(2)
		for _, tt := range steps {
			t.Run(tt.name, func(t *testing.T) {
				req := &adminv1.UpdateJobRequest{Job: tt.in}
				if tt.mask != nil {
					req.UpdateMask = &fieldmaskpb.FieldMask{Paths: tt.mask}
				}
				res, err := e.jobs.UpdateJob(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				rev++
				if res.GetJob().GetRevision() != rev {
					t.Errorf("revision %d, want %d", res.GetJob().GetRevision(), rev)
				}
				e.storeAt(t, rev)
				tt.change(want)
				if st := e.stored(t, "sweep"); !proto.Equal(st, want) {
					t.Fatalf("stored %v, want %v", st, want)
				}
				if got := withoutOutput(res.GetJob()); !proto.Equal(got, want) {
					t.Fatalf("update answers %v, want %v", got, want)
				}
			})
		}

		update := func(in *adminv1.Job, paths ...string) error {
			req := &adminv1.UpdateJobRequest{Job: in}
			if paths != nil {
				req.UpdateMask = &fieldmaskpb.FieldMask{Paths: paths}
			}
			_, err := e.jobs.UpdateJob(ctx, req)
			return err
		}
		tests := []struct {
			name string
			err  error
			code codes.Code
			text string
		}{
			{"no job", update(nil), codes.InvalidArgument, "update job: job is required"},
			{"next_run_at in the mask", update(&adminv1.Job{Name: "sweep"}, "next_run_at"),
				codes.InvalidArgument, `update job "sweep": update_mask: unknown or read-only field "next_run_at"`},
			{"lease in the mask", update(&adminv1.Job{Name: "sweep"}, "lease"),
				codes.InvalidArgument, `update_mask: unknown or read-only field "lease"`},
			{"last_run in the mask", update(&adminv1.Job{Name: "sweep"}, "last_run"),
				codes.InvalidArgument, `update_mask: unknown or read-only field "last_run"`},
			{"revision in the mask", update(&adminv1.Job{Name: "sweep", Revision: 1}, "revision"),
				codes.InvalidArgument, `update_mask: unknown or read-only field "revision"`},
			{"name in the mask", update(&adminv1.Job{Name: "sweep"}, "name"),
				codes.InvalidArgument, `update_mask: unknown or read-only field "name"`},
			{"a field the mask misspells", update(&adminv1.Job{Name: "sweep"}, "crontab"),
				codes.InvalidArgument, `update_mask: unknown or read-only field "crontab"`},
			{"a bad cron", update(&adminv1.Job{Name: "sweep", Cron: "* * *"}, "cron"),
				codes.InvalidArgument, `update job "sweep": job "sweep": cron: expected 5 or 6 fields, found 3 in "* * *"`},
			{"a bad zone", update(&adminv1.Job{Name: "sweep", TimeZone: "Nowhere/Land"}),
				codes.InvalidArgument, `time_zone: unknown time zone "Nowhere/Land"`},
			{"a bad payload", update(&adminv1.Job{Name: "sweep", Payload: `"text"`}),
				codes.InvalidArgument, `update job "sweep": payload: want a JSON object`},
			{"a bad placement", update(&adminv1.Job{Name: "sweep", Placement: "all"}),
				codes.InvalidArgument, `placement: must be every or one, not "all"`},
			{"a bad type", update(&adminv1.Job{Name: "sweep", Type: "weekly"}),
				codes.InvalidArgument, `type: must be one_time, interval or cron, not "weekly"`},
			{"a missing service", update(&adminv1.Job{Name: "sweep", Service: "orders.ghost"}),
				codes.FailedPrecondition, `update job "sweep": job "sweep": service: service "orders.ghost" is not deployed`},
			{"an unknown job", update(&adminv1.Job{Name: "ghost", Payload: "{}"}),
				codes.NotFound, `update job "ghost": job "ghost" does not exist`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				wantCode(t, tt.err, tt.code, tt.text)
			})
		}
		e.storeAt(t, rev)
		if st := e.stored(t, "sweep"); !proto.Equal(st, want) {
			t.Fatalf("after the refusals stored %v, want %v", st, want)
		}
	})
}

func TestDeleteAndRunJob(t *testing.T) {
	eachJobsEnv(t, func(t *testing.T, e *jobsEnv) {
		ctx := context.Background()
		e.deployServices(t, "orders.sweep")
		e.create(t, &adminv1.Job{Name: "sweep", Service: "orders.sweep", Type: "cron", Cron: "@hourly", AgentLabels: map[string]string{"site": "berlin"}})

		_, err := e.jobs.RunJob(ctx, &adminv1.RunJobRequest{Name: "sweep"})
		wantCode(t, err, codes.FailedPrecondition, `run job "sweep": no agent connected to this control plane carries the labels map[site:berlin]`)
		_, err = e.jobs.RunJob(ctx, &adminv1.RunJobRequest{Name: "sweep", AgentId: "edge-1"})
		wantCode(t, err, codes.FailedPrecondition, `run job "sweep": agent "edge-1" is not connected to this control plane`)
		_, err = e.jobs.RunJob(ctx, &adminv1.RunJobRequest{Name: "ghost"})
		wantCode(t, err, codes.NotFound, `run job "ghost": job "ghost" does not exist`)
		e.storeAt(t, 2)

		del, err := e.jobs.DeleteJob(ctx, &adminv1.DeleteJobRequest{Name: "sweep"})
		if err != nil || del.GetRevision() != 3 {
			t.Fatalf("delete = %v, %v; want revision 3", del, err)
		}
		e.storeAt(t, 3)
		for _, tt := range []struct {
			name string
			call func() error
			text string
		}{
			{"get", func() error { _, err := e.jobs.GetJob(ctx, &adminv1.GetJobRequest{Name: "sweep"}); return err }, `get job "sweep": job "sweep" does not exist`},
			{"delete again", func() error { _, err := e.jobs.DeleteJob(ctx, &adminv1.DeleteJobRequest{Name: "sweep"}); return err }, `delete job "sweep"`},
			{"pause", func() error { _, err := e.jobs.PauseJob(ctx, &adminv1.PauseJobRequest{Name: "sweep"}); return err }, `pause job "sweep"`},
			{"resume", func() error { _, err := e.jobs.ResumeJob(ctx, &adminv1.ResumeJobRequest{Name: "sweep"}); return err }, `resume job "sweep"`},
			{"history", func() error {
				_, err := e.jobs.ListJobRuns(ctx, &adminv1.ListJobRunsRequest{Name: "sweep"})
				return err
			}, `list runs of job "sweep"`},
		} {
			t.Run(tt.name, func(t *testing.T) {
				wantCode(t, tt.call(), codes.NotFound, tt.text)
			})
		}
		e.storeAt(t, 3)
		if list, err := e.jobs.ListJobs(ctx, &adminv1.ListJobsRequest{}); err != nil || len(list.GetJobs()) != 0 {
			t.Fatalf("list after delete = %v, %v; want none", list, err)
		}
	})
}
