package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/weft-dev/weft/controlplane/store"
)

// TestReplicaLease: an agent counts as connected while the replica that
// holds its stream beats. A replica that stops beating, or is removed,
// takes its agents' "connected" with it; an agent that moved to another
// replica stays connected when its old stream ends late.
func TestReplicaLease(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		deploy(t, s, pkg("alpha", nil, "a.go", "a"))
		r1 := store.Replica{ID: "cp-1", Address: "10.0.0.1:7400", StartedAt: time.Now()}
		r2 := store.Replica{ID: "cp-2", Address: "10.0.0.2:7400", StartedAt: time.Now()}
		for _, r := range []store.Replica{r1, r2} {
			if err := s.ReplicaBeats(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		hello := func(agent string, r store.Replica) {
			t.Helper()
			if err := s.AgentHello(ctx, store.AgentHello{ID: agent, Replica: r.ID}); err != nil {
				t.Fatal(err)
			}
		}
		want := func(what, agent string, connected bool, replica string) {
			t.Helper()
			a, err := s.GetAgent(ctx, agent)
			if err != nil || a.Connected != connected || a.Replica != replica {
				t.Fatalf("%s: GetAgent %s = connected %v on %q, %v; want connected %v on %q", what, agent, a.Connected, a.Replica, err, connected, replica)
			}
			list, err := s.ListAgents(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range list {
				if l.ID == agent && (l.Connected != connected || l.Replica != replica) {
					t.Fatalf("%s: ListAgents has %s connected %v on %q", what, agent, l.Connected, l.Replica)
				}
			}
			st, err := s.GetDeployStatus(ctx, "alpha", 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range st.Agents {
				if d.AgentID == agent && d.Connected != connected {
					t.Fatalf("%s: deploy status has %s connected %v", what, agent, d.Connected)
				}
			}
		}
		hello("edge-1", r1)
		hello("edge-2", r2)
		want("held by a live replica", "edge-1", true, "cp-1")

		// The first replica dies: it stops beating.
		if err := store.AgeReplica(ctx, s, "cp-1", store.ReplicaLease); err != nil {
			t.Fatal(err)
		}
		want("its replica silent for a lease", "edge-1", false, "cp-1")
		want("the other replica's agent", "edge-2", true, "cp-2")
		replicas, err := s.ListReplicas(ctx)
		if err != nil || len(replicas) != 2 || replicas[0].Alive || !replicas[1].Alive || replicas[1].Address != r2.Address {
			t.Fatalf("ListReplicas = %+v, %v; want cp-1 gone and cp-2 alive", replicas, err)
		}

		// The agent moves to the live replica; its old stream's end,
		// recorded late by the first, does not disconnect it.
		hello("edge-1", r2)
		want("moved", "edge-1", true, "cp-2")
		if err := s.AgentGone(ctx, "edge-1", "cp-1"); err != nil {
			t.Fatal(err)
		}
		want("the old stream ended late", "edge-1", true, "cp-2")
		if err := s.AgentGone(ctx, "edge-1", "cp-2"); err != nil {
			t.Fatal(err)
		}
		want("its stream ended", "edge-1", false, "cp-2")

		// A replica silent for an hour is forgotten at another's beat.
		if err := store.AgeReplica(ctx, s, "cp-1", store.ReplicaForget+time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := s.ReplicaBeats(ctx, r2); err != nil {
			t.Fatal(err)
		}
		if replicas, err := s.ListReplicas(ctx); err != nil || len(replicas) != 1 || replicas[0].ID != "cp-2" {
			t.Fatalf("ListReplicas = %+v, %v; want cp-1 forgotten", replicas, err)
		}

		// A replica that stops cleanly leaves at once.
		if err := s.ReplicaGone(ctx, "cp-2"); err != nil {
			t.Fatal(err)
		}
		want("its replica stopped", "edge-2", false, "cp-2")
	})
}
