package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weft-dev/weft/controlplane/store/storetest"
	"github.com/weft-dev/weft/tests/testenv"
)

// loadClients is how many clients call channel A at once while services
// crash workers: at most this many requests are in flight at a crash.
const loadClients = 4

// TestWorkerCrashes runs an agent with one worker, then one with two,
// capped at 512 MiB each. While channel A (hello) is called all along by
// loadClients clients, a
// service recurses without end, another writes one map from several
// goroutines, another allocates 4 GB. Each call ends its worker: the call
// fails, the agent is the same process, its log names the cause, /metrics
// counts the exit by reason, and a new worker takes the slot. Of the calls
// on A, only some in flight on a dead worker may fail (at most
// loadClients per crash, each a broken connection, never an HTTP error):
// with one worker, the requests that come while it is replaced wait for
// the new one. How many failed is logged, and how long each replacement
// took.
func TestWorkerCrashes(t *testing.T) {
	for _, workers := range []string{"1", "2"} {
		t.Run("workers="+workers, func(t *testing.T) { workerCrashes(t, workers) })
	}
}

func workerCrashes(t *testing.T, workers string) {
	cp := testenv.StartControlPlane(t, storetest.SQLite(t).DSN)
	metricsAddr := testenv.FreeAddr(t)
	// The agent as it ships: the race runtime changes what a service's
	// allocations and stack do to a process.
	agent := testenv.StartAgent(t, cp, "workers-1", testenv.WithBinary(testenv.ShippedAgent(t)),
		testenv.WithArgs("--workers", workers, "--worker-memory-limit", "512MiB", "--metrics", metricsAddr))
	e := &env{cp: cp, agents: []*testenv.Agent{agent}}
	e.ctlOK(t, "deploy", filepath.Join("testdata", "crashers"), "--wait")
	e.ctlOK(t, "deploy", filepath.Join(testenv.ModuleRoot(t), "deploy", "examples", "hello"), "--wait")
	for _, name := range []string{"recurse", "maps", "hog"} {
		e.ctlOK(t, "channel", "create", "crash-"+name, "--path", "/api/crash/"+name, "--service", "crash."+name, "--timeout", "20s")
	}
	e.ctlOK(t, "channel", "create", "hello", "--path", "/api/hello", "--service", "hello.greet")
	e.sync(t)
	pid := agent.PID()

	load := loadAlong(agent.URL("/api/hello"), `{"name":"Ada"}`, loadClients)
	for _, c := range []struct{ name, reason, cause string }{
		{"recurse", "stack", "stack overflow"},
		{"maps", "fatal", "concurrent map writes"},
		{"hog", "memory", "out of memory"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := load.snapshot()
			resp, err := testenv.Post(context.Background(), agent.URL("/api/crash/"+c.name), `{}`)
			if err == nil {
				t.Fatalf("crash.%s answered %s; want its worker to end under the call", c.name, resp)
			}
			testenv.Await(t, time.Minute, "the worker exit counted by reason "+c.reason, func() (bool, string) {
				n := agentMetric(t, metricsAddr, "weft_agent_worker_exits_total", "reason", c.reason)
				return n == 1, fmt.Sprintf("weft_agent_worker_exits_total{reason=%q} = %v", c.reason, n)
			})
			testenv.Await(t, time.Minute, "the log naming the cause", func() (bool, string) {
				log := readLog(t, agent.LogPath())
				return strings.Contains(log, "a worker process ended") && strings.Contains(log, c.cause), "no line names " + c.cause
			})
			if !agent.Running() || agent.PID() != pid {
				t.Fatal("the agent did not survive its worker's crash")
			}
			// Every slot serves again (the new worker loaded the
			// snapshot before it took requests).
			awaitReplaced(t, agent)
			if r := testenv.PostJSON(t, agent.URL("/api/hello"), `{"name":"Bo"}`); r.Status != 200 {
				t.Fatalf("channel A after the crash: %s", r)
			}
			after := load.snapshot()
			t.Logf("crash.%s: its call failed (%v); channel A meanwhile: %d answered, %d failed", c.name, err, after.ok-before.ok, after.failed-before.failed)
		})
	}
	// The control stream went on: a change after the crashes is served.
	e.ctlOK(t, "channel", "create", "after", "--path", "/api/after", "--service", "hello.greet")
	e.sync(t)
	if r := testenv.PostJSON(t, agent.URL("/api/after"), `{"name":"Cy"}`); r.Status != 200 {
		t.Fatalf("a channel created after the crashes: %s", r)
	}
	total := load.stop()
	if total.ok == 0 {
		t.Fatal("channel A answered nothing under load")
	}
	for _, f := range total.failures {
		if f.status != 0 {
			t.Errorf("channel A answered HTTP %d under load; only broken connections of a dead worker may fail: %s", f.status, f.what)
		}
	}
	if n := len(total.failures); n > 3*loadClients {
		t.Errorf("channel A: %d calls failed over 3 crashes; at most %d (the calls in flight) may", n, 3*loadClients)
	}
	t.Logf("channel A under load: %d answered 200, %d failed (in flight on a worker that died): %v", total.ok, len(total.failures), total.failures)
	for _, m := range regexp.MustCompile(`replaced the one that ended.* since_end=(\S+)`).FindAllStringSubmatch(readLog(t, agent.LogPath()), -1) {
		t.Logf("a worker replaced %s after the last one ended", m[1])
	}
}

