package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-dev/weft/controlplane/store/storetest"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	"github.com/weft-dev/weft/tests/testenv"
)

// TestFailover runs two control plane replicas on one MySQL database and
// three agents given both addresses. Under load on the agents' channels,
// the replica that holds them is killed (SIGKILL): no channel request
// fails, the agents move to the other replica, and a change made through
// that one reaches every agent. The time from the kill to the last agent
// applying the change is logged.
func TestFailover(t *testing.T) {
	b := storetest.MySQL(t)
	first := testenv.StartControlPlane(t, b.DSN)
	second := testenv.StartControlPlane(t, b.DSN, testenv.ReplicaOf(first))
	e := &env{cp: first, example: filepath.Join(testenv.ModuleRoot(t), "deploy", "examples", "hello")}
	for i := 1; i <= 3; i++ {
		e.agents = append(e.agents, testenv.StartAgent(t, first, fmt.Sprintf("agent-%d", i),
			testenv.WithArgs("--labels", fmt.Sprintf("site=e2e,n=%d", i),
				"--controlplane", first.Addr+","+second.Addr, "--backoff-max", "1s")))
	}
	// An agent that dies with the replica: it must not stay "connected".
	doomed := testenv.StartAgent(t, first, "agent-doomed", testenv.WithArgs("--labels", "site=e2e",
		"--controlplane", first.Addr+","+second.Addr, "--backoff-max", "1s"))
	e.deployReachesAgents(t)
	e.channelServesJSON(t)
	before := replicasOf(t, second)
	if before["agent-doomed"] == "" || before["agent-1"] != before["agent-doomed"] {
		t.Fatalf("replicas holding the agents: %v; want every one on the replica the agents were given first", before)
	}

	commandsThroughTheOtherReplica(t, e, second, "agent-1")

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	stats := &loadStats{}
	e.runLoad(ctx, &wg, stats)
	defer func() {
		cancel()
		wg.Wait()
	}()
	const enough = 20 // answers per agent before the kill, and after the change
	for _, a := range e.agents {
		testenv.Await(t, reconnectTimeout, a.ID+" answers the load", func() (bool, string) {
			n := stats.count(a.ID, e.greeting)
			return n >= enough, fmt.Sprintf("%d answers", n)
		})
	}

	killed := time.Now()
	first.Kill()
	doomed.Kill()
	// A command for an agent whose replica is gone fails, naming it; so
	// does a fleet-wide read, within the dead replica's lease.
	for _, args := range [][]string{
		{"agent", "logs", "agent-doomed"},
		{"invoke", exampleService, "--data", adaInput, "--agent", "agent-doomed"},
		{"debug", "failures"},
	} {
		if r := testenv.Ctl(t, second, args...); r.ExitCode == 0 || !strings.Contains(r.Stderr, "agent-doomed") {
			t.Errorf("weftctl %s with the agent's replica killed: want a failure naming the agent; got %s", strings.Join(args, " "), r)
		}
	}
	e.cp = second
	var created adminv1.CreateChannelResponse
	testenv.CtlJSON(t, second, &created, "channel", "create", "after-failover",
		"--path", "/after-failover", "--service", exampleService, "--method", "POST")
	rev := created.GetChannel().GetRevision()
	testenv.AwaitAgentsSynced(t, second, rev, reconnectTimeout, e.ids()...)
	t.Logf("every agent applied revision %d, made through the other replica, %v after the kill",
		rev, time.Since(killed).Round(time.Millisecond))
	for _, a := range e.agents {
		resp, err := testenv.Post(context.Background(), a.URL("/after-failover"), adaInput)
		if err != nil || resp.Status != 200 || !strings.Contains(string(resp.Body), e.greeting) {
			t.Errorf("%s /after-failover: %v, %v; want 200 with %q", a.ID, resp, err, e.greeting)
		}
		before := stats.count(a.ID, e.greeting)
		testenv.Await(t, reconnectTimeout, a.ID+" answers the load after the kill", func() (bool, string) {
			n := stats.count(a.ID, e.greeting)
			return n >= before+enough, fmt.Sprintf("%d answers", n)
		})
	}
	// Through the live replica: the agents that moved are connected on it,
	// and the one that died with the other is not connected.
	testenv.Await(t, reconnectTimeout, "the agent list after the kill", func() (bool, string) {
		now := replicasOf(t, second)
		for _, a := range e.agents {
			if now[a.ID] == "" || now[a.ID] == before[a.ID] {
				return false, fmt.Sprintf("%v", now)
			}
		}
		return now["agent-doomed"] == "", fmt.Sprintf("%v", now)
	})
	t.Logf("the agent that died with its replica showed as disconnected %v after the kill", time.Since(killed).Round(time.Millisecond))
	cancel()
	wg.Wait()
	if len(stats.failures) > 0 {
		t.Errorf("%d channel requests failed across the kill; the first: %s", len(stats.failures), stats.failures[0])
	}
}

