package controlclient

import (
	"crypto/tls"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/credentials"

	"github.com/weft-dev/weft/agent/engine"
	"github.com/weft-dev/weft/agent/identity"
	"github.com/weft-dev/weft/agent/identity/identitytest"
	"github.com/weft-dev/weft/agent/state"
	"github.com/weft-dev/weft/tests/testenv"
)

var _ identity.Renewer = (*Client)(nil)

// enrolled returns the identity of agent edge-1, enrolled with cp.
func enrolled(t *testing.T, cp *identitytest.ControlPlane) *identity.Identity {
	t.Helper()
	id, err := identity.Open(identity.Config{
		StateDir: t.TempDir(), ID: "edge-1", ControlPlane: cp.Addr, JoinToken: identitytest.Token, CAFingerprint: cp.Fingerprint(),
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := id.Enroll(t.Context(), NewBackoff(10*time.Millisecond, 50*time.Millisecond, nil)); err != nil {
		t.Fatal(err)
	}
	return id
}

// runTLSClient runs a client of edge-1 against cp with creds until the
// test ends, logging into the returned buffer.
func runTLSClient(t *testing.T, cp *identitytest.ControlPlane, creds credentials.TransportCredentials) (*Client, *testenv.LogBuffer) {
	t.Helper()
	logs := &testenv.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	dir, err := state.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := New(cp.Addr, Identity{ID: "edge-1", StartedAt: testNow}, engine.New(log, 5*time.Second), dir,
		NewBackoff(10*time.Millisecond, 50*time.Millisecond, nil), log, WithCredentials(creds))
	done := make(chan error, 1)
	go func() { done <- c.Run(t.Context()) }()
	t.Cleanup(func() {
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
	return c, logs
}

func TestRunOverMutualTLSAndRenew(t *testing.T) {
	cp := identitytest.Start(t)
	cp.SetValidity(4*time.Second, 4*time.Second) // due for renewal in about a second
	id := enrolled(t, cp)
	first := id.Certificate()
	cp.SetValidity(time.Minute, time.Hour)
	c, _ := runTLSClient(t, cp, id.Credentials())
	testenv.Await(t, 10*time.Second, "edge-1 ACKs revision 1 over mutual TLS", func() (bool, string) {
		return cp.Acked("edge-1") == 1, ""
	})
	if got := cp.LastClient(); got == nil || !got.Equal(first) {
		t.Fatal("the client did not present the agent's certificate")
	}

	// The renewal goes over the client's connection, which stays up.
	go func() { _ = id.KeepRenewed(t.Context(), c, NewBackoff(10*time.Millisecond, 50*time.Millisecond, nil)) }()
	testenv.Await(t, 30*time.Second, "a renewal through the client", func() (bool, string) {
		return cp.Renews() == 1 && !id.Certificate().Equal(first), ""
	})
	if n := cp.Syncs(); n != 1 {
		t.Fatalf("%d Sync streams, want 1: the renewal must not reconnect", n)
	}
}

func TestRunLogsTheControlPlaneRefusingTheAgent(t *testing.T) {
	tests := []struct {
		name       string
		creds      func(*testing.T, *identitytest.ControlPlane) credentials.TransportCredentials
		wantCode   string
		wantReason string
	}{
		{
			name: "revoked",
			creds: func(t *testing.T, cp *identitytest.ControlPlane) credentials.TransportCredentials {
				id := enrolled(t, cp)
				cp.Revoke("edge-1")
				return id.Credentials()
			},
			wantCode: "PermissionDenied", wantReason: `reason="agent edge-1 is revoked"`,
		},
		{
			name: "no client certificate",
			creds: func(t *testing.T, cp *identitytest.ControlPlane) credentials.TransportCredentials {
				return credentials.NewTLS(&tls.Config{RootCAs: cp.CA.Pool(), ServerName: "127.0.0.1"})
			},
			wantCode: "Unauthenticated", wantReason: `reason="no client certificate: enroll the agent first"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cp := identitytest.Start(t)
			_, logs := runTLSClient(t, cp, tt.creds(t, cp))
			testenv.Await(t, 10*time.Second, "the refusal logged as an error, twice", func() (bool, string) {
				n := 0
				for _, line := range strings.Split(logs.String(), "\n") {
					if strings.Contains(line, "level=ERROR") && strings.Contains(line, "the control plane refused the agent; serving the last good state and retrying") &&
						strings.Contains(line, "code="+tt.wantCode) && strings.Contains(line, tt.wantReason) {
						n++
					}
				}
				return n >= 2, logs.String()
			})
		})
	}
}
