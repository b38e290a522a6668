package api

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weft-dev/weft/agent/controlclient"
	"github.com/weft-dev/weft/agent/engine"
	"github.com/weft-dev/weft/agent/shared/snapshot"
	"github.com/weft-dev/weft/agent/state"
	"github.com/weft-dev/weft/controlplane/auth/authtest"
	"github.com/weft-dev/weft/controlplane/dispatch"
	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/controlplane/store/storetest"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// backupsEnv is a real store, dispatch and admin API with a real agent
// (engine, state dir, control client) connected over gRPC.
type backupsEnv struct {
	store store.Store
	watch *dispatch.Watch
	disp  *dispatch.Server
	admin *Server
	fleet *fleet
	addr  string
}

func newBackupsEnv(t *testing.T) *backupsEnv {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	e := &backupsEnv{store: storetest.Open(t, storetest.SQLite(t)), watch: dispatch.NewWatch(0)}
	e.disp = dispatch.New(e.store, e.watch, log)
	e.admin = New(e.store, e.watch, e.disp, Options{InvokeTimeout: time.Minute}, log)
	e.fleet = e.admin.fleet
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = lis.Addr().String()
	srv := grpc.NewServer(authtest.VouchForClaims()...)
	agentv1.RegisterAgentServiceServer(srv, e.disp)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { e.disp.Close(); srv.Stop() })
	return e
}

// startAgent runs an agent keeping limit backups; stop ends it and waits.
func (e *backupsEnv) startAgent(t *testing.T, id string, limit int) (stop func()) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	dir, err := state.Open(t.TempDir(), state.WithBackups(limit))
	if err != nil {
		t.Fatal(err)
	}
	c := controlclient.New(e.addr, controlclient.Identity{ID: id, StartedAt: time.Now()}, engine.New(log, 5*time.Second), dir,
		controlclient.NewBackoff(10*time.Millisecond, 100*time.Millisecond, nil), log, controlclient.WithBackups(dir))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

// deploy stores the example hello package answering with greeting.
func (e *backupsEnv) deploy(t *testing.T, greeting string) int64 {
	t.Helper()
	src, err := os.ReadFile("../../deploy/examples/hello/hello.go")
	if err != nil {
		t.Fatal(err)
	}
	src = []byte(strings.Replace(string(src), `"Hello"`, `"`+greeting+`"`, 1))
	res, err := e.store.Deploy(context.Background(), "test", []*adminv1.Package{{
		Name:     "hello",
		Sha256:   snapshot.PackageHash([]*adminv1.SourceFile{{Name: "hello.go", Content: src}}),
		Services: []string{"hello.greet"},
		Sources:  []*adminv1.SourceFile{{Name: "hello.go", Content: src}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	e.watch.Advance(res.Revision)
	return res.Revision
}

// await polls until ok holds of agent id.
func (e *backupsEnv) await(t *testing.T, id, what string, ok func(store.Agent) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		a, err := e.store.GetAgent(context.Background(), id)
		if err == nil && ok(a) && slices.Contains(e.disp.Connected(), id) == a.Connected {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent %s never got %s; last %+v, %v", id, what, a, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestListAgentBackups(t *testing.T) {
	e := newBackupsEnv(t)
	stop := e.startAgent(t, "edge-1", 2)
	var revs []int64
	for _, greeting := range []string{"Hello", "Howdy", "Hi", "Hey"} {
		rev := e.deploy(t, greeting)
		revs = append(revs, rev)
		e.await(t, "edge-1", "in sync", func(a store.Agent) bool { return a.Connected && a.AppliedRevision == rev })
	}
	ctx := context.Background()

	before := time.Now().Add(-time.Minute)
	resp, err := e.fleet.ListAgentBackups(ctx, &adminv1.ListAgentBackupsRequest{AgentId: "edge-1"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetLimit() != 2 || len(resp.GetBackups()) != 2 {
		t.Fatalf("response = %v, want 2 backups and limit 2", resp)
	}
	for i, b := range resp.GetBackups() {
		rev, by := revs[2-i], revs[3-i] // newest first
		want := []string{fmt.Sprintf("hello@%d", 3-i)}
		if b.GetRevision() != rev || b.GetReplacedByRevision() != by || !slices.Equal(b.GetPackages(), want) ||
			b.GetSizeBytes() <= 0 || b.GetId() == "" || b.GetReplacedAt().AsTime().Before(before) {
			t.Errorf("backup %d = %v; want r%d replaced by r%d holding %v", i, b, rev, by, want)
		}
	}

	tests := []struct {
		name  string
		id    string
		code  codes.Code
		words string
	}{
		{"agent_id required", "", codes.InvalidArgument, "list agent backups: agent_id is required"},
		{"unknown agent", "ghost", codes.NotFound, `list backups of agent "ghost": no agent "ghost" has ever connected`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.fleet.ListAgentBackups(ctx, &adminv1.ListAgentBackupsRequest{AgentId: tt.id})
			if status.Code(err) != tt.code || !strings.Contains(err.Error(), tt.words) {
				t.Fatalf("err = %v, want %s containing %q", err, tt.code, tt.words)
			}
		})
	}

	stop()
	e.await(t, "edge-1", "disconnected", func(a store.Agent) bool { return !a.Connected })
	_, err = e.fleet.ListAgentBackups(ctx, &adminv1.ListAgentBackupsRequest{AgentId: "edge-1"})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), `list backups of agent "edge-1": the agent is not connected (last seen `) {
		t.Fatalf("err = %v, want FailedPrecondition saying the agent is not connected", err)
	}
}
