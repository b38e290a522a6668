package outgoing

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weft-dev/weft/agent/shared/outgoingconf"
)

// seen is what a test server received.
type seen struct {
	Method, Path, Query, Host string
	Header                    http.Header
	Body                      string
}

// recorder starts a server that records each request and answers with
// status and body.
func recorder(t *testing.T, status int, body string) (*httptest.Server, func() seen) {
	t.Helper()
	var mu sync.Mutex
	var last seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		last = seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Host, r.Header.Clone(), string(b)}
		mu.Unlock()
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, func() seen { mu.Lock(); defer mu.Unlock(); return last }
}

func newConn(t *testing.T, cfg Config, opts ...Option) *Conn {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "crm"
	}
	c, err := New(cfg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// authFunc adapts a function to Auth.
type authFunc func(ctx context.Context, req *http.Request) error

func (f authFunc) Apply(ctx context.Context, req *http.Request) error { return f(ctx, req) }

var _ Auth = authFunc(nil)

func TestDoRequest(t *testing.T) {
	srv, last := recorder(t, 200, `{"ok":true}`)
	apiKey := authFunc(func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer tok")
		return nil
	})
	tests := []struct {
		name   string
		cfg    Config
		opts   []Option
		params map[string]string
		query  url.Values
		body   []byte
		want   seen // Header holds only the headers to check; "" means absent
	}{
		{
			name:   "path params and query",
			cfg:    Config{Address: srv.URL + "/api/", PathTemplate: "/customers/{id}/orders/{order}"},
			params: map[string]string{"id": "42", "order": "a/b c", "unused": "x"},
			query:  url.Values{"q": {"x y"}, "n": {"1", "2"}},
			want: seen{Method: "GET", Path: "/api/customers/42/orders/a%2Fb%20c", Query: "n=1&n=2&q=x+y",
				Header: http.Header{"Accept": {"application/json"}, "Content-Type": {""}}},
		},
		{
			name: "address only",
			cfg:  Config{Address: srv.URL + "/health"},
			want: seen{Method: "GET", Path: "/health"},
		},
		{
			name: "json body",
			cfg:  Config{Address: srv.URL, PathTemplate: "/c", Method: "POST"},
			body: []byte(`{"a":1}`),
			want: seen{Method: "POST", Path: "/c", Body: `{"a":1}`,
				Header: http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json"}}},
		},
		{
			name: "xml body",
			cfg:  Config{Address: srv.URL, Method: "PUT", Format: outgoingconf.FormatXML},
			body: []byte(`<a/>`),
			want: seen{Method: "PUT", Path: "", Body: `<a/>`,
				Header: http.Header{"Content-Type": {"application/xml; charset=utf-8"}, "Soapaction": {""}}},
		},
		{
			name: "soap 1.1",
			cfg:  Config{Address: srv.URL, PathTemplate: "/ws", Method: "POST", Format: outgoingconf.FormatSOAP11, SOAPAction: "urn:GetCustomer"},
			body: []byte(`<Envelope/>`),
			want: seen{Method: "POST", Path: "/ws", Body: `<Envelope/>`,
				Header: http.Header{"Content-Type": {"text/xml; charset=utf-8"}, "Soapaction": {`"urn:GetCustomer"`}}},
		},
		{
			name: "soap 1.2",
			cfg:  Config{Address: srv.URL, PathTemplate: "/ws", Method: "POST", Format: outgoingconf.FormatSOAP12, SOAPAction: "urn:GetCustomer"},
			body: []byte(`<Envelope/>`),
			want: seen{Method: "POST", Path: "/ws", Body: `<Envelope/>`,
				Header: http.Header{"Content-Type": {`application/soap+xml; charset=utf-8; action="urn:GetCustomer"`}, "Soapaction": {""}}},
		},
		{
			name: "configured headers and auth",
			cfg: Config{Address: srv.URL, PathTemplate: "/c", Headers: map[string]string{
				"x-tenant": "berlin", "Accept": "application/vnd.crm+json", "Host": "crm.internal"}},
			opts: []Option{WithAuth(apiKey)},
			want: seen{Method: "GET", Path: "/c", Host: "crm.internal", Header: http.Header{
				"X-Tenant": {"berlin"}, "Accept": {"application/vnd.crm+json"}, "Authorization": {"Bearer tok"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newConn(t, tt.cfg, tt.opts...)
			resp, err := c.Do(context.Background(), tt.params, tt.query, tt.body)
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			if resp.Status != 200 || string(resp.Body) != `{"ok":true}` {
				t.Fatalf("response: %d %q", resp.Status, resp.Body)
			}
			got := last()
			if tt.want.Path == "" {
				tt.want.Path = "/"
			}
			if got.Method != tt.want.Method || got.Path != tt.want.Path || got.Query != tt.want.Query || got.Body != tt.want.Body {
				t.Errorf("request: %s %s ?%s body %q, want %s %s ?%s body %q",
					got.Method, got.Path, got.Query, got.Body, tt.want.Method, tt.want.Path, tt.want.Query, tt.want.Body)
			}
			if tt.want.Host != "" && got.Host != tt.want.Host {
				t.Errorf("Host: %q, want %q", got.Host, tt.want.Host)
			}
			for k, v := range tt.want.Header {
				if g := got.Header.Get(k); g != v[0] {
					t.Errorf("header %s: %q, want %q", k, g, v[0])
				}
			}
		})
	}
}

func TestDoPathParamErrors(t *testing.T) {
	c := newConn(t, Config{Address: "http://127.0.0.1:1", PathTemplate: "/customers/{id}"})
	tests := []struct {
		name   string
		params map[string]string
		want   string
	}{
		{"missing", nil, `outgoing "crm": path param "id" is missing`},
		{"empty", map[string]string{"id": ""}, `outgoing "crm": path param "id" is empty`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Do(context.Background(), tt.params, nil, nil)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Do: %v, want %q", err, tt.want)
			}
		})
	}
}

func TestAuthError(t *testing.T) {
	srv, _ := recorder(t, 200, "")
	boom := authFunc(func(context.Context, *http.Request) error { return errors.New("token endpoint down") })
	c := newConn(t, Config{Address: srv.URL}, WithAuth(boom))
	_, err := c.Do(context.Background(), nil, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "auth: token endpoint down") {
		t.Fatalf("Do: %v", err)
	}
}

func TestStatusError(t *testing.T) {
	long := strings.Repeat("€", 400) // 1200 bytes; 512 cuts a rune
	tests := []struct {
		name, body string
		status     int
		want       string // Error(); %s is the server URL
	}{
		{"json", `{"error":"no such customer"}`, 404, `outgoing "crm": GET %s/customers/42: 404 Not Found: {"error":"no such customer"}`},
		{"empty body", "", 503, `outgoing "crm": GET %s/customers/42: 503 Service Unavailable`},
		{"unknown status", "x", 599, `outgoing "crm": GET %s/customers/42: 599: x`},
		{"long body", long, 500, `outgoing "crm": GET %s/customers/42: 500 Internal Server Error: ` + strings.Repeat("€", 170)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := recorder(t, tt.status, tt.body)
			c := newConn(t, Config{Address: srv.URL, PathTemplate: "/customers/{id}"})
			resp, err := c.Do(context.Background(), map[string]string{"id": "42"}, url.Values{"api_key": {"secret"}}, nil)
			var se *StatusError
			if !errors.As(err, &se) {
				t.Fatalf("Do: %v, want *StatusError", err)
			}
			if want := fmt.Sprintf(tt.want, srv.URL); err.Error() != want {
				t.Fatalf("Error():\n got %s\nwant %s", err, want)
			}
			if se.Status != tt.status || len(se.Excerpt) > 512 {
				t.Fatalf("StatusError: %d, excerpt %d bytes", se.Status, len(se.Excerpt))
			}
			if resp == nil || string(resp.Body) != tt.body {
				t.Fatalf("the full response should come with the error")
			}
		})
	}
}

