package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/controlplane/store/storetest"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// introspecting is an inbound bearer definition.
func introspecting(name string) *adminv1.SecurityDefinition {
	return &adminv1.SecurityDefinition{Name: name, Kind: "bearer", IntrospectionUrl: "https://idp.example/introspect",
		ClientId: "weft", ClientSecret: "intro-secret-clear", Scopes: []string{"orders:write"}, Audience: "weft", CacheSeconds: 30}
}

// checkingCerts is an inbound tls_client_cert definition.
func checkingCerts(name string) *adminv1.SecurityDefinition {
	return &adminv1.SecurityDefinition{Name: name, Kind: "tls_client_cert", CaPem: "-----BEGIN CERTIFICATE-----\nca\n",
		AllowedSubjects: []string{"acme"}, AllowedSans: []string{"*.acme.example"}}
}

// TestInboundSecurityDefinitions stores the inbound fields and seals the
// introspection client secret, and decides by them which definitions
// channels and outgoing connections may use.
func TestInboundSecurityDefinitions(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		for _, d := range []*adminv1.SecurityDefinition{introspecting("idp"), checkingCerts("mtls")} {
			created, err := s.CreateSecurityDefinition(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.GetSecurityDefinition(ctx, d.Name)
			if err != nil {
				t.Fatal(err)
			}
			want := proto.CloneOf(d)
			want.CreatedAt, want.UpdatedAt, want.Revision = created.CreatedAt, created.UpdatedAt, created.Revision
			if !sameDefinition(got, want) {
				t.Fatalf("read back %+v\nwant       %+v", got, want)
			}
			wantSealed(t, s, d)
			// An update that changes nothing keeps the revision.
			same, err := s.UpdateSecurityDefinition(ctx, d)
			if err != nil || same.Revision != created.Revision {
				t.Fatalf("unchanged update: revision %d, %v; want %d", same.Revision, err, created.Revision)
			}
		}
		if _, err := s.CreateSecurityDefinition(ctx, bearer("out-token")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateSecurityDefinition(ctx, &adminv1.SecurityDefinition{Name: "out-cert", Kind: "tls_client_cert",
			CertPem: "-----BEGIN CERTIFICATE-----\nc\n", KeyPem: "-----BEGIN PRIVATE KEY-----\nk\n"}); err != nil {
			t.Fatal(err)
		}
		deploy(t, s, pkg("alpha", []string{"alpha.one"}, "a.go", "a"))
		secured := func(name, path, security string) *adminv1.Channel {
			ch := channel(name, path, "alpha.one")
			ch.Security = security
			return ch
		}
		for _, sec := range []string{"idp", "mtls"} {
			if _, err := s.CreateChannel(ctx, secured("in-"+sec, "/in/"+sec, sec)); err != nil {
				t.Fatalf("a channel on inbound %s: %v", sec, err)
			}
		}
		refusals := []struct {
			do   func() error
			want string
		}{
			{func() error { _, err := s.CreateChannel(ctx, secured("c1", "/c1", "out-token")); return err },
				`channel "c1": security definition "out-token" is bearer, which cannot verify inbound requests (bearer checks inbound tokens with introspection_url; this one sends a token)`},
			{func() error { _, err := s.CreateChannel(ctx, secured("c2", "/c2", "out-cert")); return err },
				`channel "c2": security definition "out-cert" is tls_client_cert, which cannot verify inbound requests (tls_client_cert checks inbound client certificates with ca_pem; this one only presents a certificate)`},
			{func() error { _, err := s.CreateOutgoingConnection(ctx, connection("o1", "idp")); return err },
				`outgoing connection "o1": security definition "idp" is bearer, which cannot supply outbound credentials (bearer sends a token when token is set; this one checks inbound tokens with introspection_url)`},
			{func() error { _, err := s.CreateOutgoingConnection(ctx, connection("o2", "mtls")); return err },
				`outgoing connection "o2": security definition "mtls" is tls_client_cert, which cannot supply outbound credentials`},
		}
		for _, r := range refusals {
			err := r.do()
			if !errors.Is(err, store.ErrWrongKind) || !strings.Contains(err.Error(), r.want) {
				t.Errorf("err = %v\nwant %s (ErrWrongKind)", err, r.want)
			}
		}
		// A definition its channel uses cannot turn outbound.
		out := introspecting("idp")
		out.IntrospectionUrl, out.ClientId, out.ClientSecret, out.Scopes, out.Audience, out.CacheSeconds = "", "", "", nil, "", 0
		out.Token = "tok"
		_, err := s.UpdateSecurityDefinition(ctx, out)
		if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), `security definition "idp": bearer cannot verify inbound requests, and channel "in-idp" uses it`) {
			t.Errorf("turning a channel's definition outbound: %v", err)
		}
	})
}

// TestMigrateInboundSecurityColumns opens a database made before schema
// versions whose definition partner-in was stored before the inbound
// columns (they are NULL): it reads with them empty.
func TestMigrateInboundSecurityColumns(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			seedVersion1(t, b)
			s := storetest.Open(t, b)
			got, err := s.GetSecurityDefinition(ctx, "partner-in")
			if err != nil {
				t.Fatal(err)
			}
			if got.Password != "pw" || got.CaPem != "" || len(got.AllowedSubjects)+len(got.AllowedSans) != 0 ||
				got.IntrospectionUrl != "" || got.CacheSeconds != 0 {
				t.Fatalf("migrated definition = %+v", got)
			}
			if _, err := s.CreateSecurityDefinition(ctx, introspecting("idp")); err != nil {
				t.Fatal(err)
			}
		})
	}
}
