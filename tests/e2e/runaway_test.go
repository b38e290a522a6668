package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weft-dev/weft/controlplane/store/storetest"
	"github.com/weft-dev/weft/tests/testenv"
)

// runawayCalls is more runaway calls than the machines this runs on have
// cores.
const runawayCalls = 8

// TestRunaways sends runawayCalls calls at once to a service that never
// returns, an empty `for {}` and then a loop that works, through a channel
// with a 1 s timeout, while another channel, of another package, is
// called all along. Every runaway call is answered 504, the other channel
// answers 200 throughout, the agent is the same process, and its CPU use
// falls back to idle: the spinning calls stopped. How late each 504 comes
// is measured by BenchmarkRunaways in tests/bench, not here.
func TestRunaways(t *testing.T) {
	cp := testenv.StartControlPlane(t, storetest.SQLite(t).DSN)
	agent := testenv.StartAgent(t, cp, "runaways-1")
	e := &env{cp: cp, agents: []*testenv.Agent{agent}}
	e.ctlOK(t, "deploy", filepath.Join("testdata", "runaway"), "--wait")
	e.ctlOK(t, "deploy", filepath.Join(testenv.ModuleRoot(t), "deploy", "examples", "hello"), "--wait")
	e.ctlOK(t, "channel", "create", "runaway-empty", "--path", "/api/runaway/empty", "--service", "runaway.empty", "--timeout", "1s")
	e.ctlOK(t, "channel", "create", "runaway-work", "--path", "/api/runaway/work", "--service", "runaway.work", "--timeout", "1s")
	e.ctlOK(t, "channel", "create", "hello", "--path", "/api/hello", "--service", "hello.greet")
	e.sync(t)
	pid := agent.PID()
	testenv.AwaitIdle(t, pid, 30*time.Second, "the agent, before the runaways,")

	for _, loop := range []string{"empty", "work"} {
		t.Run(loop, func(t *testing.T) {
			other := callAlong(agent.URL("/api/hello"), `{"name":"Ada"}`)
			var (
				wg          sync.WaitGroup
				firstAnswer sync.Once
				running     int // the other channel's answers while every runaway call ran
			)
			answers := make(chan string, runawayCalls)
			for range runawayCalls {
				wg.Go(func() {
					resp, err := testenv.Post(context.Background(), agent.URL("/api/runaway/"+loop), `{}`)
					firstAnswer.Do(func() { running = other.answered() })
					switch {
					case err != nil:
						answers <- err.Error()
					case resp.Status != 504 || !strings.Contains(string(resp.Body), "deadline of 1s"):
						answers <- resp.String()
					}
				})
			}
			wg.Wait()
			close(answers)
			calls, failed := other.stop()
			for a := range answers {
				t.Errorf("a runaway call: %s; want 504 naming its deadline", a)
			}
			if failed != "" || running == 0 {
				t.Errorf("the other channel while %d calls ran away: %d answered 200 (%d until the last runaway was answered); then %s", runawayCalls, running, calls, failed)
			}
			if !agent.Running() || agent.PID() != pid {
				t.Fatal("the agent did not survive the runaways")
			}
			took := testenv.AwaitIdle(t, pid, 30*time.Second, "the agent, after the runaways were answered,")
			t.Logf("%d runaway calls answered 504; the other channel answered %d calls while they all ran, %d until the last 504; the agent idle %v after", runawayCalls, running, calls, took.Round(time.Millisecond))
			if resp := testenv.PostJSON(t, agent.URL("/api/hello"), `{"name":"Ada"}`); resp.Status != 200 {
				t.Fatalf("the other channel after the runaways: %s", resp)
			}
		})
	}
}

// caller calls one URL again and again until stopped.
type caller struct {
	stopped atomic.Bool
	done    chan struct{}
	calls   atomic.Int64 // answered 200
	failed  string       // the first answer that was not 200, if any
}

// callAlong starts calling url with body, one call after another.
func callAlong(url, body string) *caller {
	c := &caller{done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for !c.stopped.Load() {
			resp, err := testenv.Post(context.Background(), url, body)
			switch {
			case err != nil:
				c.failed = err.Error()
				return
			case resp.Status != 200:
				c.failed = fmt.Sprintf("POST %s: %s", url, resp)
				return
			}
			c.calls.Add(1)
		}
	}()
	return c
}

// answered returns how many calls were answered 200 so far.
func (c *caller) answered() int { return int(c.calls.Load()) }

// stop stops the calls and returns how many were answered 200, and the
// first that was not, if any.
func (c *caller) stop() (int, string) {
	c.stopped.Store(true)
	<-c.done
	return c.answered(), c.failed
}
