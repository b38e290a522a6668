package e2e

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	"github.com/weft-dev/weft/tests/testenv"
)

// deployReachesAgents: a deploy prints its revision, both agents ACK it within
// 2 s, and weftctl shows them in sync; deploying the same source again stores
// nothing.
func (e *env) deployReachesAgents(t *testing.T) {
	rev := e.deploy(t, e.example)
	testenv.AwaitAgentsSynced(t, e.cp, rev, syncTimeout, e.ids()...)
	e.rev, e.greeting = rev, "Hello, Ada!"

	// The table: one line per agent with its status and revisions.
	res := testenv.Ctl(t, e.cp, "agent", "list")
	if res.ExitCode != 0 {
		t.Fatalf("weftctl agent list: %s", res)
	}
	for _, a := range e.agents {
		var line []string
		for _, l := range strings.Split(res.Stdout, "\n") {
			if f := strings.Fields(l); len(f) > 0 && f[0] == a.ID {
				line = f
			}
		}
		if line == nil || !slices.Contains(line, "in-sync") || !slices.Contains(line, strconv.FormatInt(rev, 10)) {
			t.Errorf("weftctl agent list: want %s in-sync at revision %d; got:\n%s", a.ID, rev, res.Stdout)
		}
	}

	// The JSON: every field the acceptance list names.
	var list adminv1.ListAgentsResponse
	testenv.CtlJSON(t, e.cp, &list, "agent", "list")
	for _, a := range e.agents {
		i := slices.IndexFunc(list.GetAgents(), func(r *adminv1.Agent) bool { return r.GetId() == a.ID })
		if i < 0 {
			t.Errorf("weftctl -o json agent list: no agent %s", a.ID)
			continue
		}
		r := list.GetAgents()[i]
		if !r.GetConnected() || r.GetAppliedRevision() != rev || r.GetDesiredRevision() != rev ||
			r.GetSyncStatus() != adminv1.SyncStatus_SYNC_STATUS_IN_SYNC ||
			r.GetHttpAddress() != a.HTTPAddr || r.GetPid() != int64(a.PID()) {
			t.Errorf("weftctl -o json agent list: got %s http=%s; want connected, applied=desired=%d, IN_SYNC, http=%s, pid=%d",
				testenv.DescribeAgent(r), r.GetHttpAddress(), rev, a.HTTPAddr, a.PID())
		}
		if r.GetLabels()["site"] != "e2e" {
			t.Errorf("weftctl -o json agent list: %s labels %v; want site=e2e", a.ID, r.GetLabels())
		}
	}

	// The same source again: unchanged, same revision, protojson with proto
	// field names and int64 as strings.
	var again adminv1.DeployResponse
	raw := testenv.CtlJSON(t, e.cp, &again, "deploy", e.example)
	if again.GetRevision() != rev || len(again.GetPackages()) != 1 || !again.GetPackages()[0].GetUnchanged() ||
		again.GetPackages()[0].GetPackage().GetVersion() != e.version {
		t.Errorf("deploying the same source again: got %v; want unchanged %s v%d at revision %d", &again, examplePackage, e.version, rev)
	}
	if !regexp.MustCompile(`"revision":\s*"`+strconv.FormatInt(rev, 10)+`"`).MatchString(raw.Stdout) ||
		!strings.Contains(raw.Stdout, `"size_bytes"`) {
		t.Errorf("weftctl -o json deploy: want proto field names and int64 as strings; got:\n%s", raw.Stdout)
	}

	res = testenv.Ctl(t, e.cp, "service", "list")
	if res.ExitCode != 0 || !strings.Contains(res.Stdout, exampleService) {
		t.Errorf("weftctl service list: want %s; got %s", exampleService, res)
	}
}