// TestStatusErrorHidesCredentials: a remote that quotes the credential it
// refused does not put it in the error, which the agent logs and keeps
// in samples; what the configuration sends, shown in clear anyway, stays.
func TestStatusErrorHidesCredentials(t *testing.T) {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		u, p, _ := r.BasicAuth()
		fmt.Fprintf(w, "rejected: auth=%q key=%q user=%q password=%q tenant=%q",
			r.Header.Get("Authorization"), r.Header.Get("X-Api-Key"), u, p, r.Header.Get("X-Tenant"))
	}))
	t.Cleanup(echo.Close)
	tests := []struct {
		name   string
		auth   authFunc
		hidden []string // what must not be in the excerpt
	}{
		{"bearer", func(_ context.Context, req *http.Request) error {
			req.Header.Set("Authorization", "Bearer tok-123+/x")
			return nil
		}, []string{"tok-123+/x"}},
		{"basic", func(_ context.Context, req *http.Request) error {
			req.SetBasicAuth("weft", "pa:ss-word")
			return nil
		}, []string{"pa:ss-word", base64.StdEncoding.EncodeToString([]byte("weft:pa:ss-word"))}},
		{"api key", func(_ context.Context, req *http.Request) error {
			req.Header.Set("X-Api-Key", "key-456")
			return nil
		}, []string{"key-456"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newConn(t, Config{Address: echo.URL, Headers: map[string]string{"X-Tenant": "berlin"}}, WithAuth(tt.auth))
			resp, err := c.Do(context.Background(), nil, nil, nil)
			var se *StatusError
			if !errors.As(err, &se) {
				t.Fatalf("Do: %v, want *StatusError", err)
			}
			for _, h := range tt.hidden {
				if strings.Contains(err.Error(), h) {
					t.Errorf("Error() shows the credential %q: %s", h, err)
				}
				if !strings.Contains(string(resp.Body), h) {
					t.Errorf("the response given to the service lacks %q, the body as the remote sent it: %s", h, resp.Body)
				}
			}
			if !strings.Contains(se.Excerpt, redacted) || !strings.Contains(se.Excerpt, `tenant="berlin"`) || !strings.Contains(se.Excerpt, "rejected") {
				t.Errorf("excerpt %q: want the credential as %s, and the rest as sent", se.Excerpt, redacted)
			}
		})
	}
}

