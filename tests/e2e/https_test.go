package e2e

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weft-dev/weft/controlplane/store/storetest"
	"github.com/weft-dev/weft/tests/testenv"
)

// TestHTTPSChannels serves channels over HTTPS. An agent with --https only
// answers `curl --cacert` and refuses a client that does not trust its CA
// and a plain HTTP request; its certificate files are replaced and the
// next connections get the new certificate, with no restart; a broken
// replacement leaves the last good one in use. An agent with --http and
// --https serves both.
func TestHTTPSChannels(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("no curl on this machine")
	}
	dir := t.TempDir()
	authority := testenv.NewCA(t, "weft test channels CA")
	caFile := testenv.WritePEM(t, dir, "ca.pem", "CERTIFICATE", authority.Cert.Raw)
	served := authority.ServerCert(t, dir, "channels", "first")

	cp := testenv.StartControlPlane(t, storetest.SQLite(t).DSN)
	secure := testenv.StartAgent(t, cp, "https-1", testenv.OnlyHTTPS(served.Cert, served.Key))
	both := testenv.StartAgent(t, cp, "https-2", testenv.WithArgs("--https", testenv.FreeAddr(t), "--tls-cert", served.Cert, "--tls-key", served.Key))
	e := &env{cp: cp, agents: []*testenv.Agent{secure, both}}
	e.ctlOK(t, "deploy", filepath.Join(testenv.ModuleRoot(t), "deploy", "examples", "hello"), "--wait")
	e.ctlOK(t, "channel", "create", "hello", "--path", "/api/hello", "--service", "hello.greet")
	e.sync(t)

	call := func(args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(curl, append([]string{"-sS", "--max-time", "30", "-X", "POST", "-H", "Content-Type: application/json", "-d", `{"name":"Ada"}`}, args...)...)
		out, err := cmd.CombinedOutput()
		code := 0
		if err != nil {
			code = cmd.ProcessState.ExitCode()
		}
		t.Logf("$ curl %s  # exit %d", strings.Join(args, " "), code)
		return string(out), code
	}
	if out, code := call("--cacert", caFile, secure.URL("/api/hello")); code != 0 || !strings.Contains(out, "Hello, Ada!") {
		t.Fatalf("curl --cacert over HTTPS: exit %d: %s", code, out)
	}
	if out, code := call(secure.URL("/api/hello")); code == 0 {
		t.Errorf("curl without the CA trusted the agent's certificate: %s", out)
	}
	if out, _ := call("http://" + secure.HTTPAddr + "/api/hello"); strings.Contains(out, "Hello") {
		t.Errorf("plain HTTP to an HTTPS-only agent was answered: %s", out)
	}
	if rec := cp.Agent(t, secure.ID); rec.GetHttpAddress() != "https://"+secure.HTTPAddr {
		t.Errorf("the HTTPS-only agent says it serves at %q, want https://%s", rec.GetHttpAddress(), secure.HTTPAddr)
	}
	// An agent with both serves both.
	if r := testenv.PostJSON(t, both.URL("/api/hello"), `{"name":"Ada"}`); r.Status != 200 {
		t.Errorf("plain HTTP beside HTTPS: %s", r)
	}

	// Renewed: the files change, the next connections get the new one.
	renewed := authority.ServerCert(t, dir, "renewed", "second")
	replace(t, renewed.Cert, served.Cert)
	replace(t, renewed.Key, served.Key)
	testenv.Await(t, time.Minute, "the renewed certificate served", func() (bool, string) {
		cn := peerName(t, secure.HTTPAddr, authority)
		return cn == "second", "served: " + cn
	})
	if out, code := call("--cacert", caFile, secure.URL("/api/hello")); code != 0 || !strings.Contains(out, "Hello, Ada!") {
		t.Fatalf("curl --cacert after the renewal: exit %d: %s", code, out)
	}
	// A broken renewal keeps the last good certificate.
	if err := os.WriteFile(served.Cert, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	testenv.Await(t, time.Minute, "the agent saying it keeps its certificate", func() (bool, string) {
		peerName(t, secure.HTTPAddr, authority) // the files are looked at on a handshake
		return strings.Contains(readLog(t, secure.LogPath()), "keeping the TLS certificate in use"), "not yet"
	})
	if cn := peerName(t, secure.HTTPAddr, authority); cn != "second" {
		t.Errorf("after a broken renewal the agent serves %q, want the last good one", cn)
	}
	if !secure.Running() {
		t.Fatal("the agent ended on a broken certificate file")
	}
}

// replace puts the content of from at to in one rename, as a renewal does.
func replace(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	tmp := to + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, to); err != nil {
		t.Fatal(err)
	}
}

// peerName is the common name of the certificate a new TLS connection to
// addr is served, verified against authority.
func peerName(t *testing.T, addr string, authority *testenv.CA) string {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, &tls.Config{RootCAs: authority.Pool()})
	if err != nil {
		return fmt.Sprintf("(no TLS connection: %v)", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
}
