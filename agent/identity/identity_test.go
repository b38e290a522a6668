package identity_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/weft-dev/weft/agent/controlclient"
	"github.com/weft-dev/weft/agent/identity"
	"github.com/weft-dev/weft/agent/identity/identitytest"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
	"github.com/weft-dev/weft/tests/testenv"
)

// config is an agent's identity config against cp, enrolling with its
// token and fingerprint, in a new state directory.
func config(t *testing.T, cp *identitytest.ControlPlane) identity.Config {
	return identity.Config{
		StateDir:      t.TempDir(),
		ID:            "edge-1",
		ControlPlane:  cp.Addr,
		JoinToken:     identitytest.Token,
		CAFingerprint: cp.Fingerprint(),
	}
}

// backoff is a fast one, for tests.
func backoff() identity.Backoff {
	return controlclient.NewBackoff(10*time.Millisecond, 50*time.Millisecond, nil)
}

// open opens cfg's identity, logging into the returned buffer.
func open(t *testing.T, cfg identity.Config) (*identity.Identity, *testenv.LogBuffer, error) {
	t.Helper()
	logs := &testenv.LogBuffer{}
	id, err := identity.Open(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	return id, logs, err
}

// mustOpen opens cfg's identity and fails the test when it is refused.
func mustOpen(t *testing.T, cfg identity.Config) (*identity.Identity, *testenv.LogBuffer) {
	t.Helper()
	id, logs, err := open(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return id, logs
}

// enroll opens cfg's identity and enrolls it.
func enroll(t *testing.T, cfg identity.Config) *identity.Identity {
	t.Helper()
	id, _ := mustOpen(t, cfg)
	if err := id.Enroll(t.Context(), backoff()); err != nil {
		t.Fatal(err)
	}
	return id
}

// storedCert reads the certificate stored in stateDir.
func storedCert(t *testing.T, stateDir string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(identity.Dir(stateDir), identity.CertFile))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s: no PEM", identity.CertFile)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// storedKey reads the key stored in stateDir.
func storedKey(t *testing.T, stateDir string) *ecdsa.PrivateKey {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(identity.Dir(stateDir), identity.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("%s: no PEM PRIVATE KEY", identity.KeyFile)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		t.Fatalf("%s: a %T, want an ECDSA P-256 key", identity.KeyFile, k)
	}
	return ec
}

// presents connects to cp with id's credentials, makes a call, and
// returns the client certificate cp saw.
func presents(t *testing.T, cp *identitytest.ControlPlane, id *identity.Identity) *x509.Certificate {
	t.Helper()
	conn, err := grpc.NewClient(cp.Addr, grpc.WithTransportCredentials(id.Credentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := agentv1.NewAgentServiceClient(conn).ReportStats(t.Context(), &agentv1.ReportStatsRequest{AgentId: "edge-1"}); err != nil {
		t.Fatal(err)
	}
	return cp.LastClient()
}

func TestEnrollStoresTheIdentityAndAStartLoadsIt(t *testing.T) {
	cp := identitytest.Start(t)
	cfg := config(t, cp)
	id, _ := mustOpen(t, cfg)
	if !id.NeedsEnroll() {
		t.Fatal("a new state directory does not need enrollment")
	}
	if err := id.Enroll(t.Context(), backoff()); err != nil {
		t.Fatal(err)
	}
	if n := cp.Enrolls(); n != 1 {
		t.Fatalf("%d Enroll calls, want 1", n)
	}
	dir := identity.Dir(cfg.StateDir)
	for _, f := range []string{identity.KeyFile, identity.CertFile, identity.CAFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("%s not stored: %v", f, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, identity.KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: mode %v (%v), want 0600", identity.KeyFile, fi.Mode().Perm(), err)
	}
	cert := storedCert(t, cfg.StateDir)
	if cert.Subject.CommonName != "edge-1" {
		t.Fatalf("the certificate is for %q", cert.Subject.CommonName)
	}
	if !storedKey(t, cfg.StateDir).PublicKey.Equal(cert.PublicKey) {
		t.Fatal("the stored key is not the certificate's")
	}
	if got := identity.Fingerprint(id.CA()); got != cp.Fingerprint() {
		t.Fatalf("trusts the CA %s, want %s", got, cp.Fingerprint())
	}
	if got := presents(t, cp, id); got == nil || !got.Equal(cert) {
		t.Fatal("the connection does not present the stored certificate")
	}

	// A restart, with the join flags still set as a unit file would
	// keep them, and without them: neither enrolls.
	for _, join := range []bool{true, false} {
		cfg := cfg
		if !join {
			cfg.JoinToken, cfg.CAFingerprint = "", ""
		}
		again, _ := mustOpen(t, cfg)
		if again.NeedsEnroll() {
			t.Fatalf("join=%t: an enrolled agent needs enrollment again", join)
		}
		if err := again.Enroll(t.Context(), backoff()); err != nil {
			t.Fatal(err)
		}
		if got := again.Certificate(); got == nil || !got.Equal(cert) {
			t.Fatalf("join=%t: the restarted agent does not load the stored certificate", join)
		}
		if got := presents(t, cp, again); !got.Equal(cert) {
			t.Fatalf("join=%t: the restarted agent does not present the stored certificate", join)
		}
	}
	if n := cp.Enrolls(); n != 1 {
		t.Fatalf("%d Enroll calls after the restarts, want 1", n)
	}
}

func TestEnrollWithACABundle(t *testing.T) {
	cp := identitytest.Start(t)
	other := testenv.NewCA(t, "another CA")
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(bundle, append(other.PEM(), cp.CA.PEM()...), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := config(t, cp)
	cfg.CAFingerprint, cfg.CAFile = "", bundle
	id := enroll(t, cfg)
	if got := identity.Fingerprint(id.CA()); got != cp.Fingerprint() {
		t.Fatalf("trusts the CA %s, want the control plane's %s", got, cp.Fingerprint())
	}
	if presents(t, cp, id) == nil {
		t.Fatal("no client certificate presented")
	}
}

func TestEnrollRefusesAnUntrustedControlPlane(t *testing.T) {
	cp := identitytest.Start(t)
	other := testenv.NewCA(t, "another CA")
	bundle := filepath.Join(t.TempDir(), "other.pem")
	if err := os.WriteFile(bundle, other.PEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		adjust  func(*identity.Config)
		wantErr string
	}{
		{
			name:    "wrong fingerprint",
			adjust:  func(c *identity.Config) { c.CAFingerprint = other.Fingerprint() },
			wantErr: "the control plane presented no CA with the fingerprint --ca-fingerprint gives (" + other.Fingerprint() + "); the CAs it presented: " + cp.Fingerprint(),
		},
		{
			name:    "bundle without its CA",
			adjust:  func(c *identity.Config) { c.CAFingerprint, c.CAFile = "", bundle },
			wantErr: "certificate signed by unknown authority",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config(t, cp)
			tt.adjust(&cfg)
			id, logs := mustOpen(t, cfg)
			err := id.Enroll(t.Context(), backoff())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "the join token was not sent") {
				t.Fatalf("Enroll: %v, want an error containing %q", err, tt.wantErr)
			}
			if strings.Contains(logs.String(), "retrying") {
				t.Fatalf("an untrusted control plane is retried:\n%s", logs)
			}
			if n := cp.Enrolls(); n != 0 {
				t.Fatalf("the control plane saw %d Enroll calls, want none", n)
			}
			if id.Certificate() != nil {
				t.Fatal("the agent has a certificate")
			}
			if _, err := os.Stat(identity.Dir(cfg.StateDir)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the identity directory was made (%v)", err)
			}
		})
	}
}

func TestEnrollChecksTheHostName(t *testing.T) {
	// The CA is the right one; the certificate is for another host.
	cp := identitytest.New(t)
	cp.Hosts = []string{"cp.example.com"}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cp.Serve(t, lis)
	cfg := config(t, cp)
	id, _ := mustOpen(t, cfg)
	err = id.Enroll(t.Context(), backoff())
	if err == nil || !strings.Contains(err.Error(), "the control plane's certificate: x509: cannot validate certificate for 127.0.0.1 because it doesn't contain any IP SANs; the join token was not sent") {
		t.Fatalf("Enroll: %v", err)
	}
	if n := cp.Enrolls(); n != 0 {
		t.Fatalf("the control plane saw %d Enroll calls, want none", n)
	}
}

func TestEnrollStopsWhenTheTokenIsRefused(t *testing.T) {
	cp := identitytest.Start(t)
	cfg := config(t, cp)
	cfg.JoinToken = "not-the-token"
	id, logs := mustOpen(t, cfg)
	err := id.Enroll(t.Context(), backoff())
	if err == nil || !strings.Contains(err.Error(), `refused to enroll agent "edge-1": the join token is not valid (Unauthenticated)`) {
		t.Fatalf("Enroll: %v", err)
	}
	if strings.Contains(err.Error(), "not-the-token") || strings.Contains(logs.String(), "not-the-token") {
		t.Fatal("the join token is in the error or the log")
	}
	if n := cp.Enrolls(); n != 1 {
		t.Fatalf("%d Enroll calls, want 1: a refused token is not retried", n)
	}
}

func TestEnrollWaitsForTheControlPlane(t *testing.T) {
	// An address nobody serves yet, the control plane's to be.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	cp := identitytest.New(t)
	cfg := config(t, cp)
	cfg.ControlPlane = addr
	id, logs := mustOpen(t, cfg)
	done := make(chan error, 1)
	go func() { done <- id.Enroll(t.Context(), backoff()) }()
	testenv.Await(t, 10*time.Second, "a logged retry", func() (bool, string) {
		return strings.Count(logs.String(), "cannot enroll with the control plane; retrying") >= 2, logs.String()
	})
	if lis, err = net.Listen("tcp", addr); err != nil {
		t.Fatal(err)
	}
	cp.Serve(t, lis)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Enroll did not return once the control plane was up")
	}
	if id.Certificate() == nil || cp.Enrolls() != 1 {
		t.Fatalf("enrolled: certificate %v, %d Enroll calls", id.Certificate() != nil, cp.Enrolls())
	}
}

func TestEnrollEndsWithTheContext(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	cfg := config(t, identitytest.New(t))
	cfg.ControlPlane = addr
	id, _ := mustOpen(t, cfg)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := id.Enroll(ctx, backoff()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Enroll = %v, want the context's error", err)
	}
}

// renewer renews over a connection of its own.
type renewer struct{ api agentv1.AgentServiceClient }

func (r renewer) Renew(ctx context.Context, req *agentv1.RenewRequest) (*agentv1.RenewResponse, error) {
	return r.api.Renew(ctx, req)
}

func TestRenewalSwapsTheCertificate(t *testing.T) {
	cp := identitytest.Start(t)
	// Eight seconds of life, four of them left: due for renewal in about
	// a second (less the part of a second certificates do not keep).
	cp.SetValidity(4*time.Second, 4*time.Second)
	cfg := config(t, cp)
	id := enroll(t, cfg)
	first := storedCert(t, cfg.StateDir)
	cp.SetValidity(time.Minute, time.Hour)

	conn, err := grpc.NewClient(cp.Addr, grpc.WithTransportCredentials(id.Credentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	api := agentv1.NewAgentServiceClient(conn)
	if _, err := api.ReportStats(t.Context(), &agentv1.ReportStatsRequest{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- id.KeepRenewed(ctx, renewer{api}, backoff()) }()

	testenv.Await(t, 30*time.Second, "a renewal stored", func() (bool, string) {
		cur := storedCert(t, cfg.StateDir)
		return cp.Renews() >= 1 && !cur.Equal(first), fmt.Sprintf("%d renewals, stored certificate serial %s", cp.Renews(), cur.SerialNumber)
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("KeepRenewed = %v", err)
	}
	if n := cp.Renews(); n != 1 {
		t.Fatalf("%d renewals, want 1: the new certificate is not due", n)
	}
	renewed := storedCert(t, cfg.StateDir)
	if renewed.Subject.CommonName != "edge-1" || renewed.NotAfter.Before(time.Now().Add(50*time.Minute)) {
		t.Fatalf("renewed certificate for %q until %v", renewed.Subject.CommonName, renewed.NotAfter)
	}
	key := storedKey(t, cfg.StateDir)
	if !key.PublicKey.Equal(renewed.PublicKey) {
		t.Fatal("the stored key is not the renewed certificate's")
	}
	if key.PublicKey.Equal(first.PublicKey) {
		t.Fatal("the renewal kept the old key")
	}
	if fi, err := os.Stat(filepath.Join(identity.Dir(cfg.StateDir), identity.KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s after renewal: %v (%v), want 0600", identity.KeyFile, fi.Mode().Perm(), err)
	}
	if !id.Certificate().Equal(renewed) {
		t.Fatal("the identity in memory is not the renewed one")
	}
	// The open connection goes on; a new one presents the new certificate.
	if _, err := api.ReportStats(t.Context(), &agentv1.ReportStatsRequest{}); err != nil {
		t.Fatalf("the connection open during the renewal: %v", err)
	}
	if got := presents(t, cp, id); !got.Equal(renewed) {
		t.Fatal("a new connection does not present the renewed certificate")
	}
	entries, err := os.ReadDir(identity.Dir(cfg.StateDir))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("the identity directory holds %v, want the key, the certificate and the CA", names)
	}
}

func TestRenewalLogsARefusal(t *testing.T) {
	cp := identitytest.Start(t)
	cp.SetValidity(time.Hour, time.Second) // due at once
	cfg := config(t, cp)
	id, logs := mustOpen(t, cfg)
	if err := id.Enroll(t.Context(), backoff()); err != nil {
		t.Fatal(err)
	}
	cp.Revoke("edge-1")
	conn, err := grpc.NewClient(cp.Addr, grpc.WithTransportCredentials(id.Credentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { _ = id.KeepRenewed(ctx, renewer{agentv1.NewAgentServiceClient(conn)}, backoff()) }()
	testenv.Await(t, 10*time.Second, "the refusal logged", func() (bool, string) {
		s := logs.String()
		return strings.Contains(s, "level=ERROR") && strings.Contains(s, "agent edge-1 is revoked"), s
	})
}

// writeIdentity stores an identity of agent for key in stateDir, valid
// from notBefore to notAfter, issued by cp.
func writeIdentity(t *testing.T, cp *identitytest.ControlPlane, stateDir, agent string, key *ecdsa.PrivateKey, notBefore, notAfter time.Time) {
	t.Helper()
	dir := identity.Dir(stateDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	certPEM, err := cp.Issue(agent, &key.PublicKey, notBefore, notAfter)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	testenv.WritePEM(t, dir, identity.KeyFile, "PRIVATE KEY", kder)
	if err := os.WriteFile(filepath.Join(dir, identity.CertFile), certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	testenv.WritePEM(t, dir, identity.CAFile, "CERTIFICATE", cp.CA.Cert.Raw)
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestOpenRefuses(t *testing.T) {
	cp := identitytest.New(t)
	now := time.Now()
	tests := []struct {
		name    string
		prepare func(t *testing.T, stateDir string)
		join    bool
		wantErr string
	}{
		{
			name:    "no identity and no token",
			wantErr: "no certificate in STATE/identity; enroll with --join TOKEN --ca-fingerprint sha256:... (weftctl agent token create prints both)",
		},
		{
			name: "another agent's identity",
			prepare: func(t *testing.T, stateDir string) {
				writeIdentity(t, cp, stateDir, "edge-2", newKey(t), now.Add(-time.Hour), now.Add(time.Hour))
			},
			wantErr: `the certificate in STATE/identity is for agent "edge-2", not --id "edge-1"; give this agent another --state-dir, or start it with --id "edge-2"`,
		},
		{
			name: "another agent's identity, with a token",
			prepare: func(t *testing.T, stateDir string) {
				writeIdentity(t, cp, stateDir, "edge-2", newKey(t), now.Add(-time.Hour), now.Add(time.Hour))
			},
			join:    true,
			wantErr: `is for agent "edge-2", not --id "edge-1"`,
		},
		{
			name: "a key that is not the certificate's",
			prepare: func(t *testing.T, stateDir string) {
				writeIdentity(t, cp, stateDir, "edge-1", newKey(t), now.Add(-time.Hour), now.Add(time.Hour))
				kder, _ := x509.MarshalPKCS8PrivateKey(newKey(t))
				testenv.WritePEM(t, identity.Dir(stateDir), identity.KeyFile, "PRIVATE KEY", kder)
			},
			wantErr: "STATE/identity/agent.key is not the key of agent.crt; restore the files, or enroll again with --join TOKEN",
		},
		{
			name: "a damaged certificate",
			prepare: func(t *testing.T, stateDir string) {
				writeIdentity(t, cp, stateDir, "edge-1", newKey(t), now.Add(-time.Hour), now.Add(time.Hour))
				if err := os.WriteFile(filepath.Join(identity.Dir(stateDir), identity.CertFile), []byte("torn"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "STATE/identity/agent.crt: no PEM certificate; restore the files",
		},
		{
			name: "a certificate of another CA",
			prepare: func(t *testing.T, stateDir string) {
				writeIdentity(t, cp, stateDir, "edge-1", newKey(t), now.Add(-time.Hour), now.Add(time.Hour))
				other := testenv.NewCA(t, "another CA")
				testenv.WritePEM(t, identity.Dir(stateDir), identity.CAFile, "CERTIFICATE", other.Cert.Raw)
			},
			wantErr: "STATE/identity/agent.crt: x509: certificate signed by unknown authority",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stateDir := t.TempDir()
			if tt.prepare != nil {
				tt.prepare(t, stateDir)
			}
			cfg := identity.Config{StateDir: stateDir, ID: "edge-1", ControlPlane: "127.0.0.1:1"}
			if tt.join {
				cfg.JoinToken, cfg.CAFingerprint = identitytest.Token, cp.Fingerprint()
			}
			_, _, err := open(t, cfg)
			if err == nil {
				t.Fatal("Open succeeded")
			}
			if got := strings.ReplaceAll(err.Error(), stateDir, "STATE"); !strings.Contains(got, tt.wantErr) {
				t.Fatalf("Open: %s\nwant it to contain: %s", got, tt.wantErr)
			}
		})
	}
}

func TestADamagedIdentityEnrollsAgainWithAToken(t *testing.T) {
	cp := identitytest.Start(t)
	cfg := config(t, cp)
	now := time.Now()
	writeIdentity(t, cp, cfg.StateDir, "edge-1", newKey(t), now.Add(-time.Hour), now.Add(time.Hour))
	if err := os.WriteFile(filepath.Join(identity.Dir(cfg.StateDir), identity.CertFile), []byte("torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	id, logs := mustOpen(t, cfg)
	if !id.NeedsEnroll() || !strings.Contains(logs.String(), "damaged; enrolling again") {
		t.Fatalf("a damaged identity with a token does not enroll again:\n%s", logs)
	}
	if err := id.Enroll(t.Context(), backoff()); err != nil {
		t.Fatal(err)
	}
	if !storedCert(t, cfg.StateDir).Equal(id.Certificate()) {
		t.Fatal("the new certificate is not stored")
	}
}

func TestAnotherCAEnrollsAgainWithAToken(t *testing.T) {
	old := identitytest.New(t)
	cp := identitytest.Start(t)
	cfg := config(t, cp)
	now := time.Now()
	writeIdentity(t, old, cfg.StateDir, "edge-1", newKey(t), now.Add(-time.Hour), now.Add(time.Hour))

	noToken := cfg
	noToken.JoinToken = ""
	_, _, err := open(t, noToken)
	if err == nil || !strings.Contains(err.Error(), "is "+old.Fingerprint()+", not the one --ca-fingerprint names; to move the agent to that control plane, enroll again with --join TOKEN") {
		t.Fatalf("Open with the other CA's fingerprint and no token: %v", err)
	}
	id := enroll(t, cfg)
	if got := identity.Fingerprint(id.CA()); got != cp.Fingerprint() {
		t.Fatalf("trusts %s, want %s", got, cp.Fingerprint())
	}
}

func TestExpiredCertificate(t *testing.T) {
	cp := identitytest.Start(t)
	cfg := config(t, cp)
	expired := time.Now().Add(-time.Hour).Truncate(time.Second)
	writeIdentity(t, cp, cfg.StateDir, "edge-1", newKey(t), expired.Add(-time.Hour), expired)

	t.Run("without a token the agent starts and says how to enroll", func(t *testing.T) {
		noToken := cfg
		noToken.JoinToken, noToken.CAFingerprint = "", ""
		id, logs := mustOpen(t, noToken)
		if id.NeedsEnroll() {
			t.Fatal("needs enrollment without a token")
		}
		s := logs.String()
		for _, want := range []string{"level=ERROR", "the agent's certificate expired", "expired=" + expired.UTC().Format("2006-01-02T15:04:05"), "--join TOKEN --ca-fingerprint sha256:..."} {
			if !strings.Contains(s, want) {
				t.Fatalf("the log lacks %q:\n%s", want, s)
			}
		}
		// Each renewal attempt says it again.
		conn, err := grpc.NewClient(cp.Addr, grpc.WithTransportCredentials(id.Credentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go func() { _ = id.KeepRenewed(ctx, renewer{agentv1.NewAgentServiceClient(conn)}, backoff()) }()
		testenv.Await(t, 10*time.Second, "the expiry logged at each retry", func() (bool, string) {
			return strings.Count(logs.String(), "the agent's certificate expired") >= 3, logs.String()
		})
		if cp.Renews() != 0 {
			t.Fatal("the control plane renewed an expired certificate")
		}
	})
	t.Run("with a token the agent enrolls again", func(t *testing.T) {
		id, _ := mustOpen(t, cfg)
		if !id.NeedsEnroll() {
			t.Fatal("an expired certificate with a token does not enroll again")
		}
		if err := id.Enroll(t.Context(), backoff()); err != nil {
			t.Fatal(err)
		}
		if got := storedCert(t, cfg.StateDir); !got.NotAfter.After(time.Now()) || !got.Equal(id.Certificate()) {
			t.Fatalf("stored certificate until %v", got.NotAfter)
		}
	})
}

func TestOpenFinishesAnInterruptedRenewal(t *testing.T) {
	// A renewal stores the new key beside the old, then the certificate,
	// then puts the key in place: the agent stopped between the last two.
	cp := identitytest.New(t)
	stateDir := t.TempDir()
	now := time.Now()
	writeIdentity(t, cp, stateDir, "edge-1", newKey(t), now.Add(-time.Hour), now.Add(time.Hour))
	next := newKey(t)
	certPEM, err := cp.Issue("edge-1", &next.PublicKey, now.Add(-time.Minute), now.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	dir := identity.Dir(stateDir)
	kder, _ := x509.MarshalPKCS8PrivateKey(next)
	testenv.WritePEM(t, dir, "agent.key.next", "PRIVATE KEY", kder)
	if err := os.WriteFile(filepath.Join(dir, identity.CertFile), certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	id, _ := mustOpen(t, identity.Config{StateDir: stateDir, ID: "edge-1", ControlPlane: "127.0.0.1:1"})
	if !id.Certificate().PublicKey.(*ecdsa.PublicKey).Equal(&next.PublicKey) {
		t.Fatal("the loaded certificate is not the renewed one")
	}
	if !storedKey(t, stateDir).Equal(next) {
		t.Fatal("the new key was not put in place")
	}
	if _, err := os.Stat(filepath.Join(dir, "agent.key.next")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("agent.key.next is still there (%v)", err)
	}
}

func TestParseFingerprint(t *testing.T) {
	const hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		in, want string
		ok       bool
	}{
		{in: "sha256:" + hex, want: "sha256:" + hex, ok: true},
		{in: "SHA256:" + strings.ToUpper(hex), want: "sha256:" + hex, ok: true},
		{in: " sha256:" + hex + "\n", want: "sha256:" + hex, ok: true},
		{in: "sha256:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef", want: "sha256:" + hex, ok: true},
		{in: hex},
		{in: "sha256:"},
		{in: "sha256:" + hex[:62]},
		{in: "sha256:" + hex + "00"},
		{in: "sha256:0:123" + hex[4:]},
		{in: "sha1:" + hex[:40]},
		{in: "md5:" + hex},
	}
	for _, tt := range tests {
		got, err := identity.ParseFingerprint(tt.in)
		if tt.ok != (err == nil) || got != tt.want {
			t.Errorf("ParseFingerprint(%q) = %q, %v; want %q, ok=%t", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestServerName(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:7400":                       "127.0.0.1",
		"cp.example.com:7400":                  "cp.example.com",
		"[::1]:7400":                           "::1",
		"cp.example.com":                       "cp.example.com",
		"dns:///cp.example.com:7400":           "cp.example.com",
		"dns://8.8.8.8/cp.example:1":           "cp.example",
		"passthrough:///10.0.0.1:1":            "10.0.0.1",
		"cp-a.example:7400, cp-b.example:7400": "cp-a.example",
	} {
		if got := identity.ServerName(in); got != want {
			t.Errorf("ServerName(%q) = %q, want %q", in, got, want)
		}
	}
}
