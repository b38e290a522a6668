package dispatch

import (
	"context"
	"testing"

	"github.com/weft-dev/weft/agent/shared/snapshot"
	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/controlplane/store/storetest"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

func ackWith(t *testing.T, s agentv1.AgentService_SyncClient, snap *agentv1.Desired, notPersisted string) {
	t.Helper()
	if err := s.Send(&agentv1.SyncRequest{Kind: &agentv1.SyncRequest_Ack{Ack: &agentv1.Ack{
		Revision: snap.GetRevision(), Nonce: snap.GetNonce(), Hash: snapshot.Hash(snap), NotPersisted: notPersisted,
	}}}); err != nil {
		t.Fatal(err)
	}
}

// TestAckNotPersisted: an ACK says why the agent could not keep its state
// on disk; the store keeps it next to the applied revision, the deploy
// status shows it, and the same ACK sent again updates it. Only the ACK of
// the state the agent serves counts.
func TestAckNotPersisted(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			h := newHarness(t, b)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			rev1 := h.deploy(t, "p", "package p // v1")
			s, err := h.client.Sync(ctx)
			if err != nil {
				t.Fatal(err)
			}
			hello := &agentv1.Hello{AgentId: "a1", ProtocolVersion: snapshot.ProtocolVersion, Pid: 42}
			if err := s.Send(&agentv1.SyncRequest{Kind: &agentv1.SyncRequest_Hello{Hello: hello}}); err != nil {
				t.Fatal(err)
			}
			snap1 := recvSnapshot(t, s)
			const full = "save snapshot of revision 1: no space left on device"
			ackWith(t, s, snap1, full)
			awaitAgent(t, h.store, "a1", func(a store.Agent) bool { return a.AppliedRevision == rev1 && a.NotPersisted == full })
			st, err := h.store.GetDeployStatus(ctx, "p", 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Agents) != 1 || st.Agents[0].State != store.DeployDeployed || st.Agents[0].NotPersisted != full {
				t.Fatalf("deploy status = %+v; want a1 deployed, not persisted: %s", st.Agents, full)
			}

			// The disk recovered: the same ACK again, with nothing to say.
			ackWith(t, s, snap1, "")
			awaitAgent(t, h.store, "a1", func(a store.Agent) bool { return a.AppliedRevision == rev1 && a.NotPersisted == "" })

			// A newer revision, not kept; then the ACK of the older one
			// again, which the agent no longer serves, changes nothing.
			rev2 := h.deploy(t, "p", "package p // v2")
			snap2 := recvSnapshot(t, s)
			ackWith(t, s, snap2, "disk full")
			awaitAgent(t, h.store, "a1", func(a store.Agent) bool { return a.AppliedRevision == rev2 && a.NotPersisted == "disk full" })
			ackWith(t, s, snap1, "")
			if err := s.CloseSend(); err != nil {
				t.Fatal(err)
			}
			// The stale ACK is handled before the end of the stream.
			a := awaitAgent(t, h.store, "a1", func(a store.Agent) bool { return !a.Connected })
			if a.AppliedRevision != rev2 || a.NotPersisted != "disk full" {
				t.Fatalf("after a stale ACK: applied %d, not persisted %q; want %d, %q", a.AppliedRevision, a.NotPersisted, rev2, "disk full")
			}
		})
	}
}
