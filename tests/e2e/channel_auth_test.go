package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/weft-dev/weft/controlplane/store/storetest"
	"github.com/weft-dev/weft/tests/testenv"
)

// TestChannelAuth protects channels of an HTTPS-only agent with a
// tls_client_cert definition and with a bearer definition checked by an
// OAuth2 introspection endpoint (RFC 7662) the test serves, and calls
// them with curl: a client certificate from the definition's CA passes;
// none, one from another CA, or one naming another subject gets 401. An
// active token passes, an inactive one gets 401, and the endpoint is asked
// once for two calls with the same token.
func TestChannelAuth(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("no curl on this machine")
	}
	dir := t.TempDir()
	channelsCA := testenv.NewCA(t, "weft test channels CA")
	caFile := testenv.WritePEM(t, dir, "ca.pem", "CERTIFICATE", channelsCA.Cert.Raw)
	served := channelsCA.ServerCert(t, dir, "channels", "agent")

	partnersCA := testenv.NewCA(t, "partners CA")
	partnersCAFile := testenv.WritePEM(t, dir, "partners-ca.pem", "CERTIFICATE", partnersCA.Cert.Raw)
	acme := partnersCA.ClientCert(t, dir, "acme", "acme")
	mallory := partnersCA.ClientCert(t, dir, "mallory", "mallory")
	stranger := testenv.NewCA(t, "other CA").ClientCert(t, dir, "stranger", "acme")

	idp := newIntrospection(t, "weft-agent", "introspection-secret")
	idp.active("good-token", "ada", "hello")
	secretFile := filepath.Join(dir, "idp.secret")
	if err := os.WriteFile(secretFile, []byte("introspection-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	cp := testenv.StartControlPlane(t, storetest.SQLite(t).DSN)
	// One worker: introspection answers are cached in each worker.
	agent := testenv.StartAgent(t, cp, "auth-1", testenv.OnlyHTTPS(served.Cert, served.Key), testenv.WithArgs("--workers", "1"))
	e := &env{cp: cp, agents: []*testenv.Agent{agent}}
	e.ctlOK(t, "deploy", filepath.Join(testenv.ModuleRoot(t), "deploy", "examples", "hello"), "--wait")
	e.ctlOK(t, "security", "create", "partners", "--kind", "tls_client_cert", "--ca-file", partnersCAFile, "--allowed-subjects", "acme")
	e.ctlOK(t, "security", "create", "idp", "--kind", "bearer", "--introspection-url", idp.URL, "--client-id", "weft-agent",
		"--client-secret", "@"+secretFile, "--scopes", "hello")
	e.ctlOK(t, "channel", "create", "hello-mtls", "--path", "/api/mtls", "--service", "hello.greet", "--security", "partners")
	e.ctlOK(t, "channel", "create", "hello-token", "--path", "/api/token", "--service", "hello.greet", "--security", "idp")
	e.sync(t)
	if res := e.ctlOK(t, "security", "get", "idp"); strings.Contains(res.Stdout, "introspection-secret") {
		t.Errorf("weftctl security get shows the client secret:\n%s", res.Stdout)
	}

	// call posts Ada's name with curl and returns the status and body.
	call := func(t *testing.T, path string, args ...string) (int, string) {
		t.Helper()
		argv := append([]string{"-sS", "--max-time", "30", "-X", "POST", "-H", "Content-Type: application/json",
			"-d", `{"name":"Ada"}`, "-w", "\n%{http_code}", "--cacert", caFile}, args...)
		argv = append(argv, agent.URL(path))
		cmd := exec.Command(curl, argv...)
		out, err := cmd.CombinedOutput()
		t.Logf("$ curl %s  # %v", strings.Join(args, " "), err)
		if err != nil {
			t.Fatalf("curl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		// -w puts the status on a line of its own after the body.
		i := strings.LastIndex(string(out), "\n")
		body, code := strings.TrimSpace(string(out[:max(i, 0)])), strings.TrimSpace(string(out[i+1:]))
		status, err := strconv.Atoi(code)
		if err != nil {
			t.Fatalf("curl printed no status: %q", out)
		}
		return status, body
	}
	refused := func(t *testing.T, what string, status int, body, mention string) {
		t.Helper()
		var e struct {
			Error string `json:"error"`
			CID   string `json:"cid"`
		}
		if status != http.StatusUnauthorized || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Error, mention) || e.CID == "" {
			t.Errorf("%s: %d %s; want 401 with a JSON error naming %q", what, status, body, mention)
		}
	}

	t.Run("client certificates", func(t *testing.T) {
		if status, body := call(t, "/api/mtls", "--cert", acme.Cert, "--key", acme.Key); status != 200 || !strings.Contains(body, "Hello, Ada!") {
			t.Fatalf("a certificate from the partners CA: %d %s", status, body)
		}
		status, body := call(t, "/api/mtls")
		refused(t, "no certificate", status, body, "a TLS client certificate is required")
		status, body = call(t, "/api/mtls", "--cert", stranger.Cert, "--key", stranger.Key)
		refused(t, "a certificate from another CA", status, body, "is not signed by a CA this channel trusts")
		status, body = call(t, "/api/mtls", "--cert", mallory.Cert, "--key", mallory.Key)
		refused(t, "a certificate of another subject", status, body, "matches no allowed subject")
	})

	t.Run("introspected bearer tokens", func(t *testing.T) {
		for i := 1; i <= 2; i++ {
			if status, body := call(t, "/api/token", "-H", "Authorization: Bearer good-token"); status != 200 || !strings.Contains(body, "Hello, Ada!") {
				t.Fatalf("call %d with an active token: %d %s", i, status, body)
			}
		}
		if n := idp.hits("good-token"); n != 1 {
			t.Errorf("the introspection endpoint was asked %d times for two calls with one token, want 1 (cached)", n)
		}
		status, body := call(t, "/api/token", "-H", "Authorization: Bearer revoked-token")
		refused(t, "an inactive token", status, body, "token is not active")
		status, body = call(t, "/api/token")
		refused(t, "no token", status, body, "bearer token required")
		if bad := idp.refused(); bad != "" {
			t.Errorf("the introspection endpoint refused the agent's requests: %s", bad)
		}
	})

	// Nothing secret reached the agent's log.
	logged := readLog(t, agent.LogPath())
	for _, secret := range []string{"introspection-secret", "good-token"} {
		if strings.Contains(logged, secret) {
			t.Errorf("the agent's log holds %q", secret)
		}
	}
}

// introspection is an RFC 7662 token introspection endpoint: it takes
// the client's id and secret by HTTP basic authentication, and says a
// token is active when active was told so.
type introspection struct {
	*httptest.Server
	mu      sync.Mutex
	tokens  map[string]map[string]any
	counts  map[string]int
	refusal []string
}

func newIntrospection(t *testing.T, clientID, secret string) *introspection {
	s := &introspection{tokens: map[string]map[string]any{}, counts: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		id, pass, ok := r.BasicAuth()
		id, _ = url.QueryUnescape(id)
		pass, _ = url.QueryUnescape(pass)
		if r.Method != http.MethodPost || !ok || id != clientID || pass != secret {
			s.refusal = append(s.refusal, fmt.Sprintf("%s with client %q", r.Method, id))
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		tok := r.PostFormValue("token")
		s.counts[tok]++
		answer, ok := s.tokens[tok]
		if !ok {
			answer = map[string]any{"active": false}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(answer)
	}))
	t.Cleanup(s.Close)
	return s
}

// active makes token active for subject with scope.
func (s *introspection) active(token, subject, scope string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = map[string]any{"active": true, "sub": subject, "scope": scope}
}

// hits is how many times token was asked about.
func (s *introspection) hits(token string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[token]
}

// refused describes the requests refused for bad client credentials.
func (s *introspection) refused() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.refusal, "; ")
}
