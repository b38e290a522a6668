package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/weft-dev/weft/proto/marks"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// secretNames are the secret fields of a SecurityDefinition.
var secretNames = []protoreflect.Name{"password", "key", "secret", "token", "client_secret", "key_pem"}

// clientCert returns a self-signed P-256 certificate valid for an hour and
// its key, both PEM.
func clientCert(t *testing.T) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "weft test client"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
}

// everyKind is one definition of each kind, together holding every secret
// field.
func everyKind(t *testing.T) []*adminv1.SecurityDefinition {
	cert, key := clientCert(t)
	return []*adminv1.SecurityDefinition{
		{Name: "basic", Kind: "basic_auth", Username: "svc", Password: "pw-basic-1234"},
		{Name: "apikey", Kind: "api_key", Header: "X-Partner-Key", Key: "key-apikey-1234"},
		{Name: "jwt", Kind: "jwt", Algorithms: []string{"HS256"}, Secret: "secret-jwt-0123456789abcdef0123456789", Issuer: "partner", LeewayMs: 5000},
		{Name: "bearer", Kind: "bearer", Token: "token-bearer-5678"},
		{Name: "oauth", Kind: "oauth2_client_credentials", TokenUrl: "https://auth.example/token", ClientId: "weft", ClientSecret: "client-secret-9999", Scopes: []string{"read"}},
		{Name: "mtls", Kind: "tls_client_cert", CertPem: cert, KeyPem: key},
	}
}

// clearSecrets lists the secret values of defs.
func clearSecrets(defs ...*adminv1.SecurityDefinition) []string {
	var out []string
	for _, d := range defs {
		m := d.ProtoReflect()
		for _, n := range secretNames {
			if v := m.Get(m.Descriptor().Fields().ByName(n)).String(); v != "" {
				out = append(out, v)
			}
		}
	}
	return out
}

// wantRedacted fails unless every secret field of got reads as the
// placeholder when stored is set and as "" when not, and no clear secret
// of clear appears anywhere in got.
func wantRedacted(t *testing.T, where string, got *adminv1.SecurityDefinition, stored *adminv1.SecurityDefinition, clear []string) {
	t.Helper()
	m, s := got.ProtoReflect(), stored.ProtoReflect()
	for _, n := range secretNames {
		fd := m.Descriptor().Fields().ByName(n)
		want := ""
		if s.Get(fd).String() != "" {
			want = marks.Redacted
		}
		if v := m.Get(fd).String(); v != want {
			t.Errorf("%s: %s %s = %q, want %q", where, got.GetName(), n, v, want)
		}
	}
	text := prototext.Format(got)
	for _, c := range clear {
		if strings.Contains(text, c) {
			t.Errorf("%s: %s shows the clear secret %q", where, got.GetName(), c)
		}
	}
}

