package channel

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// limitedChannel is a channel taking rate requests a second, burst at once.
func limitedChannel(name, format string, rate float64, burst int32) *adminv1.Channel {
	return &adminv1.Channel{Name: name, Path: "/" + name, Methods: []string{"POST"}, Service: "svc", Active: proto.Bool(true), DataFormat: format, RateLimit: rate, RateBurst: burst}
}

// post serves one request from client address addr through h.
func post(h http.Handler, path, format, addr string) *httptest.ResponseRecorder {
	w := requestIn(format, "Op")
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(w.body))
	r.Header.Set("Content-Type", w.contentType)
	for k, v := range w.header {
		r.Header.Set(k, v)
	}
	r.RemoteAddr = addr
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

// swappable is a Handler serving the router of the last deploy.
type swappable struct {
	h      *Handler
	router *Router
}

func newSwappable(t *testing.T, chans ...*adminv1.Channel) *swappable {
	t.Helper()
	s := &swappable{}
	s.deploy(t, chans...)
	s.h = newTestHandler(nil, nil)
	inv := &recorder{}
	s.h.Current = func() (*Router, Invoker) { return s.router, inv }
	return s
}

// deploy swaps in a router for chans, as an agent does for a snapshot.
func (s *swappable) deploy(t *testing.T, chans ...*adminv1.Channel) {
	t.Helper()
	r, err := NewRouter(chans, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.router = r
}

func TestHandlerRateLimit(t *testing.T) {
	// A rate this low refills nothing while the test runs.
	const rate, burst = 0.01, 3
	for _, f := range []string{"json", "xml", "soap11", "soap12"} {
		t.Run(f, func(t *testing.T) {
			name := "limited-" + f
			path := "/" + name
			s := newSwappable(t, limitedChannel(name, f, rate, burst))
			for i := range burst {
				if rec := post(s.h, path, f, "192.0.2.1:1000"); rec.Code != http.StatusOK {
					t.Fatalf("request %d = %d %s, want 200", i+1, rec.Code, rec.Body)
				}
			}
			rec := post(s.h, path, f, "192.0.2.1:1001") // same host, other port
			if rec.Code != refusedStatus(f, http.StatusTooManyRequests) {
				t.Fatalf("request %d = %d %s, want 429", burst+1, rec.Code, rec.Body)
			}
			ra, err := strconv.Atoi(rec.Header().Get("Retry-After"))
			if err != nil || ra < 1 {
				t.Fatalf("Retry-After = %q, want whole seconds >= 1", rec.Header().Get("Retry-After"))
			}
			if ra != 100 {
				t.Errorf("Retry-After = %d, want 100 (one token at %g a second)", ra, rate)
			}
			e := readError(t, f, rec.Result(), rec.Body.Bytes())
			if !strings.Contains(e.Message, "channel "+name) || !strings.Contains(e.Message, "192.0.2.1") || e.Code != clientFaultCode(f) {
				t.Fatalf("429 error = %+v, want one naming the channel and the client", e)
			}

			if rec := post(s.h, path, f, "198.51.100.7:1000"); rec.Code != http.StatusOK {
				t.Fatalf("another client = %d %s, want 200", rec.Code, rec.Body)
			}
			if rec := post(s.h, path, f, "[2001:db8::1]:443"); rec.Code != http.StatusOK {
				t.Fatalf("an IPv6 client = %d %s, want 200", rec.Code, rec.Body)
			}

			// A deploy that leaves the limit as it was keeps the buckets.
			s.deploy(t, limitedChannel(name, f, rate, burst))
			if rec := post(s.h, path, f, "192.0.2.1:1000"); rec.Code != refusedStatus(f, http.StatusTooManyRequests) {
				t.Fatalf("after an unchanged deploy = %d, want 429", rec.Code)
			}
			// A new limit starts afresh.
			s.deploy(t, limitedChannel(name, f, rate, burst+1))
			if rec := post(s.h, path, f, "192.0.2.1:1000"); rec.Code != http.StatusOK {
				t.Fatalf("after a new burst = %d %s, want 200", rec.Code, rec.Body)
			}
			s.deploy(t, limitedChannel(name, f, rate*2, burst+1))
			if rec := post(s.h, path, f, "192.0.2.1:1000"); rec.Code != http.StatusOK {
				t.Fatalf("after a new rate = %d %s, want 200", rec.Code, rec.Body)
			}
			// No limit.
			s.deploy(t, limitedChannel(name, f, 0, burst))
			for i := range 50 {
				if rec := post(s.h, path, f, "192.0.2.1:1000"); rec.Code != http.StatusOK {
					t.Fatalf("unlimited request %d = %d %s, want 200", i+1, rec.Code, rec.Body)
				}
			}
		})
	}
}

func TestHandlerRateLimitPerChannel(t *testing.T) {
	s := newSwappable(t, limitedChannel("a", "json", 0.01, 1), limitedChannel("b", "json", 0.01, 1))
	if rec := post(s.h, "/a", "json", "192.0.2.1:1"); rec.Code != http.StatusOK {
		t.Fatalf("a = %d", rec.Code)
	}
	if rec := post(s.h, "/a", "json", "192.0.2.1:1"); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("a again = %d, want 429", rec.Code)
	}
	if rec := post(s.h, "/b", "json", "192.0.2.1:1"); rec.Code != http.StatusOK {
		t.Fatalf("b = %d, want 200: each channel has its own buckets", rec.Code)
	}
}

