package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/weft-dev/weft/agent/shared/snapshot"
	"github.com/weft-dev/weft/controlplane/store/storetest"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
	"github.com/weft-dev/weft/tests/testenv"
)

// TestAgentTrust runs the agents a control plane must refuse against a
// real one, started with a CA of the operator's (--ca-cert, --ca-key) so
// that the test can also make the certificates no enrollment would give:
// one that expired, one from another CA. Each refused agent is written
// from scratch here, as an attacker would.
func TestAgentTrust(t *testing.T) {
	dir := t.TempDir()
	ca := testenv.NewCA(t, "operator CA")
	caFiles := ca.WriteFiles(t, dir, "ca")
	cp := testenv.StartControlPlane(t, storetest.SQLite(t).DSN, testenv.WithArgs("--ca-cert", caFiles.Cert, "--ca-key", caFiles.Key))
	if fp := cp.CAFingerprint(t); !strings.HasPrefix(fp, "sha256:") {
		t.Fatalf("CA fingerprint %q", fp)
	}

	// Some config, so that an agent that says hello gets a snapshot.
	(&env{cp: cp}).ctlOK(t, "outgoing", "create", "crm", "--address", "http://127.0.0.1:9")
	edge1 := enrollFake(t, cp, "edge-1", cp.JoinToken(t))
	if _, err := edge1.sync(t, "edge-1"); err != nil {
		t.Fatalf("an enrolled agent cannot sync: %v", err)
	}

	t.Run("without a certificate", func(t *testing.T) {
		a := &fakeAgent{cp: cp}
		_, err := a.sync(t, "edge-1")
		wantCode(t, err, codes.Unauthenticated, "client certificate")
	})
	t.Run("with an expired certificate", func(t *testing.T) {
		files := ca.ClientCertValid(t, t.TempDir(), "expired", "edge-1", time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))
		a := fakeFromFiles(t, cp, files)
		_, err := a.sync(t, "edge-1")
		wantRefusedHandshake(t, err)
	})
	t.Run("with a certificate from another CA", func(t *testing.T) {
		other := testenv.NewCA(t, "another CA")
		a := fakeFromFiles(t, cp, other.ClientCert(t, t.TempDir(), "stranger", "edge-1"))
		_, err := a.sync(t, "edge-1")
		wantRefusedHandshake(t, err)
	})
	t.Run("presenting another agent's id", func(t *testing.T) {
		_, err := edge1.sync(t, "edge-2")
		wantCode(t, err, codes.PermissionDenied, `the certificate is agent "edge-1"'s`)
		_, err = edge1.api().ReportStats(ctx(t), &agentv1.ReportStatsRequest{AgentId: "edge-2"})
		wantCode(t, err, codes.PermissionDenied, "acts only as its own id")
		_, err = edge1.api().RenewLeases(ctx(t), &agentv1.RenewLeasesRequest{AgentId: "edge-2"})
		wantCode(t, err, codes.PermissionDenied, "acts only as its own id")
	})
	t.Run("whose join token is used up", func(t *testing.T) {
		tok := cp.JoinToken(t)
		enrollFake(t, cp, "edge-3", tok)
		_, err := tryEnroll(t, cp, "edge-4", tok)
		wantCode(t, err, codes.PermissionDenied, "used up")
		_, err = tryEnroll(t, cp, "edge-4", "weftjoin_made-up")
		wantCode(t, err, codes.Unauthenticated, "unknown join token")
	})
	t.Run("revoked", func(t *testing.T) {
		// A real agent, connected, is cut off at once.
		real := testenv.StartAgent(t, cp, "edge-real")
		r := testenv.Ctl(t, cp, "agent", "revoke", "edge-real")
		if r.ExitCode != 0 {
			t.Fatalf("agent revoke: %s", r)
		}
		testenv.Await(t, 30*time.Second, "the revoked agent disconnected", func() (bool, string) {
			rec := real.Record(t)
			return !rec.GetConnected() && rec.GetRevokedAt() != nil, rec.String()
		})
		testenv.Await(t, 30*time.Second, "the agent's log to say it was refused", func() (bool, string) {
			b, _ := os.ReadFile(real.LogPath())
			return strings.Contains(string(b), "revoked"), string(b)
		})
		// The fake one too, on every way back in.
		if r := testenv.Ctl(t, cp, "agent", "revoke", "edge-1"); r.ExitCode != 0 {
			t.Fatalf("agent revoke: %s", r)
		}
		_, err := edge1.sync(t, "edge-1")
		wantCode(t, err, codes.PermissionDenied, "revoked")
		_, err = edge1.api().Renew(ctx(t), &agentv1.RenewRequest{CsrDer: newCSR(t)})
		wantCode(t, err, codes.PermissionDenied, "revoked")
		_, err = tryEnroll(t, cp, "edge-1", cp.JoinToken(t))
		wantCode(t, err, codes.PermissionDenied, "revoked")
	})
}

