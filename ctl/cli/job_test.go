package cli

import (
	"context"
	"maps"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// jobEnv is a real gRPC server on 127.0.0.1:0 serving a fake job service.
type jobEnv struct {
	addr string
	jobs *fakeJobs
}

// newJobEnv starts a server; configure adjusts the fake before it serves.
func newJobEnv(t *testing.T, configure ...func(*fakeJobs)) *jobEnv {
	t.Helper()
	e := &jobEnv{jobs: &fakeJobs{
		byName: map[string]*adminv1.Job{}, manual: map[string][]*adminv1.JobRun{},
		history: map[string][]*adminv1.JobRun{}, revision: 40,
	}}
	for _, c := range configure {
		c(e.jobs)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	e.addr = lis.Addr().String()
	srv := grpc.NewServer()
	adminv1.RegisterJobServiceServer(srv, e.jobs)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return e
}

// run runs weftctl against the server with args.
func (e *jobEnv) run(args ...string) (stdout, stderr string, err error) {
	return runApp(map[string]string{"WEFT_ADDR": e.addr}, args...)
}

// runStdin is run with stdin as standard input.
func (e *jobEnv) runStdin(stdin string, args ...string) (stdout, stderr string, err error) {
	return runAppStdin(map[string]string{"WEFT_ADDR": e.addr}, stdin, args...)
}

// fakeJobs keeps jobs in a map and records every request, reads included.
// Creating a job for service "nope" is refused as the service is not
// deployed. A manual run returns the runs set in manual, only those of the
// agent asked for when one is.
type fakeJobs struct {
	adminv1.UnimplementedJobServiceServer

	mu       sync.Mutex
	byName   map[string]*adminv1.Job
	manual   map[string][]*adminv1.JobRun
	history  map[string][]*adminv1.JobRun
	revision int64
	requests []proto.Message
}

// nextRun is when the fake says an active job fires next.
var nextRun = timestamppb.New(testNow.Add(10 * time.Minute))

// lookup records req and returns the named job, or NotFound.
func (f *fakeJobs) lookup(req proto.Message, name string) (*adminv1.Job, error) {
	f.requests = append(f.requests, proto.Clone(req))
	j := f.byName[name]
	if j == nil {
		return nil, status.Errorf(codes.NotFound, "job %q not found", name)
	}
	return j, nil
}

func (f *fakeJobs) CreateJob(_ context.Context, req *adminv1.CreateJobRequest) (*adminv1.CreateJobResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, proto.Clone(req))
	j := proto.Clone(req.GetJob()).(*adminv1.Job)
	switch {
	case j.GetService() == "nope":
		return nil, status.Errorf(codes.FailedPrecondition, "service %q is not deployed", j.GetService())
	case f.byName[j.GetName()] != nil:
		return nil, status.Errorf(codes.AlreadyExists, "job %q exists", j.GetName())
	}
	if j.Active == nil {
		j.Active = proto.Bool(true)
	}
	if j.GetActive() {
		j.NextRunAt = nextRun
	}
	f.revision++
	j.Revision = f.revision
	f.byName[j.GetName()] = j
	return &adminv1.CreateJobResponse{Job: j}, nil
}

func (f *fakeJobs) GetJob(_ context.Context, req *adminv1.GetJobRequest) (*adminv1.GetJobResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, err := f.lookup(req, req.GetName())
	if err != nil {
		return nil, err
	}
	return &adminv1.GetJobResponse{Job: j}, nil
}

func (f *fakeJobs) ListJobs(_ context.Context, req *adminv1.ListJobsRequest) (*adminv1.ListJobsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, proto.Clone(req))
	resp := &adminv1.ListJobsResponse{}
	for _, name := range slices.Sorted(maps.Keys(f.byName)) {
		resp.Jobs = append(resp.Jobs, f.byName[name])
	}
	return resp, nil
}

func (f *fakeJobs) UpdateJob(_ context.Context, req *adminv1.UpdateJobRequest) (*adminv1.UpdateJobResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, err := f.lookup(req, req.GetJob().GetName())
	if err != nil {
		return nil, err
	}
	f.revision++
	j.Revision = f.revision
	return &adminv1.UpdateJobResponse{Job: j}, nil
}

func (f *fakeJobs) DeleteJob(_ context.Context, req *adminv1.DeleteJobRequest) (*adminv1.DeleteJobResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.lookup(req, req.GetName()); err != nil {
		return nil, err
	}
	delete(f.byName, req.GetName())
	f.revision++
	return &adminv1.DeleteJobResponse{Revision: f.revision}, nil
}

func (f *fakeJobs) PauseJob(_ context.Context, req *adminv1.PauseJobRequest) (*adminv1.PauseJobResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, err := f.lookup(req, req.GetName())
	if err != nil {
		return nil, err
	}
	f.revision++
	j.Active, j.NextRunAt, j.Revision = proto.Bool(false), nil, f.revision
	return &adminv1.PauseJobResponse{Job: j}, nil
}

func (f *fakeJobs) ResumeJob(_ context.Context, req *adminv1.ResumeJobRequest) (*adminv1.ResumeJobResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, err := f.lookup(req, req.GetName())
	if err != nil {
		return nil, err
	}
	f.revision++
	j.Active, j.NextRunAt, j.Revision = proto.Bool(true), nextRun, f.revision
	return &adminv1.ResumeJobResponse{Job: j}, nil
}

func (f *fakeJobs) RunJob(_ context.Context, req *adminv1.RunJobRequest) (*adminv1.RunJobResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.lookup(req, req.GetName()); err != nil {
		return nil, err
	}
	resp := &adminv1.RunJobResponse{}
	for _, r := range f.manual[req.GetName()] {
		if req.GetAgentId() == "" || r.GetAgentId() == req.GetAgentId() {
			resp.Runs = append(resp.Runs, r)
		}
	}
	return resp, nil
}