// limitStep is one request at a time after the start, and what allow says.
type limitStep struct {
	at   time.Duration
	ok   bool
	wait time.Duration
}

func TestLimitersAllow(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r := httptest.NewRequest(http.MethodPost, "/x", nil)
	r.RemoteAddr = "192.0.2.1:5000"
	tests := []struct {
		name  string
		rate  float64
		burst int32
		steps []limitStep
	}{
		{
			name: "two a second, default burst of two",
			rate: 2,
			steps: []limitStep{
				{0, true, 0},
				{0, true, 0},
				{0, false, 500 * time.Millisecond},
				{400 * time.Millisecond, false, 100 * time.Millisecond},
				{500 * time.Millisecond, true, 0},
				{500 * time.Millisecond, false, 500 * time.Millisecond},
			},
		},
		{
			name: "half a second, burst one by default",
			rate: 0.5,
			steps: []limitStep{
				{0, true, 0},
				{time.Second, false, time.Second},
				{2 * time.Second, true, 0},
			},
		},
		{
			name:  "explicit burst",
			rate:  1,
			burst: 3,
			steps: []limitStep{
				{0, true, 0},
				{0, true, 0},
				{0, true, 0},
				{0, false, time.Second},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l limiters
			c := limitedChannel("x", "json", tt.rate, tt.burst)
			router := mustRouter(t, c)
			for i, s := range tt.steps {
				ok, wait := l.allow(router, c, r, at(t0.Add(s.at)))
				// The limiter computes in floating point: allow a microsecond.
				if d := wait - s.wait; ok != s.ok || d > time.Microsecond || d < -time.Microsecond {
					t.Fatalf("step %d at %s = %v, %s; want %v, %s", i+1, s.at, ok, wait, s.ok, s.wait)
				}
			}
		})
	}
}

// mustRouter builds a router for chans.
func mustRouter(t *testing.T, chans ...*adminv1.Channel) *Router {
	t.Helper()
	r, err := NewRouter(chans, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// fromClient returns a request from the i-th of many IPv4 clients.
func fromClient(i int) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/x", nil)
	r.RemoteAddr = "10." + strconv.Itoa(i>>16&255) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255) + ":1"
	return r
}

func TestLimitersSweep(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var l limiters
	c := limitedChannel("x", "json", 1, 1)
	router := mustRouter(t, c)
	const n = 1000
	for i := range n {
		if ok, _ := l.allow(router, c, fromClient(i), at(t0)); !ok {
			t.Fatalf("client %d refused", i)
		}
	}
	if got := len(l.channels["x"].clients); got != n {
		t.Fatalf("%d client buckets, want %d", got, n)
	}
	// A second later every bucket is full again: the next new client drops
	// them, and a dropped client starts with a full bucket.
	if ok, _ := l.allow(router, c, fromClient(n), at(t0.Add(time.Second))); !ok {
		t.Fatal("a new client was refused")
	}
	if got := len(l.channels["x"].clients); got != 1 {
		t.Fatalf("%d client buckets after a sweep, want 1", got)
	}
	if ok, _ := l.allow(router, c, fromClient(0), at(t0.Add(time.Second))); !ok {
		t.Fatal("a swept client was refused")
	}
	// A bucket not yet full again stays.
	if ok, _ := l.allow(router, c, fromClient(n+1), at(t0.Add(1500*time.Millisecond))); !ok {
		t.Fatal("a new client was refused")
	}
	if got := len(l.channels["x"].clients); got != 3 {
		t.Fatalf("%d client buckets, want 3: none was full again", got)
	}
}