// channelServesJSON: a channel is created; a JSON POST to each agent returns
// the service's JSON output.
func (e *env) channelServesJSON(t *testing.T) {
	var created adminv1.CreateChannelResponse
	testenv.CtlJSON(t, e.cp, &created, "channel", "create", channelName,
		"--path", channelPath, "--service", exampleService, "--method", "POST")
	ch := created.GetChannel()
	if ch.GetName() != channelName || ch.GetPath() != channelPath || ch.GetService() != exampleService {
		t.Fatalf("weftctl channel create: got %v", ch)
	}
	if ch.GetRevision() <= e.rev {
		t.Fatalf("weftctl channel create: revision %d; want more than %d", ch.GetRevision(), e.rev)
	}
	e.rev = ch.GetRevision()
	testenv.AwaitAgentsSynced(t, e.cp, e.rev, syncTimeout, e.ids()...)

	e.wantGreeting(t, e.greeting)

	res := testenv.Ctl(t, e.cp, "channel", "list")
	if res.ExitCode != 0 || !strings.Contains(res.Stdout, channelName) || !strings.Contains(res.Stdout, channelPath) {
		t.Errorf("weftctl channel list: want %s at %s; got %s", channelName, channelPath, res)
	}
	res = testenv.Ctl(t, e.cp, "invoke", exampleService, "--data", adaInput, "--agent", e.agents[1].ID)
	if res.ExitCode != 0 || !strings.Contains(res.Stdout, e.greeting) {
		t.Errorf("weftctl invoke %s: want %q; got %s", exampleService, e.greeting, res)
	}
}

// loadStats counts what a client calling in a loop saw, per agent.
type loadStats struct {
	mu        sync.Mutex
	greetings map[string]map[string]int // agent id -> greeting -> count
	failures  []string
}

func (s *loadStats) count(id, greeting string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.greetings[id][greeting]
}

// runLoad POSTs Ada to the channel on every agent from two goroutines per
// agent until ctx ends, and records every answer.
func (e *env) runLoad(ctx context.Context, wg *sync.WaitGroup, stats *loadStats) {
	// Every agent's map is made before any goroutine reads the outer one.
	stats.greetings = map[string]map[string]int{}
	for _, a := range e.agents {
		stats.greetings[a.ID] = map[string]int{}
	}
	for _, a := range e.agents {
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					resp, err := testenv.Post(ctx, a.URL(channelPath), adaInput)
					if ctx.Err() != nil {
						return
					}
					var greeting string
					if err == nil && resp.Status != 200 {
						err = fmt.Errorf("%s", resp)
					}
					if err == nil {
						greeting, err = greetingOf(resp.Body)
					}
					stats.mu.Lock()
					if err != nil {
						stats.failures = append(stats.failures, fmt.Sprintf("%s: %v", a.ID, err))
					} else {
						stats.greetings[a.ID][greeting]++
					}
					stats.mu.Unlock()
				}
			}()
		}
	}
}

// hotSwap: a changed version deployed while clients call in a loop reaches
// both agents within 2 s; no request fails and no agent restarts.
func (e *env) hotSwap(t *testing.T) {
	type proc struct {
		pid     int
		started string
	}
	before := map[string]proc{}
	for _, a := range e.agents {
		before[a.ID] = proc{a.PID(), a.Record(t).GetStartedAt().String()}
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	stats := &loadStats{}
	e.runLoad(ctx, &wg, stats)
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			wg.Wait()
		}
	}
	defer stop()

	const enough = 20 // answers per agent before and after the swap
	old := e.greeting
	for _, a := range e.agents {
		testenv.Await(t, reconnectTimeout, a.ID+" answers the load", func() (bool, string) {
			n := stats.count(a.ID, old)
			return n >= enough, fmt.Sprintf("%d answers %q", n, old)
		})
	}

	rev := e.deploy(t, e.variant(t, "Hi", nil))
	testenv.AwaitAgentsSynced(t, e.cp, rev, syncTimeout, e.ids()...)
	e.rev, e.greeting = rev, "Hi, Ada!"
	// An ACK means the agent serves the new version: no waiting here.
	e.wantGreeting(t, e.greeting)
	for _, a := range e.agents {
		testenv.Await(t, reconnectTimeout, a.ID+" answers the load with the new version", func() (bool, string) {
			n := stats.count(a.ID, e.greeting)
			return n >= enough, fmt.Sprintf("%d answers %q", n, e.greeting)
		})
	}
	stop()

	if n := len(stats.failures); n > 0 {
		t.Errorf("%d requests failed during the swap; the first: %s", n, strings.Join(stats.failures[:min(n, 5)], "; "))
	}
	for _, a := range e.agents {
		got := stats.greetings[a.ID]
		t.Logf("%s answered during the swap: %v", a.ID, got)
		for g := range got {
			if g != old && g != e.greeting {
				t.Errorf("%s answered %q during the swap; want only %q or %q", a.ID, g, old, e.greeting)
			}
		}
		b := before[a.ID]
		rec := a.Record(t)
		if !a.Running() || a.PID() != b.pid || rec.GetPid() != int64(b.pid) || rec.GetStartedAt().String() != b.started {
			t.Errorf("%s restarted: pid %d (running %t), listed pid %d started %s; before: pid %d started %s",
				a.ID, a.PID(), a.Running(), rec.GetPid(), rec.GetStartedAt(), b.pid, b.started)
		}
	}
}