// TestAgentReceivesOnlyItsSecrets has a fake agent with a valid
// certificate read its snapshot: the secret of the definition a channel
// uses is there, the others' are not.
func TestAgentReceivesOnlyItsSecrets(t *testing.T) {
	cp := testenv.StartControlPlane(t, storetest.SQLite(t).DSN)
	e := &env{cp: cp}
	e.ctlOK(t, "deploy", filepath.Join(testenv.ModuleRoot(t), "deploy", "examples", "hello"))
	e.ctlOK(t, "security", "create", "used", "--kind", "basic_auth", "--username", "u", "--password", "pw-used-3f9a1c")
	e.ctlOK(t, "security", "create", "unused", "--kind", "api_key", "--key", "key-unused-77b2e0")
	e.ctlOK(t, "security", "create", "outbound-unused", "--kind", "bearer", "--token", "tok-unused-0c4d8e")
	e.ctlOK(t, "channel", "create", "hello", "--path", "/api/hello", "--service", "hello.greet", "--security", "used")

	// A stored credential cannot be pointed at a server of one's own: a
	// new connection using crm-token elsewhere is refused, naming where
	// its credentials go.
	e.ctlOK(t, "outgoing", "create", "crm", "--address", "https://crm.example", "--security", "outbound-unused")
	r := testenv.Ctl(t, cp, "outgoing", "create", "mine", "--address", "http://127.0.0.1:9", "--security", "outbound-unused")
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, `security definition "outbound-unused"'s credentials go to https://crm.example:443 (outgoing connection "crm")`) {
		t.Errorf("outgoing create with another's credentials elsewhere: %s; want it refused naming where they go", r)
	}
	e.ctlOK(t, "outgoing", "update", "crm", "--inactive")

	a := enrollFake(t, cp, "edge-secrets", cp.JoinToken(t))
	snap, err := a.sync(t, "edge-secrets")
	if err != nil {
		t.Fatal(err)
	}
	b, err := proto.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "pw-used-3f9a1c") {
		t.Errorf("the snapshot lacks the secret of the definition its channel uses")
	}
	for _, s := range []string{"key-unused-77b2e0", "tok-unused-0c4d8e"} {
		if strings.Contains(string(b), s) {
			t.Errorf("the snapshot holds %q, the secret of a definition nothing on the agent uses", s)
		}
	}
}

// fakeAgent is an agent written from scratch: a TLS client of the agent
// API, with a client certificate or without.
type fakeAgent struct {
	cp   *testenv.ControlPlane
	cert *tls.Certificate // nil: none
	conn *grpc.ClientConn
}

func (a *fakeAgent) api() agentv1.AgentServiceClient {
	if a.conn == nil {
		panic("fakeAgent.api before dial")
	}
	return agentv1.NewAgentServiceClient(a.conn)
}

// dial connects a with its certificate, trusting the control plane's CA.
func (a *fakeAgent) dial(t *testing.T) {
	t.Helper()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(a.cp.CAPEM(t)) {
		t.Fatal("no CA certificate")
	}
	host, _, _ := net.SplitHostPort(a.cp.Addr)
	conf := &tls.Config{RootCAs: roots, ServerName: host, MinVersion: tls.VersionTLS12}
	if a.cert != nil {
		// Sent whatever CAs the server names, as a hostile client would.
		conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return a.cert, nil }
	}
	conn, err := grpc.NewClient(a.cp.Addr, grpc.WithTransportCredentials(credentials.NewTLS(conf)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	a.conn = conn
}

// sync says hello as id and returns the first snapshot.
func (a *fakeAgent) sync(t *testing.T, id string) (*agentv1.Desired, error) {
	t.Helper()
	if a.conn == nil {
		a.dial(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream, err := a.api().Sync(ctx)
	if err != nil {
		return nil, err
	}
	err = stream.Send(&agentv1.SyncRequest{Kind: &agentv1.SyncRequest_Hello{Hello: &agentv1.Hello{
		AgentId: id, ProtocolVersion: snapshot.ProtocolVersion, Pid: 1, StartedAtUnixMs: time.Now().UnixMilli(),
	}}})
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	m, err := stream.Recv()
	if err != nil {
		return nil, err
	}
	return m.GetDesired(), nil
}

// enrollFake enrolls a fake agent as id with the join token secret.
func enrollFake(t *testing.T, cp *testenv.ControlPlane, id, secret string) *fakeAgent {
	t.Helper()
	a, err := tryEnroll(t, cp, id, secret)
	if err != nil {
		t.Fatalf("enroll %s: %v", id, err)
	}
	return a
}

// tryEnroll enrolls as id with the join token secret.
func tryEnroll(t *testing.T, cp *testenv.ControlPlane, id, secret string) (*fakeAgent, error) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ignored"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	anon := &fakeAgent{cp: cp}
	anon.dial(t)
	resp, err := anon.api().Enroll(ctx(t), &agentv1.EnrollRequest{JoinToken: secret, AgentId: id, CsrDer: csr})
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(certFile, []byte(resp.GetCertificatePem()), 0o600); err != nil {
		t.Fatal(err)
	}
	keyFile := testenv.WritePEM(t, dir, "key.pem", "PRIVATE KEY", keyDER)
	return fakeFromFiles(t, cp, testenv.CertFiles{Cert: certFile, Key: keyFile}), nil
}

// fakeFromFiles is a fake agent presenting the certificate in files.
func fakeFromFiles(t *testing.T, cp *testenv.ControlPlane, files testenv.CertFiles) *fakeAgent {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(files.Cert, files.Key)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeAgent{cp: cp, cert: &pair}
}

// newCSR is a certificate request for a new key.
func newCSR(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// wantCode fails t unless err has code and a message holding part.
func wantCode(t *testing.T, err error, code codes.Code, part string) {
	t.Helper()
	st, _ := status.FromError(err)
	if err == nil || st.Code() != code || !strings.Contains(st.Message(), part) {
		t.Errorf("got %v; want %s with %q", err, code, part)
	}
}

// wantRefusedHandshake fails t unless err says the TLS handshake failed:
// the control plane refused the certificate before any call.
func wantRefusedHandshake(t *testing.T, err error) {
	t.Helper()
	st, _ := status.FromError(err)
	if err == nil || st.Code() != codes.Unavailable {
		t.Errorf("got %v; want the handshake refused (Unavailable, a TLS error)", err)
		return
	}
	t.Logf("refused: %v", err)
}
