package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-dev/weft/controlplane/store/storetest"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	"github.com/weft-dev/weft/tests/testenv"
)

// The load TestObservability makes of flaky.run through its channel.
const (
	obsCalls    = 30 // requests in all
	obsFailures = 6  // of which fail (500)
	obsSlow     = 2  // of which take 150 ms, over the service's 100 ms threshold
	obsPassword = "hunter2-never-shown"
)

// obsEnv is a control plane and an agent, both serving /metrics, and the
// requests made of them.
type obsEnv struct {
	*env
	agent                  *testenv.Agent
	cpMetrics, agentMetric string
	failed, slow, all      []string // CIDs
	tail                   *tailProc
	parent                 *testing.T // the backend's test, which outlives the steps
}

// TestObservability makes a known load of a service that fails and is slow
// on demand, and checks what Weft reports of it with the real weftctl:
// stats count exactly the requests and the failures, per service and per
// channel, and survive a control plane restart; a tail started before the
// load shows every request; the failures and slow lists hold the calls by
// their CID, with the password redacted; the agent's logs hold the CID;
// /metrics of both parses with the Prometheus text parser.
func TestObservability(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			e := newObsEnv(t, b.DSN)
			runSteps(t, []step{
				{"a tail started before the load", e.startTail},
				{"the load", e.load},
				{"stats count every request and failure", e.statsExact},
				{"the tail showed every request", e.tailShowed},
				{"failures and slow calls are kept with their CID, secrets redacted", e.samples},
				{"the agent's logs carry the CID", e.logs},
				{"/metrics parses on the control plane and the agent", e.metrics},
				{"stats survive a control plane restart", e.restart},
			})
		})
	}
}

func newObsEnv(t *testing.T, dsn string) *obsEnv {
	t.Helper()
	e := &obsEnv{cpMetrics: testenv.FreeAddr(t), agentMetric: testenv.FreeAddr(t), parent: t}
	cp := testenv.StartControlPlane(t, dsn, testenv.WithArgs("--metrics", e.cpMetrics))
	e.agent = testenv.StartAgent(t, cp, "obs-1", testenv.WithArgs("--stats-interval", "500ms", "--metrics", e.agentMetric))
	e.env = &env{cp: cp, agents: []*testenv.Agent{e.agent}, example: filepath.Join(testenv.ModuleRoot(t), "deploy", "examples", "hello")}
	e.ctlOK(t, "deploy", e.example, filepath.Join("testdata", "flaky"), "--wait")
	e.ctlOK(t, "channel", "create", "flaky", "--path", "/api/flaky", "--service", "flaky.run")
	e.ctlOK(t, "channel", "create", channelName, "--path", channelPath, "--service", exampleService)
	e.sync(t)
	return e
}

// tailProc is a running weftctl tail and what it printed.
type tailProc struct {
	cmd *exec.Cmd
	mu  sync.Mutex
	out bytes.Buffer
}

func (p *tailProc) text() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (e *obsEnv) startTail(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, testenv.Binary(t, testenv.CtlBinary), "--addr", e.cp.Addr, "tail", "-o", "json")
	cmd.Env = e.cp.CtlEnviron()
	p := &tailProc{cmd: cmd}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
	}()
	// The tail runs through the later steps: it ends with the backend's test.
	e.parent.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if e.parent.Failed() {
			e.parent.Logf("weftctl tail printed:\n%s\nstderr:\n%s", p.text(), stderr.String())
		}
	})
	e.tail = p
	// The tail is on once a request to the example shows in it.
	testenv.Await(t, 15*time.Second, "the tail shows a probe request", func() (bool, string) {
		cid := post(t, e.agent.URL(channelPath), adaInput, http.StatusOK)
		time.Sleep(200 * time.Millisecond)
		return strings.Contains(p.text(), cid), p.text()
	})
}

// post sends body to url, wants status, and returns the call's CID.
func post(t *testing.T, url, body string, want int) string {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("POST %s: %d %s; want %d", url, resp.StatusCode, b, want)
	}
	return resp.Header.Get("X-Weft-CID")
}

func (e *obsEnv) load(t *testing.T) {
	url := e.agent.URL("/api/flaky")
	for i := range obsCalls {
		var cid string
		switch {
		case i < obsFailures:
			cid = post(t, url, fmt.Sprintf(`{"fail":true,"password":%q}`, obsPassword), http.StatusInternalServerError)
			e.failed = append(e.failed, cid)
		case i < obsFailures+obsSlow:
			cid = post(t, url, `{"sleep_ms":150}`, http.StatusOK)
			e.slow = append(e.slow, cid)
		default:
			cid = post(t, url, `{}`, http.StatusOK)
		}
		if cid == "" {
			t.Fatal("a response lacks X-Weft-CID")
		}
		e.all = append(e.all, cid)
	}
}

// stats is weftctl stats NAME -o json for kind, once the count reached
// want (the agent reports every half second).
func (e *obsEnv) stats(t *testing.T, kind, name string, want int64) *adminv1.StatsTotals {
	t.Helper()
	var totals *adminv1.StatsTotals
	testenv.Await(t, 20*time.Second, fmt.Sprintf("stats of %s %s count %d", kind, name, want), func() (bool, string) {
		resp := &adminv1.GetStatsResponse{}
		testenv.CtlJSON(t, e.cp, resp, "stats", name, "--kind", kind, "--since", "15m")
		for _, o := range resp.GetObjects() {
			if o.GetName() == name {
				totals = o.GetTotals()
			}
		}
		return totals.GetCount() == want, fmt.Sprint(totals)
	})
	return totals
}

