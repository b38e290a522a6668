package security_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log"
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

// tokenServer is an OAuth2 token endpoint that counts fetches.
type tokenServer struct {
	*httptest.Server
	mu        sync.Mutex
	fetches   int
	expiresIn any
	gate      chan struct{} // when set, each fetch waits for it
}

func newTokenServer(t *testing.T) *tokenServer {
	s := &tokenServer{expiresIn: 3600}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// RFC 6749 2.3.1: the client form-encodes its credentials.
		id, secret, _ := r.BasicAuth()
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
		if r.Method != http.MethodPost || r.FormValue("grant_type") != "client_credentials" {
			http.Error(w, `{"error":"unsupported_grant_type"}`, http.StatusBadRequest)
			return
		}
		if id != "client-1" || secret != "s3cret&=" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"invalid_client","error_description":"bad client"}`)
			return
		}
		if r.FormValue("scope") != "read write" {
			http.Error(w, `{"error":"invalid_scope"}`, http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		gate := s.gate
		s.mu.Unlock()
		if gate != nil {
			<-gate
		}
		s.mu.Lock()
		s.fetches++
		n, exp := s.fetches, s.expiresIn
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": fmt.Sprintf("tok-%d", n), "token_type": "Bearer", "expires_in": exp})
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *tokenServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches
}

func oauthDef(url string) secdef.Definition {
	return secdef.Definition{Name: "o", Kind: secdef.KindOAuth2, TokenURL: url,
		ClientID: "client-1", ClientSecret: "s3cret&=", Scopes: []string{"read", "write"}}
}

func authHeader(t *testing.T, a security.Authenticator) string {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "http://remote.test/", nil)
	if err := a.Apply(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	return req.Header.Get("Authorization")
}

func TestOAuth2Caching(t *testing.T) {
	ts := newTokenServer(t)
	clock := newClock()
	a, err := security.NewAuthenticator(oauthDef(ts.URL), security.WithClock(clock.Now), security.WithTokenMargin(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name    string
		advance time.Duration
		want    string
		fetches int
	}{
		{"first fetch", 0, "Bearer tok-1", 1},
		{"cached", 0, "Bearer tok-1", 1},
		{"still cached before the margin", 3569 * time.Second, "Bearer tok-1", 1},
		{"refetched inside the margin", time.Second, "Bearer tok-2", 2},
		{"new token cached", time.Minute, "Bearer tok-2", 2},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			clock.Advance(s.advance)
			if got := authHeader(t, a); got != s.want {
				t.Fatalf("Authorization = %q, want %q", got, s.want)
			}
			if got := ts.count(); got != s.fetches {
				t.Fatalf("fetches = %d, want %d", got, s.fetches)
			}
		})
	}
	t.Run("invalidate", func(t *testing.T) {
		a.(*security.OAuth2).Invalidate()
		if got := authHeader(t, a); got != "Bearer tok-3" {
			t.Fatalf("Authorization = %q", got)
		}
	})
}

func TestOAuth2ConcurrentCallersShareOneFetch(t *testing.T) {
	ts := newTokenServer(t)
	ts.mu.Lock()
	ts.gate = make(chan struct{})
	ts.mu.Unlock()
	a, err := security.NewAuthenticator(oauthDef(ts.URL))
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	var wg sync.WaitGroup
	got := make([]string, n)
	for i := range n {
		wg.Go(func() {
			req := httptest.NewRequest(http.MethodGet, "http://remote.test/", nil)
			if err := a.Apply(context.Background(), req); err != nil {
				t.Error(err)
			}
			got[i] = req.Header.Get("Authorization")
		})
	}
	close(ts.gate)
	wg.Wait()
	for i, g := range got {
		if g != "Bearer tok-1" {
			t.Fatalf("caller %d got %q", i, g)
		}
	}
	if c := ts.count(); c != 1 {
		t.Fatalf("fetches = %d, want 1", c)
	}
}

func TestOAuth2Errors(t *testing.T) {
	ts := newTokenServer(t)
	tests := []struct {
		name      string
		mod       func(*secdef.Definition)
		expiresIn any
		want      string
	}{
		{"bad client", func(d *secdef.Definition) { d.ClientSecret = "wrong" }, 3600, "invalid_client bad client"},
		// x/oauth2 refuses the response; its own words follow ours.
		{"expires_in not a number", nil, "soon", "token response from " + ts.URL + ": "},
		{"negative expires_in", nil, -5, "expires_in is not a valid number of seconds"},
		{"unreachable", func(d *secdef.Definition) { d.TokenURL = "http://127.0.0.1:1/token" }, 3600, "token request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts.mu.Lock()
			ts.expiresIn = tt.expiresIn
			ts.mu.Unlock()
			def := oauthDef(ts.URL)
			if tt.mod != nil {
				tt.mod(&def)
			}
			a, err := security.NewAuthenticator(def)
			if err != nil {
				t.Fatal(err)
			}
			err = a.Apply(context.Background(), httptest.NewRequest(http.MethodGet, "http://remote.test/", nil))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), `oauth2_client_credentials "o": `) {
				t.Fatalf("Apply error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	t.Run("expires_in as string", func(t *testing.T) {
		ts.mu.Lock()
		ts.expiresIn = "120"
		ts.mu.Unlock()
		a, _ := security.NewAuthenticator(oauthDef(ts.URL))
		if got := authHeader(t, a); !strings.HasPrefix(got, "Bearer tok-") {
			t.Fatalf("Authorization = %q", got)
		}
	})
}

func TestBearer(t *testing.T) {
	a, err := security.NewAuthenticator(secdef.Definition{Name: "t", Kind: secdef.KindBearer, Token: "abc"})
	if err != nil {
		t.Fatal(err)
	}
	if got := authHeader(t, a); got != "Bearer abc" {
		t.Fatalf("Authorization = %q", got)
	}
}

func TestTLSClientCert(t *testing.T) {
	ca := newCert(t, "weft test CA", true, nil, time.Now().Add(time.Hour))
	client := newCert(t, "partner-client", false, ca, time.Now().Add(time.Hour))
	stranger := newCert(t, "stranger", false, nil, time.Now().Add(time.Hour))

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	cas := x509.NewCertPool()
	cas.AddCert(ca.cert)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: cas}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())

	get := func(cfg *tls.Config) (string, error) {
		cfg.RootCAs = roots
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
		defer c.CloseIdleConnections()
		resp, err := c.Get(srv.URL)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}

	t.Run("accepted", func(t *testing.T) {
		def := secdef.Definition{Name: "x", Kind: secdef.KindTLSClientCert, CertPEM: client.certPEM, KeyPEM: client.keyPEM}
		cfg, err := def.TLSConfig()
		if err != nil {
			t.Fatal(err)
		}
		body, err := get(cfg)
		if err != nil || body != "partner-client" {
			t.Fatalf("got %q, %v", body, err)
		}
		a, err := security.NewAuthenticator(def)
		if err != nil {
			t.Fatal(err)
		}
		if h := authHeader(t, a); h != "" {
			t.Fatalf("tls_client_cert authenticator set Authorization %q", h)
		}
	})
	t.Run("untrusted certificate refused", func(t *testing.T) {
		cfg, err := secdef.Definition{Name: "x", Kind: secdef.KindTLSClientCert, CertPEM: stranger.certPEM, KeyPEM: stranger.keyPEM}.TLSConfig()
		if err != nil {
			t.Fatal(err)
		}
		if body, err := get(cfg); err == nil {
			t.Fatalf("request succeeded: %q", body)
		}
	})
	t.Run("no certificate refused", func(t *testing.T) {
		if body, err := get(&tls.Config{}); err == nil {
			t.Fatalf("request succeeded: %q", body)
		}
	})
	t.Run("wrong kind", func(t *testing.T) {
		_, err := secdef.Definition{Name: "t", Kind: secdef.KindBearer, Token: "x"}.TLSConfig()
		if err == nil || err.Error() != `bearer "t": TLSConfig needs kind tls_client_cert` {
			t.Fatalf("error = %v", err)
		}
	})
}

// TestOAuth2TokenResponses covers token endpoint answers other than a good
// token: each is one request, with the client credentials in Basic auth and
// never in the form, and a refusal names the status and the error code.
func TestOAuth2TokenResponses(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		want        string // the error after `oauth2_client_credentials "o": `
	}{
		{"invalid_client", 401, "application/json", `{"error":"invalid_client"}`, "token request {url}: status 401 Unauthorized: invalid_client"},
		{"error with description", 400, "application/json", `{"error":"invalid_scope","error_description":"no such scope"}`, "token request {url}: status 400 Bad Request: invalid_scope no such scope"},
		{"error without JSON", 401, "text/html", `<h1>no</h1>`, "token request {url}: status 401 Unauthorized"},
		{"error in a 200 answer", 200, "application/json", `{"error":"invalid_request"}`, "token request {url}: status 200 OK: invalid_request"},
		{"no access_token", 200, "application/json", `{"token_type":"Bearer"}`, "token response from {url}: "},
		{"not a bearer token", 200, "application/json", `{"access_token":"t","token_type":"mac"}`, `token response from {url}: token_type "mac", want Bearer`},
		{"expires_in too large", 200, "application/json", `{"access_token":"t","expires_in":999999999}`, "token response from {url}: expires_in is not a valid number of seconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var requests int
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				requests++
				mu.Unlock()
				if _, _, ok := r.BasicAuth(); !ok || r.FormValue("client_secret") != "" || r.FormValue("client_id") != "" {
					t.Errorf("client credentials not in Basic auth only: %q, form %v", r.Header.Get("Authorization"), r.Form)
				}
				w.Header().Set("Content-Type", tt.contentType)
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			t.Cleanup(srv.Close)
			a, err := security.NewAuthenticator(oauthDef(srv.URL))
			if err != nil {
				t.Fatal(err)
			}
			err = a.Apply(context.Background(), httptest.NewRequest(http.MethodGet, "http://remote.test/", nil))
			want := `oauth2_client_credentials "o": ` + strings.ReplaceAll(tt.want, "{url}", srv.URL)
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("Apply error = %v\nwant it to start with %s", err, want)
			}
			mu.Lock()
			defer mu.Unlock()
			if requests != 1 {
				t.Fatalf("token requests = %d, want 1", requests)
			}
		})
	}
}

// TestOAuth2DefaultLifetime checks that a token without expires_in is
// reused for defaultTokenLifetime (a minute) less the margin, capped at
// half of it.
func TestOAuth2DefaultLifetime(t *testing.T) {
	ts := newTokenServer(t)
	ts.mu.Lock()
	ts.expiresIn = nil
	ts.mu.Unlock()
	clock := newClock()
	a, err := security.NewAuthenticator(oauthDef(ts.URL), security.WithClock(clock.Now), security.WithTokenMargin(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		advance time.Duration
		want    string
	}{
		{0, "Bearer tok-1"},
		{29 * time.Second, "Bearer tok-1"},
		{time.Second, "Bearer tok-2"},
	}
	for _, s := range steps {
		clock.Advance(s.advance)
		if got := authHeader(t, a); got != s.want {
			t.Fatalf("after %s: Authorization = %q, want %q", s.advance, got, s.want)
		}
	}
}