func (f *fakeJobs) ListJobRuns(_ context.Context, req *adminv1.ListJobRunsRequest) (*adminv1.ListJobRunsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.lookup(req, req.GetName()); err != nil {
		return nil, err
	}
	runs := f.history[req.GetName()]
	return &adminv1.ListJobRunsResponse{Runs: runs[:min(len(runs), int(req.GetLimit()))]}, nil
}

// requestsSeen returns the recorded requests.
func (f *fakeJobs) requestsSeen() []proto.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

// put stores a job as if it had been created.
func (f *fakeJobs) put(j *adminv1.Job) {
	f.byName[j.GetName()] = j
}

// cellSep is the run of spaces between two table cells; cells hold single
// spaces at most.
var cellSep = regexp.MustCompile(`\s{2,}`)

// tableCells splits table output into rows of cells.
func tableCells(out string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		rows = append(rows, cellSep.Split(strings.TrimSpace(line), -1))
	}
	return rows
}

// listing splits key: value output into key and value pairs.
func listing(out string) [][2]string {
	var kvs [][2]string
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		k, v, _ := strings.Cut(line, ":")
		kvs = append(kvs, [2]string{k, strings.TrimSpace(v)})
	}
	return kvs
}

// local renders testNow+d as the job commands show full times.
func local(d time.Duration) string { return testNow.Add(d).Local().Format(time.RFC3339) }

// localRow renders testNow+d as job tables show times.
func localRow(d time.Duration) string { return testNow.Add(d).Local().Format(historyTime) }

