package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/weft-dev/weft/controlplane/auth"
	"github.com/weft-dev/weft/controlplane/store/storetest"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
	"github.com/weft-dev/weft/tests/testenv"
)

// TestAccessPolicy calls every method of every service the control
// plane's port serves, as every kind of caller, on a real control plane:
// nobody, an agent with its certificate, and a token of each role. A
// method missing from auth.Policy fails the test; a caller is refused
// (Unauthenticated or PermissionDenied) exactly when the policy says so.
// The requests are empty: an allowed caller gets past the check and is
// answered on the request's merits, which here is mostly InvalidArgument.
func TestAccessPolicy(t *testing.T) {
	cp := testenv.StartControlPlane(t, storetest.SQLite(t).DSN)
	agent := enrollFake(t, cp, "policy-agent", cp.JoinToken(t))

	callers := []struct {
		name  string
		conn  *grpc.ClientConn
		agent bool
		rank  int // of the token's role; 0 for none
	}{
		{name: "nobody", conn: tokenConn(t, cp, "")},
		{name: "agent", conn: agentConn(t, agent), agent: true},
		{name: "viewer", conn: tokenConn(t, cp, createToken(t, cp, "policy-viewer", adminv1.Role_ROLE_VIEWER)), rank: 1},
		{name: "deployer", conn: tokenConn(t, cp, createToken(t, cp, "policy-deployer", adminv1.Role_ROLE_DEPLOYER)), rank: 2},
		{name: "admin", conn: tokenConn(t, cp, cp.Token(t)), rank: 3},
	}
	files := []protoreflect.FileDescriptor{
		adminv1.File_weft_admin_v1_admin_proto,
		agentv1.File_weft_agent_v1_agent_proto,
		healthpb.File_grpc_health_v1_health_proto,
		reflectionv1.File_grpc_reflection_v1_reflection_proto,
		reflectionv1alpha.File_grpc_reflection_v1alpha_reflection_proto,
	}
	methods := 0
	for _, f := range files {
		for i := 0; i < f.Services().Len(); i++ {
			svc := f.Services().Get(i)
			for j := 0; j < svc.Methods().Len(); j++ {
				m := svc.Methods().Get(j)
				full := "/" + string(svc.FullName()) + "/" + string(m.Name())
				methods++
				need, err := auth.Need(full)
				if err != nil {
					t.Errorf("%s has no access policy: add it to auth.Policy", full)
					continue
				}
				for _, c := range callers {
					allowed := need == auth.Public ||
						(need == auth.AgentCert && c.agent) ||
						(need >= auth.Viewer && c.rank > 0 && c.rank >= int(need-auth.Viewer)+1)
					err := callEmpty(c.conn, full, m)
					code := status.Code(err)
					refused := code == codes.Unauthenticated || code == codes.PermissionDenied
					if refused == allowed {
						t.Errorf("%s as %s (policy %s): got %v; want refused=%v", full, c.name, need, err, !allowed)
					}
				}
			}
		}
	}
	if methods < 60 {
		t.Fatalf("only %d methods found: the descriptors are not the services served", methods)
	}
	t.Logf("%d methods × %d callers checked", methods, len(callers))
}

// callEmpty calls method m with an empty request and returns its error; a
// stream that answers, or is still open after a while, counts as allowed.
func callEmpty(conn *grpc.ClientConn, full string, m protoreflect.MethodDescriptor) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req := dynamicpb.NewMessage(m.Input())
	resp := dynamicpb.NewMessage(m.Output())
	if !m.IsStreamingClient() && !m.IsStreamingServer() {
		return conn.Invoke(ctx, full, req, resp)
	}
	stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: m.IsStreamingClient(), ServerStreams: m.IsStreamingServer()}, full)
	if err != nil {
		return err
	}
	if err := stream.SendMsg(req); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	err = stream.RecvMsg(resp)
	if errors.Is(err, io.EOF) || status.Code(err) == codes.DeadlineExceeded {
		return nil
	}
	return err
}

// tokenConn is a connection that sends token (none when empty).
func tokenConn(t *testing.T, cp *testenv.ControlPlane, token string) *grpc.ClientConn {
	t.Helper()
	opts := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(trustCP(t, cp)))}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(tokenCreds(token)))
	}
	conn, err := grpc.NewClient(cp.Addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// agentConn is the fake agent's connection.
func agentConn(t *testing.T, a *fakeAgent) *grpc.ClientConn {
	t.Helper()
	if a.conn == nil {
		a.dial(t)
	}
	return a.conn
}

// trustCP is a TLS client config that trusts the control plane's CA.
func trustCP(t *testing.T, cp *testenv.ControlPlane) *tls.Config {
	t.Helper()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(cp.CAPEM(t)) {
		t.Fatal("no CA certificate")
	}
	host, _, _ := net.SplitHostPort(cp.Addr)
	return &tls.Config{RootCAs: roots, ServerName: host, MinVersion: tls.VersionTLS12}
}

// createToken makes a token with role and returns its secret.
func createToken(t *testing.T, cp *testenv.ControlPlane, name string, role adminv1.Role) string {
	t.Helper()
	resp, err := adminv1.NewAccessServiceClient(cp.Conn()).CreateToken(ctx(t), &adminv1.CreateTokenRequest{Name: name, Role: role})
	if err != nil {
		t.Fatalf("create token %s: %v", name, err)
	}
	return resp.GetSecret()
}

// tokenCreds sends "authorization: Bearer TOKEN".
type tokenCreds string

func (b tokenCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (tokenCreds) RequireTransportSecurity() bool { return true }