func TestNetworkError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := newConn(t, Config{Address: "http://" + addr, PathTemplate: "/customers/{id}"})
	_, err = c.Do(context.Background(), map[string]string{"id": "42"}, url.Values{"api_key": {"secret"}}, nil)
	if err == nil {
		t.Fatal("Do: no error from a closed port")
	}
	want := `outgoing "crm": GET http://` + addr + `/customers/42: `
	if !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("Do: %q, want prefix %q", err, want)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Fatalf("Do: %q leaks the query", err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) {
		t.Fatalf("Do: %v does not wrap the *net.OpError", err)
	}
}

func TestTimeouts(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // answer only once the client has given up
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })

	tests := []struct {
		name    string
		timeout time.Duration
		ctx     func() (context.Context, context.CancelFunc)
		want    string
	}{
		{"connection timeout", 50 * time.Millisecond,
			func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			"timed out after 50ms"},
		{"context deadline", time.Minute,
			func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 50*time.Millisecond)
			},
			"context deadline exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newConn(t, Config{Address: srv.URL, Timeout: tt.timeout})
			ctx, cancel := tt.ctx()
			defer cancel()
			_, err := c.Do(ctx, nil, nil, nil)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Do: %v, want context.DeadlineExceeded", err)
			}
			t.Log(err)
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), `outgoing "crm": GET `) {
				t.Fatalf("Do: %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	tests := []struct {
		name    string
		size    int
		wantErr bool
	}{
		{"at limit", 1024, false},
		{"over limit", 1025, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := recorder(t, 200, strings.Repeat("x", tt.size))
			c := newConn(t, Config{Address: srv.URL}, WithMaxBody(1024))
			resp, err := c.Do(context.Background(), nil, nil, nil)
			if tt.wantErr {
				if !errors.Is(err, ErrBodyTooLarge) || resp == nil || resp.Status != 200 || resp.Body != nil {
					t.Fatalf("Do: %v, want ErrBodyTooLarge with the status and no body", err)
				}
				return
			}
			if err != nil || len(resp.Body) != tt.size {
				t.Fatalf("Do: %v, %d bytes", err, len(resp.Body))
			}
		})
	}
}