func TestJobCreate(t *testing.T) {
	files := writeTestFiles(t, map[string]string{"payload.json": "{\"full\": true}\n", "bad.json": "{\n  \"full\": tru\n}\n", "empty.json": "\n"})
	start := timestamppb.New(time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC))
	tests := []struct {
		name    string
		argv    []string // after "job create"
		stdin   string
		want    *adminv1.Job
		wantErr string
	}{
		{
			name: "one_time",
			argv: []string{"report", "--service", "reports.build", "--type", "one_time", "--start", "2026-11-28T10:00:00Z"},
			want: &adminv1.Job{Name: "report", Service: "reports.build", Type: "one_time", StartAt: start},
		},
		{
			name: "start with an offset",
			argv: []string{"report", "--service", "reports.build", "--type", "one_time", "--start", "2026-11-28T11:00:00+01:00"},
			want: &adminv1.Job{Name: "report", Service: "reports.build", Type: "one_time", StartAt: start},
		},
		{
			name: "interval from --every, every field",
			argv: []string{"sync", "--service", "crm.sync", "--type", "Interval", "--every", "90m", "--repeats", "10",
				"--start", "2026-11-28T10:00:00Z", "--payload", `{"full":true}`, "--agent-label", "region=eu", "--agent-label", "env = prod",
				"--placement", "ONE", "--run-missed", "--timeout", "30s", "--inactive"},
			want: &adminv1.Job{Name: "sync", Service: "crm.sync", Type: "interval", StartAt: start,
				Interval: &adminv1.JobInterval{Hours: 1, Minutes: 30}, Repeats: 10, Payload: `{"full":true}`,
				AgentLabels: map[string]string{"region": "eu", "env": "prod"}, Placement: "one", RunMissed: true,
				TimeoutMs: 30000, Active: proto.Bool(false)},
		},
		{
			name: "interval from --every with seconds",
			argv: []string{"sync", "--service", "crm.sync", "--type", "interval", "--every", "26h0m5s"},
			want: &adminv1.Job{Name: "sync", Service: "crm.sync", Type: "interval", Interval: &adminv1.JobInterval{Hours: 26, Seconds: 5}},
		},
		{
			name: "interval from parts",
			argv: []string{"sync", "--service", "crm.sync", "--type", "interval", "--weeks", "1", "--days", "2", "--hours", "3", "--minutes", "4", "--seconds", "5"},
			want: &adminv1.Job{Name: "sync", Service: "crm.sync", Type: "interval", Interval: &adminv1.JobInterval{Weeks: 1, Days: 2, Hours: 3, Minutes: 4, Seconds: 5}},
		},
		{
			name: "cron with zone and payload file",
			argv: []string{"digest", "--service", "mail.digest", "--type", "cron", "--cron", " 0 7  * * 1-5", "--tz", "Europe/Berlin", "--payload", "@" + files["payload.json"]},
			want: &adminv1.Job{Name: "digest", Service: "mail.digest", Type: "cron", Cron: "0 7 * * 1-5", TimeZone: "Europe/Berlin", Payload: `{"full": true}`},
		},
		{
			name:  "cron with seconds, payload from stdin",
			argv:  []string{"digest", "--service", "mail.digest", "--type", "cron", "--cron", "*/10 * * * * *", "--payload", "-"},
			stdin: "[1,\n 2]\n",
			want:  &adminv1.Job{Name: "digest", Service: "mail.digest", Type: "cron", Cron: "*/10 * * * * *", Payload: "[1,\n 2]"},
		},
		{
			name: "cron descriptor",
			argv: []string{"digest", "--service", "mail.digest", "--type", "cron", "--cron", "@every 90s"},
			want: &adminv1.Job{Name: "digest", Service: "mail.digest", Type: "cron", Cron: "@every 90s"},
		},
		{name: "no service", argv: []string{"sync", "--type", "interval", "--every", "1m"}, wantErr: `required flag(s) "service" not set`},
		{name: "no type", argv: []string{"sync", "--service", "crm.sync", "--every", "1m"}, wantErr: `required flag(s) "type" not set`},
		{name: "unknown type", argv: []string{"sync", "--service", "crm.sync", "--type", "daily"}, wantErr: `create job "sync": --type "daily": want one_time, interval or cron`},
		{name: "empty service", argv: []string{"sync", "--service", " ", "--type", "interval", "--every", "1m"}, wantErr: `--service must not be empty`},
		{name: "bad start", argv: []string{"r", "--service", "s", "--type", "one_time", "--start", "2026-11-28 10:00"}, wantErr: `create job "r": --start "2026-11-28 10:00": want an RFC 3339 time such as 2026-11-28T10:00:00Z`},
		{name: "start without zone", argv: []string{"r", "--service", "s", "--type", "one_time", "--start", "2026-11-28T10:00:00"}, wantErr: `--start "2026-11-28T10:00:00": want an RFC 3339 time`},
		{name: "one_time without start", argv: []string{"r", "--service", "s", "--type", "one_time"}, wantErr: `--type one_time needs --start`},
		{name: "one_time with interval", argv: []string{"r", "--service", "s", "--type", "one_time", "--start", "2026-11-28T10:00:00Z", "--every", "1h"}, wantErr: `--every does not apply to --type one_time`},
		{name: "interval without period", argv: []string{"s", "--service", "s", "--type", "interval"}, wantErr: `--type interval needs --every, or --weeks`},
		{name: "interval with cron", argv: []string{"s", "--service", "s", "--type", "interval", "--every", "1h", "--cron", "@hourly"}, wantErr: `--cron does not apply to --type interval`},
		{name: "interval with zone", argv: []string{"s", "--service", "s", "--type", "interval", "--every", "1h", "--tz", "UTC"}, wantErr: `--tz does not apply to --type interval`},
		{name: "every and parts", argv: []string{"s", "--service", "s", "--type", "interval", "--every", "1h", "--minutes", "5"}, wantErr: `create job "s": --every and --minutes: give the interval either as --every or as parts, not both`},
		{name: "every not a duration", argv: []string{"s", "--service", "s", "--type", "interval", "--every", "1d"}, wantErr: `--every "1d": want a duration such as 90s, 15m or 1h30m`},
		{name: "every zero", argv: []string{"s", "--service", "s", "--type", "interval", "--every", "0s"}, wantErr: `--every "0s": must be longer than 0`},
		{name: "every fraction", argv: []string{"s", "--service", "s", "--type", "interval", "--every", "1500ms"}, wantErr: `--every "1500ms": must be whole seconds`},
		{name: "negative part", argv: []string{"s", "--service", "s", "--type", "interval", "--hours", "1", "--minutes", "-5"}, wantErr: `--minutes -5: must not be negative`},
		{name: "zero parts", argv: []string{"s", "--service", "s", "--type", "interval", "--hours", "0", "--seconds", "0"}, wantErr: `--hours, --seconds: the interval must be longer than 0`},
		{name: "negative repeats", argv: []string{"s", "--service", "s", "--type", "interval", "--every", "1h", "--repeats", "-1"}, wantErr: `--repeats -1: must not be negative`},
		{name: "cron without expression", argv: []string{"d", "--service", "s", "--type", "cron"}, wantErr: `--type cron needs --cron`},
		{name: "cron with repeats", argv: []string{"d", "--service", "s", "--type", "cron", "--cron", "@daily", "--repeats", "3"}, wantErr: `--repeats does not apply to --type cron`},
		{name: "cron of 4 fields", argv: []string{"d", "--service", "s", "--type", "cron", "--cron", "0 7 * *"}, wantErr: `--cron "0 7 * *": has 4 fields; want 5 (minute hour day month weekday), 6 with seconds first`},
		{name: "payload not JSON", argv: []string{"d", "--service", "s", "--type", "cron", "--cron", "@daily", "--payload", `{"full":}`}, wantErr: `create job "d": --payload is not valid JSON: line 1, column 9: invalid character '}'`},
		{name: "payload file not JSON", argv: []string{"d", "--service", "s", "--type", "cron", "--cron", "@daily", "--payload", "@" + files["bad.json"]}, wantErr: `--payload @` + files["bad.json"] + ` is not valid JSON: line 2, column 14:`},
		{name: "payload file missing", argv: []string{"d", "--service", "s", "--type", "cron", "--cron", "@daily", "--payload", "@" + files["missing"]}, wantErr: `--payload: open ` + files["missing"] + `: no such file or directory`},
		{name: "payload file empty", argv: []string{"d", "--service", "s", "--type", "cron", "--cron", "@daily", "--payload", "@" + files["empty.json"]}, wantErr: `--payload @` + files["empty.json"] + `: is empty; want a JSON value`},
		{name: "payload stdin empty", argv: []string{"d", "--service", "s", "--type", "cron", "--cron", "@daily", "--payload", "-"}, wantErr: `--payload -: is empty`},
		{name: "payload @ alone", argv: []string{"d", "--service", "s", "--type", "cron", "--cron", "@daily", "--payload", "@"}, wantErr: `--payload @: want @FILE`},
		{name: "bad placement", argv: []string{"d", "--service", "s", "--type", "cron", "--cron", "@daily", "--placement", "all"}, wantErr: `--placement "all": want every or one`},
		{name: "bad label", argv: []string{"d", "--service", "s", "--type", "cron", "--cron", "@daily", "--agent-label", "region"}, wantErr: `--agent-label "region": want KEY=VALUE`},
		{name: "bad timeout", argv: []string{"d", "--service", "s", "--type", "cron", "--cron", "@daily", "--timeout", "30"}, wantErr: `--timeout "30": want a duration`},
		{name: "no name", argv: []string{"--service", "s", "--type", "cron", "--cron", "@daily"}, wantErr: `missing NAME`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newJobEnv(t)
			stdout, _, err := e.runStdin(tt.stdin, append([]string{"job", "create"}, tt.argv...)...)
			seen := e.jobs.requestsSeen()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				if len(seen) != 0 {
					t.Fatalf("a refused flag reached the server: %v", seen)
				}
				return
			}
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			if got := seen[0].(*adminv1.CreateJobRequest).GetJob(); !proto.Equal(got, tt.want) {
				t.Errorf("job = %v\nwant %v", got, tt.want)
			}
			want := "created job " + tt.want.GetName() + " (revision 41, next run " + local(10*time.Minute) + " (in 10m))\n"
			if tt.want.Active != nil {
				want = "created job " + tt.want.GetName() + " (revision 41)\n"
			}
			if stdout != want {
				t.Errorf("stdout = %q, want %q", stdout, want)
			}
		})
	}
}