func (e *obsEnv) statsExact(t *testing.T) {
	for _, kind := range []string{"service", "channel"} {
		name := map[string]string{"service": "flaky.run", "channel": "flaky"}[kind]
		tot := e.stats(t, kind, name, obsCalls)
		if tot.GetErrors() != obsFailures {
			t.Errorf("%s %s: errors %d, want %d", kind, name, tot.GetErrors(), obsFailures)
		}
		if tot.GetStatuses()[500] != obsFailures || tot.GetStatuses()[200] != obsCalls-obsFailures {
			t.Errorf("%s %s: statuses %v, want 500: %d, 200: %d", kind, name, tot.GetStatuses(), obsFailures, obsCalls-obsFailures)
		}
		p50, p99, max := time.Duration(tot.GetP50Us())*time.Microsecond, time.Duration(tot.GetP99Us())*time.Microsecond, time.Duration(tot.GetMaxUs())*time.Microsecond
		if p50 <= 0 || p50 > 100*time.Millisecond || max < 150*time.Millisecond || max > 5*time.Second || p99 > max || p50 > p99 {
			t.Errorf("%s %s: p50 %s, p99 %s, max %s; want 0 < p50 < 100ms ≤ 150ms ≤ max, p50 ≤ p99 ≤ max", kind, name, p50, p99, max)
		}
	}
	table := e.ctlOK(t, "stats", "--since", "15m").Stdout
	if !strings.Contains(table, "flaky.run") || !strings.Contains(table, fmt.Sprint(obsCalls)) {
		t.Errorf("weftctl stats table lacks flaky.run with %d calls:\n%s", obsCalls, table)
	}
}

func (e *obsEnv) tailShowed(t *testing.T) {
	testenv.Await(t, 10*time.Second, "every request in the tail", func() (bool, string) {
		out := e.tail.text()
		for _, cid := range e.all {
			if !strings.Contains(out, cid) {
				return false, "missing " + cid
			}
		}
		return true, ""
	})
}

func (e *obsEnv) samples(t *testing.T) {
	for _, c := range []struct {
		which string
		want  []string
	}{{"failures", e.failed}, {"slow", e.slow}} {
		resp := &adminv1.ListSamplesResponse{}
		res := testenv.CtlJSON(t, e.cp, resp, "debug", c.which, "flaky.run")
		got := map[string]*adminv1.Sample{}
		for _, s := range resp.GetSamples() {
			got[s.GetCid()] = s
		}
		for _, cid := range c.want {
			s := got[cid]
			if s == nil {
				t.Errorf("weftctl debug %s lacks the call %s:\n%s", c.which, cid, res.Stdout)
				continue
			}
			if c.which == "failures" && (s.GetStatus() != 500 || !strings.Contains(s.GetError(), "asked to fail") || len(s.GetRequestSample()) == 0) {
				t.Errorf("failure %s: status %d, error %q, request %q; want 500, the error and a sample", cid, s.GetStatus(), s.GetError(), s.GetRequestSample())
			}
		}
		if strings.Contains(res.Stdout, obsPassword) {
			t.Errorf("weftctl debug %s shows the password", c.which)
		}
	}
	if verbose := e.ctlOK(t, "debug", "failures", "flaky.run", "-v").Stdout; !strings.Contains(verbose, e.failed[0]) || strings.Contains(verbose, obsPassword) {
		t.Errorf("weftctl debug failures -v: want the CID %s and no password:\n%s", e.failed[0], verbose)
	}
}

func (e *obsEnv) logs(t *testing.T) {
	out := e.ctlOK(t, "agent", "logs", e.agent.ID, "--since", "10m", "--raw").Stdout
	if !strings.Contains(out, e.failed[0]) {
		t.Errorf("the agent's logs lack the failed call's CID %s:\n%s", e.failed[0], out)
	}
	if strings.Contains(out, obsPassword) {
		t.Error("the agent's logs hold the password")
	}
}

func (e *obsEnv) metrics(t *testing.T) {
	for _, m := range []struct{ who, addr, family string }{
		{"control plane", e.cpMetrics, "weft_controlplane_revision"},
		{"agent", e.agentMetric, "weft_agent_invocations_total"},
	} {
		families := testenv.Metrics(t, m.addr)
		if families[m.family] == nil {
			t.Errorf("%s /metrics lacks %s", m.who, m.family)
		}
		if m.who != "agent" {
			continue
		}
		var calls float64
		for _, mt := range families[m.family].GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "service" && l.GetValue() == "flaky.run" {
					calls += mt.GetCounter().GetValue()
				}
			}
		}
		if calls != obsCalls {
			t.Errorf("agent /metrics counts %g calls of flaky.run, want %d", calls, obsCalls)
		}
	}
}

func (e *obsEnv) restart(t *testing.T) {
	e.cp.Restart(t)
	testenv.AwaitAgentsSynced(t, e.cp, e.cp.DesiredRevision(t), time.Minute, e.agent.ID)
	tot := e.stats(t, "service", "flaky.run", obsCalls)
	if tot.GetErrors() != obsFailures {
		t.Errorf("after a restart: errors %d, want %d", tot.GetErrors(), obsFailures)
	}
}