// replicasOf lists the agents through cp: the replica that holds each
// connected one, by id ("" for one not connected).
func replicasOf(t *testing.T, cp *testenv.ControlPlane) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := cp.Fleet().ListAgents(ctx, &adminv1.ListAgentsRequest{})
	if err != nil {
		t.Fatalf("list agents: %v", err)
	}
	out := map[string]string{}
	for _, a := range list.GetAgents() {
		if a.GetConnected() {
			out[a.GetId()] = a.GetReplica()
		} else {
			out[a.GetId()] = ""
		}
	}
	return out
}

// commandsThroughTheOtherReplica issues, through cp, a replica that does
// not hold the agent id, every command that the agent itself answers: cp
// forwards each to the replica that holds it.
func commandsThroughTheOtherReplica(t *testing.T, e *env, cp *testenv.ControlPlane, id string) {
	t.Helper()
	agent := e.agents[0]
	for _, a := range e.agents {
		if a.ID == id {
			agent = a
		}
	}
	ctl := func(args ...string) testenv.Result {
		t.Helper()
		r := testenv.Ctl(t, cp, args...)
		if r.ExitCode != 0 {
			t.Errorf("weftctl %s through the other replica: %s", strings.Join(args, " "), r)
		}
		return r
	}
	ctl("outgoing", "create", "self", "--address", "http://"+agent.HTTPAddr)
	ctl("job", "create", "greet", "--service", exampleService, "--type", "interval", "--every", "1h", "--payload", adaInput, "--inactive")
	e.sync(t)

	if r := ctl("invoke", exampleService, "--data", adaInput, "--agent", id); !strings.Contains(r.Stdout, e.greeting) {
		t.Errorf("invoke --agent %s through the other replica: want %q; got %s", id, e.greeting, r)
	}
	if r := ctl("agent", "get", id); !strings.Contains(r.Stdout, examplePackage) {
		t.Errorf("agent get %s through the other replica: want its loaded package %s; got %s", id, examplePackage, r)
	}
	// The fleet-wide list of failures, asked of a replica that holds no
	// agent, asks the other replica's agents (with none asked, it would
	// fail: no agent is connected).
	var failures adminv1.ListSamplesResponse
	testenv.CtlJSON(t, cp, &failures, "debug", "failures")
	if len(failures.GetUnreachable()) > 0 {
		t.Errorf("debug failures through the other replica: not asked %v; want every agent asked", failures.GetUnreachable())
	}
	tailThrough(t, cp, agent, "--agent", id)
	tailThrough(t, cp, agent)
	ctl("agent", "logs", id)
	ctl("agent", "backups", id)
	ctl("debug", "failures", "--agent", id)
	if r := ctl("outgoing", "ping", "self", "--agent", id); !strings.Contains(r.Stdout, agent.HTTPAddr) {
		t.Errorf("outgoing ping --agent %s through the other replica: want its address; got %s", id, r)
	}
	if r := ctl("job", "run", "greet", "--agent", id); !strings.Contains(r.Stdout, id) {
		t.Errorf("job run --agent %s through the other replica: want a run on it; got %s", id, r)
	}
	// Without --agent, a replica that holds no agent hands the call to one
	// that does.
	if r := ctl("invoke", exampleService, "--data", adaInput); !strings.Contains(r.Stdout, e.greeting) {
		t.Errorf("invoke through a replica without agents: want %q; got %s", e.greeting, r)
	}
	ctl("outgoing", "ping", "self")
	if r := ctl("job", "run", "greet"); !strings.Contains(r.Stdout, id) {
		t.Errorf("job run through a replica without agents: want a run on %s among the others; got %s", id, r)
	}
}

// tailThrough runs weftctl tail, with args, through cp until a request to
// agent's channel shows in it.
func tailThrough(t *testing.T, cp *testenv.ControlPlane, agent *testenv.Agent, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, testenv.Binary(t, testenv.CtlBinary), append([]string{"--addr", cp.Addr, "tail", "-o", "json"}, args...)...)
	cmd.Env = cp.CtlEnviron()
	var stdout, stderr testenv.LogBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		_ = cmd.Wait()
	}()
	// A request shows in the tail a batch later: any request posted counts.
	var cids []string
	testenv.Await(t, reconnectTimeout, fmt.Sprintf("weftctl tail %s through the other replica shows a request to %s", strings.Join(args, " "), agent.ID), func() (bool, string) {
		cids = append(cids, post(t, agent.URL(channelPath), adaInput, http.StatusOK))
		out := stdout.String()
		return slices.ContainsFunc(cids, func(cid string) bool { return strings.Contains(out, cid) }), out + stderr.String()
	})
	if strings.Contains(stderr.String(), "not tailing") {
		t.Errorf("weftctl tail %s through the other replica: %s", strings.Join(args, " "), stderr.String())
	}
}