// compileErrorRefused: a package that does not compile is refused at the door
// with file:line, and the previous version keeps serving.
func (e *env) compileErrorRefused(t *testing.T) {
	tests := []struct {
		name string
		stmt string // line 4 of broken.go
	}{
		{"undefined name", "return undefinedThing"},
		{"type mismatch", `return "four"`},
		{"syntax error", "return 1 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.stored(t)
			broken := fmt.Sprintf("package %s\n\nfunc broken() int {\n\t%s\n}\n", examplePackage, tt.stmt)
			dir := e.variant(t, "Broken", map[string]string{"broken.go": broken})
			res := testenv.Ctl(t, e.cp, "deploy", dir)
			if res.ExitCode == 0 {
				t.Fatalf("weftctl deploy of a package that does not compile succeeded: %s", res)
			}
			if !regexp.MustCompile(`\bbroken\.go:4\b`).MatchString(res.Stderr) {
				t.Errorf("weftctl deploy: stderr does not name broken.go:4:\n%s", res.Stderr)
			}
			e.wantUnchanged(t, before)
		})
	}
}

// agentCatchesUp: an agent that was down during a deploy syncs to the new
// revision when it starts.
func (e *env) agentCatchesUp(t *testing.T) {
	down := e.agents[1]
	down.Stop(t)
	testenv.Await(t, reconnectTimeout, "the control plane sees "+down.ID+" disconnected", func() (bool, string) {
		rec := down.Record(t)
		return !rec.GetConnected(), testenv.DescribeAgent(rec)
	})

	prev := e.rev
	rev := e.deploy(t, e.variant(t, "Hey", nil))
	testenv.AwaitAgentsSynced(t, e.cp, rev, syncTimeout, e.agents[0].ID)
	e.rev, e.greeting = rev, "Hey, Ada!"
	e.wantGreeting(t, e.greeting, e.agents[0])

	rec := down.Record(t)
	if rec.GetConnected() || rec.GetAppliedRevision() != prev || rec.GetDesiredRevision() != rev ||
		rec.GetSyncStatus() != adminv1.SyncStatus_SYNC_STATUS_DISCONNECTED {
		t.Errorf("stopped agent: got %s; want disconnected, applied=%d, desired=%d, DISCONNECTED", testenv.DescribeAgent(rec), prev, rev)
	}

	down.Start(t)
	testenv.AwaitAgentsSynced(t, e.cp, rev, reconnectTimeout, down.ID)
	e.wantGreeting(t, e.greeting, down)
}

