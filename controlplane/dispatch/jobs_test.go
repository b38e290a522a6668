package dispatch

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weft-dev/weft/controlplane/auth/authtest"
	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/controlplane/store/storetest"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
	"github.com/weft-dev/weft/tests/testenv"
)

// testLeaseTTL is the lease the job harness grants, unlike the default.
const testLeaseTTL = 30 * time.Second

// jobsHarness is a harness whose server grants testLeaseTTL leases, reads
// the time from clock and logs into logs.
type jobsHarness struct {
	*harness
	clock *testClock
	logs  *testenv.LogBuffer
}

func newJobsHarness(t *testing.T, b storetest.Backend) *jobsHarness {
	t.Helper()
	st := storetest.Open(t, b)
	h := &jobsHarness{
		harness: &harness{store: st, watch: NewWatch(0)},
		clock:   &testClock{now: time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)},
		logs:    &testenv.LogBuffer{},
	}
	h.disp = New(st, h.watch, slog.New(slog.NewTextHandler(h.logs, nil)))
	h.disp.SetLeaseTTL(testLeaseTTL)
	h.disp.now = h.clock.Now
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(authtest.VouchForClaims()...)
	agentv1.RegisterAgentServiceServer(srv, h.disp)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { h.disp.Close(); srv.Stop() })
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	h.client = agentv1.NewAgentServiceClient(conn)
	h.deploy(t, "p", "package p")
	return h
}

// job stores a job on service p.svc (deployed by newJobsHarness) firing
// every minute.
func (h *jobsHarness) job(t *testing.T, name, placement string) {
	t.Helper()
	j, err := h.store.CreateJob(context.Background(), &adminv1.Job{
		Name: name, Service: "p.svc", Type: "interval", Interval: &adminv1.JobInterval{Minutes: 1},
		StartAt: timestamppb.New(h.clock.Now()), Active: proto.Bool(true), Placement: placement,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.watch.Advance(j.Revision)
}

func (h *jobsHarness) claim(t *testing.T, agent, job string, at time.Time, cid string) *agentv1.ClaimFiringResponse {
	t.Helper()
	h.known(t, agent)
	res, err := h.client.ClaimFiring(context.Background(), &agentv1.ClaimFiringRequest{
		AgentId: agent, Job: job, ScheduledAtUnixMs: at.UnixMilli(), Cid: cid,
	})
	if err != nil {
		t.Fatalf("%s claims %s at %v: %v", agent, job, at, err)
	}
	return res
}

// known records agent as connected and running the current revision, as
// claims require.
func (h *jobsHarness) known(t *testing.T, agent string) {
	t.Helper()
	ctx := context.Background()
	if _, err := h.store.GetAgent(ctx, agent); err != nil {
		if err := h.store.AgentHello(ctx, store.AgentHello{ID: agent}); err != nil {
			t.Fatal(err)
		}
	}
	rev, err := h.store.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.store.AgentApplied(ctx, agent, rev, "hash"); err != nil {
		t.Fatal(err)
	}
}

// lease reads the lease of job; nil when nobody holds it.
func (h *jobsHarness) lease(t *testing.T, job string) *store.JobLease {
	t.Helper()
	l, _, err := h.store.JobState(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// testClock is a clock the test moves.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestJobRPCsRefuseBadAgentID(t *testing.T) {
	h := newJobsHarness(t, storetest.SQLite(t))
	h.job(t, "sweep", store.PlacementOne)
	ctx := context.Background()
	claim := func(agent, job string) func() error {
		return func() error {
			_, err := h.client.ClaimFiring(ctx, &agentv1.ClaimFiringRequest{AgentId: agent, Job: job, ScheduledAtUnixMs: h.clock.Now().UnixMilli()})
			return err
		}
	}
	renew := func(agent string) func() error {
		return func() error {
			_, err := h.client.RenewLeases(ctx, &agentv1.RenewLeasesRequest{AgentId: agent, Jobs: []string{"sweep"}})
			return err
		}
	}
	report := func(agent string) func() error {
		return func() error {
			_, err := h.client.ReportRuns(ctx, &agentv1.ReportRunsRequest{AgentId: agent, Runs: []*agentv1.JobRun{{
				Job: "sweep", Cid: "c", Trigger: "schedule", Placement: store.PlacementEvery, ScheduledAtUnixMs: h.clock.Now().UnixMilli(), Outcome: "ok",
			}}})
			return err
		}
	}
	tests := []struct {
		name string
		call func() error
		text string
	}{
		{"claim without an agent id", claim("", "sweep"), `claim firing: agent_id "" and job "sweep" are required`},
		{"claim with a bad agent id", claim("a b/c", "sweep"), `claim firing: agent_id "a b/c"`},
		{"claim with an agent id too long", claim(strings.Repeat("a", 129), "sweep"), "claim firing: agent_id"},
		{"claim without a job", claim("edge-1", ""), `claim firing: agent_id "edge-1" and job "" are required`},
		{"renew without an agent id", renew(""), `renew leases: agent_id "" is not an agent id`},
		{"renew with a bad agent id", renew("-edge"), `renew leases: agent_id "-edge" is not an agent id`},
		{"report without an agent id", report(""), `report runs: agent_id "" is not an agent id`},
		{"report with a bad agent id", report("edge/1"), `report runs: agent_id "edge/1" is not an agent id`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), tt.text) {
				t.Fatalf("err = %v, want InvalidArgument containing %q", err, tt.text)
			}
		})
	}
	if l := h.lease(t, "sweep"); l != nil {
		t.Errorf("after the refusals the lease is %+v, want none", l)
	}
	if runs, err := h.store.ListJobRuns(ctx, "sweep", 0); err != nil || len(runs) != 0 {
		t.Errorf("after the refusals runs = %v, %v; want none", runs, err)
	}
}

