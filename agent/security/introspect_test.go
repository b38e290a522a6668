package security_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-dev/weft/agent/security"
	"github.com/weft-dev/weft/agent/shared/secdef"
)

const (
	introClientID     = "weft agent" // a space, to check the form encoding
	introClientSecret = "intro-secret-do-not-leak"
)

// introServer is an RFC 7662 introspection endpoint: it checks the
// client's credentials and answers for each token what answers holds
// ({"active": false} for others), and counts the calls for each token.
type introServer struct {
	*httptest.Server
	mu      sync.Mutex
	answers map[string]map[string]any
	hits    map[string]int
	status  int // answer with this status instead, when set
	bad     []string
}

func newIntroServer(t *testing.T) *introServer {
	s := &introServer{answers: map[string]map[string]any{}, hits: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		id, secret, ok := r.BasicAuth()
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
		switch {
		case r.Method != http.MethodPost:
			s.bad = append(s.bad, "method "+r.Method)
		case r.Header.Get("Content-Type") != "application/x-www-form-urlencoded":
			s.bad = append(s.bad, "content type "+r.Header.Get("Content-Type"))
		case !ok || id != introClientID || secret != introClientSecret:
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		tok := r.PostFormValue("token")
		s.hits[tok]++
		if s.status != 0 {
			http.Error(w, "down", s.status)
			return
		}
		a, ok := s.answers[tok]
		if !ok {
			a = map[string]any{"active": false}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(a)
	}))
	t.Cleanup(func() {
		s.Close()
		if len(s.bad) > 0 {
			t.Errorf("bad introspection requests: %v", s.bad)
		}
	})
	return s
}

func (s *introServer) set(token string, answer map[string]any) {
	s.mu.Lock()
	s.answers[token] = answer
	s.mu.Unlock()
}

func (s *introServer) setStatus(status int) {
	s.mu.Lock()
	s.status = status
	s.mu.Unlock()
}

func (s *introServer) count(token string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[token]
}

func introDef(url string, edit func(*secdef.Definition)) secdef.Definition {
	d := secdef.Definition{Name: "idp", Kind: secdef.KindBearer, IntrospectionURL: url,
		ClientID: introClientID, ClientSecret: introClientSecret}
	if edit != nil {
		edit(&d)
	}
	return d
}

func bearerAuth(tok string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

// active is an active token's answer, valid for an hour from testNow.
func active(over map[string]any) map[string]any {
	a := map[string]any{"active": true, "sub": "ada", "scope": "orders:read orders:write", "aud": "weft",
		"exp": testNow.Add(time.Hour).Unix(), "client_id": "shop"}
	for k, v := range over {
		if v == nil {
			delete(a, k)
		} else {
			a[k] = v
		}
	}
	return a
}

func TestIntrospection(t *testing.T) {
	is := newIntroServer(t)
	is.set("good", active(nil))
	is.set("username-only", active(map[string]any{"sub": nil, "username": "bob"}))
	is.set("read-only", active(map[string]any{"scope": "orders:read"}))
	is.set("no-scope", active(map[string]any{"scope": nil}))
	is.set("other-aud", active(map[string]any{"aud": "billing"}))
	is.set("aud-list", active(map[string]any{"aud": []string{"billing", "weft"}}))
	is.set("expired", active(map[string]any{"exp": testNow.Add(-time.Second).Unix()}))
	is.set("not-yet", active(map[string]any{"nbf": testNow.Add(time.Minute).Unix()}))

	clock := newClock()
	v, err := security.NewVerifier(introDef(is.URL, func(d *secdef.Definition) {
		d.Scopes, d.Audience = []string{"orders:write"}, "weft"
	}), security.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, v)
	tests := []struct {
		name      string
		token     string
		status    int
		body      string
		challenge string
	}{
		{"active", "good", 200, "ok ada", ""},
		{"subject from username", "username-only", 200, "ok bob", ""},
		{"inactive", "unknown", 401, "token is not active", `error="invalid_token"`},
		{"missing scope", "read-only", 401, "token lacks scope orders:write", `error="insufficient_scope", error_description="token lacks scope orders:write", scope="orders:write"`},
		{"no scope at all", "no-scope", 401, "token lacks scope orders:write", "insufficient_scope"},
		{"other audience", "other-aud", 401, "token audience is not accepted", "invalid_token"},
		{"audience in a list", "aud-list", 200, "ok ada", ""},
		{"expired", "expired", 401, "token is expired", "invalid_token"},
		{"not valid yet", "not-yet", 401, "token is not valid yet", "invalid_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := call(t, srv, bearerAuth(tt.token))
			if got.status != tt.status || !strings.Contains(got.body, tt.body) || !strings.Contains(got.challenge, tt.challenge) {
				t.Fatalf("got %d %q challenge %q, want %d %q challenge with %q", got.status, got.body, got.challenge, tt.status, tt.body, tt.challenge)
			}
		})
	}
	t.Run("no token", func(t *testing.T) {
		got := call(t, srv, nil)
		if got.status != 401 || got.challenge != `Bearer realm="weft"` || got.body != "bearer token required" {
			t.Fatalf("got %+v", got)
		}
	})
}