// grpcurl: the real grpcurl lists the services through reflection, calls an
// admin RPC and the health check.
func (e *env) grpcurl(t *testing.T) {
	addr := e.cp.Addr
	res := e.cp.Grpcurl(t, addr, "list")
	if res.ExitCode != 0 {
		t.Fatalf("grpcurl list: %s", res)
	}
	for _, svc := range []string{
		"weft.admin.v1.PackageService",
		"weft.admin.v1.ChannelService",
		"weft.admin.v1.FleetService",
		"weft.agent.v1.AgentService",
		"grpc.health.v1.Health",
	} {
		if !slices.Contains(strings.Fields(res.Stdout), svc) {
			t.Errorf("grpcurl list: no %s in:\n%s", svc, res.Stdout)
		}
	}

	res = e.cp.Grpcurl(t, addr, "weft.admin.v1.FleetService/ListAgents")
	if res.ExitCode != 0 {
		t.Fatalf("grpcurl ListAgents: %s", res)
	}
	var list adminv1.ListAgentsResponse
	if err := protojson.Unmarshal([]byte(res.Stdout), &list); err != nil {
		t.Fatalf("grpcurl ListAgents: decode: %v\n%s", err, res.Stdout)
	}
	for _, a := range e.agents {
		if !slices.ContainsFunc(list.GetAgents(), func(r *adminv1.Agent) bool {
			return r.GetId() == a.ID && r.GetConnected() && r.GetAppliedRevision() == e.rev
		}) {
			t.Errorf("grpcurl ListAgents: no connected %s at revision %d in:\n%s", a.ID, e.rev, res.Stdout)
		}
	}

	res = e.cp.Grpcurl(t, "-d", `{"name":"`+channelName+`"}`, addr, "weft.admin.v1.ChannelService/GetChannel")
	if res.ExitCode != 0 || !strings.Contains(res.Stdout, channelPath) {
		t.Errorf("grpcurl GetChannel: want %s; got %s", channelPath, res)
	}

	// The health check needs no token.
	res = testenv.Grpcurl(t, "-cacert", e.cp.CAFile(), addr, "grpc.health.v1.Health/Check")
	if res.ExitCode != 0 || !strings.Contains(res.Stdout, `"SERVING"`) {
		t.Errorf("grpcurl health check: want SERVING; got %s", res)
	}
}

// withUnknownField returns m with an unknown field number 99 set.
func withUnknownField[M proto.Message](m M) M {
	var b []byte
	b = protowire.AppendTag(b, 99, protowire.VarintType)
	b = protowire.AppendVarint(b, 1)
	m.ProtoReflect().SetUnknown(b)
	return m
}