func TestSecurityDefinitionRedaction(t *testing.T) {
	e := newAdminEnv(t)
	ctx := context.Background()
	defs := everyKind(t)
	clear := clearSecrets(defs...)
	if len(clear) != len(secretNames) {
		t.Fatalf("the definitions hold %d secrets, want one per secret field (%d)", len(clear), len(secretNames))
	}
	for i, d := range defs {
		res, err := e.security.CreateSecurityDefinition(ctx, &adminv1.CreateSecurityDefinitionRequest{Definition: d})
		if err != nil {
			t.Fatalf("create %s: %v", d.GetName(), err)
		}
		got := res.GetDefinition()
		wantRedacted(t, "create", got, d, clear)
		if got.GetRevision() != int64(i+1) || got.GetKind() != d.GetKind() || got.GetCreatedAt().AsTime().IsZero() {
			t.Errorf("create %s = %v", d.GetName(), got)
		}
		e.watchAt(t, int64(i+1))
	}
	byName := map[string]*adminv1.SecurityDefinition{}
	for _, d := range defs {
		byName[d.GetName()] = d

		// The store keeps the real values; only reads hide them.
		st, err := e.store.GetSecurityDefinition(ctx, d.GetName())
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(withoutOutputOnly(proto.CloneOf(st)), d) {
			t.Errorf("stored %s = %+v, want what was created", d.GetName(), st)
		}

		res, err := e.security.GetSecurityDefinition(ctx, &adminv1.GetSecurityDefinitionRequest{Name: d.GetName()})
		if err != nil {
			t.Fatal(err)
		}
		wantRedacted(t, "get", res.GetDefinition(), d, clear)
	}

	list, err := e.security.ListSecurityDefinitions(ctx, &adminv1.ListSecurityDefinitionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetDefinitions()) != len(defs) {
		t.Fatalf("list holds %d definitions, want %d", len(list.GetDefinitions()), len(defs))
	}
	for _, got := range list.GetDefinitions() {
		wantRedacted(t, "list", got, byName[got.GetName()], clear)
	}

	for _, d := range defs {
		// An update of a field that is no secret answers with the
		// secrets, kept, still redacted.
		res, err := e.security.UpdateSecurityDefinition(ctx, &adminv1.UpdateSecurityDefinitionRequest{
			Definition: &adminv1.SecurityDefinition{Name: d.GetName(), Kind: d.GetKind()},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"kind"}},
		})
		if err != nil {
			t.Fatalf("update %s: %v", d.GetName(), err)
		}
		wantRedacted(t, "update", res.GetDefinition(), d, clear)
	}

	for _, secret := range clear {
		if strings.Contains(e.logs.String(), secret) {
			t.Errorf("the log shows the secret %q", secret)
		}
	}
}

// withoutOutputOnly is d with the output-only fields cleared.
func withoutOutputOnly(d *adminv1.SecurityDefinition) *adminv1.SecurityDefinition {
	d.CreatedAt, d.UpdatedAt, d.Revision = nil, nil, 0
	return d
}