func TestJSON(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Name string }
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		if in.Name == "" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		fmt.Fprintf(w, `{"greeting":"Hello, %s!"}`, in.Name)
	}))
	t.Cleanup(srv.Close)
	c := newConn(t, Config{Address: srv.URL, PathTemplate: "/greet/{id}", Method: "POST"})
	params := map[string]string{"id": "7"}

	var out struct{ Greeting string }
	if err := c.JSON(context.Background(), params, map[string]string{"name": "Ada"}, &out); err != nil {
		t.Fatalf("JSON: %v", err)
	}
	if out.Greeting != "Hello, Ada!" {
		t.Fatalf("out: %+v", out)
	}
	if err := c.JSON(context.Background(), params, struct{}{}, &out); err != nil {
		t.Fatalf("JSON with a 204: %v", err)
	}
	var se *StatusError
	if err := c.JSON(context.Background(), params, nil, &out); !errors.As(err, &se) || se.Status != 400 {
		t.Fatalf("JSON with no body: %v, want a 400 StatusError", err)
	}
	if err := c.JSON(context.Background(), params, func() {}, nil); err == nil || !strings.Contains(err.Error(), "encode request") {
		t.Fatalf("JSON with an unencodable input: %v", err)
	}
	var wrong struct{ Greeting int }
	if err := c.JSON(context.Background(), params, map[string]string{"name": "Ada"}, &wrong); err == nil || !strings.Contains(err.Error(), "decode response") {
		t.Fatalf("JSON into a wrong type: %v", err)
	}
	x := newConn(t, Config{Address: srv.URL, Format: outgoingconf.FormatXML})
	if err := x.JSON(context.Background(), nil, nil, nil); err == nil {
		t.Fatal("JSON on an xml connection: no error")
	}
}

func TestTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "secure")
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	t.Cleanup(srv.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})

	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"server cert as CA bundle", Config{Address: srv.URL, CABundlePEM: ca}, ""},
		{"system roots only", Config{Address: srv.URL}, "certificate"},
		{"verification off", Config{Address: srv.URL, InsecureSkipVerify: true}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newConn(t, tt.cfg)
			resp, err := c.Do(context.Background(), nil, nil, nil)
			if tt.wantErr != "" {
				var ue x509.UnknownAuthorityError
				if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Do: %v, want an unknown authority error", err)
				}
				return
			}
			if err != nil || string(resp.Body) != "secure" {
				t.Fatalf("Do: %v", err)
			}
		})
	}
}

func TestClientCert(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	cert := selfSigned(t, "edge-1")

	c := newConn(t, Config{Address: srv.URL, CABundlePEM: ca}, WithClientCert(&cert))
	resp, err := c.Do(context.Background(), nil, nil, nil)
	if err != nil || string(resp.Body) != "edge-1" {
		t.Fatalf("Do with a client cert: %v", err)
	}
	without := newConn(t, Config{Address: srv.URL, CABundlePEM: ca})
	if _, err := without.Do(context.Background(), nil, nil, nil); err == nil {
		t.Fatal("Do without a client cert: no error")
	}
}

