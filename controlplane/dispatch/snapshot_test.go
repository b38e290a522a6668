package dispatch

import (
	"bytes"
	"context"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/weft-dev/weft/agent/shared/snapshot"
	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/controlplane/store/storetest"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// usedSecurityDesired is a config with one security definition for each way
// a definition can be used, or not, each with a secret of its own.
func usedSecurityDesired() store.Desired {
	return store.Desired{
		Revision: 7,
		Channels: []*adminv1.Channel{
			{Name: "orders", Path: "/orders", Methods: []string{"POST"}, Service: "p.svc", Active: proto.Bool(true), Security: "by-channel"},
			{Name: "open", Path: "/open", Methods: []string{"POST"}, Service: "p.svc", Active: proto.Bool(true)},
			{Name: "paused", Path: "/paused", Methods: []string{"POST"}, Service: "p.svc", Active: proto.Bool(false), Security: "by-inactive-channel"},
		},
		Outgoing: []*adminv1.OutgoingConnection{
			{Name: "crm", Address: "https://crm.example", Method: "POST", Active: proto.Bool(true), Security: "by-outgoing"},
			{Name: "erp", Address: "https://erp.example", Method: "POST", Active: proto.Bool(false), Security: "by-inactive-outgoing"},
		},
		Security: []*adminv1.SecurityDefinition{
			{Name: "by-channel", Kind: "basic_auth", Username: "u", Password: "secret-of-by-channel"},
			{Name: "by-inactive-channel", Kind: "api_key", Header: "X-Key", Key: "secret-of-by-inactive-channel"},
			{Name: "by-inactive-outgoing", Kind: "bearer", Token: "secret-of-by-inactive-outgoing"},
			{Name: "by-outgoing", Kind: "oauth2_client_credentials", TokenUrl: "https://idp.example/token", ClientId: "weft", ClientSecret: "secret-of-by-outgoing"},
			{Name: "unused", Kind: "jwt", Algorithms: []string{"HS256"}, Secret: "secret-of-unused"},
		},
		Jobs: []*adminv1.Job{{Name: "nightly", Service: "p.svc", Type: "cron", Cron: "0 3 * * *", Active: proto.Bool(true)}},
	}
}

func TestSnapshotCarriesOnlyUsedSecurity(t *testing.T) {
	d := usedSecurityDesired()
	snap := snapshotOf(d)
	wire, err := proto.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	sent := map[string]*adminv1.SecurityDefinition{}
	for _, def := range snap.GetSecurity() {
		sent[def.GetName()] = def
	}
	for _, c := range []struct {
		name, secret string
		want         bool
	}{
		{"by-channel", "secret-of-by-channel", true},
		{"by-outgoing", "secret-of-by-outgoing", true},
		{"unused", "secret-of-unused", false},
		{"by-inactive-channel", "secret-of-by-inactive-channel", false},
		{"by-inactive-outgoing", "secret-of-by-inactive-outgoing", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := sent[c.name] != nil; got != c.want {
				t.Errorf("definition %s sent = %v, want %v", c.name, got, c.want)
			}
			if got := bytes.Contains(wire, []byte(c.secret)); got != c.want {
				t.Errorf("secret of %s in the marshalled snapshot = %v, want %v", c.name, got, c.want)
			}
		})
	}
	if got := sent["by-outgoing"].GetClientSecret(); got != "secret-of-by-outgoing" {
		t.Errorf("by-outgoing client secret = %q, want it in clear", got)
	}
	// The objects themselves all travel, inactive ones and their references
	// included: only the definitions are left out.
	if len(snap.GetChannels()) != 3 || len(snap.GetOutgoing()) != 2 || len(snap.GetJobs()) != 1 {
		t.Errorf("snapshot has %d channels, %d connections, %d jobs; want 3, 2, 1", len(snap.GetChannels()), len(snap.GetOutgoing()), len(snap.GetJobs()))
	}
	if snap.GetHash() != snapshot.Hash(snap) {
		t.Errorf("snapshot hash %s, want the hash of what is sent, %s", snap.GetHash(), snapshot.Hash(snap))
	}

	// A definition no active object uses does not change what agents get;
	// one that is used does.
	for _, c := range []struct {
		what string
		edit func(*store.Desired)
		same bool
	}{
		{"an unused secret", func(d *store.Desired) { d.Security[4].Secret = "another" }, true},
		{"an unused definition added", func(d *store.Desired) {
			d.Security = append(d.Security, &adminv1.SecurityDefinition{Name: "zz-new", Kind: "bearer", Token: "t"})
		}, true},
		{"a secret behind an inactive channel", func(d *store.Desired) { d.Security[1].Key = "another" }, true},
		{"a secret behind a channel", func(d *store.Desired) { d.Security[0].Password = "another" }, false},
		{"a secret behind a connection", func(d *store.Desired) { d.Security[3].ClientSecret = "another" }, false},
		{"a channel activated", func(d *store.Desired) { d.Channels[2].Active = proto.Bool(true) }, false},
	} {
		t.Run(c.what, func(t *testing.T) {
			other := usedSecurityDesired()
			other.Revision++
			c.edit(&other)
			if got := snapshotOf(other).GetHash() == snap.GetHash(); got != c.same {
				t.Errorf("hash unchanged = %v, want %v", got, c.same)
			}
		})
	}
}

// An edit of a definition no active object uses bumps the revision, and the
// agent is sent it, but the snapshot's content and hash stay as they were.
func TestUnusedSecurityChangeKeepsHash(t *testing.T) {
	h := newHarness(t, storetest.SQLite(t))
	ctx := context.Background()
	h.deploy(t, "p", "package p")
	for _, d := range []*adminv1.SecurityDefinition{
		{Name: "partner", Kind: "basic_auth", Username: "u", Password: "used-password"},
		{Name: "spare", Kind: "bearer", Token: "spare-token"},
	} {
		if _, err := h.store.CreateSecurityDefinition(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	ch, err := h.store.CreateChannel(ctx, &adminv1.Channel{Name: "orders", Path: "/orders", Methods: []string{"POST"}, Service: "p.svc", Active: proto.Bool(true), Security: "partner"})
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
	first := recvSnapshot(t, s)
	if len(first.GetSecurity()) != 1 || first.GetSecurity()[0].GetName() != "partner" {
		t.Fatalf("snapshot security = %v, want only partner", first.GetSecurity())
	}
	ack(t, s, first)
	awaitAgent(t, h.store, "a1", func(a store.Agent) bool { return a.AppliedRevision == ch.Revision })

	upd, err := h.store.UpdateSecurityDefinition(ctx, &adminv1.SecurityDefinition{Name: "spare", Kind: "bearer", Token: "other-spare-token"})
	if err != nil {
		t.Fatal(err)
	}
	h.watch.Advance(upd.Revision)
	second := recvSnapshot(t, s)
	if second.GetRevision() != upd.Revision {
		t.Fatalf("second snapshot at revision %d, want %d", second.GetRevision(), upd.Revision)
	}
	if second.GetHash() != first.GetHash() {
		t.Errorf("hash after an unused definition changed = %s, want %s as before", second.GetHash(), first.GetHash())
	}
	wire, err := proto.Marshal(second)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(wire, []byte("spare-token")) {
		t.Error("the unused definition's token reached the agent")
	}
	ack(t, s, second)
	a := awaitAgent(t, h.store, "a1", func(a store.Agent) bool { return a.AppliedRevision == upd.Revision })
	if a.AppliedHash != first.GetHash() {
		t.Errorf("agent applied hash %s, want %s", a.AppliedHash, first.GetHash())
	}
}
