package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weft-dev/weft/controlplane/store/storetest"
	"github.com/weft-dev/weft/tests/testenv"
)

// TestSlowBodyCut sends a channel the headers of a 100-byte body and then
// one byte every 200 ms: the agent, with --http-read-timeout 1s, answers 408
// and closes the connection, and logs the refusal. Requests that are read
// in time are not cut by it, however long their service runs, and a
// service that overruns its channel's timeout still gets its 504.
func TestSlowBodyCut(t *testing.T) {
	const readTimeout = time.Second
	cp := testenv.StartControlPlane(t, storetest.SQLite(t).DSN)
	agent := testenv.StartAgent(t, cp, "slow-1", testenv.WithArgs("--http-read-timeout", readTimeout.String()))
	e := &env{cp: cp, agents: []*testenv.Agent{agent}}
	e.ctlOK(t, "deploy", filepath.Join("testdata", "flaky"), "--wait")
	e.ctlOK(t, "channel", "create", "flaky", "--path", "/api/flaky", "--service", "flaky.run")
	e.ctlOK(t, "channel", "create", "flaky-2s", "--path", "/api/flaky-2s", "--service", "flaky.run", "--timeout", "2s")
	e.sync(t)

	t.Run("a slow body is cut with 408", func(t *testing.T) {
		start := time.Now()
		conn, err := net.Dial("tcp", agent.HTTPAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /api/flaky HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n", agent.HTTPAddr)
		type answer struct {
			b       []byte
			err     error
			elapsed time.Duration
		}
		read := make(chan answer, 1)
		go func() {
			b, err := io.ReadAll(conn) // to the close
			read <- answer{b, err, time.Since(start)}
		}()
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			// Whole, the body would take 20 s.
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					if _, err := conn.Write([]byte(" ")); err != nil {
						return
					}
				}
			}
		}()
		const bound = 15 * time.Second
		var a answer
		select {
		case a = <-read:
		case <-time.After(bound):
			t.Fatalf("connection still open %s after its headers; --http-read-timeout is %s", bound, readTimeout)
		}
		t.Logf("cut after %s (read error %v)", a.elapsed.Round(time.Millisecond), a.err)
		if a.elapsed < readTimeout {
			t.Errorf("cut after %s, before the read timeout %s", a.elapsed, readTimeout)
		}
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(a.b)), nil)
		if err != nil {
			t.Fatalf("read the answer: %v\n%s", err, a.b)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusRequestTimeout || !resp.Close ||
			!strings.Contains(string(body), "request body not received within the agent's read timeout") {
			t.Fatalf("answer:\n%s\nwant a 408 with Connection: close naming the read timeout", a.b)
		}
		if line := agentLogLine(t, agent, resp.Header.Get("X-Weft-CID"), "channel request refused"); line != "" && !strings.Contains(line, "status=408") {
			t.Errorf("log line %q: want status=408", line)
		}
	})

	t.Run("a service running past the read timeout answers", func(t *testing.T) {
		status, _, body := do(t, http.MethodPost, agent.URL("/api/flaky"), "application/json", `{"sleep_ms":1500}`, nil)
		if status != http.StatusOK || !bytes.Contains(body, []byte(`"ok":true`)) {
			t.Fatalf("status %d: %s; want 200 with ok", status, body)
		}
	})

	t.Run("an overrunning service still gets its 504", func(t *testing.T) {
		status, _, body := do(t, http.MethodPost, agent.URL("/api/flaky-2s"), "application/json", `{"sleep_ms":4000}`, nil)
		if status != http.StatusGatewayTimeout {
			t.Fatalf("status %d: %s; want 504 at the channel's 2 s timeout", status, body)
		}
	})
}