func TestClaimAndRenewLeases(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			h := newJobsHarness(t, b)
			h.job(t, "sweep", store.PlacementOne)
			h.job(t, "beat", store.PlacementEvery)
			t0 := h.clock.Now()
			first := t0.Add(time.Minute)

			res := h.claim(t, "edge-1", "sweep", first, "cid-1")
			if !res.GetGranted() || res.GetHolder() != "edge-1" || res.GetLeaseTtlMs() != testLeaseTTL.Milliseconds() || res.GetReason() != "" {
				t.Fatalf("first claim = %v; want granted to edge-1 with lease_ttl_ms %d", res, testLeaseTTL.Milliseconds())
			}
			if l := h.lease(t, "sweep"); l == nil || l.AgentID != "edge-1" || !l.ExpiresAt.Equal(t0.Add(testLeaseTTL)) || l.Token != 1 {
				t.Fatalf("lease after the claim = %+v; want edge-1's until %v, token 1", l, t0.Add(testLeaseTTL))
			}

			refusals := []struct {
				name       string
				agent, job string
				at         time.Time
				holder     string
				reason     string
				ttl        time.Duration // only a refusal for another agent's lease says how long it may last
			}{
				{"the same firing by another agent", "edge-2", "sweep", first, "edge-1",
					`agent "edge-1" holds the lease of job "sweep" until 2026-05-06T07:08:39Z`, testLeaseTTL},
				{"the same firing by the holder", "edge-1", "sweep", first, "edge-1",
					`the firing at 2026-05-06T07:09:09Z was already run by agent "edge-1" (cid cid-1)`, 0},
				{"a job on every agent", "edge-1", "beat", first, "",
					`job "beat" runs on every agent; it takes no claims`, 0},
				{"an unknown job", "edge-1", "ghost", first, "", `job "ghost" does not exist`, 0},
			}
			for _, tt := range refusals {
				t.Run(tt.name, func(t *testing.T) {
					res := h.claim(t, tt.agent, tt.job, tt.at, "cid-x")
					if res.GetGranted() || res.GetLeaseTtlMs() != tt.ttl.Milliseconds() || res.GetHolder() != tt.holder || res.GetReason() != tt.reason {
						t.Fatalf("claim = %v; want refused, holder %q, reason %q, lease_ttl_ms %d", res, tt.holder, tt.reason, tt.ttl.Milliseconds())
					}
				})
			}

			// Renewing extends the leases the agent holds and names them.
			h.clock.Advance(10 * time.Second)
			renew := func(agent string, jobs ...string) *agentv1.RenewLeasesResponse {
				t.Helper()
				res, err := h.client.RenewLeases(context.Background(), &agentv1.RenewLeasesRequest{AgentId: agent, Jobs: jobs})
				if err != nil {
					t.Fatalf("%s renews %v: %v", agent, jobs, err)
				}
				return res
			}
			if res := renew("edge-1", "sweep", "beat", "ghost"); !slices.Equal(res.GetHeld(), []string{"sweep"}) || res.GetLeaseTtlMs() != testLeaseTTL.Milliseconds() {
				t.Fatalf("edge-1 renews = %v; want sweep held for %d ms", res, testLeaseTTL.Milliseconds())
			}
			renewedUntil := h.clock.Now().Add(testLeaseTTL)
			if l := h.lease(t, "sweep"); l == nil || l.AgentID != "edge-1" || !l.ExpiresAt.Equal(renewedUntil) {
				t.Fatalf("lease after the renewal = %+v; want edge-1's until %v", l, renewedUntil)
			}
			if res := renew("edge-2", "sweep"); len(res.GetHeld()) != 0 {
				t.Fatalf("edge-2 renews = %v; want nothing held", res)
			}
			if l := h.lease(t, "sweep"); l.AgentID != "edge-1" || !l.ExpiresAt.Equal(renewedUntil) {
				t.Fatalf("lease after another agent's renewal = %+v; want edge-1's until %v", l, renewedUntil)
			}
			if res := renew("edge-1"); len(res.GetHeld()) != 0 {
				t.Fatalf("renewing no jobs = %v; want nothing held", res)
			}

			// Once the lease lapses another agent takes it over for the
			// next firing, and the old holder is refused.
			h.clock.Advance(testLeaseTTL + time.Second)
			second := first.Add(time.Minute)
			if res := h.claim(t, "edge-2", "sweep", second, "cid-2"); !res.GetGranted() || res.GetHolder() != "edge-2" {
				t.Fatalf("claim after the lease lapsed = %v; want granted to edge-2", res)
			}
			if l := h.lease(t, "sweep"); l.AgentID != "edge-2" || l.Token != 2 {
				t.Fatalf("lease after the takeover = %+v; want edge-2's, token 2", l)
			}
			if res := h.claim(t, "edge-1", "sweep", second, "cid-3"); res.GetGranted() || res.GetHolder() != "edge-2" {
				t.Fatalf("old holder's claim after the takeover = %v; want refused, holder edge-2", res)
			}
			if res := renew("edge-1", "sweep"); len(res.GetHeld()) != 0 {
				t.Fatalf("old holder renews = %v; want nothing held", res)
			}
		})
	}
}

