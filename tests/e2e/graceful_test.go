package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weft-dev/weft/controlplane/store/storetest"
	"github.com/weft-dev/weft/tests/testenv"
)

// TestGracefulStop stops an agent with SIGTERM while clients call a
// channel whose service takes 200 ms, each request on a new connection,
// then on connections kept alive: every request the agent had taken when
// the signal came is answered in full, and the others are refused a
// connection. None is cut mid-flight.
func TestGracefulStop(t *testing.T) {
	cp := testenv.StartControlPlane(t, storetest.SQLite(t).DSN)
	e := &env{cp: cp}
	e.ctlOK(t, "deploy", filepath.Join("testdata", "flaky"))
	e.ctlOK(t, "channel", "create", "flaky", "--path", "/api/flaky", "--service", "flaky.run")
	for i, keepAlive := range []bool{false, true} {
		name := "a new connection per request"
		if keepAlive {
			name = "connections kept alive"
		}
		t.Run(name, func(t *testing.T) {
			agent := testenv.StartAgent(t, cp, fmt.Sprintf("grace-%d", i+1))
			e.agents = []*testenv.Agent{agent}
			e.sync(t)
			stopUnderLoad(t, agent, &http.Client{Transport: &http.Transport{DisableKeepAlives: !keepAlive}, Timeout: 30 * time.Second})
		})
	}
}

// stopUnderLoad stops agent with SIGTERM while clients call its flaky
// channel through client, and checks that no request was cut.
func stopUnderLoad(t *testing.T, agent *testenv.Agent, client *http.Client) {

	type outcome struct {
		start, end time.Time
		err        error
	}
	var (
		mu       sync.Mutex
		outcomes []outcome
		wg       sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const clients = 8
	for range clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				start := time.Now()
				resp, err := client.Post(agent.URL("/api/flaky"), "application/json", strings.NewReader(`{"sleep_ms":200}`))
				if err == nil {
					body, rerr := io.ReadAll(resp.Body)
					resp.Body.Close()
					switch {
					case rerr != nil:
						err = rerr
					case resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"ok":true`):
						err = fmt.Errorf("HTTP %d: %s", resp.StatusCode, body)
					}
				}
				mu.Lock()
				outcomes = append(outcomes, outcome{start, time.Now(), err})
				mu.Unlock()
				if errors.Is(err, syscall.ECONNREFUSED) {
					return // the agent is gone
				}
			}
		})
	}
	testenv.Await(t, reconnectTimeout, "the clients answered", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(outcomes) >= 4*clients, fmt.Sprintf("%d answers", len(outcomes))
	})
	sigterm := time.Now()
	agent.Stop(t)
	wg.Wait()

	var inFlight, answered, refused int
	for _, o := range outcomes {
		switch {
		case o.err == nil:
			answered++
			if o.start.Before(sigterm) && o.end.After(sigterm) {
				inFlight++
			}
		case errors.Is(o.err, syscall.ECONNREFUSED):
			refused++
		default:
			t.Errorf("a request cut by the stop: started %v after the SIGTERM, ended %v after: %v",
				o.start.Sub(sigterm).Round(time.Millisecond), o.end.Sub(sigterm).Round(time.Millisecond), o.err)
		}
	}
	if inFlight == 0 {
		t.Errorf("no request was in flight at the SIGTERM; the test proves nothing")
	}
	t.Logf("%d answered in full (%d of them in flight at the SIGTERM), %d refused a connection after it", answered, inFlight, refused)
}
