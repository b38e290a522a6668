package connguard

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weft-dev/weft/tests/testenv"
)

// limits of the tests: the guard's clock is the test's, so they need not
// be short.
var limits = Limits{Header: 10 * time.Second, Body: 30 * time.Second, Idle: 2 * time.Minute}

// fixture is an HTTP server whose connections a Guard with a clock of the
// test's watches; the test sweeps.
type fixture struct {
	g     *Guard
	srv   *httptest.Server
	clock atomic.Int64
}

// serve starts h behind a guard keeping limits, over TLS when overTLS.
func serve(t *testing.T, h http.HandlerFunc, overTLS bool) *fixture {
	t.Helper()
	f := &fixture{g: New(limits)}
	f.g.clock = f.clock.Load
	f.srv = httptest.NewUnstartedServer(h)
	f.g.Watch(f.srv.Config)
	f.srv.Listener = f.g.Listener(f.srv.Listener)
	if overTLS {
		f.srv.StartTLS()
	} else {
		f.srv.Start()
	}
	t.Cleanup(f.srv.Close)
	return f
}

// pass moves the guard's clock on by d and sweeps; it fails the test
// unless the sweep cut want connections.
func (f *fixture) pass(t *testing.T, d time.Duration, want int) {
	t.Helper()
	f.clock.Add(int64(d))
	if got := f.g.Sweep(); got != want {
		t.Fatalf("%s on, the sweep cut %d connections, want %d", d, got, want)
	}
}

// dial opens a connection to the server, TLS if it serves TLS.
func (f *fixture) dial(t *testing.T) net.Conn {
	t.Helper()
	var (
		c   net.Conn
		err error
	)
	if f.srv.TLS != nil {
		c, err = tls.Dial("tcp", f.srv.Listener.Addr().String(), f.srv.Client().Transport.(*http.Transport).TLSClientConfig)
	} else {
		c, err = net.Dial("tcp", f.srv.Listener.Addr().String())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// awaitClosed reads c until the server closes it, and returns what it
// read; it fails the test if that takes longer than a bound far above
// any sweep.
func awaitClosed(t *testing.T, c net.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection is still open 30 s on; read so far: %q", b)
	}
	return string(b)
}

// isOpen says whether c is still open: the server answers a request on it.
func isOpen(t *testing.T, c net.Conn, r *bufio.Reader) bool {
	t.Helper()
	if _, err := fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return false
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func ok(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	BodyRead(r.Context())
	_, _ = io.WriteString(w, "ok")
}

func TestSilentConnectionIsCutAfterHeaderLimit(t *testing.T) {
	for _, overTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", overTLS), func(t *testing.T) {
			f := serve(t, ok, overTLS)
			var c net.Conn
			if overTLS {
				// A TLS client that connects and never says hello.
				var err error
				c, err = net.Dial("tcp", f.srv.Listener.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
			} else {
				c = f.dial(t)
			}
			awaitTracked(t, f.g, 1)
			f.pass(t, limits.Header-time.Millisecond, 0)
			f.pass(t, 2*time.Millisecond, 1)
			awaitClosed(t, c)
		})
	}
}

func TestSilentConnectionWithinHeaderLimitIsKept(t *testing.T) {
	f := serve(t, ok, false)
	c := f.dial(t)
	awaitTracked(t, f.g, 1)
	f.pass(t, limits.Header-time.Millisecond, 0)
	if !isOpen(t, c, bufio.NewReader(c)) {
		t.Fatal("a connection within its header limit was cut")
	}
}

func TestSlowHeadersOnKeptConnectionAreCut(t *testing.T) {
	f := serve(t, ok, false)
	c := f.dial(t)
	r := bufio.NewReader(c)
	if !isOpen(t, c, r) {
		t.Fatal("first request failed")
	}
	// Idle for most of the idle limit, then the start of a request whose
	// headers never end: the header limit counts from its first byte.
	awaitPhase(t, f.g, phaseIdle)
	f.pass(t, limits.Idle-time.Second, 0)
	if _, err := fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	awaitFirstByte(t, f.g)
	// Past the idle limit now, but the headers have their own.
	f.pass(t, limits.Header-time.Millisecond, 0)
	f.pass(t, 2*time.Millisecond, 1)
	awaitClosed(t, c)
}