func TestIntrospectionPrincipal(t *testing.T) {
	is := newIntroServer(t)
	is.set("good", active(map[string]any{"ext": map[string]any{"tenant": "acme"}}))
	v, err := security.NewVerifier(introDef(is.URL, nil), security.WithClock(newClock().Now))
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	bearerAuth("good")(r)
	p, err := v.Verify(r)
	if err != nil {
		t.Fatal(err)
	}
	if p.Definition != "idp" || p.Kind != secdef.KindBearer || p.Subject != "ada" || p.Claims["client_id"] != "shop" {
		t.Fatalf("principal %+v", p)
	}
	// Each request gets claims of its own, though the answer is cached.
	p.Claims["sub"] = "mallory"
	p2, err := v.Verify(r)
	if err != nil || p2.Claims["sub"] != "ada" {
		t.Fatalf("second principal %+v, %v: a change to the first one's claims leaked", p2, err)
	}
	if is.count("good") != 1 {
		t.Errorf("endpoint called %d times, want 1", is.count("good"))
	}
}

func TestIntrospectionCache(t *testing.T) {
	is := newIntroServer(t)
	is.set("good", active(nil))
	is.set("short", active(map[string]any{"exp": testNow.Add(5 * time.Second).Unix()}))
	clock := newClock()
	v, err := security.NewVerifier(introDef(is.URL, func(d *secdef.Definition) { d.CacheSeconds = 30 }), security.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, v)
	expect := func(token string, status, hits int) {
		t.Helper()
		if got := call(t, srv, bearerAuth(token)); got.status != status {
			t.Fatalf("%s: %d %q, want %d", token, got.status, got.body, status)
		}
		if n := is.count(token); n != hits {
			t.Fatalf("%s: the endpoint was called %d times, want %d", token, n, hits)
		}
	}
	expect("good", 200, 1)
	expect("good", 200, 1) // cached
	expect("unknown", 401, 1)
	expect("unknown", 401, 1) // inactive answers are cached too
	expect("short", 200, 1)

	clock.Advance(6 * time.Second) // past "short"'s exp, within the cache time
	expect("good", 200, 1)
	expect("short", 401, 2) // never cached past the token's expiry
	expect("short", 401, 2) // and refused from then on without a call

	clock.Advance(5 * time.Second) // 11 s: the inactive answer is stale
	expect("unknown", 401, 2)
	expect("good", 200, 1)

	clock.Advance(20 * time.Second) // 31 s: past cache_seconds
	expect("good", 200, 2)
}

func TestIntrospectionSharesOneCall(t *testing.T) {
	is := newIntroServer(t)
	is.set("good", active(nil))
	v, err := security.NewVerifier(introDef(is.URL, nil), security.WithClock(newClock().Now))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			r := httptest.NewRequest("GET", "/", nil)
			bearerAuth("good")(r)
			_, err := v.Verify(r)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := is.count("good"); n != 1 {
		t.Errorf("20 concurrent requests called the endpoint %d times, want 1", n)
	}
}

func TestIntrospectionUnavailable(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	const token = "token-value-do-not-leak"
	is := newIntroServer(t)
	is.set(token, active(nil))
	clock := newClock()
	verifier := func(url string, edit func(*secdef.Definition)) security.Verifier {
		v, err := security.NewVerifier(introDef(url, edit), security.WithClock(clock.Now), security.WithLogger(logger))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	verify := func(v security.Verifier) *security.AuthError {
		t.Helper()
		r := httptest.NewRequest("GET", "/", nil)
		bearerAuth(token)(r)
		_, err := v.Verify(r)
		var ae *security.AuthError
		if !errors.As(err, &ae) {
			t.Fatalf("Verify() = %v, want an AuthError", err)
		}
		for _, secret := range []string{token, introClientSecret} {
			if strings.Contains(ae.Message, secret) || strings.Contains(ae.Challenge, secret) {
				t.Errorf("the refusal %q / %q holds a secret", ae.Message, ae.Challenge)
			}
		}
		return ae
	}

	t.Run("endpoint fails", func(t *testing.T) {
		v := verifier(is.URL, nil)
		is.setStatus(http.StatusInternalServerError)
		for i := 1; i <= 2; i++ {
			ae := verify(v)
			if ae.Status != http.StatusServiceUnavailable || ae.Challenge != "" || !strings.Contains(ae.Message, "token introspection endpoint is unavailable") {
				t.Fatalf("got %+v, want a 503", ae)
			}
			if n := is.count(token); n != i {
				t.Fatalf("the endpoint was called %d times, want %d: failures are not cached", n, i)
			}
		}
		is.setStatus(0)
		r := httptest.NewRequest("GET", "/", nil)
		bearerAuth(token)(r)
		if _, err := v.Verify(r); err != nil {
			t.Fatalf("after the endpoint came back: %v", err)
		}
		if !strings.Contains(logs.String(), "introspection endpoint answered 500 Internal Server Error") {
			t.Errorf("the log does not say why:\n%s", logs.String())
		}
	})
	t.Run("wrong client secret", func(t *testing.T) {
		v := verifier(is.URL, func(d *secdef.Definition) { d.ClientSecret = "wrong-secret" })
		if ae := verify(v); ae.Status != http.StatusServiceUnavailable {
			t.Fatalf("got %+v, want a 503", ae)
		}
		if !strings.Contains(logs.String(), "answered 401 Unauthorized (are client_id and client_secret right?)") {
			t.Errorf("the log does not say why:\n%s", logs.String())
		}
	})
	t.Run("not an answer", func(t *testing.T) {
		bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"active": "yes"}`))
		}))
		defer bad.Close()
		if ae := verify(verifier(bad.URL, nil)); ae.Status != http.StatusServiceUnavailable {
			t.Fatalf("got %+v, want a 503", ae)
		}
		if !strings.Contains(logs.String(), `introspection answer: \"active\" is missing or not a boolean`) {
			t.Errorf("the log does not say why:\n%s", logs.String())
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		gone := httptest.NewServer(http.NotFoundHandler())
		url := gone.URL
		gone.Close()
		if ae := verify(verifier(url, nil)); ae.Status != http.StatusServiceUnavailable {
			t.Fatalf("got %+v, want a 503", ae)
		}
	})
	for _, secret := range []string{token, introClientSecret} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log holds a secret:\n%s", logs.String())
		}
	}
}

