package store_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/weft-dev/weft/controlplane/store"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// connection is an outgoing connection using the definition security ("" for none).
func connection(name, security string) *adminv1.OutgoingConnection {
	return &adminv1.OutgoingConnection{
		Name:         name,
		Address:      "https://" + name + ".example:8443",
		PathTemplate: "/api/{id}",
		Method:       "POST",
		DataFormat:   "json",
		TimeoutMs:    3000,
		Security:     security,
		PoolSize:     4,
		Active:       proto.Bool(true),
	}
}

// sameConnection compares every field, times included.
func sameConnection(a, b *adminv1.OutgoingConnection) bool {
	return proto.Equal(a, b)
}

func TestOutgoingConnections(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()

		erp := &adminv1.OutgoingConnection{
			Name:          "erp",
			Address:       "https://erp.example",
			PathTemplate:  "/soap/{service}",
			Method:        "POST",
			DataFormat:    "soap11",
			SoapAction:    "urn:GetOrder",
			TimeoutMs:     2500,
			TlsSkipVerify: true,
			CaBundlePem:   "-----BEGIN CERTIFICATE-----\n...\n",
			PoolSize:      8,
			Headers:       map[string]string{"X-Tenant": "shop", "Accept-Language": "de"},
			Active:        proto.Bool(true),
		}
		created, err := s.CreateOutgoingConnection(ctx, erp)
		if err != nil {
			t.Fatal(err)
		}
		wantRevision(t, s, 1)
		want := proto.CloneOf(erp)
		want.CreatedAt, want.UpdatedAt, want.Revision = created.CreatedAt, created.CreatedAt, 1
		if !sameConnection(created, want) {
			t.Fatalf("created = %+v\nwant      %+v", created, want)
		}
		wantTime(t, "CreatedAt", created.CreatedAt.AsTime())
		got, err := s.GetOutgoingConnection(ctx, "erp")
		if err != nil {
			t.Fatal(err)
		}
		if !sameConnection(got, created) {
			t.Fatalf("GetOutgoingConnection = %+v\nwant %+v", got, created)
		}

		crm, err := s.CreateOutgoingConnection(ctx, connection("crm", ""))
		if err != nil {
			t.Fatal(err)
		}
		if len(crm.Headers) != 0 {
			t.Fatalf("unset headers = %#v, want none", crm.Headers)
		}
		wantRevision(t, s, 2)
		before := desired(t, s)

		refused := []struct {
			name     string
			do       func() error
			sentinel error
			text     string
		}{
			{"create taken name", func() error {
				_, err := s.CreateOutgoingConnection(ctx, connection("erp", ""))
				return err
			}, store.ErrConflict, `outgoing connection "erp" already exists`},
			{"get missing", func() error {
				_, err := s.GetOutgoingConnection(ctx, "ghost")
				return err
			}, store.ErrNotFound, `outgoing connection "ghost" does not exist`},
			{"update missing", func() error {
				_, err := s.UpdateOutgoingConnection(ctx, connection("ghost", ""))
				return err
			}, store.ErrNotFound, `outgoing connection "ghost" does not exist`},
			{"delete missing", func() error {
				_, err := s.DeleteOutgoingConnection(ctx, "ghost")
				return err
			}, store.ErrNotFound, `outgoing connection "ghost" does not exist`},
		}
		for _, tt := range refused {
			t.Run(tt.name, func(t *testing.T) {
				wantErr(t, tt.do(), tt.sentinel, tt.text)
				wantUnchanged(t, s, before)
			})
		}

		// An update that changes nothing is not a revision; nil and empty
		// headers are the same.
		same, err := s.UpdateOutgoingConnection(ctx, connection("crm", ""))
		if err != nil {
			t.Fatal(err)
		}
		if !sameConnection(same, crm) {
			t.Fatalf("no-op update = %+v, want %+v", same, crm)
		}
		wantRevision(t, s, 2)

		upd := proto.CloneOf(erp)
		upd.Active = proto.Bool(false)
		upd.Headers = map[string]string{"X-Tenant": "outlet"}
		upd.TlsSkipVerify = false
		updated, err := s.UpdateOutgoingConnection(ctx, upd)
		if err != nil {
			t.Fatal(err)
		}
		want = proto.CloneOf(upd)
		want.CreatedAt, want.UpdatedAt, want.Revision = created.CreatedAt, updated.UpdatedAt, 3
		if !sameConnection(updated, want) || updated.UpdatedAt.AsTime().Before(created.UpdatedAt.AsTime()) {
			t.Fatalf("updated = %+v\nwant      %+v", updated, want)
		}
		wantRevision(t, s, 3)
		if got, err := s.GetOutgoingConnection(ctx, "erp"); err != nil || !sameConnection(got, updated) {
			t.Fatalf("GetOutgoingConnection after update = %+v, %v; want %+v", got, err, updated)
		}

		list, err := s.ListOutgoingConnections(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || !sameConnection(list[0], crm) || !sameConnection(list[1], updated) {
			t.Fatalf("ListOutgoingConnections = %+v", list)
		}

		rev, err := s.DeleteOutgoingConnection(ctx, "erp")
		if err != nil || rev != 4 {
			t.Fatalf("DeleteOutgoingConnection = %d, %v; want 4", rev, err)
		}
		if _, err := s.GetOutgoingConnection(ctx, "erp"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleted connection: err = %v, want not found", err)
		}
	})
}