// badInput: each kind of bad input gets a clear error and changes nothing
// that is stored or serving.
func (e *env) badInput(t *testing.T) {
	wantCtlError := func(t *testing.T, res testenv.Result, mention string) {
		t.Helper()
		if res.ExitCode == 0 {
			t.Errorf("want a non-zero exit; got %s", res)
		}
		if !strings.Contains(res.Stderr, mention) {
			t.Errorf("stderr does not mention %q:\n%s", mention, res.Stderr)
		}
	}
	wantHTTPError := func(t *testing.T, body, mention string) {
		t.Helper()
		for _, a := range e.agents {
			resp := testenv.PostJSON(t, a.URL(channelPath), body)
			if resp.Status != 400 {
				t.Errorf("%s: POST %s %s: %s; want 400", a.ID, channelPath, body, resp)
				continue
			}
			if !strings.Contains(strings.ToLower(string(resp.Body)), mention) {
				t.Errorf("%s: POST %s %s: %s; want a message mentioning %q", a.ID, channelPath, body, resp, mention)
			}
		}
	}
	smuggled := &adminv1.Channel{Name: "smuggled", Path: "/api/smuggled", Service: exampleService}
	wantInvalidArgument := func(t *testing.T, req *adminv1.CreateChannelRequest) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), reconnectTimeout)
		defer cancel()
		_, err := e.cp.Channels().CreateChannel(ctx, req)
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("CreateChannel with an unknown field: got %v; want InvalidArgument", err)
		}
		if !strings.Contains(status.Convert(err).Message(), "99") {
			t.Errorf("CreateChannel with an unknown field: message %q does not name field 99", status.Convert(err).Message())
		}
	}

	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"channel for an unknown service", func(t *testing.T) {
			wantCtlError(t, testenv.Ctl(t, e.cp, "channel", "create", "ghost", "--path", "/api/ghost", "--service", "no.such.service"), "no.such.service")
		}},
		{"duplicate channel path", func(t *testing.T) {
			wantCtlError(t, testenv.Ctl(t, e.cp, "channel", "create", "hello-again", "--path", channelPath, "--service", exampleService), channelPath)
		}},
		{"duplicate channel name", func(t *testing.T) {
			wantCtlError(t, testenv.Ctl(t, e.cp, "channel", "create", channelName, "--path", "/api/hello-again", "--service", exampleService), channelName)
		}},
		{"channel path without a leading slash", func(t *testing.T) {
			wantCtlError(t, testenv.Ctl(t, e.cp, "channel", "create", "relative", "--path", "api/relative", "--service", exampleService), "path")
		}},
		{"update of an unknown channel", func(t *testing.T) {
			wantCtlError(t, testenv.Ctl(t, e.cp, "channel", "update", "nosuch", "--path", "/api/nosuch"), "nosuch")
		}},
		{"delete of an unknown channel", func(t *testing.T) {
			wantCtlError(t, testenv.Ctl(t, e.cp, "channel", "delete", "nosuch"), "nosuch")
		}},
		{"deploy of a missing path", func(t *testing.T) {
			wantCtlError(t, testenv.Ctl(t, e.cp, "deploy", t.TempDir()+"/nonexistent"), "nonexistent")
		}},
		{"invoke of an unknown service", func(t *testing.T) {
			wantCtlError(t, testenv.Ctl(t, e.cp, "invoke", "no.such.service", "--data", adaInput), "no.such.service")
		}},
		{"malformed JSON to a channel", func(t *testing.T) {
			wantHTTPError(t, `{"name":`, "json")
		}},
		{"wrong JSON type to a channel", func(t *testing.T) {
			wantHTTPError(t, `{"name":42}`, "name")
		}},
		{"missing required field to a channel", func(t *testing.T) {
			wantHTTPError(t, `{}`, "name")
		}},
		{"unknown JSON field through grpcurl", func(t *testing.T) {
			res := e.cp.Grpcurl(t, "-d",
				`{"channel":{"name":"smuggled","path":"/api/smuggled","service":"`+exampleService+`"},"bogus":1}`,
				e.cp.Addr, "weft.admin.v1.ChannelService/CreateChannel")
			wantCtlError(t, res, "bogus")
		}},
		{"unknown proto field in a request", func(t *testing.T) {
			wantInvalidArgument(t, withUnknownField(&adminv1.CreateChannelRequest{Channel: proto.Clone(smuggled).(*adminv1.Channel)}))
		}},
		{"unknown proto field in a nested message", func(t *testing.T) {
			wantInvalidArgument(t, &adminv1.CreateChannelRequest{Channel: withUnknownField(proto.Clone(smuggled).(*adminv1.Channel))})
		}},
		{"unreachable control plane", func(t *testing.T) {
			addr := testenv.ClosedAddr(t)
			wantCtlError(t, testenv.CtlAddr(t, addr, "agent", "list"), addr)
			wantCtlError(t, testenv.CtlAddr(t, addr, "deploy", e.example), addr)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.stored(t)
			tt.run(t)
			e.wantUnchanged(t, before)
		})
	}
}

// controlPlaneRestart: agents keep serving while the control plane is down,
// reconnect when it is back, and the store kept everything.
func (e *env) controlPlaneRestart(t *testing.T) {
	before := e.stored(t)
	pids := map[string]int{}
	for _, a := range e.agents {
		pids[a.ID] = a.PID()
	}

	e.cp.Stop(t)
	e.wantGreeting(t, e.greeting)
	e.cp.Start(t)

	testenv.AwaitAgentsSynced(t, e.cp, e.rev, reconnectTimeout, e.ids()...)
	e.wantUnchanged(t, before)
	for _, a := range e.agents {
		if a.PID() != pids[a.ID] || !a.Running() {
			t.Errorf("%s restarted with the control plane: pid %d, was %d", a.ID, a.PID(), pids[a.ID])
		}
	}
}