func TestJobCreateOutputAndRefusal(t *testing.T) {
	argv := []string{"job", "create", "sync", "--service", "crm.sync", "--type", "interval", "--every", "1h"}
	for _, format := range []string{"json", "yaml"} {
		t.Run(format, func(t *testing.T) {
			e := newJobEnv(t)
			stdout, _, err := e.run(append(argv, "-o", format)...)
			if err != nil {
				t.Fatal(err)
			}
			var resp adminv1.CreateJobResponse
			if err := unmarshalOutput(format, stdout, &resp); err != nil {
				t.Fatalf("%v\n%s", err, stdout)
			}
			if resp.GetJob().GetRevision() != 41 || resp.GetJob().GetInterval().GetHours() != 1 || !resp.GetJob().GetActive() {
				t.Errorf("job = %v", resp.GetJob())
			}
			if !strings.Contains(stdout, "next_run_at") {
				t.Errorf("want proto field names:\n%s", stdout)
			}
		})
	}
	t.Run("missing service refused by the server", func(t *testing.T) {
		e := newJobEnv(t)
		stdout, _, err := e.run("job", "create", "sync", "--service", "nope", "--type", "interval", "--every", "1h")
		if err == nil || err.Error() != `create job "sync": service "nope" is not deployed` || status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("error = %v", err)
		}
		if stdout != "" {
			t.Errorf("stdout = %q, want nothing", stdout)
		}
	})
	t.Run("exists", func(t *testing.T) {
		e := newJobEnv(t, func(f *fakeJobs) { f.put(&adminv1.Job{Name: "sync"}) })
		_, _, err := e.run(argv...)
		if err == nil || err.Error() != `create job "sync": job "sync" exists` || status.Code(err) != codes.AlreadyExists {
			t.Fatalf("error = %v", err)
		}
	})
}

