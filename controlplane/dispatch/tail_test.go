package dispatch

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/weft-dev/weft/agent/shared/snapshot"
	"github.com/weft-dev/weft/controlplane/store/storetest"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
	"github.com/weft-dev/weft/tests/testenv"
)

// tailAgent connects agent id over real gRPC and answers tail commands: a
// start gets an ok and then batches batches of one invocation each, sent at
// once; a stop is reported on stops.
func tailAgent(t *testing.T, h *harness, id string, batches int) (stops <-chan string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := h.client.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hello := &agentv1.Hello{AgentId: id, ProtocolVersion: snapshot.ProtocolVersion}
	if err := s.Send(&agentv1.SyncRequest{Kind: &agentv1.SyncRequest_Hello{Hello: hello}}); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			if _, err := s.Recv(); err != nil {
				return
			}
		}
	}()
	// The Sync stream registers the agent asynchronously: a Commands stream
	// opened before that is refused, so open again until it holds.
	var cs agentv1.AgentService_CommandsClient
	for deadline := time.Now().Add(10 * time.Second); ; {
		cs, err = h.client.Commands(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := cs.Send(&agentv1.CommandsRequest{Kind: &agentv1.CommandsRequest_Open{Open: &agentv1.CommandsOpen{AgentId: id}}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		if slices.Contains(h.disp.Connected(), id) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent %s never connected its Commands stream", id)
		}
	}
	stopped := make(chan string, 10)
	go func() {
		for {
			m, err := cs.Recv()
			if err != nil {
				return
			}
			tc := m.GetCommand().GetTail()
			_ = cs.Send(&agentv1.CommandsRequest{Kind: &agentv1.CommandsRequest_Result{Result: &agentv1.CommandResult{Id: m.GetCommand().GetId()}}})
			if tc.GetStop() {
				stopped <- tc.GetTailId()
				continue
			}
			for i := range batches {
				ev := &agentv1.TailEvents{TailId: tc.GetTailId(), Invocations: []*agentv1.Invocation{{Cid: id + "-" + string(rune('a'+i%26)), Service: tc.GetService()}}}
				if err := cs.Send(&agentv1.CommandsRequest{Kind: &agentv1.CommandsRequest_Tail{Tail: ev}}); err != nil {
					return
				}
			}
		}
	}()
	return stopped
}

func TestTail(t *testing.T) {
	h := newHarness(t, storetest.SQLite(t))
	stopsA := tailAgent(t, h, "a1", 3)
	stopsB := tailAgent(t, h, "a2", 3)

	ctx, cancel := context.WithCancel(context.Background())
	batches, failed, err := h.disp.Tail(ctx, nil, &agentv1.TailCommand{Service: "orders.place"})
	if err != nil || len(failed) > 0 {
		t.Fatalf("Tail: %v, failed %v", err, failed)
	}
	got := map[string]int{}
	for range 6 {
		select {
		case b := <-batches:
			got[b.AgentID] += len(b.Events.GetInvocations())
			if s := b.Events.GetInvocations()[0].GetService(); s != "orders.place" {
				t.Errorf("the agent was asked to tail service %q, want orders.place", s)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("batches so far %v; want 3 from each agent", got)
		}
	}
	if got["a1"] != 3 || got["a2"] != 3 {
		t.Errorf("invocations by agent %v, want 3 each", got)
	}
	cancel()
	for _, stops := range []<-chan string{stopsA, stopsB} {
		select {
		case <-stops:
		case <-time.After(10 * time.Second):
			t.Fatal("an agent was not told to stop the tail when it ended")
		}
	}

	// An unknown agent is refused; a tail on nobody is ErrNoAgent.
	if _, failed, err := h.disp.Tail(context.Background(), []string{"nobody"}, &agentv1.TailCommand{}); err == nil || failed["nobody"] == nil {
		t.Errorf("a tail on an unknown agent: %v, %v; want it refused", failed, err)
	}
}

// A reader that does not read never holds the agent up: what it misses is
// counted.
func TestTailSlowReader(t *testing.T) {
	h := newHarness(t, storetest.SQLite(t))
	const sent = tailBuffer + 40
	tailAgent(t, h, "a1", sent)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	batches, _, err := h.disp.Tail(ctx, nil, &agentv1.TailCommand{})
	if err != nil {
		t.Fatal(err)
	}
	// Nobody reads until the agent's every batch has been handled: the
	// buffer's worth held, the rest dropped and counted.
	const wantDropped = sent - tailBuffer
	testenv.Await(t, time.Minute, "the batches the buffer cannot hold dropped", func() (bool, string) {
		n := droppedFor(h.disp, "a1")
		return n == wantDropped, fmt.Sprintf("%d batches held and %d dropped of %d sent", len(batches), n, sent)
	})
	var read, dropped int64
	for read+dropped < sent {
		select {
		case b := <-batches:
			read += int64(len(b.Events.GetInvocations()))
			dropped += b.Dropped
		case <-time.After(2 * time.Second):
			// The drops are reported with the next batch; ask for one more.
			t.Fatalf("read %d, dropped %d of %d", read, dropped, sent)
		}
		if read == tailBuffer && dropped == 0 {
			break // the rest was dropped: nothing more comes until the agent sends again
		}
	}
	if read != tailBuffer {
		t.Errorf("read %d invocations, want the buffer's %d", read, tailBuffer)
	}
}

// droppedFor sums what the tails on agent id's stream have dropped and not
// yet reported.
func droppedFor(s *Server, id string) int64 {
	_, cc, err := s.pick(id)
	if err != nil {
		return 0
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	var n int64
	for _, sub := range cc.tails {
		n += sub.dropped.Load()
	}
	return n
}