func TestUpdateSecurityDefinition(t *testing.T) {
	e := newAdminEnv(t)
	ctx := context.Background()
	if _, err := e.security.CreateSecurityDefinition(ctx, &adminv1.CreateSecurityDefinitionRequest{
		Definition: &adminv1.SecurityDefinition{Name: "partner", Kind: "basic_auth", Username: "u1", Password: "pass-1"},
	}); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		in   *adminv1.SecurityDefinition
		mask []string
		want *adminv1.SecurityDefinition // what the store holds after
	}{
		{"empty mask sets what is given, keeps the unset secret",
			&adminv1.SecurityDefinition{Name: "partner", Username: "u2"}, nil,
			&adminv1.SecurityDefinition{Name: "partner", Kind: "basic_auth", Username: "u2", Password: "pass-1"}},
		{"mask names the secret",
			&adminv1.SecurityDefinition{Name: "partner", Password: "pass-2"}, []string{"password"},
			&adminv1.SecurityDefinition{Name: "partner", Kind: "basic_auth", Username: "u2", Password: "pass-2"}},
		{"a secret left out of the mask keeps its value",
			&adminv1.SecurityDefinition{Name: "partner", Username: "u3", Password: "pass-ignored"}, []string{"username"},
			&adminv1.SecurityDefinition{Name: "partner", Kind: "basic_auth", Username: "u3", Password: "pass-2"}},
		{"a new kind drops the old kind's fields",
			&adminv1.SecurityDefinition{Name: "partner", Kind: "api_key", Key: "key-1"}, nil,
			&adminv1.SecurityDefinition{Name: "partner", Kind: "api_key", Key: "key-1"}},
		{"a new kind through the mask",
			&adminv1.SecurityDefinition{Name: "partner", Kind: "bearer", Token: "token-1", Key: "key-ignored"}, []string{"kind", "token"},
			&adminv1.SecurityDefinition{Name: "partner", Kind: "bearer", Token: "token-1"}},
	}
	for i, tt := range steps {
		t.Run(tt.name, func(t *testing.T) {
			var mask *fieldmaskpb.FieldMask
			if tt.mask != nil {
				mask = &fieldmaskpb.FieldMask{Paths: tt.mask}
			}
			res, err := e.security.UpdateSecurityDefinition(ctx, &adminv1.UpdateSecurityDefinitionRequest{Definition: tt.in, UpdateMask: mask})
			if err != nil {
				t.Fatal(err)
			}
			rev := int64(i + 2)
			if res.GetDefinition().GetRevision() != rev {
				t.Errorf("revision %d, want %d", res.GetDefinition().GetRevision(), rev)
			}
			e.watchAt(t, rev)
			wantRedacted(t, "update", res.GetDefinition(), tt.want, clearSecrets(tt.want))
			st, err := e.store.GetSecurityDefinition(ctx, "partner")
			if err != nil {
				t.Fatal(err)
			}
			if got := withoutOutputOnly(proto.CloneOf(st)); !proto.Equal(got, tt.want) {
				t.Errorf("stored %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSecurityDefinitionRefusals(t *testing.T) {
	e := newAdminEnv(t)
	ctx := context.Background()
	partner := &adminv1.SecurityDefinition{Name: "partner", Kind: "api_key", Key: "key-1"}
	if _, err := e.security.CreateSecurityDefinition(ctx, &adminv1.CreateSecurityDefinitionRequest{Definition: partner}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.outgoing.CreateOutgoingConnection(ctx, &adminv1.CreateOutgoingConnectionRequest{
		Connection: &adminv1.OutgoingConnection{Name: "crm", Address: "https://crm.example", Security: "partner"},
	}); err != nil {
		t.Fatal(err)
	}
	e.watchAt(t, 2)
	update := func(d *adminv1.SecurityDefinition, paths ...string) func() error {
		return func() error {
			req := &adminv1.UpdateSecurityDefinitionRequest{Definition: d}
			if paths != nil {
				req.UpdateMask = &fieldmaskpb.FieldMask{Paths: paths}
			}
			_, err := e.security.UpdateSecurityDefinition(ctx, req)
			return err
		}
	}
	create := func(d *adminv1.SecurityDefinition) func() error {
		return func() error {
			_, err := e.security.CreateSecurityDefinition(ctx, &adminv1.CreateSecurityDefinitionRequest{Definition: d})
			return err
		}
	}
	tests := []struct {
		name string
		call func() error
		code codes.Code
		text string
	}{
		{"create without a definition", create(nil), codes.InvalidArgument, "create security definition: definition is required"},
		{"create with the placeholder", create(&adminv1.SecurityDefinition{Name: "b", Kind: "basic_auth", Username: "u", Password: marks.Redacted}),
			codes.InvalidArgument, `create security definition "b": password: is the redaction placeholder`},
		{"create with a bad name", create(&adminv1.SecurityDefinition{Name: "a b", Kind: "bearer", Token: "t"}),
			codes.InvalidArgument, `security definition name "a b"`},
		{"create invalid", create(&adminv1.SecurityDefinition{Name: "j", Kind: "jwt", Algorithms: []string{"HS256"}, Secret: strings.Repeat("s", 32)}),
			codes.InvalidArgument, `create security definition "j": jwt "j": issuer is required`},
		{"create an unknown kind", create(&adminv1.SecurityDefinition{Name: "k", Kind: "kerberos"}),
			codes.InvalidArgument, `unknown kind "kerberos"`},
		{"create a field the kind does not use", create(&adminv1.SecurityDefinition{Name: "k", Kind: "bearer", Token: "t", Username: "u"}),
			codes.InvalidArgument, "username not used by bearer"},
		{"create a taken name", create(partner), codes.AlreadyExists, `security definition "partner" already exists`},
		{"create with an unknown field", create(withUnknown(&adminv1.SecurityDefinition{Name: "u", Kind: "bearer", Token: "t"}, 99)),
			codes.InvalidArgument, "definition.#99"},
		{"update with the placeholder", update(&adminv1.SecurityDefinition{Name: "partner", Key: marks.Redacted}),
			codes.InvalidArgument, `update security definition "partner": key: is the redaction placeholder`},
		{"update with the placeholder in the mask", update(&adminv1.SecurityDefinition{Name: "partner", Key: marks.Redacted}, "key"),
			codes.InvalidArgument, "key: is the redaction placeholder"},
		{"update mask names no field", update(&adminv1.SecurityDefinition{Name: "partner"}, "nope"),
			codes.InvalidArgument, `update_mask: unknown or read-only field "nope"`},
		{"update mask names an output-only field", update(&adminv1.SecurityDefinition{Name: "partner"}, "revision"),
			codes.InvalidArgument, `update_mask: unknown or read-only field "revision"`},
		{"update mask names the name", update(&adminv1.SecurityDefinition{Name: "partner"}, "name"),
			codes.InvalidArgument, `update_mask: unknown or read-only field "name"`},
		{"update clears a required secret", update(&adminv1.SecurityDefinition{Name: "partner"}, "key"),
			codes.InvalidArgument, "key is required"},
		{"update unknown", update(&adminv1.SecurityDefinition{Name: "ghost", Token: "t"}),
			codes.NotFound, `update security definition "ghost": security definition "ghost" does not exist`},
		{"update to a kind its connection cannot use", update(&adminv1.SecurityDefinition{Name: "partner", Kind: "jwt", Algorithms: []string{"RS256"}, JwksUrl: "https://idp.example/jwks", Issuer: "idp"}),
			codes.FailedPrecondition, `outgoing connection "crm"`},
		{"delete in use", func() error {
			_, err := e.security.DeleteSecurityDefinition(ctx, &adminv1.DeleteSecurityDefinitionRequest{Name: "partner"})
			return err
		}, codes.FailedPrecondition, `delete security definition "partner": security definition "partner" is used by outgoing connection "crm"`},
		{"get unknown", func() error {
			_, err := e.security.GetSecurityDefinition(ctx, &adminv1.GetSecurityDefinitionRequest{Name: "ghost"})
			return err
		}, codes.NotFound, `get security definition "ghost"`},
		{"delete unknown", func() error {
			_, err := e.security.DeleteSecurityDefinition(ctx, &adminv1.DeleteSecurityDefinitionRequest{Name: "ghost"})
			return err
		}, codes.NotFound, `delete security definition "ghost"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, tt.call(), tt.code, tt.text)
			e.watchAt(t, 2)
		})
	}
	st, err := e.store.GetSecurityDefinition(ctx, "partner")
	if err != nil {
		t.Fatal(err)
	}
	if got := withoutOutputOnly(proto.CloneOf(st)); !proto.Equal(got, partner) || st.Revision != 1 {
		t.Fatalf("after the refusals partner = %v at revision %d, want %v as created", got, st.Revision, partner)
	}
	if strings.Contains(e.logs.String(), "key-1") {
		t.Error("the log shows the secret")
	}

	if _, err := e.outgoing.DeleteOutgoingConnection(ctx, &adminv1.DeleteOutgoingConnectionRequest{Name: "crm"}); err != nil {
		t.Fatal(err)
	}
	del, err := e.security.DeleteSecurityDefinition(ctx, &adminv1.DeleteSecurityDefinitionRequest{Name: "partner"})
	if err != nil || del.GetRevision() != 4 {
		t.Fatalf("delete = %v, %v; want revision 4", del, err)
	}
	e.watchAt(t, 4)
	_, err = e.security.GetSecurityDefinition(ctx, &adminv1.GetSecurityDefinitionRequest{Name: "partner"})
	wantCode(t, err, codes.NotFound, `security definition "partner" does not exist`)
}