// TestDesiredEverything checks that Desired carries channels with their new
// fields, security definitions with secrets in clear and outgoing
// connections, each sorted by name.
func TestDesiredEverything(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		deploy(t, s, pkg("alpha", []string{"alpha.get", "alpha.put"}, "a.go", "a"))
		var defs []*adminv1.SecurityDefinition
		for _, d := range []*adminv1.SecurityDefinition{jwtSigner("zeta"), basicAuth("alpha", "pw"), everySecret("mid")} {
			created, err := s.CreateSecurityDefinition(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			defs = append(defs, created)
		}
		ch := channel("soap", "/soap", "alpha.get")
		ch.DataFormat = "soap11"
		ch.Security = "alpha"
		ch.RateLimit = 2.5
		ch.RateBurst = 5
		ch.SoapActions = map[string]string{"GetOrder": "alpha.get", "urn:PutOrder": "alpha.put"}
		soap, err := s.CreateChannel(ctx, ch)
		if err != nil {
			t.Fatal(err)
		}
		if soap.Security != "alpha" || soap.RateLimit != 2.5 || soap.RateBurst != 5 || !reflect.DeepEqual(soap.SoapActions, ch.SoapActions) {
			t.Fatalf("created channel = %+v", soap)
		}
		plain, err := s.CreateChannel(ctx, channel("plain", "/plain", "alpha.get"))
		if err != nil {
			t.Fatal(err)
		}
		if plain.DataFormat != "json" || len(plain.SoapActions) != 0 {
			t.Fatalf("plain channel = %+v, want json and empty SOAP actions", plain)
		}
		var conns []*adminv1.OutgoingConnection
		for _, c := range []*adminv1.OutgoingConnection{connection("b-conn", "zeta"), connection("a-conn", "")} {
			created, err := s.CreateOutgoingConnection(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, created)
		}

		d := desired(t, s)
		if d.Revision != 8 {
			t.Fatalf("revision = %d, want 8", d.Revision)
		}
		wantDefs := []*adminv1.SecurityDefinition{defs[1], defs[2], defs[0]}
		if len(d.Security) != 3 {
			t.Fatalf("Desired.Security = %+v", d.Security)
		}
		for i := range wantDefs {
			if !sameDefinition(d.Security[i], wantDefs[i]) {
				t.Fatalf("Desired.Security[%d] = %+v\nwant %+v", i, d.Security[i], wantDefs[i])
			}
		}
		if d.Security[1].KeyPem != everySecret("mid").KeyPem {
			t.Fatalf("Desired holds key_pem %q, want it in clear", d.Security[1].KeyPem)
		}
		if len(d.Outgoing) != 2 || !sameConnection(d.Outgoing[0], conns[1]) || !sameConnection(d.Outgoing[1], conns[0]) {
			t.Fatalf("Desired.Outgoing = %+v", d.Outgoing)
		}
		if len(d.Channels) != 2 || !sameChannel(d.Channels[0], plain) || !sameChannel(d.Channels[1], soap) {
			t.Fatalf("Desired.Channels = %+v", d.Channels)
		}
	})
}

// TestOutgoingAddressMovesAreAudited: a connection whose address changes,
// by an update or an import, says so in the audit trail, with the
// definition whose credentials follow it.
func TestOutgoingAddressMovesAreAudited(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		c := connection("crm", "")
		if _, err := s.CreateOutgoingConnection(ctx, c); err != nil {
			t.Fatal(err)
		}
		c.Address = "https://elsewhere.example"
		if _, err := s.UpdateOutgoingConnection(ctx, c); err != nil {
			t.Fatal(err)
		}
		c.Address = "https://third.example"
		if _, err := s.ApplyConfig(ctx, "test", store.ConfigChange{BaseRevision: 2, Outgoing: []*adminv1.OutgoingConnection{c}}); err != nil {
			t.Fatal(err)
		}
		entries, _, err := s.ListAudit(ctx, store.AuditQuery{Kind: store.AuditKindOutgoing})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{
			`import: update outgoing connection "crm"; outgoing connection "crm" address https://elsewhere.example → https://third.example`,
			`update outgoing connection "crm" address https://crm.example:8443 → https://elsewhere.example`,
		}
		if len(entries) < 2 || entries[0].Summary != want[0] || entries[1].Summary != want[1] {
			t.Fatalf("audit summaries = %+v; want %q", entries, want)
		}
	})
}