func TestReportRuns(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			h := newJobsHarness(t, b)
			ctx := context.Background()
			h.job(t, "sweep", store.PlacementOne)
			firing := h.clock.Now().Add(time.Minute)
			report := func(agent string, runs ...*agentv1.JobRun) {
				t.Helper()
				if _, err := h.client.ReportRuns(ctx, &agentv1.ReportRunsRequest{AgentId: agent, Runs: runs}); err != nil {
					t.Fatalf("%s reports %d runs: %v", agent, len(runs), err)
				}
			}
			run := func(cid, outcome string) *agentv1.JobRun {
				return &agentv1.JobRun{
					Job: "sweep", Cid: cid, Trigger: "schedule", Placement: store.PlacementOne,
					ScheduledAtUnixMs: firing.UnixMilli(), StartedAtUnixMs: firing.UnixMilli(), DurationUs: 1500, Outcome: outcome,
				}
			}

			// Too many runs in one report: none of them is stored.
			var many []*agentv1.JobRun
			for i := range maxRunsReported + 1 {
				many = append(many, &agentv1.JobRun{
					Job: "sweep", Cid: fmt.Sprintf("m%d", i), Trigger: "manual",
					ScheduledAtUnixMs: firing.UnixMilli(), Outcome: "ok",
				})
			}
			_, err := h.client.ReportRuns(ctx, &agentv1.ReportRunsRequest{AgentId: "edge-1", Runs: many})
			if want := "report runs: 10001 runs in one report; send at most 10000"; status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), want) {
				t.Fatalf("report of %d runs: err = %v, want InvalidArgument containing %q", len(many), err, want)
			}
			runs, err := h.store.ListJobRuns(ctx, "sweep", 0)
			if err != nil || len(runs) != 0 {
				t.Fatalf("after a refused report stored %d runs, %v; want none", len(runs), err)
			}

			// edge-1 claims the firing and reports it, twice as a retry would.
			if res := h.claim(t, "edge-1", "sweep", firing, "cid-1"); !res.GetGranted() {
				t.Fatalf("claim = %v, want granted", res)
			}
			report("edge-1", run("cid-1", "ok"))
			report("edge-1", run("cid-1", "ok"))
			if logs := h.logs.String(); strings.Contains(logs, "level=ERROR") {
				t.Fatalf("a report sent again logged an error:\n%s", logs)
			}

			// edge-2 ran the same firing too: logged, not stored.
			report("edge-2", run("cid-2", "error"))
			logs := h.logs.String()
			want := `level=ERROR msg="a firing of a job placed on one agent ran twice; check the agents' clocks" component=dispatch job=sweep agent=edge-2 scheduled_at=2026-05-06T07:09:09.000Z cid=cid-2`
			if !strings.Contains(logs, want) {
				t.Fatalf("logs after a double run:\n%s\nwant a line containing\n%s", logs, want)
			}
			if n := strings.Count(logs, "level=ERROR"); n != 1 {
				t.Fatalf("logged %d errors, want 1:\n%s", n, logs)
			}
			runs, err = h.store.ListJobRuns(ctx, "sweep", 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(runs) != 1 || runs[0].AgentID != "edge-1" || runs[0].CID != "cid-1" || runs[0].Outcome != "ok" || runs[0].DurationUs != 1500 {
				t.Fatalf("runs after the double run = %+v; want edge-1's alone, ok", runs)
			}
		})
	}
}