func TestIdleConnectionIsCutAfterIdleLimit(t *testing.T) {
	f := serve(t, ok, false)
	c := f.dial(t)
	r := bufio.NewReader(c)
	if !isOpen(t, c, r) {
		t.Fatal("first request failed")
	}
	awaitPhase(t, f.g, phaseIdle)
	f.pass(t, limits.Idle-time.Millisecond, 0)
	if !isOpen(t, c, r) {
		t.Fatal("cut before its idle limit")
	}
	awaitPhase(t, f.g, phaseIdle)
	f.pass(t, limits.Idle-time.Millisecond, 0) // counted from the last answer
	f.pass(t, 2*time.Millisecond, 1)
	awaitClosed(t, c)
}

// slowBody answers 408 when the body's read fails on a timeout, as the
// agent's channels do.
func slowBody(w http.ResponseWriter, r *http.Request) {
	if _, err := io.ReadAll(r.Body); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			w.Header().Set("Connection", "close")
			http.Error(w, "body too slow", http.StatusRequestTimeout)
			return
		}
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	BodyRead(r.Context())
	_, _ = io.WriteString(w, "ok")
}

func TestSlowBodyGetsTimeout(t *testing.T) {
	for _, overTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", overTLS), func(t *testing.T) {
			f := serve(t, slowBody, overTLS)
			c := f.dial(t)
			if _, err := fmt.Fprint(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nsome"); err != nil {
				t.Fatal(err)
			}
			awaitPhase(t, f.g, phaseActive)
			f.pass(t, limits.Body-time.Millisecond, 0)
			f.pass(t, 2*time.Millisecond, 1)
			got := awaitClosed(t, c)
			if !strings.HasPrefix(got, "HTTP/1.1 408") || !strings.Contains(got, "body too slow") {
				t.Fatalf("answer %q; want the handler's 408", got)
			}
		})
	}
}

func TestLongRequestAfterItsBodyIsNotCut(t *testing.T) {
	read, release := make(chan struct{}), make(chan struct{})
	var ctxErr atomic.Value
	f := serve(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		BodyRead(r.Context())
		close(read)
		<-release
		ctxErr.Store(fmt.Sprint(r.Context().Err()))
		_, _ = io.WriteString(w, "done")
	}, false)
	c := f.dial(t)
	if _, err := fmt.Fprint(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"); err != nil {
		t.Fatal(err)
	}
	<-read
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	f.pass(t, time.Hour, 0)
	close(release)
	released = true
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("a request past its body was cut: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != "done" {
		t.Fatalf("status %d %q; want 200 done", resp.StatusCode, body)
	}
	if got := ctxErr.Load(); got != "<nil>" {
		t.Fatalf("the request's context ended: %v", got)
	}
}

func TestClosedConnectionsAreForgotten(t *testing.T) {
	f := serve(t, ok, false)
	for range 3 {
		c := f.dial(t)
		if !isOpen(t, c, bufio.NewReader(c)) {
			t.Fatal("request failed")
		}
		c.Close()
	}
	awaitTracked(t, f.g, 0)
}

func TestEvery(t *testing.T) {
	for _, tt := range []struct {
		limits Limits
		want   time.Duration
	}{
		{Limits{}, time.Second},
		{limits, time.Second},
		{Limits{Header: 2 * time.Second, Body: time.Second}, 250 * time.Millisecond},
		{Limits{Body: time.Millisecond}, 10 * time.Millisecond},
	} {
		if got := New(tt.limits).every(); got != tt.want {
			t.Errorf("every of %+v = %s, want %s", tt.limits, got, tt.want)
		}
	}
}

// tracked returns the guard's connections.
func tracked(g *Guard) []*Conn {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []*Conn
	for c := range g.conns {
		out = append(out, c)
	}
	return out
}

func phaseOf(g *Guard) int32 {
	if cs := tracked(g); len(cs) == 1 {
		return cs[0].phase.Load()
	}
	return -1
}

// await waits, boundedly, until cond holds.
func await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.Await(t, 30*time.Second, what, func() (bool, string) { return cond(), "" })
}

func awaitTracked(t *testing.T, g *Guard, n int) {
	t.Helper()
	await(t, fmt.Sprintf("%d connections tracked", n), func() bool { return len(tracked(g)) == n })
}

func awaitPhase(t *testing.T, g *Guard, p int32) {
	t.Helper()
	await(t, fmt.Sprintf("in phase %d", p), func() bool { return phaseOf(g) == p })
}

func awaitFirstByte(t *testing.T, g *Guard) {
	t.Helper()
	await(t, "first byte noted", func() bool {
		cs := tracked(g)
		return len(cs) == 1 && cs[0].first.Load() != 0
	})
}