func TestJobUpdateMask(t *testing.T) {
	files := writeTestFiles(t, map[string]string{"payload.json": `{"since":"2026-01-01"}`})
	tests := []struct {
		name     string
		flags    []string
		stdin    string
		wantMask []string
		want     *adminv1.Job
		wantErr  string
	}{
		{name: "service", flags: []string{"--service", "crm.sync2"}, wantMask: []string{"service"}, want: &adminv1.Job{Name: "sync", Service: "crm.sync2"}},
		{name: "type", flags: []string{"--type", "cron", "--cron", "@hourly"}, wantMask: []string{"type", "cron"}, want: &adminv1.Job{Name: "sync", Type: "cron", Cron: "@hourly"}},
		{name: "type change clearing the old fields", flags: []string{"--type", "cron", "--cron", "@hourly", "--every", "", "--repeats", "0"}, wantMask: []string{"type", "interval", "repeats", "cron"}, want: &adminv1.Job{Name: "sync", Type: "cron", Cron: "@hourly"}},
		{name: "start", flags: []string{"--start", "2026-11-28T10:00:00Z"}, wantMask: []string{"start_at"}, want: &adminv1.Job{Name: "sync", StartAt: timestamppb.New(time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC))}},
		{name: "start cleared", flags: []string{"--start", ""}, wantMask: []string{"start_at"}, want: &adminv1.Job{Name: "sync"}},
		{name: "every", flags: []string{"--every", "15m"}, wantMask: []string{"interval"}, want: &adminv1.Job{Name: "sync", Interval: &adminv1.JobInterval{Minutes: 15}}},
		{name: "one part replaces the interval", flags: []string{"--hours", "2"}, wantMask: []string{"interval"}, want: &adminv1.Job{Name: "sync", Interval: &adminv1.JobInterval{Hours: 2}}},
		{name: "repeats", flags: []string{"--repeats", "3"}, wantMask: []string{"repeats"}, want: &adminv1.Job{Name: "sync", Repeats: 3}},
		{name: "cron", flags: []string{"--cron", "30 6 * * *"}, wantMask: []string{"cron"}, want: &adminv1.Job{Name: "sync", Cron: "30 6 * * *"}},
		{name: "zone", flags: []string{"--tz", "Europe/Paris"}, wantMask: []string{"time_zone"}, want: &adminv1.Job{Name: "sync", TimeZone: "Europe/Paris"}},
		{name: "payload from file", flags: []string{"--payload", "@" + files["payload.json"]}, wantMask: []string{"payload"}, want: &adminv1.Job{Name: "sync", Payload: `{"since":"2026-01-01"}`}},
		{name: "payload from stdin", flags: []string{"--payload", "-"}, stdin: `{"a":1}`, wantMask: []string{"payload"}, want: &adminv1.Job{Name: "sync", Payload: `{"a":1}`}},
		{name: "payload cleared", flags: []string{"--payload", ""}, wantMask: []string{"payload"}, want: &adminv1.Job{Name: "sync"}},
		{name: "inactive", flags: []string{"--inactive"}, wantMask: []string{"active"}, want: &adminv1.Job{Name: "sync", Active: proto.Bool(false)}},
		{name: "active", flags: []string{"--active"}, wantMask: []string{"active"}, want: &adminv1.Job{Name: "sync", Active: proto.Bool(true)}},
		{name: "labels", flags: []string{"--agent-label", "region=eu"}, wantMask: []string{"agent_labels"}, want: &adminv1.Job{Name: "sync", AgentLabels: map[string]string{"region": "eu"}}},
		{name: "labels cleared", flags: []string{"--agent-label", ""}, wantMask: []string{"agent_labels"}, want: &adminv1.Job{Name: "sync", AgentLabels: map[string]string{}}},
		{name: "placement", flags: []string{"--placement", "every"}, wantMask: []string{"placement"}, want: &adminv1.Job{Name: "sync", Placement: "every"}},
		{name: "run missed off", flags: []string{"--run-missed=false"}, wantMask: []string{"run_missed"}, want: &adminv1.Job{Name: "sync"}},
		{name: "timeout", flags: []string{"--timeout", "2m"}, wantMask: []string{"timeout_ms"}, want: &adminv1.Job{Name: "sync", TimeoutMs: 120000}},
		{
			name: "interval with --cron and --tz",
			flags: []string{"--timeout", "0", "--run-missed", "--placement", "one", "--agent-label", "env=prod", "--inactive", "--payload", "{}",
				"--tz", "UTC", "--cron", "@daily", "--repeats", "0", "--every", "1h", "--start", "2026-11-28T10:00:00Z", "--type", "interval", "--service", "s"},
			wantErr: "--cron does not apply to --type interval",
		},
		{
			name: "several, in field order",
			flags: []string{"--timeout", "0", "--run-missed", "--placement", "one", "--agent-label", "env=prod", "--active", "--payload", "{}",
				"--repeats", "0", "--every", "1h", "--start", "2026-11-28T10:00:00Z", "--type", "interval", "--service", "s"},
			wantMask: []string{"service", "type", "start_at", "interval", "repeats", "payload", "active", "agent_labels", "placement", "run_missed", "timeout_ms"},
			want: &adminv1.Job{Name: "sync", Service: "s", Type: "interval", StartAt: timestamppb.New(time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)),
				Interval: &adminv1.JobInterval{Hours: 1}, Payload: "{}", Active: proto.Bool(true), AgentLabels: map[string]string{"env": "prod"},
				Placement: "one", RunMissed: true},
		},
		{name: "nothing to change", wantErr: `update job "sync": nothing to change`},
		{name: "active and inactive", flags: []string{"--active", "--inactive"}, wantErr: "[active inactive] were all set"},
		{name: "every and parts", flags: []string{"--seconds", "5", "--every", "1h"}, wantErr: `--every and --seconds: give the interval either as --every or as parts, not both`},
		{name: "bad payload", flags: []string{"--payload", "{"}, wantErr: `update job "sync": --payload is not valid JSON`},
		{name: "bad start", flags: []string{"--start", "tomorrow"}, wantErr: `update job "sync": --start "tomorrow": want an RFC 3339 time`},
		{name: "type and a foreign flag", flags: []string{"--type", "one_time", "--cron", "@daily"}, wantErr: `--cron does not apply to --type one_time`},
		{name: "bad cron", flags: []string{"--cron", "* * *"}, wantErr: `--cron "* * *": has 3 fields`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newJobEnv(t, func(f *fakeJobs) {
				f.put(&adminv1.Job{Name: "sync", Service: "crm.sync", Type: "interval", Active: proto.Bool(true), Revision: 3})
			})
			stdout, _, err := e.runStdin(tt.stdin, append([]string{"job", "update", "sync"}, tt.flags...)...)
			req, sent := updateSent[*adminv1.UpdateJobRequest](t, err, e.jobs.requestsSeen(), tt.wantErr, tt.wantMask)
			if !sent {
				return
			}
			if !proto.Equal(req.GetJob(), tt.want) {
				t.Errorf("job = %v\nwant %v", req.GetJob(), tt.want)
			}
			if want := "updated job sync (revision 41)\n"; stdout != want {
				t.Errorf("stdout = %q, want %q", stdout, want)
			}
		})
	}
	t.Run("unknown job", func(t *testing.T) {
		e := newJobEnv(t)
		_, _, err := e.run("job", "update", "nope", "--every", "1m")
		if err == nil || err.Error() != `update job "nope": job "nope" not found` || status.Code(err) != codes.NotFound {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("json", func(t *testing.T) {
		e := newJobEnv(t, func(f *fakeJobs) { f.put(&adminv1.Job{Name: "sync", Type: "interval"}) })
		stdout, _, err := e.run("job", "update", "sync", "--every", "1m", "-o", "json")
		var resp adminv1.UpdateJobResponse
		if err != nil || unmarshalOutput("json", stdout, &resp) != nil || resp.GetJob().GetRevision() != 41 {
			t.Errorf("json = %q (%v)", stdout, err)
		}
	})
}

// jobFixtures are three jobs, one of each type.
func jobFixtures(f *fakeJobs) {
	f.put(&adminv1.Job{
		Name: "digest", Service: "mail.digest", Type: "cron", Cron: "0 7 * * 1-5", TimeZone: "Europe/Berlin",
		Payload: `{"full":true}`, AgentLabels: map[string]string{"region": "eu", "env": "prod"}, RunMissed: true, TimeoutMs: 30000,
		Active: proto.Bool(true), Revision: 4, NextRunAt: timestamppb.New(testNow.Add(53 * time.Minute)),
		CreatedAt: timestamppb.New(testNow.Add(-2 * time.Hour)), UpdatedAt: timestamppb.New(testNow.Add(-90 * time.Second)),
		LastRun: &adminv1.JobRun{Job: "digest", AgentId: "a1", Cid: "c-7", Trigger: "schedule", Outcome: "ok",
			ScheduledAt: timestamppb.New(testNow.Add(-5 * time.Minute)), StartedAt: timestamppb.New(testNow.Add(-5 * time.Minute)), DurationUs: 120_000},
	})
	f.put(&adminv1.Job{
		Name: "report", Service: "reports.build", Type: "one_time", StartAt: timestamppb.New(testNow.Add(72 * time.Hour)),
		Active: proto.Bool(false), Revision: 5,
	})
	f.put(&adminv1.Job{
		Name: "sync", Service: "crm.sync", Type: "interval", Interval: &adminv1.JobInterval{Hours: 1, Minutes: 30}, Repeats: 10,
		Placement: "one", Active: proto.Bool(true), Revision: 6, NextRunAt: timestamppb.New(testNow.Add(10 * time.Minute)),
		Lease: &adminv1.JobLease{AgentId: "a2", Token: 3, ExpiresAt: timestamppb.New(testNow.Add(20 * time.Second))},
		LastRun: &adminv1.JobRun{Job: "sync", AgentId: "a2", Cid: "c-9", Trigger: "schedule", Outcome: "error", Error: "boom: nil map",
			StartedAt: timestamppb.New(testNow.Add(-80 * time.Minute)), DurationUs: 2_345_678},
	})
}

func TestJobReadAndDelete(t *testing.T) {
	e := newJobEnv(t, jobFixtures)
	t.Run("list table", func(t *testing.T) {
		stdout, _, err := e.run("job", "list")
		if err != nil {
			t.Fatal(err)
		}
		want := [][]string{
			{"NAME", "SERVICE", "TYPE", "SCHEDULE", "PLACEMENT", "STATE", "NEXT RUN", "LEASE", "LAST RUN"},
			{"digest", "mail.digest", "cron", "cron 0 7 * * 1-5 (Europe/Berlin)", "every", "active", localRow(53 * time.Minute), "-", "ok (5m ago)"},
			{"report", "reports.build", "one_time", "once at " + local(72*time.Hour), "every", "paused", "-", "-", "-"},
			{"sync", "crm.sync", "interval", "every 1h30m, 10 times", "one", "active", localRow(10 * time.Minute), "a2", "error (1h ago)"},
		}
		if got := tableCells(stdout); !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("stdout =\n%s\nwant rows %q", stdout, want)
		}
	})
	for _, format := range []string{"json", "yaml"} {
		t.Run("list "+format, func(t *testing.T) {
			stdout, _, err := e.run("job", "list", "-o", format)
			if err != nil {
				t.Fatal(err)
			}
			var resp adminv1.ListJobsResponse
			if err := unmarshalOutput(format, stdout, &resp); err != nil {
				t.Fatalf("%v\n%s", err, stdout)
			}
			if len(resp.GetJobs()) != 3 || resp.GetJobs()[2].GetLease().GetAgentId() != "a2" || resp.GetJobs()[0].GetAgentLabels()["env"] != "prod" {
				t.Errorf("jobs = %v", resp.GetJobs())
			}
			for _, field := range []string{"agent_labels", "next_run_at", "last_run", "time_zone", "run_missed"} {
				if !strings.Contains(stdout, field) {
					t.Errorf("want proto field name %s:\n%s", field, stdout)
				}
			}
		})
	}
	t.Run("get cron job", func(t *testing.T) {
		stdout, _, err := e.run("job", "get", "digest")
		if err != nil {
			t.Fatal(err)
		}
		want := [][2]string{
			{"name", "digest"},
			{"service", "mail.digest"},
			{"type", "cron"},
			{"schedule", "cron 0 7 * * 1-5 (Europe/Berlin)"},
			{"payload", `{"full":true}`},
			{"agents", "env=prod,region=eu"},
			{"placement", "every"},
			{"run missed", "yes"},
			{"timeout", "30s"},
			{"state", "active"},
			{"next run", local(53*time.Minute) + " (in 53m)"},
			{"last run", "ok " + local(-5*time.Minute) + " (5m ago) on a1, cid c-7, took 120ms"},
			{"revision", "4"},
			{"created", local(-2*time.Hour) + " (2h ago)"},
			{"updated", local(-90*time.Second) + " (1m ago)"},
		}
		if got := listing(stdout); !slices.Equal(got, want) {
			t.Errorf("stdout =\n%s\nwant %q", stdout, want)
		}
	})
	t.Run("get one job with a lease and a failed run", func(t *testing.T) {
		stdout, _, err := e.run("job", "get", "sync")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range [][2]string{
			{"schedule", "every 1h30m, 10 times"},
			{"payload", "{}"},
			{"agents", "every agent"},
			{"placement", "one"},
			{"timeout", "service default"},
			{"lease", "a2 (token 3, expires " + local(20*time.Second) + " (in 20s))"},
			{"last run", "error " + local(-80*time.Minute) + " (1h ago) on a2, cid c-9, took 2.346s"},
			{"last error", "boom: nil map"},
		} {
			if !slices.Contains(listing(stdout), want) {
				t.Errorf("stdout lacks %q:\n%s", want, stdout)
			}
		}
	})
	t.Run("get paused one_time job", func(t *testing.T) {
		stdout, _, err := e.run("job", "get", "report")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range [][2]string{{"schedule", "once at " + local(72*time.Hour)}, {"state", "paused"}, {"next run", "none"}, {"last run", "never"}} {
			if !slices.Contains(listing(stdout), want) {
				t.Errorf("stdout lacks %q:\n%s", want, stdout)
			}
		}
		if strings.Contains(stdout, "lease") {
			t.Errorf("a job without a lease shows one:\n%s", stdout)
		}
	})
	t.Run("get yaml", func(t *testing.T) {
		stdout, _, err := e.run("job", "get", "sync", "-o", "yaml")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"job:\n", "  placement: one\n", "  lease:\n    agent_id: a2\n", "    hours: \"1\"\n"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("stdout lacks %q:\n%s", want, stdout)
			}
		}
	})
	t.Run("get json", func(t *testing.T) {
		stdout, _, err := e.run("job", "get", "digest", "-o", "json")
		var resp adminv1.GetJobResponse
		if err != nil || unmarshalOutput("json", stdout, &resp) != nil || resp.GetJob().GetTimeZone() != "Europe/Berlin" {
			t.Errorf("json = %q (%v)", stdout, err)
		}
	})
	t.Run("get missing", func(t *testing.T) {
		_, _, err := e.run("job", "get", "nope")
		if err == nil || err.Error() != `get job "nope": job "nope" not found` || status.Code(err) != codes.NotFound {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("pause and resume", func(t *testing.T) {
		stdout, _, err := e.run("job", "pause", "sync")
		if want := "paused job sync (revision 41)\n"; err != nil || stdout != want {
			t.Errorf("pause: stdout = %q (%v), want %q", stdout, err, want)
		}
		stdout, _, err = e.run("job", "resume", "sync")
		if want := "resumed job sync (revision 42, next run " + local(10*time.Minute) + " (in 10m))\n"; err != nil || stdout != want {
			t.Errorf("resume: stdout = %q (%v), want %q", stdout, err, want)
		}
		stdout, _, err = e.run("job", "pause", "sync", "-o", "yaml")
		var resp adminv1.PauseJobResponse
		if err != nil || unmarshalOutput("yaml", stdout, &resp) != nil || resp.GetJob().GetActive() || resp.GetJob().Active == nil {
			t.Errorf("yaml = %q (%v)", stdout, err)
		}
		seen := e.jobs.requestsSeen()
		want := []proto.Message{&adminv1.PauseJobRequest{Name: "sync"}, &adminv1.ResumeJobRequest{Name: "sync"}, &adminv1.PauseJobRequest{Name: "sync"}}
		if got := seen[len(seen)-3:]; !slices.EqualFunc(got, want, proto.Equal) {
			t.Errorf("requests = %v, want %v", got, want)
		}
		_, _, err = e.run("job", "resume", "nope")
		if err == nil || err.Error() != `resume job "nope": job "nope" not found` {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("delete", func(t *testing.T) {
		stdout, _, err := e.run("job", "delete", "report")
		if want := "deleted job report (revision 44)\n"; err != nil || stdout != want {
			t.Errorf("stdout = %q (%v), want %q", stdout, err, want)
		}
		seen := e.jobs.requestsSeen()
		if got := seen[len(seen)-1]; !proto.Equal(got, &adminv1.DeleteJobRequest{Name: "report"}) {
			t.Errorf("request = %v", got)
		}
		stdout, _, err = e.run("job", "delete", "digest", "-o", "json")
		var resp adminv1.DeleteJobResponse
		if err != nil || unmarshalOutput("json", stdout, &resp) != nil || resp.GetRevision() != 45 {
			t.Errorf("json = %q (%v)", stdout, err)
		}
		_, _, err = e.run("job", "delete", "report")
		if err == nil || err.Error() != `delete job "report": job "report" not found` || status.Code(err) != codes.NotFound {
			t.Errorf("error = %v", err)
		}
	})
}

func TestJobRun(t *testing.T) {
	e := newJobEnv(t, jobFixtures, func(f *fakeJobs) {
		f.manual["digest"] = []*adminv1.JobRun{
			{Job: "digest", AgentId: "a1", Cid: "c-1", Trigger: "manual", Outcome: "ok", DurationUs: 1_234},
			{Job: "digest", AgentId: "a3", Cid: "c-2", Trigger: "manual", Outcome: "ok", DurationUs: 5_000_400},
		}
		f.manual["sync"] = []*adminv1.JobRun{
			{Job: "sync", AgentId: "a1", Cid: "c-3", Trigger: "manual", Outcome: "ok", DurationUs: 800},
			{Job: "sync", AgentId: "a2", Cid: "c-4", Trigger: "manual", Outcome: "error", DurationUs: 2_000, Error: "boom: nil map\npanic at line 3"},
			{Job: "sync", AgentId: "a3", Cid: "c-5", Trigger: "manual", Outcome: "timeout", DurationUs: 30_000_000, Error: "no answer within 30s"},
		}
	})
	t.Run("every run ok", func(t *testing.T) {
		stdout, _, err := e.run("job", "run", "digest")
		if err != nil {
			t.Fatal(err)
		}
		want := [][]string{
			{"AGENT", "CID", "OUTCOME", "DURATION", "ERROR"},
			{"a1", "c-1", "ok", "1.23ms", "-"},
			{"a3", "c-2", "ok", "5s", "-"},
		}
		if got := tableCells(stdout); !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("stdout =\n%s\nwant rows %q", stdout, want)
		}
	})
	t.Run("on one agent", func(t *testing.T) {
		stdout, _, err := e.run("job", "run", "sync", "--agent", "a1")
		if err != nil {
			t.Fatal(err)
		}
		seen := e.jobs.requestsSeen()
		if got := seen[len(seen)-1]; !proto.Equal(got, &adminv1.RunJobRequest{Name: "sync", AgentId: "a1"}) {
			t.Errorf("request = %v", got)
		}
		if got := tableCells(stdout); len(got) != 2 || got[1][0] != "a1" {
			t.Errorf("stdout =\n%s", stdout)
		}
	})
	t.Run("failed runs exit non-zero", func(t *testing.T) {
		stdout, _, err := e.run("job", "run", "sync")
		want := `run job "sync": 2 of 3 runs did not succeed: a2 error, a3 timeout`
		if err == nil || err.Error() != want {
			t.Fatalf("error = %v\nwant %s", err, want)
		}
		wantRows := [][]string{
			{"AGENT", "CID", "OUTCOME", "DURATION", "ERROR"},
			{"a1", "c-3", "ok", "800µs", "-"},
			{"a2", "c-4", "error", "2ms", "boom: nil map..."},
			{"a3", "c-5", "timeout", "30s", "no answer within 30s"},
		}
		if got := tableCells(stdout); !slices.EqualFunc(got, wantRows, slices.Equal) {
			t.Errorf("stdout =\n%s\nwant rows %q", stdout, wantRows)
		}
	})
	for _, format := range []string{"json", "yaml"} {
		t.Run("failed runs exit non-zero with "+format, func(t *testing.T) {
			stdout, _, err := e.run("job", "run", "sync", "-o", format)
			if err == nil || !strings.Contains(err.Error(), "2 of 3 runs did not succeed") {
				t.Fatalf("error = %v", err)
			}
			var resp adminv1.RunJobResponse
			if err := unmarshalOutput(format, stdout, &resp); err != nil || len(resp.GetRuns()) != 3 || resp.GetRuns()[1].GetError() == "" {
				t.Errorf("%s = %q (%v)", format, stdout, err)
			}
		})
	}
	t.Run("no run fails", func(t *testing.T) {
		_, _, err := e.run("job", "run", "report")
		if err == nil || err.Error() != `run job "report": no agent ran it` {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("unknown job", func(t *testing.T) {
		stdout, _, err := e.run("job", "run", "nope")
		if err == nil || err.Error() != `run job "nope": job "nope" not found` || status.Code(err) != codes.NotFound {
			t.Fatalf("error = %v", err)
		}
		if stdout != "" {
			t.Errorf("stdout = %q, want nothing", stdout)
		}
	})
}

func TestJobHistory(t *testing.T) {
	e := newJobEnv(t, jobFixtures, func(f *fakeJobs) {
		for i := range 30 {
			at := timestamppb.New(testNow.Add(-time.Duration(i) * time.Hour))
			f.history["sync"] = append(f.history["sync"], &adminv1.JobRun{Job: "sync", AgentId: "a2", Cid: "c-" + string(rune('a'+i%26)),
				Trigger: "schedule", Outcome: "ok", ScheduledAt: at, StartedAt: at, DurationUs: 2_000})
		}
		f.history["sync"][0] = &adminv1.JobRun{Job: "sync", AgentId: "a1", Cid: "c-0", Trigger: "manual", Outcome: "running",
			ScheduledAt: timestamppb.New(testNow), StartedAt: timestamppb.New(testNow.Add(time.Second))}
		f.history["sync"][1].Outcome, f.history["sync"][1].Error = "error", "boom: nil map"
		f.history["sync"][2].Trigger = "recovery"
	})
	t.Run("table", func(t *testing.T) {
		stdout, _, err := e.run("job", "history", "sync", "--limit", "3")
		if err != nil {
			t.Fatal(err)
		}
		want := [][]string{
			{"SCHEDULED", "STARTED", "AGENT", "TRIGGER", "OUTCOME", "DURATION", "CID", "ERROR"},
			{localRow(0), localRow(time.Second), "a1", "manual", "running", "-", "c-0", "-"},
			{localRow(-time.Hour), localRow(-time.Hour), "a2", "schedule", "error", "2ms", "c-b", "boom: nil map"},
			{localRow(-2 * time.Hour), localRow(-2 * time.Hour), "a2", "recovery", "ok", "2ms", "c-c", "-"},
		}
		if got := tableCells(stdout); !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("stdout =\n%s\nwant rows %q", stdout, want)
		}
		seen := e.jobs.requestsSeen()
		if got := seen[len(seen)-1]; !proto.Equal(got, &adminv1.ListJobRunsRequest{Name: "sync", Limit: 3}) {
			t.Errorf("request = %v", got)
		}
	})
	t.Run("default limit", func(t *testing.T) {
		stdout, _, err := e.run("job", "history", "sync")
		if err != nil {
			t.Fatal(err)
		}
		seen := e.jobs.requestsSeen()
		if got := seen[len(seen)-1]; !proto.Equal(got, &adminv1.ListJobRunsRequest{Name: "sync", Limit: 20}) {
			t.Errorf("request = %v", got)
		}
		if rows := len(tableCells(stdout)); rows != 21 {
			t.Errorf("%d rows, want a header and 20 runs", rows)
		}
	})
	for _, format := range []string{"json", "yaml"} {
		t.Run(format, func(t *testing.T) {
			stdout, _, err := e.run("job", "history", "sync", "--limit", "2", "-o", format)
			if err != nil {
				t.Fatal(err)
			}
			var resp adminv1.ListJobRunsResponse
			if err := unmarshalOutput(format, stdout, &resp); err != nil || len(resp.GetRuns()) != 2 || resp.GetRuns()[1].GetError() != "boom: nil map" {
				t.Errorf("%s = %q (%v)", format, stdout, err)
			}
			if !strings.Contains(stdout, "scheduled_at") || !strings.Contains(stdout, "duration_us") {
				t.Errorf("want proto field names:\n%s", stdout)
			}
		})
	}
	t.Run("bad limit", func(t *testing.T) {
		before := len(e.jobs.requestsSeen())
		for _, limit := range []string{"0", "-1"} {
			_, _, err := e.run("job", "history", "sync", "--limit", limit)
			if want := `history of job "sync": --limit ` + limit + `: must be at least 1`; err == nil || err.Error() != want {
				t.Errorf("error = %v, want %s", err, want)
			}
		}
		if after := len(e.jobs.requestsSeen()); after != before {
			t.Errorf("a refused --limit reached the server")
		}
	})
	t.Run("unknown job", func(t *testing.T) {
		_, _, err := e.run("job", "history", "nope")
		if err == nil || err.Error() != `history of job "nope": job "nope" not found` || status.Code(err) != codes.NotFound {
			t.Fatalf("error = %v", err)
		}
	})
}
