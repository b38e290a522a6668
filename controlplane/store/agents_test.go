package store_test

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/controlplane/store/storetest"
)

func TestAgents(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		deploy(t, s, pkg("alpha", nil, "a.go", "a"))
		wantRevision(t, s, 1)

		get := func() store.Agent {
			t.Helper()
			a, err := s.GetAgent(ctx, "edge-1")
			if err != nil {
				t.Fatal(err)
			}
			return a
		}

		started := time.Date(2025, 3, 4, 5, 6, 7, 891234567, time.FixedZone("CET", 3600))
		hello := store.AgentHello{
			ID:              "edge-1",
			Labels:          map[string]string{"site": "berlin", "env": "prod"},
			BuildVersion:    "v0.1.0",
			HTTPAddress:     "10.0.0.5:8080",
			PID:             4242,
			StartedAt:       started,
			AppliedRevision: 0,
		}
		if err := s.AgentHello(ctx, hello); err != nil {
			t.Fatal(err)
		}
		a := get()
		if !maps.Equal(a.Labels, hello.Labels) || a.BuildVersion != "v0.1.0" || a.HTTPAddress != "10.0.0.5:8080" ||
			a.PID != 4242 || !a.Connected || a.AppliedRevision != 0 || a.FailedRevision != 0 || a.LastError != "" {
			t.Fatalf("after hello = %+v", a)
		}
		if want := started.UTC().Truncate(time.Millisecond); !a.StartedAt.Equal(want) || a.StartedAt.Location() != time.UTC {
			t.Fatalf("StartedAt = %v, want %v", a.StartedAt, want)
		}
		wantTime(t, "FirstSeen", a.FirstSeen)
		wantTime(t, "LastSeen", a.LastSeen)
		firstSeen := a.FirstSeen

		steps := []struct {
			name  string
			do    func() error
			check func(a store.Agent) bool
		}{
			{"ack", func() error { return s.AgentApplied(ctx, "edge-1", 1, "h1") },
				func(a store.Agent) bool { return a.AppliedRevision == 1 && a.AppliedHash == "h1" && a.LastError == "" }},
			{"nack", func() error { return s.AgentFailed(ctx, "edge-1", 3, "a.go:3:1: undefined: x") },
				func(a store.Agent) bool {
					return a.AppliedRevision == 1 && a.FailedRevision == 3 && a.LastError == "a.go:3:1: undefined: x"
				}},
			{"ack below the failure keeps the error", func() error { return s.AgentApplied(ctx, "edge-1", 2, "h2") },
				func(a store.Agent) bool {
					return a.AppliedRevision == 2 && a.FailedRevision == 3 && a.LastError == "a.go:3:1: undefined: x"
				}},
			{"ack above the failure clears the error", func() error { return s.AgentApplied(ctx, "edge-1", 4, "h4") },
				func(a store.Agent) bool {
					return a.AppliedRevision == 4 && a.AppliedHash == "h4" && a.FailedRevision == 3 && a.LastError == ""
				}},
			{"disconnected", func() error { return s.AgentGone(ctx, "edge-1", "") },
				func(a store.Agent) bool { return !a.Connected && a.AppliedRevision == 4 }},
			{"seen twice in a row", func() error {
				// The same values in the same millisecond: MySQL counts no
				// changed row, and that is no error.
				if err := s.AgentSeen(ctx, "edge-1"); err != nil {
					return err
				}
				return s.AgentSeen(ctx, "edge-1")
			},
				func(a store.Agent) bool { return a.Connected }},
			{"hello again", func() error {
				h := hello
				h.Labels = map[string]string{"site": "paris"}
				h.PID = 7
				h.AppliedRevision = 4
				h.AppliedHash = "h4"
				return s.AgentHello(ctx, h)
			}, func(a store.Agent) bool {
				return a.Connected && a.PID == 7 && a.Labels["site"] == "paris" && len(a.Labels) == 1 &&
					a.FirstSeen.Equal(firstSeen) && a.FailedRevision == 3
			}},
		}
		for _, st := range steps {
			t.Run(st.name, func(t *testing.T) {
				if err := st.do(); err != nil {
					t.Fatal(err)
				}
				if a := get(); !st.check(a) {
					t.Fatalf("agent = %+v", a)
				}
				// Agent state is not config.
				wantRevision(t, s, 1)
			})
		}

		unknown := []struct {
			name string
			do   func() error
		}{
			{"ack", func() error { return s.AgentApplied(ctx, "ghost", 1, "h") }},
			{"nack", func() error { return s.AgentFailed(ctx, "ghost", 1, "m") }},
			{"seen", func() error { return s.AgentSeen(ctx, "ghost") }},
			{"get", func() error { _, err := s.GetAgent(ctx, "ghost"); return err }},
		}
		for _, tt := range unknown {
			t.Run("unknown agent "+tt.name, func(t *testing.T) {
				wantErr(t, tt.do(), store.ErrNotFound, `agent "ghost"`)
			})
		}

		if err := s.AgentHello(ctx, store.AgentHello{ID: "a-first"}); err != nil {
			t.Fatal(err)
		}
		list, err := s.ListAgents(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].ID != "a-first" || list[1].ID != "edge-1" ||
			!list[0].StartedAt.IsZero() || list[0].Labels == nil {
			t.Fatalf("ListAgents = %+v", list)
		}
	})
}

// TestMigrateAgentsNotPersisted: an agent stored before agents said whether
// they kept their state on disk (its not_persisted is NULL), in a database
// made before schema versions, reads with nothing unpersisted, and takes
// an ACK that says something.
func TestMigrateAgentsNotPersisted(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			seedVersion1(t, b)
			s := storetest.Open(t, b)
			a, err := s.GetAgent(ctx, store.PreviousAgent)
			if err != nil || a.AppliedRevision != 2 || a.NotPersisted != "" {
				t.Fatalf("migrated agent = %+v, %v; want applied 2, nothing unpersisted", a, err)
			}
			ack := store.AgentAck{Revision: 3, Hash: "h3", NotPersisted: "save snapshot of revision 3: no space left on device"}
			if err := s.AgentAcked(ctx, store.PreviousAgent, ack); err != nil {
				t.Fatal(err)
			}
			if a, err = s.GetAgent(ctx, store.PreviousAgent); err != nil || a.AppliedRevision != 3 || a.NotPersisted != ack.NotPersisted {
				t.Fatalf("after an ACK = %+v, %v; want applied 3, not persisted %q", a, err, ack.NotPersisted)
			}
			if err := s.AgentApplied(ctx, store.PreviousAgent, 3, "h3"); err != nil {
				t.Fatal(err)
			}
			if a, err = s.GetAgent(ctx, store.PreviousAgent); err != nil || a.NotPersisted != "" {
				t.Fatalf("after an ACK of a state on disk = %+v, %v; want nothing unpersisted", a, err)
			}
		})
	}
}