func selfSigned(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestPoolSize(t *testing.T) {
	var active, peak, conns atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := active.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		<-release
		active.Add(-1)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c := newConn(t, Config{Address: srv.URL, PoolSize: 2})

	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Do(context.Background(), nil, nil, nil)
			errs <- err
		}()
	}
	for deadline := time.Now().Add(time.Minute); active.Load() < 2; { // poll until the pool is full
		if time.Now().After(deadline) {
			t.Fatalf("the pool of 2 never filled: %d requests active after a minute", active.Load())
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Do: %v", err)
		}
	}
	if peak.Load() > 2 || conns.Load() > 2 {
		t.Fatalf("PoolSize 2: %d concurrent requests on %d connections", peak.Load(), conns.Load())
	}
}

func TestPing(t *testing.T) {
	var methods sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		methods.Store(r.URL.Path+" "+r.Method, true)
		if r.URL.Path == "/nohead" && r.Method == http.MethodHead {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, "pong")
	}))
	t.Cleanup(srv.Close)

	tests := []struct {
		name    string
		address string
		status  int
		methods []string
	}{
		{"head", srv.URL + "/up", 200, []string{"/up HEAD"}},
		{"get after 405", srv.URL + "/nohead", 200, []string{"/nohead HEAD", "/nohead GET"}},
		{"not found is reachable", srv.URL + "/missing", 404, []string{"/missing HEAD"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newConn(t, Config{Address: tt.address, PathTemplate: "/never/{used}"})
			status, latency, err := c.Ping(context.Background())
			if err != nil || status != tt.status || latency <= 0 {
				t.Fatalf("Ping: %d %s %v, want %d", status, latency, err, tt.status)
			}
			for _, m := range tt.methods {
				if _, ok := methods.Load(m); !ok {
					t.Errorf("server did not see %s", m)
				}
			}
		})
	}

	t.Run("unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		c := newConn(t, Config{Address: "http://" + addr})
		if status, _, err := c.Ping(context.Background()); err == nil || status != 0 {
			t.Fatalf("Ping: %d %v, want an error", status, err)
		}
	})
}

// TestRedirectsKeepCredentialsHome: a redirect within the connection's
// address is followed with the credentials; one to another origin is not
// followed, so the credentials and the client certificate never reach it,
// and the call answers the redirect itself.
func TestRedirectsKeepCredentialsHome(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		t.Errorf("the other origin got a request, with X-Partner-Key %q", r.Header.Get("X-Partner-Key"))
	}))
	t.Cleanup(other.Close)
	home := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/moved":
			http.Redirect(w, r, "/here", http.StatusFound)
		case "/away":
			http.Redirect(w, r, other.URL+"/steal", http.StatusFound)
		case "/here":
			fmt.Fprintf(w, "key=%s", r.Header.Get("X-Partner-Key"))
		}
	}))
	t.Cleanup(home.Close)
	key := authFunc(func(_ context.Context, r *http.Request) error {
		r.Header.Set("X-Partner-Key", "k-secret")
		return nil
	})

	c := newConn(t, Config{Address: home.URL, PathTemplate: "/moved"}, WithAuth(key))
	resp, err := c.Do(context.Background(), nil, nil, nil)
	if err != nil || string(resp.Body) != "key=k-secret" {
		t.Fatalf("a redirect home: %v %q; want it followed with the key", err, respBody(resp))
	}
	c = newConn(t, Config{Address: home.URL, PathTemplate: "/away"}, WithAuth(key))
	resp, err = c.Do(context.Background(), nil, nil, nil)
	var se *StatusError
	if !errors.As(err, &se) || se.Status != http.StatusFound || resp.Header.Get("Location") != other.URL+"/steal" {
		t.Fatalf("a redirect away: %v; want the 302 itself, with its Location", err)
	}
	if n := elsewhere.Load(); n != 0 {
		t.Fatalf("the other origin got %d requests", n)
	}
}

func respBody(r *Response) string {
	if r == nil {
		return ""
	}
	return string(r.Body)
}
