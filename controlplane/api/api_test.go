package api

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/weft-dev/weft/controlplane/dispatch"
	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/controlplane/store/storetest"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	"github.com/weft-dev/weft/tests/testenv"
)

// withUnknown returns m with an unknown varint field num appended.
func withUnknown[M proto.Message](m M, num protowire.Number) M {
	b := protowire.AppendTag(nil, num, protowire.VarintType)
	b = protowire.AppendVarint(b, 1)
	m.ProtoReflect().SetUnknown(b)
	return m
}

func TestRejectUnknownFields(t *testing.T) {
	tests := []struct {
		name string
		req  proto.Message
		want string // "" when the request must pass
	}{
		{"known fields pass", &adminv1.CreateChannelRequest{Channel: &adminv1.Channel{Name: "x"}}, ""},
		{"top level", withUnknown(&adminv1.ListAgentsRequest{}, 99), "weft.admin.v1.ListAgentsRequest has unknown fields: #99"},
		{"nested", &adminv1.CreateChannelRequest{Channel: withUnknown(&adminv1.Channel{Name: "x"}, 42)}, "channel.#42"},
		{"in a list", &adminv1.DeployRequest{Packages: []*adminv1.PackageSource{{}, withUnknown(&adminv1.PackageSource{}, 7)}}, "packages[1].#7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			called := false
			next := func(context.Context, any) (any, error) { called = true; return nil, nil }
			_, err := RejectUnknownFields(context.Background(), tt.req, &grpc.UnaryServerInfo{}, next)
			if tt.want == "" {
				if err != nil || !called {
					t.Fatalf("err = %v, called = %v; want the handler called", err, called)
				}
				return
			}
			if called || status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, called = %v; want InvalidArgument containing %q", err, called, tt.want)
			}
		})
	}
}

// adminEnv is the admin API over a real store, served by a real gRPC
// server on 127.0.0.1 with the interceptors the control plane uses, and
// clients of it. logs holds what the API logged.
type adminEnv struct {
	store    store.Store
	watch    *dispatch.Watch
	security adminv1.SecurityServiceClient
	outgoing adminv1.OutgoingServiceClient
	channels adminv1.ChannelServiceClient
	logs     *testenv.LogBuffer
	// conn is the clients' connection, for the other services.
	conn *grpc.ClientConn
}

func newAdminEnv(t *testing.T) *adminEnv {
	t.Helper()
	return newAdminEnvOn(t, storetest.SQLite(t))
}

// newAdminEnvOn is newAdminEnv over a store on backend b.
func newAdminEnvOn(t *testing.T, b storetest.Backend) *adminEnv {
	t.Helper()
	e := &adminEnv{store: storetest.Open(t, b), watch: dispatch.NewWatch(0), logs: &testenv.LogBuffer{}}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	disp := dispatch.New(e.store, e.watch, log)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(RejectUnknownFields))
	New(e.store, e.watch, disp, Options{InvokeTimeout: time.Minute}, log).Register(srv)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { disp.Close(); srv.Stop() })
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	e.security = adminv1.NewSecurityServiceClient(conn)
	e.outgoing = adminv1.NewOutgoingServiceClient(conn)
	e.channels = adminv1.NewChannelServiceClient(conn)
	e.conn = conn
	return e
}

// watchAt fails unless the watch is at revision want.
func (e *adminEnv) watchAt(t *testing.T, want int64) {
	t.Helper()
	if rev, _ := e.watch.Current(); rev != want {
		t.Fatalf("watch at revision %d, want %d", rev, want)
	}
}