func TestValidateBearerDefinitions(t *testing.T) {
	tests := []struct {
		name          string
		def           secdef.Definition
		want          string // "" for valid; else the exact message
		inbound, outb bool
	}{
		{"outbound", secdef.Definition{Name: "t", Kind: secdef.KindBearer, Token: "abc"}, "", false, true},
		{"inbound", introDef("https://idp.example/introspect", func(d *secdef.Definition) {
			d.Scopes, d.Audience, d.CacheSeconds = []string{"a"}, "weft", 3600
		}), "", true, false},
		{"both", introDef("https://idp.example/introspect", func(d *secdef.Definition) { d.Token = "abc" }),
			`bearer "idp": set token (a token to send) or introspection_url (to check inbound tokens), not both`, true, false},
		{"neither", secdef.Definition{Name: "t", Kind: secdef.KindBearer},
			`bearer "t": token is required (a token to send), or introspection_url (to check inbound tokens)`, false, true},
		{"inbound fields with a token", secdef.Definition{Name: "t", Kind: secdef.KindBearer, Token: "abc", ClientID: "c", Scopes: []string{"s"}},
			`bearer "t": client_id, scopes used only with introspection_url, to check inbound tokens`, false, true},
		{"relative URL", introDef("/introspect", nil), `bearer "idp": introspection_url "/introspect" must be an absolute http(s) URL`, true, false},
		{"credentials in the URL", introDef("https://u:p@idp.example/introspect", nil),
			`bearer "idp": introspection_url must not hold credentials; set client_id and client_secret`, true, false},
		{"no client id", introDef("https://idp.example/i", func(d *secdef.Definition) { d.ClientID = "" }),
			`bearer "idp": client_id is required with introspection_url (RFC 7662 wants the caller authenticated)`, true, false},
		{"no client secret", introDef("https://idp.example/i", func(d *secdef.Definition) { d.ClientSecret = "" }),
			`bearer "idp": client_secret is required with introspection_url (RFC 7662 wants the caller authenticated)`, true, false},
		{"bad scope", introDef("https://idp.example/i", func(d *secdef.Definition) { d.Scopes = []string{"a b"} }),
			`bearer "idp": scopes[0] "a b" is not a valid scope`, true, false},
		{"cache too long", introDef("https://idp.example/i", func(d *secdef.Definition) { d.CacheSeconds = 3601 }),
			`bearer "idp": cache_seconds 3601: want 0 (60) to 3600`, true, false},
		{"negative cache", introDef("https://idp.example/i", func(d *secdef.Definition) { d.CacheSeconds = -1 }),
			`bearer "idp": cache_seconds -1: want 0 (60) to 3600`, true, false},
		{"stray field", introDef("https://idp.example/i", func(d *secdef.Definition) { d.Issuer = "x" }),
			`bearer "idp": issuer not used by bearer`, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.def.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || err.Error() != tt.want):
				t.Fatalf("Validate() = %v\nwant %s", err, tt.want)
			}
			if tt.def.Inbound() != tt.inbound || tt.def.Outbound() != tt.outb {
				t.Errorf("Inbound() %v Outbound() %v, want %v %v", tt.def.Inbound(), tt.def.Outbound(), tt.inbound, tt.outb)
			}
		})
	}
	in := introDef("https://idp.example/i", nil)
	if _, err := security.NewAuthenticator(in); err == nil || !strings.Contains(err.Error(), "inbound only") {
		t.Errorf("NewAuthenticator(inbound bearer) = %v", err)
	}
	if s := in.String() + " " + in.LogValue().String(); strings.Contains(s, introClientSecret) {
		t.Errorf("the definition's text holds its secret: %s", s)
	}
}
