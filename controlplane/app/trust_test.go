package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/weft-dev/weft/controlplane/auth"
	"github.com/weft-dev/weft/controlplane/config"
	"github.com/weft-dev/weft/controlplane/pki"
	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/tests/testenv"
)

// TestFirstStart runs the control plane twice on one database: the first
// start makes the CA and the first admin token and writes their files;
// the second keeps that CA and makes no token.
func TestFirstStart(t *testing.T) {
	t.Setenv("WEFT_SECRETS_KEY", "")
	dir := t.TempDir()
	caFile := filepath.Join(dir, "weft-ca.pem")
	tokenFile := filepath.Join(dir, "weft-admin.token")
	runUntil(t, parse(t, dir), func() bool { return exists(tokenFile) && exists(caFile) })

	fi, err := os.Stat(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %04o; want 0600", fi.Mode().Perm())
	}
	token, _ := os.ReadFile(tokenFile)
	if !strings.HasPrefix(string(token), auth.TokenPrefix) {
		t.Errorf("token file holds %q; want a %s token", token, auth.TokenPrefix)
	}
	firstCA, _ := os.ReadFile(caFile)

	// The second start: the token file is gone (an operator moved it);
	// no new token appears, and the CA is the same.
	if err := os.Remove(tokenFile); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(caFile); err != nil {
		t.Fatal(err)
	}
	runUntil(t, parse(t, dir), func() bool { return exists(caFile) })
	if exists(tokenFile) {
		t.Error("a second start wrote an admin token: the database holds one already")
	}
	if again, _ := os.ReadFile(caFile); string(again) != string(firstCA) {
		t.Error("a second start made another CA")
	}
}

// TestBringYourOwnCA starts with --ca-cert and --ca-key: the CA file is
// the operator's certificate, and a CA that is no CA is refused.
func TestBringYourOwnCA(t *testing.T) {
	t.Setenv("WEFT_SECRETS_KEY", "")
	dir := t.TempDir()
	ca := testenv.NewCA(t, "operator CA")
	files := ca.WriteFiles(t, dir, "ca")
	caFile := filepath.Join(dir, "weft-ca.pem")
	tokenFile := filepath.Join(dir, "weft-admin.token")
	runUntil(t, parse(t, dir, "--ca-cert", files.Cert, "--ca-key", files.Key), func() bool { return exists(caFile) && exists(tokenFile) })
	got, _ := os.ReadFile(caFile)
	want, _ := os.ReadFile(files.Cert)
	if string(got) != string(want) {
		t.Errorf("the CA file is not the operator's CA")
	}

	leaf := ca.ClientCert(t, dir, "leaf", "not-a-ca")
	err := Run(context.Background(), parse(t, t.TempDir(), "--ca-cert", leaf.Cert, "--ca-key", leaf.Key), slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "is not a CA's") {
		t.Errorf("Run with a leaf as CA = %v; want it refused as no CA", err)
	}
}

// runUntil runs the control plane until done says so, then stops it.
func runUntil(t *testing.T, cfg config.Config, done func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ended := make(chan error, 1)
	logs := &testenv.LogBuffer{}
	go func() { ended <- Run(ctx, cfg, slog.New(slog.NewTextHandler(logs, nil))) }()
	testenv.Await(t, time.Minute, "the control plane ready, with its files", func() (bool, string) {
		select {
		case err := <-ended:
			t.Fatalf("Run ended early: %v", err)
		default:
		}
		return done() && strings.Contains(logs.String(), "control plane ready"), logs.String()
	})
	cancel()
	if err := <-ended; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// secureServer is the TLS setup of Run for a test server on st: a new CA,
// an admin token, and a certificate for agent agentID. It returns the
// server options and client connections as an admin and as the agent.
type secureSetup struct {
	ca    *pki.CA
	creds grpc.ServerOption
	authz *auth.Authorizer
	admin []grpc.DialOption
	agent []grpc.DialOption
}

func newSecureSetup(t *testing.T, st store.Store, agentID string) *secureSetup {
	t.Helper()
	ctx := context.Background()
	certPEM, keyPEM, err := pki.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.LoadCA(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := serverTLS(ca, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	secret := auth.NewSecret(auth.TokenPrefix)
	if _, err := st.CreateToken(ctx, store.NewToken{Name: "admin", Role: store.RoleAdmin, Hash: auth.HashSecret(secret)}); err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _, err := ca.AgentCertificate(agentID, csr, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	client := func() *tls.Config {
		return &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	}
	agentTLS := client()
	agentTLS.Certificates = []tls.Certificate{{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}}
	return &secureSetup{
		ca:    ca,
		creds: grpc.Creds(credentials.NewTLS(conf)),
		authz: auth.New(st, auth.NewRevocations(), slog.New(slog.DiscardHandler)),
		admin: []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(client())), grpc.WithPerRPCCredentials(bearer(secret))},
		agent: []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(agentTLS))},
	}
}

// dial connects to lis with opts.
func dial(t *testing.T, lis net.Listener, opts []grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(lis.Addr().String(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// bearer sends "authorization: Bearer SECRET".
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return true }
