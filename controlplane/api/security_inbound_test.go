package api

import (
	"context"
	"encoding/pem"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/weft-dev/weft/agent/shared/snapshot"
	"github.com/weft-dev/weft/proto/marks"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// inboundDefs are an introspecting bearer definition and a
// tls_client_cert definition that checks client certificates.
func inboundDefs(t *testing.T) (idp, mtls *adminv1.SecurityDefinition) {
	ca, _ := clientCert(t)
	idp = &adminv1.SecurityDefinition{Name: "idp", Kind: "bearer", IntrospectionUrl: "https://idp.example/introspect",
		ClientId: "weft", ClientSecret: "intro-secret-7777", Scopes: []string{"orders:write"}, Audience: "weft", CacheSeconds: 120}
	mtls = &adminv1.SecurityDefinition{Name: "partners", Kind: "tls_client_cert", CaPem: ca,
		AllowedSubjects: []string{"acme"}, AllowedSans: []string{"*.partners.example", "billing@acme.example"}}
	return idp, mtls
}

func TestInboundSecurityDefinitionFields(t *testing.T) {
	e := newAdminEnv(t)
	ctx := context.Background()
	idp, mtls := inboundDefs(t)
	for _, d := range []*adminv1.SecurityDefinition{idp, mtls} {
		res, err := e.security.CreateSecurityDefinition(ctx, &adminv1.CreateSecurityDefinitionRequest{Definition: d})
		if err != nil {
			t.Fatalf("create %s: %v", d.GetName(), err)
		}
		wantRedacted(t, "create", res.GetDefinition(), d, clearSecrets(d))
		// Every field but the secrets reads as it was written.
		want := proto.Clone(d).(*adminv1.SecurityDefinition)
		if want.ClientSecret != "" {
			want.ClientSecret = marks.Redacted
		}
		if got := withoutOutputOnly(res.GetDefinition()); !proto.Equal(got, want) {
			t.Errorf("create %s answered %v\nwant %v", d.GetName(), got, want)
		}
		st, err := e.store.GetSecurityDefinition(ctx, d.GetName())
		if err != nil {
			t.Fatal(err)
		}
		if got := withoutOutputOnly(proto.CloneOf(st)); !proto.Equal(got, d) {
			t.Errorf("stored %v\nwant %v", got, d)
		}
		// What agents get holds every field, the secret in clear.
		if got := snapshot.ForAgent(st); got.GetClientSecret() != d.GetClientSecret() || got.GetCaPem() != d.GetCaPem() ||
			got.GetIntrospectionUrl() != d.GetIntrospectionUrl() || got.GetCacheSeconds() != d.GetCacheSeconds() ||
			len(got.GetAllowedSans()) != len(d.GetAllowedSans()) || len(got.GetAllowedSubjects()) != len(d.GetAllowedSubjects()) {
			t.Errorf("agents would get %v", got)
		}
	}
	list, err := e.security.ListSecurityDefinitions(ctx, &adminv1.ListSecurityDefinitionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range list.GetDefinitions() {
		if got.GetName() == "idp" {
			wantRedacted(t, "list", got, idp, clearSecrets(idp))
		}
	}

	// An update of the scopes keeps the client secret.
	res, err := e.security.UpdateSecurityDefinition(ctx, &adminv1.UpdateSecurityDefinitionRequest{
		Definition: &adminv1.SecurityDefinition{Name: "idp", Scopes: []string{"orders:read"}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"scopes"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	wantRedacted(t, "update", res.GetDefinition(), idp, clearSecrets(idp))
	if st, _ := e.store.GetSecurityDefinition(ctx, "idp"); st.ClientSecret != idp.GetClientSecret() || strings.Join(st.Scopes, ",") != "orders:read" {
		t.Errorf("after the update the store holds %+v", st)
	}

	// Channels may use both; outgoing connections neither.
	e.deployServices(t, "orders.place")
	for _, sec := range []string{"idp", "partners"} {
		if _, err := e.channels.CreateChannel(ctx, &adminv1.CreateChannelRequest{Channel: &adminv1.Channel{
			Name: "in-" + sec, Path: "/in/" + sec, Service: "orders.place", Security: sec,
		}}); err != nil {
			t.Fatalf("a channel on %s: %v", sec, err)
		}
	}
	_, err = e.outgoing.CreateOutgoingConnection(ctx, &adminv1.CreateOutgoingConnectionRequest{
		Connection: &adminv1.OutgoingConnection{Name: "crm", Address: "https://crm.example", Security: "idp"},
	})
	wantCode(t, err, codes.FailedPrecondition, `security definition "idp" is bearer, which cannot supply outbound credentials (bearer sends a token when token is set; this one checks inbound tokens with introspection_url)`)

	for _, secret := range clearSecrets(idp) {
		if strings.Contains(e.logs.String(), secret) {
			t.Errorf("the log shows the secret %q", secret)
		}
	}
}

func TestInboundSecurityDefinitionRefusals(t *testing.T) {
	e := newAdminEnv(t)
	ctx := context.Background()
	idp, mtls := inboundDefs(t)
	for _, d := range []*adminv1.SecurityDefinition{idp, {Name: "out-token", Kind: "bearer", Token: "t-1"}} {
		if _, err := e.security.CreateSecurityDefinition(ctx, &adminv1.CreateSecurityDefinitionRequest{Definition: d}); err != nil {
			t.Fatal(err)
		}
	}
	e.deployServices(t, "orders.place")
	e.watchAt(t, 3)
	create := func(d *adminv1.SecurityDefinition) error {
		_, err := e.security.CreateSecurityDefinition(ctx, &adminv1.CreateSecurityDefinitionRequest{Definition: d})
		return err
	}
	with := func(d *adminv1.SecurityDefinition, edit func(*adminv1.SecurityDefinition)) *adminv1.SecurityDefinition {
		d = proto.Clone(d).(*adminv1.SecurityDefinition)
		d.Name = "new"
		edit(d)
		return d
	}
	notPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("nope")}))
	tests := []struct {
		name string
		err  func() error
		code codes.Code
		text string
	}{
		{"token and introspection_url", func() error { return create(with(idp, func(d *adminv1.SecurityDefinition) { d.Token = "t" })) },
			codes.InvalidArgument, `create security definition "new": bearer "new": set token (a token to send) or introspection_url (to check inbound tokens), not both`},
		{"neither", func() error { return create(&adminv1.SecurityDefinition{Name: "new", Kind: "bearer"}) },
			codes.InvalidArgument, `bearer "new": token is required (a token to send), or introspection_url (to check inbound tokens)`},
		{"no client secret", func() error { return create(with(idp, func(d *adminv1.SecurityDefinition) { d.ClientSecret = "" })) },
			codes.InvalidArgument, "client_secret is required with introspection_url"},
		{"placeholder client secret", func() error {
			return create(with(idp, func(d *adminv1.SecurityDefinition) { d.ClientSecret = marks.Redacted }))
		}, codes.InvalidArgument, "client_secret: is the redaction placeholder"},
		{"bad PEM block", func() error { return create(with(mtls, func(d *adminv1.SecurityDefinition) { d.CaPem += notPEM })) },
			codes.InvalidArgument, `tls_client_cert "new": ca_pem: PEM block 2: x509:`},
		{"cache too long", func() error { return create(with(idp, func(d *adminv1.SecurityDefinition) { d.CacheSeconds = 7200 })) },
			codes.InvalidArgument, "cache_seconds 7200: want 0 (60) to 3600"},
		{"rules without CAs", func() error {
			return create(with(mtls, func(d *adminv1.SecurityDefinition) { d.CaPem = "" }))
		}, codes.InvalidArgument, "allowed_subjects, allowed_sans used only with ca_pem"},
		{"a channel on an outbound bearer", func() error {
			_, err := e.channels.CreateChannel(ctx, &adminv1.CreateChannelRequest{Channel: &adminv1.Channel{
				Name: "c", Path: "/c", Service: "orders.place", Security: "out-token"}})
			return err
		}, codes.FailedPrecondition, `security definition "out-token" is bearer, which cannot verify inbound requests (bearer checks inbound tokens with introspection_url; this one sends a token)`},
		{"the placeholder sent back in an update", func() error {
			_, err := e.security.UpdateSecurityDefinition(ctx, &adminv1.UpdateSecurityDefinitionRequest{
				Definition: &adminv1.SecurityDefinition{Name: "idp", ClientSecret: marks.Redacted}})
			return err
		}, codes.InvalidArgument, "client_secret: is the redaction placeholder"},
		{"an update adding a token", func() error {
			_, err := e.security.UpdateSecurityDefinition(ctx, &adminv1.UpdateSecurityDefinitionRequest{
				Definition: &adminv1.SecurityDefinition{Name: "idp", Token: "t"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"token"}}})
			return err
		}, codes.InvalidArgument, "not both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, tt.err(), tt.code, tt.text)
			e.watchAt(t, 3)
		})
	}
}

// TestExportInboundSecurity exports the inbound fields as they are and
// the client secret as a placeholder.
func TestExportInboundSecurity(t *testing.T) {
	e := newAdminEnv(t)
	ctx := context.Background()
	idp, mtls := inboundDefs(t)
	for _, d := range []*adminv1.SecurityDefinition{idp, mtls} {
		if _, err := e.security.CreateSecurityDefinition(ctx, &adminv1.CreateSecurityDefinitionRequest{Definition: d}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := adminv1.NewConfigServiceClient(e.conn).ExportConfig(ctx, &adminv1.ExportConfigRequest{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*adminv1.SecurityDefinition{}
	for _, d := range res.GetConfig().GetSecurity() {
		got[d.GetName()] = d
	}
	wantIdp := proto.Clone(idp).(*adminv1.SecurityDefinition)
	wantIdp.ClientSecret = "${WEFT_SECRET_IDP_CLIENT_SECRET}"
	if !proto.Equal(got["idp"], wantIdp) {
		t.Errorf("exported %v\nwant %v", got["idp"], wantIdp)
	}
	if !proto.Equal(got["partners"], mtls) {
		t.Errorf("exported %v\nwant %v", got["partners"], mtls)
	}
}