// TestLimitersCap checks that a channel tracks at most maxClients clients,
// evicting the least recently seen, and that those kept keep their state.
func TestLimitersCap(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var l limiters
	c := limitedChannel("x", "json", 0.001, 1) // refills nothing within the test's clock
	router := mustRouter(t, c)
	for i := range maxClients {
		if ok, _ := l.allow(router, c, fromClient(i), at(t0)); !ok {
			t.Fatalf("client %d refused", i)
		}
	}
	// Client 0 comes back: refused, and now the most recently seen.
	if ok, _ := l.allow(router, c, fromClient(0), at(t0.Add(time.Second))); ok {
		t.Fatal("client 0 allowed twice with a burst of 1")
	}
	for i := maxClients; i < maxClients+10; i++ {
		if ok, _ := l.allow(router, c, fromClient(i), at(t0.Add(time.Second))); !ok {
			t.Fatalf("new client %d refused", i)
		}
		if got := len(l.channels["x"].clients); got != maxClients {
			t.Fatalf("after client %d: %d client buckets, want the cap %d", i, got, maxClients)
		}
	}
	cl := l.channels["x"]
	for i := 1; i <= 10; i++ {
		if cl.clients[clientAddress(fromClient(i))] != nil {
			t.Errorf("client %d, among the least recently seen, is still tracked", i)
		}
	}
	if ok, _ := l.allow(router, c, fromClient(0), at(t0.Add(2*time.Second))); ok {
		t.Error("client 0, seen recently, lost its empty bucket to the cap")
	}
	if ok, _ := l.allow(router, c, fromClient(11), at(t0.Add(2*time.Second))); ok {
		t.Error("client 11, not evicted, was allowed a second request")
	}
	if ok, _ := l.allow(router, c, fromClient(1), at(t0.Add(2*time.Second))); !ok {
		t.Error("client 1, evicted, did not start again with a full bucket")
	}
}

// TestLimitersForget checks that the first request under a newer router
// drops the buckets of channels it no longer limits, whichever channel
// that request is for, and that a request still under an older router
// changes nothing.
func TestLimitersForget(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	a, b, c := limitedChannel("a", "json", 0.01, 1), limitedChannel("b", "json", 0.01, 1), limitedChannel("c", "json", 0.01, 1)
	free := limitedChannel("free", "json", 0, 0)
	var l limiters
	old := mustRouter(t, a, b, c, free)
	for _, ch := range []*adminv1.Channel{a, b, c} {
		if ok, _ := l.allow(old, ch, fromClient(1), at(t0)); !ok {
			t.Fatalf("channel %s refused the first request", ch.GetName())
		}
	}
	unlimitedB := limitedChannel("b", "json", 0, 0)
	inactiveC := limitedChannel("c", "json", 0.01, 1)
	inactiveC.Active = proto.Bool(false)
	newer := mustRouter(t, unlimitedB, inactiveC, free) // a is gone
	if ok, _ := l.allow(newer, free, fromClient(1), at(t0)); !ok {
		t.Fatal("an unlimited channel refused a request")
	}
	if len(l.channels) != 0 {
		t.Fatalf("buckets of channels %v kept, want none: a is gone, b has no limit, c is inactive", slices.Sorted(maps.Keys(l.channels)))
	}

	// A request still served under the old router keeps its bucket, and
	// the newer router, already seen, does not drop it again.
	if ok, _ := l.allow(old, a, fromClient(1), at(t0)); !ok {
		t.Fatal("a dropped bucket did not start again full")
	}
	if ok, _ := l.allow(newer, free, fromClient(1), at(t0)); !ok {
		t.Fatal("an unlimited channel refused a request")
	}
	if l.channels["a"] == nil {
		t.Fatal("a bucket taken under the old router was dropped again by a router seen before")
	}

	// A deploy that keeps a channel's limit keeps its buckets.
	kept := mustRouter(t, a)
	if ok, _ := l.allow(kept, a, fromClient(1), at(t0)); ok {
		t.Fatal("channel a's bucket was dropped by a router that keeps its limit")
	}
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		wait time.Duration
		want int
	}{
		{0, 1},
		{time.Millisecond, 1},
		{time.Second, 1},
		{1200 * time.Millisecond, 2},
		{100 * time.Second, 100},
	}
	for _, tt := range tests {
		if got := retryAfter(tt.wait); got != tt.want {
			t.Errorf("retryAfter(%s) = %d, want %d", tt.wait, got, tt.want)
		}
	}
}

// TestClientAddressGroupsIPv6 checks that the limit counts an IPv6 client
// by its /64, and an IPv4 one by its address.
func TestClientAddressGroupsIPv6(t *testing.T) {
	for remote, want := range map[string]string{
		"192.0.2.7:5555":             "192.0.2.7",
		"[2001:db8:1:2:aaaa::1]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:2:bbbb::9]:443": "2001:db8:1:2::/64",
		"[::ffff:192.0.2.7]:80":      "::ffff:192.0.2.7",
		"not-an-address":             "not-an-address",
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = remote
		if got := clientAddress(r); got != want {
			t.Errorf("clientAddress(%q) = %q, want %q", remote, got, want)
		}
	}
}

// at is a clock stopped at t.
func at(t time.Time) func() time.Time { return func() time.Time { return t } }

// refusedStatus is the HTTP status a channel of format f sends for a
// refusal of status: on SOAP, that of a Client (1.1) or Sender (1.2) Fault.
func refusedStatus(f string, status int) int {
	switch f {
	case "soap11":
		return http.StatusInternalServerError
	case "soap12":
		return http.StatusBadRequest
	}
	return status
}
