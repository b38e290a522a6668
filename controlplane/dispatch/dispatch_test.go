package dispatch

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/weft-dev/weft/agent/shared/snapshot"
	"github.com/weft-dev/weft/controlplane/auth/authtest"
	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/controlplane/store/storetest"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// harness is a real gRPC server running dispatch over a real store.
type harness struct {
	store  store.Store
	watch  *Watch
	disp   *Server
	client agentv1.AgentServiceClient
}

func newHarness(t *testing.T, b storetest.Backend) *harness {
	t.Helper()
	st := storetest.Open(t, b)
	h := &harness{store: st, watch: NewWatch(0)}
	h.disp = New(st, h.watch, slog.New(slog.DiscardHandler))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(authtest.VouchForClaims()...)
	agentv1.RegisterAgentServiceServer(srv, h.disp)
	go srv.Serve(lis)
	t.Cleanup(func() { h.disp.Close(); srv.Stop() })
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	h.client = agentv1.NewAgentServiceClient(conn)
	return h
}

func (h *harness) deploy(t *testing.T, name, content string) int64 {
	t.Helper()
	files := []*adminv1.SourceFile{{Name: name + ".go", Content: []byte(content)}}
	res, err := h.store.Deploy(context.Background(), "test", []*adminv1.Package{{
		Name:     name,
		Sha256:   snapshot.PackageHash(files),
		Services: []string{name + ".svc"},
		Sources:  []*adminv1.SourceFile{{Name: name + ".go", Content: []byte(content)}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	h.watch.Advance(res.Revision)
	return res.Revision
}

func (h *harness) channel(t *testing.T, name, service string) int64 {
	t.Helper()
	ch, err := h.store.CreateChannel(context.Background(), &adminv1.Channel{Name: name, Path: "/" + name, Methods: []string{"POST"}, Service: service, Active: proto.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	h.watch.Advance(ch.Revision)
	return ch.Revision
}

func recvSnapshot(t *testing.T, s agentv1.AgentService_SyncClient) *agentv1.Desired {
	t.Helper()
	m, err := s.Recv()
	if err != nil {
		t.Fatalf("recv: %v", err)
	}
	if m.GetDesired() == nil {
		t.Fatalf("recv %v, want a snapshot", m)
	}
	return m.GetDesired()
}

func ack(t *testing.T, s agentv1.AgentService_SyncClient, snap *agentv1.Desired) {
	t.Helper()
	if err := s.Send(&agentv1.SyncRequest{Kind: &agentv1.SyncRequest_Ack{Ack: &agentv1.Ack{Revision: snap.GetRevision(), Nonce: snap.GetNonce(), Hash: snapshot.Hash(snap)}}}); err != nil {
		t.Fatal(err)
	}
}

func awaitAgent(t *testing.T, st store.Store, id string, ok func(store.Agent) bool) store.Agent {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		a, err := st.GetAgent(context.Background(), id)
		if err == nil && ok(a) {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent %s never reached the wanted state; last %+v, %v", id, a, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSyncProtocol(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			h := newHarness(t, b)
			rev1 := h.deploy(t, "p", "package p // v1")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s, err := h.client.Sync(ctx)
			if err != nil {
				t.Fatal(err)
			}
			hello := &agentv1.Hello{AgentId: "a1", ProtocolVersion: snapshot.ProtocolVersion, Pid: 42, Labels: map[string]string{"site": "berlin"}}
			if err := s.Send(&agentv1.SyncRequest{Kind: &agentv1.SyncRequest_Hello{Hello: hello}}); err != nil {
				t.Fatal(err)
			}

			// The first snapshot carries the package's files.
			snap := recvSnapshot(t, s)
			if snap.GetRevision() != rev1 || len(snap.GetPackages()) != 1 || len(snap.GetPackages()[0].GetSources()) != 1 {
				t.Fatalf("first snapshot = %v, want revision %d with p's files", snap, rev1)
			}
			if snap.GetHash() != snapshot.Hash(snap) {
				t.Fatalf("snapshot hash %s, want %s", snap.GetHash(), snapshot.Hash(snap))
			}
			ack(t, s, snap)
			a := awaitAgent(t, h.store, "a1", func(a store.Agent) bool { return a.AppliedRevision == rev1 })
			if !a.Connected || a.Labels["site"] != "berlin" || a.PID != 42 {
				t.Fatalf("agent after ACK = %+v", a)
			}

			// A package the agent holds goes without its files.
			rev2 := h.channel(t, "c1", "p.svc")
			snap = recvSnapshot(t, s)
			if snap.GetRevision() != rev2 || len(snap.GetPackages()[0].GetSources()) != 0 || len(snap.GetChannels()) != 1 {
				t.Fatalf("second snapshot = %v, want revision %d, p without files, one channel", snap, rev2)
			}
			ack(t, s, snap)
			awaitAgent(t, h.store, "a1", func(a store.Agent) bool { return a.AppliedRevision == rev2 })

			// A NACK is recorded and that revision is not sent again.
			rev3 := h.deploy(t, "p", "package p // v2")
			snap = recvSnapshot(t, s)
			if snap.GetRevision() != rev3 || len(snap.GetPackages()[0].GetSources()) != 1 {
				t.Fatalf("third snapshot = %v, want revision %d with p v2's files", snap, rev3)
			}
			if err := s.Send(&agentv1.SyncRequest{Kind: &agentv1.SyncRequest_Nack{Nack: &agentv1.Nack{
				Revision: rev3, Nonce: snap.GetNonce(),
				Errors: []*agentv1.ObjectError{{Kind: "package", Name: "p", Message: "p.go:1:1: broken"}},
			}}}); err != nil {
				t.Fatal(err)
			}
			a = awaitAgent(t, h.store, "a1", func(a store.Agent) bool { return a.FailedRevision == rev3 })
			if a.AppliedRevision != rev2 || a.LastError == "" {
				t.Fatalf("agent after NACK = %+v, want applied %d and an error", a, rev2)
			}

			// The next revision is sent, not the refused one.
			rev4 := h.channel(t, "c2", "p.svc")
			snap = recvSnapshot(t, s)
			if snap.GetRevision() != rev4 {
				t.Fatalf("after a NACK got revision %d, want %d", snap.GetRevision(), rev4)
			}
			ack(t, s, snap)
			awaitAgent(t, h.store, "a1", func(a store.Agent) bool { return a.AppliedRevision == rev4 })

			// A package the agent dropped travels with its files again.
			rev5 := h.deploy(t, "q", "package q // v1")
			snap = recvSnapshot(t, s)
			ack(t, s, snap)
			und, err := h.store.Undeploy(ctx, "test", "q", false)
			if err != nil {
				t.Fatal(err)
			}
			h.watch.Advance(und.Revision)
			snap = recvSnapshot(t, s)
			ack(t, s, snap)
			_, _, rev7, err := h.store.Rollback(ctx, "test", "q", 1)
			if err != nil {
				t.Fatal(err)
			}
			h.watch.Advance(rev7)
			snap = recvSnapshot(t, s)
			for _, p := range snap.GetPackages() {
				if p.GetName() == "q" && len(p.GetSources()) == 0 {
					t.Fatalf("revision %d (after %d) sends q without files, though the agent dropped it", rev7, rev5)
				}
			}
			ack(t, s, snap)

			// Commands reach the agent and its result comes back.
			cs, err := h.client.Commands(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := cs.Send(&agentv1.CommandsRequest{Kind: &agentv1.CommandsRequest_Open{Open: &agentv1.CommandsOpen{AgentId: "a1"}}}); err != nil {
				t.Fatal(err)
			}
			go func() {
				for {
					m, err := cs.Recv()
					if err != nil {
						return
					}
					_ = cs.Send(&agentv1.CommandsRequest{Kind: &agentv1.CommandsRequest_Result{Result: &agentv1.CommandResult{
						Id:   m.GetCommand().GetId(),
						Kind: &agentv1.CommandResult_Invoke{Invoke: &agentv1.InvokeResult{Cid: "c", Status: 200, Output: m.GetCommand().GetInvoke().GetInput()}},
					}}})
				}
			}()
			var res *agentv1.CommandResult
			for deadline := time.Now().Add(10 * time.Second); ; {
				var id string
				id, res, err = h.disp.Run(ctx, "", &agentv1.Command{Kind: &agentv1.Command_Invoke{Invoke: &agentv1.InvokeCommand{Service: "p.svc", Input: []byte(`{"x":1}`)}}})
				if err == nil {
					if id != "a1" {
						t.Fatalf("Run picked %q, want a1", id)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("Run: %v", err)
				}
				time.Sleep(10 * time.Millisecond) // the Commands stream may not be registered yet
			}
			if string(res.GetInvoke().GetOutput()) != `{"x":1}` {
				t.Fatalf("invoke result = %v", res)
			}
			if _, _, err := h.disp.Run(ctx, "nobody", &agentv1.Command{}); err == nil {
				t.Fatal("Run on an unknown agent succeeded")
			}

			// When the stream ends the agent is recorded as disconnected.
			cancel()
			awaitAgent(t, h.store, "a1", func(a store.Agent) bool { return !a.Connected })
		})
	}
}

func TestSyncRefusesBadHello(t *testing.T) {
	h := newHarness(t, storetest.SQLite(t))
	tests := []struct {
		name  string
		first *agentv1.SyncRequest
	}{
		{"ack first", &agentv1.SyncRequest{Kind: &agentv1.SyncRequest_Ack{Ack: &agentv1.Ack{}}}},
		{"empty id", &agentv1.SyncRequest{Kind: &agentv1.SyncRequest_Hello{Hello: &agentv1.Hello{ProtocolVersion: snapshot.ProtocolVersion}}}},
		{"bad id", &agentv1.SyncRequest{Kind: &agentv1.SyncRequest_Hello{Hello: &agentv1.Hello{AgentId: "a b/c", ProtocolVersion: snapshot.ProtocolVersion}}}},
		{"other protocol", &agentv1.SyncRequest{Kind: &agentv1.SyncRequest_Hello{Hello: &agentv1.Hello{AgentId: "a", ProtocolVersion: 99}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := h.client.Sync(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Send(tt.first); err != nil {
				t.Fatal(err)
			}
			if m, err := s.Recv(); err == nil {
				t.Fatalf("Recv = %v, want an error", m)
			}
		})
	}
	if agents, err := h.store.ListAgents(context.Background()); err != nil || len(agents) != 0 {
		t.Fatalf("agents after bad hellos = %v, %v; want none", agents, err)
	}
}

func TestSnapshotCarriesSecurityAndOutgoing(t *testing.T) {
	h := newHarness(t, storetest.SQLite(t))
	ctx := context.Background()
	h.deploy(t, "p", "package p")
	if _, err := h.store.CreateSecurityDefinition(ctx, &adminv1.SecurityDefinition{Name: "partner", Kind: "basic_auth", Username: "u", Password: "pass-in-clear"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.store.CreateSecurityDefinition(ctx, &adminv1.SecurityDefinition{Name: "crm-token", Kind: "bearer", Token: "token-in-clear"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.store.CreateOutgoingConnection(ctx, &adminv1.OutgoingConnection{
		Name: "crm", Address: "https://crm.example", PathTemplate: "/c/{id}", Method: "POST", DataFormat: "soap11", SoapAction: "urn:Get",
		TimeoutMs: 1500, TlsSkipVerify: true, Security: "crm-token", PoolSize: 3, Headers: map[string]string{"X-A": "b"}, Active: proto.Bool(true),
	}); err != nil {
		t.Fatal(err)
	}
	ch, err := h.store.CreateChannel(ctx, &adminv1.Channel{
		Name: "orders", Path: "/orders", Methods: []string{"POST"}, Active: proto.Bool(true), DataFormat: "soap12", Security: "partner",
		RateLimit: 2.5, RateBurst: 4, SoapActions: map[string]string{"urn:Place": "p.svc"},
	})
	if err != nil {
		t.Fatal(err)
	}
	h.watch.Advance(ch.Revision)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := h.client.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&agentv1.SyncRequest{Kind: &agentv1.SyncRequest_Hello{Hello: &agentv1.Hello{AgentId: "a1", ProtocolVersion: snapshot.ProtocolVersion}}}); err != nil {
		t.Fatal(err)
	}
	snap := recvSnapshot(t, s)
	if snap.GetRevision() != ch.Revision {
		t.Fatalf("snapshot at revision %d, want %d", snap.GetRevision(), ch.Revision)
	}
	wantSecurity := []*adminv1.SecurityDefinition{
		{Name: "crm-token", Kind: "bearer", Token: "token-in-clear"},
		{Name: "partner", Kind: "basic_auth", Username: "u", Password: "pass-in-clear"},
	}
	wantOutgoing := []*adminv1.OutgoingConnection{{
		Name: "crm", Address: "https://crm.example", PathTemplate: "/c/{id}", Method: "POST", DataFormat: "soap11", SoapAction: "urn:Get",
		TimeoutMs: 1500, TlsSkipVerify: true, Security: "crm-token", PoolSize: 3, Headers: map[string]string{"X-A": "b"}, Active: proto.Bool(true),
	}}
	wantChannels := []*adminv1.Channel{{
		Name: "orders", Path: "/orders", Methods: []string{"POST"}, Active: proto.Bool(true), DataFormat: "soap12", Security: "partner",
		RateLimit: 2.5, RateBurst: 4, SoapActions: map[string]string{"urn:Place": "p.svc"},
	}}
	for _, c := range []struct {
		what      string
		got, want proto.Message
	}{
		{"security", &agentv1.Desired{Security: snap.GetSecurity()}, &agentv1.Desired{Security: wantSecurity}},
		{"outgoing", &agentv1.Desired{Outgoing: snap.GetOutgoing()}, &agentv1.Desired{Outgoing: wantOutgoing}},
		{"channels", &agentv1.Desired{Channels: snap.GetChannels()}, &agentv1.Desired{Channels: wantChannels}},
	} {
		if !proto.Equal(c.got, c.want) {
			t.Errorf("snapshot %s = %v, want %v", c.what, c.got, c.want)
		}
	}
	if snap.GetHash() != snapshot.Hash(snap) {
		t.Fatalf("snapshot hash %s, want %s", snap.GetHash(), snapshot.Hash(snap))
	}

	// The hash covers security definitions and outgoing connections: an
	// agent that applied another secret or address does not ACK this one.
	for _, change := range []struct {
		what string
		edit func(*agentv1.Desired)
	}{
		{"a secret", func(s *agentv1.Desired) { s.Security[1].Password = "other" }},
		{"an address", func(s *agentv1.Desired) { s.Outgoing[0].Address = "https://other.example" }},
		{"a rate", func(s *agentv1.Desired) { s.Channels[0].RateLimit = 3 }},
	} {
		other := proto.Clone(snap).(*agentv1.Desired)
		change.edit(other)
		if snapshot.Hash(other) == snap.GetHash() {
			t.Errorf("changing %s keeps the snapshot hash", change.what)
		}
	}
	ack(t, s, snap)
	awaitAgent(t, h.store, "a1", func(a store.Agent) bool { return a.AppliedRevision == ch.Revision })
}
