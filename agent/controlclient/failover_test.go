package controlclient

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// unserving is a control plane replica that answers every Sync with
// Unavailable, as one whose database is out of its reach does.
type unserving struct {
	agentv1.UnimplementedAgentServiceServer
	syncs chan struct{}
}

func (u *unserving) Sync(agentv1.AgentService_SyncServer) error {
	select {
	case u.syncs <- struct{}{}:
	default:
	}
	return status.Error(codes.Unavailable, "the database is unavailable; try again")
}

// serve serves impl, a fake control plane, on a loopback port until the
// test ends, and returns its address.
func serve(t *testing.T, impl agentv1.AgentServiceServer) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	agentv1.RegisterAgentServiceServer(srv, impl)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// TestMovesOffAReplicaThatCannotServe: given two replicas, an agent
// connected to one that answers but cannot serve (Unavailable, while the
// connection stands) moves to the other after a few sessions, and serves
// the snapshot it sends.
func TestMovesOffAReplicaThatCannotServe(t *testing.T) {
	sick := &unserving{syncs: make(chan struct{}, 1)}
	healthy := &ackRecorder{snaps: make(chan *agentv1.Desired), got: make(chan *agentv1.SyncRequest)}
	c, _, logs := newDiskClient(t, serve(t, sick)+","+serve(t, healthy))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-sick.syncs: // it went to the first replica first
	case <-time.After(30 * time.Second):
		t.Fatal("the agent never called the first replica")
	}
	select {
	case healthy.snaps <- helloSnap(t, 1, 1, "Hello"):
	case <-time.After(30 * time.Second):
		t.Fatal("the agent never moved to the replica that serves")
	}
	if ack := healthy.next(t, "the other replica's snapshot"); ack.GetRevision() != 1 {
		t.Fatalf("ACK %v; want revision 1", ack)
	}
	if !strings.Contains(logs.String(), "answers but cannot serve; trying the next") {
		t.Errorf("the log does not say why the agent moved:\n%s", logs.String())
	}
}
