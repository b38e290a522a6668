package cli

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// authEnv serves TLS and checks tokens: "admin-secret" is root's (admin),
// "viewer-secret" is dash's (viewer).
func authEnv(t *testing.T, configure ...func(*testEnv)) *testEnv {
	t.Helper()
	return newTestEnv(t, append([]func(*testEnv){withTLS(t), func(e *testEnv) {
		e.access.addToken("admin-secret", "root", adminv1.Role_ROLE_ADMIN)
		e.access.addToken("viewer-secret", "dash", adminv1.Role_ROLE_VIEWER)
	}}, configure...)...)
}

func TestTLSWithToken(t *testing.T) {
	e := authEnv(t)
	stdout, _, err := e.runEnv(map[string]string{"WEFT_TOKEN": "admin-secret"}, "", "whoami")
	if err != nil {
		t.Fatal(err)
	}
	want := "name:           root\nrole:           admin\ncontrol plane:  " + e.addr + "\ntoken from:     WEFT_TOKEN\n"
	if stdout != want {
		t.Errorf("stdout =\n%s\nwant\n%s", stdout, want)
	}
	if got := e.access.headersSeen(); !slices.Equal(got, []string{"Bearer admin-secret"}) {
		t.Errorf("authorization headers = %q, want the token as a bearer", got)
	}

	stdout, _, err = e.runEnv(map[string]string{"WEFT_TOKEN": "viewer-secret"}, "", "whoami", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var who adminv1.WhoAmIResponse
	if err := protojson.Unmarshal([]byte(stdout), &who); err != nil || who.GetName() != "dash" || who.GetRole() != adminv1.Role_ROLE_VIEWER {
		t.Errorf("whoami -o json = %s (%v)", stdout, err)
	}
}

func TestPlaintextSendsNoToken(t *testing.T) {
	e := newTestEnv(t)
	if _, _, err := e.runEnv(map[string]string{"WEFT_TOKEN": "admin-secret"}, "", "service", "list"); err != nil {
		t.Fatal(err)
	}
	if got := e.access.headersSeen(); !slices.Equal(got, []string{""}) {
		t.Errorf("authorization headers = %q, want none over --plaintext", got)
	}
	_, _, err := e.run("service", "list", "--token", "admin-secret")
	if want := "--token with --plaintext: a token is never sent without TLS"; err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
	_, _, err = e.run("service", "list", "--ca", "ca.pem")
	if want := "--ca with --plaintext"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error = %v, want it to contain %s", err, want)
	}
	if n := len(e.access.headersSeen()); n != 1 {
		t.Errorf("server saw %d calls, want the refused ones to send nothing", n)
	}
}

func TestTLSFailures(t *testing.T) {
	tlsEnv := newTestEnv(t, withTLS(t))
	plainEnv := newTestEnv(t)
	otherCA := newTestCA(t, "other-ca")
	wrongName := newTestEnv(t, func(e *testEnv) {
		ca := newTestCA(t, "weft-ca")
		e.serverTLS = ca.serverCert(t, "10.9.8.7", "cp.example")
		e.caFile = ca.file
	})
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const caHint = "(set --ca or WEFT_CA to the control plane's CA file, weft-ca.pem beside its database)"
	tests := []struct {
		name    string
		e       *testEnv
		env     map[string]string
		args    []string
		wantErr string
		// sends says whether the call reaches the server's handlers.
		sends bool
	}{
		{
			name: "system roots do not know the CA", e: tlsEnv,
			env:     map[string]string{"WEFT_ADDR": tlsEnv.addr},
			wantErr: "cannot reach the control plane at " + tlsEnv.addr + ": its certificate is signed by an authority this machine does not trust (x509: certificate signed by unknown authority) " + caHint,
		},
		{
			name: "another CA", e: tlsEnv,
			env:     map[string]string{"WEFT_ADDR": tlsEnv.addr, "WEFT_CA": otherCA.file},
			wantErr: "cannot reach the control plane at " + tlsEnv.addr + ": its certificate is not signed by the CA in " + otherCA.file + " (WEFT_CA) " + caHint,
		},
		{
			name: "another CA by flag", e: tlsEnv,
			env:     map[string]string{"WEFT_ADDR": tlsEnv.addr, "WEFT_CA": tlsEnv.caFile},
			args:    []string{"--ca", otherCA.file},
			wantErr: "is not signed by the CA in " + otherCA.file + " (--ca)",
		},
		{
			name: "certificate for another name", e: wrongName,
			env:     map[string]string{"WEFT_ADDR": wrongName.addr, "WEFT_CA": wrongName.caFile},
			wantErr: "its certificate does not name the address dialed (x509: certificate is valid for 10.9.8.7, not 127.0.0.1) (set --addr or WEFT_ADDR to a name or address the certificate holds)",
		},
		{
			name: "server without TLS", e: plainEnv,
			env:     map[string]string{"WEFT_ADDR": plainEnv.addr},
			wantErr: "cannot reach the control plane at " + plainEnv.addr + ": it does not speak TLS (",
		},
		{
			name: "plaintext to a TLS server", e: tlsEnv,
			env:     map[string]string{"WEFT_ADDR": tlsEnv.addr},
			args:    []string{"--plaintext"},
			wantErr: "(--plaintext dials without TLS: drop it for a control plane that serves TLS; else set --addr or WEFT_ADDR)",
		},
		{
			name: "missing CA file", e: tlsEnv,
			env:     map[string]string{"WEFT_ADDR": tlsEnv.addr, "WEFT_CA": "/nonexistent/ca.pem"},
			wantErr: "WEFT_CA: open /nonexistent/ca.pem: no such file or directory",
		},
		{
			name: "CA file without a certificate", e: tlsEnv,
			env:     map[string]string{"WEFT_ADDR": tlsEnv.addr},
			args:    []string{"--ca", notPEM},
			wantErr: "--ca " + notPEM + ": holds no PEM CERTIFICATE block",
		},
		{
			name: "token with a line break", e: tlsEnv,
			env:     map[string]string{"WEFT_ADDR": tlsEnv.addr, "WEFT_CA": tlsEnv.caFile, "WEFT_TOKEN": "abc\ndef"},
			wantErr: "WEFT_TOKEN: the token holds a space or a character that is not printable ASCII",
		},
		{
			name: "the right CA", e: tlsEnv,
			env:   map[string]string{"WEFT_ADDR": tlsEnv.addr, "WEFT_CA": tlsEnv.caFile},
			sends: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(tt.e.access.headersSeen())
			_, _, err := runCtl(tt.env, "", append(tt.args, "service", "list")...)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("error = %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error = %v\nwant it to contain %s", err, tt.wantErr)
			}
			if tt.wantErr != "" && strings.Contains(err.Error(), "desc =") {
				t.Errorf("error keeps gRPC's wrapping: %v", err)
			}
			if sent := len(tt.e.access.headersSeen()) > before; sent != tt.sends {
				t.Errorf("call reached the server: %v, want %v", sent, tt.sends)
			}
		})
	}
}