// awaitReplaced waits until every worker of the agent that ended has been
// replaced.
func awaitReplaced(t *testing.T, agent *testenv.Agent) {
	t.Helper()
	testenv.Await(t, time.Minute, "every worker that ended replaced", func() (bool, string) {
		log := readLog(t, agent.LogPath())
		got := strings.Count(log, "a worker process replaced the one that ended")
		ended := strings.Count(log, "a worker process ended")
		return got == ended, fmt.Sprintf("%d workers ended, %d replaced", ended, got)
	})
}

// readLog returns a process's log.
func readLog(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// agentMetric reads the counter of family whose label has value from an
// agent's /metrics; 0 when there is none yet.
func agentMetric(t *testing.T, addr, family, label, value string) float64 {
	t.Helper()
	for _, m := range testenv.Metrics(t, addr)[family].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == label && l.GetValue() == value {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// load calls one URL from several clients, each one call after another,
// and counts what was answered.
type load struct {
	stopped atomic.Bool
	wg      sync.WaitGroup

	mu       sync.Mutex
	ok       int
	failures []failure
}

// failure is one call that was not answered 200: its status, 0 for a
// broken connection.
type failure struct {
	status int
	what   string
}

func (f failure) String() string { return f.what }

// loadTally is what a load counted.
type loadTally struct {
	ok, failed int
	failures   []failure
}

// loadAlong starts clients calling url with body. Each client keeps one
// connection alive, as a real one would, and calls one call after
// another: a worker's crash can fail at most one call of each client (the
// call in flight on its connection, or the next one, sent on it before
// the client saw it closed).
func loadAlong(url, body string, clients int) *load {
	l := &load{}
	for range clients {
		client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		l.wg.Go(func() {
			defer client.CloseIdleConnections()
			for !l.stopped.Load() {
				status, what, err := postWith(client, url, body)
				l.mu.Lock()
				switch {
				case err != nil:
					l.failures = append(l.failures, failure{0, err.Error()})
				case status != 200:
					l.failures = append(l.failures, failure{status, what})
				default:
					l.ok++
				}
				l.mu.Unlock()
			}
		})
	}
	return l
}

// postWith sends body to url as JSON with client and reads the answer.
func postWith(client *http.Client, url, body string) (int, string, error) {
	resp, err := client.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", fmt.Errorf("read the answer: %w", err)
	}
	return resp.StatusCode, fmt.Sprintf("HTTP %d: %s", resp.StatusCode, b), nil
}

func (l *load) snapshot() loadTally {
	l.mu.Lock()
	defer l.mu.Unlock()
	return loadTally{ok: l.ok, failed: len(l.failures), failures: append([]failure(nil), l.failures...)}
}

// stop ends the calls and returns the tally.
func (l *load) stop() loadTally {
	l.stopped.Store(true)
	l.wg.Wait()
	return l.snapshot()
}