func TestCredentialsRefused(t *testing.T) {
	e := authEnv(t)
	const hint = "set --token, WEFT_TOKEN or a context with weftctl context add"
	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		wantErr  string
		wantCode codes.Code
	}{
		{
			name: "no token", args: []string{"agent", "list"},
			wantErr:  "list agents: the control plane refused the credentials: no bearer token (no token was sent; " + hint + ")",
			wantCode: codes.Unauthenticated,
		},
		{
			name: "unknown token", env: map[string]string{"WEFT_TOKEN": "guess"}, args: []string{"agent", "list"},
			wantErr:  "list agents: the control plane refused the credentials: unknown token (the token came from WEFT_TOKEN; " + hint + ")",
			wantCode: codes.Unauthenticated,
		},
		{
			name: "unknown token by flag", args: []string{"agent", "list", "--token", "guess"},
			wantErr:  "(the token came from --token; " + hint + ")",
			wantCode: codes.Unauthenticated,
		},
		{
			name: "viewer makes a token", env: map[string]string{"WEFT_TOKEN": "viewer-secret"},
			args:     []string{"token", "create", "ci", "--role", "deployer"},
			wantErr:  `create token "ci": CreateToken needs role admin (the token "dash" has role viewer; this needs a stronger one)`,
			wantCode: codes.PermissionDenied,
		},
		{
			name: "viewer revokes an agent", env: map[string]string{"WEFT_TOKEN": "viewer-secret"},
			args:     []string{"agent", "revoke", "berlin-1"},
			wantErr:  `revoke agent "berlin-1": RevokeAgent needs role admin (the token "dash" has role viewer; this needs a stronger one)`,
			wantCode: codes.PermissionDenied,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := e.runEnv(tt.env, "", tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v\nwant it to contain %s", err, tt.wantErr)
			}
			if got := status.Code(err); got != tt.wantCode {
				t.Errorf("code = %v, want %v", got, tt.wantCode)
			}
		})
	}
	if reqs := e.access.requestsSeen(); len(reqs) != 0 {
		t.Errorf("refused calls reached the handlers: %v", reqs)
	}
}

// TestPermissionDeniedWithoutWhoAmI checks the advice when the control
// plane cannot say who the caller is: it claims no name or role.
func TestPermissionDeniedWithoutWhoAmI(t *testing.T) {
	e := authEnv(t, func(e *testEnv) { e.access.noWhoAmI = true })
	_, _, err := e.runEnv(map[string]string{"WEFT_TOKEN": "viewer-secret"}, "", "token", "list")
	want := "list tokens: ListTokens needs role admin (the token's role is too weak for this; this needs a stronger one)"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v\nwant %s", err, want)
	}
}
