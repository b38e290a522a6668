package configfile

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// caPEM is a CA bundle as a config file holds it.
const caPEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIB\n-----END CERTIFICATE-----\n"

// inboundFile defines the inbound forms of bearer and tls_client_cert.
const inboundFile = `version: 1
security:
- name: idp
  kind: bearer
  introspection_url: https://idp.example/oauth2/introspect
  client_id: weft
  client_secret: ${WEFT_SECRET_IDP_CLIENT_SECRET}
  scopes: [orders:write]
  audience: weft
  cache_seconds: 120
- name: partners
  kind: tls_client_cert
  ca_pem: |
    -----BEGIN CERTIFICATE-----
    MIIBszCCAVmgAwIBAgIB
    -----END CERTIFICATE-----
  allowed_subjects:
  - acme
  allowedSans: ["*.partners.example", billing@acme.example]
channels:
- name: orders
  path: /orders
  service: orders.place
  security: partners
`

func wantInbound() *adminv1.Config {
	return &adminv1.Config{
		Version: 1,
		Security: []*adminv1.SecurityDefinition{
			{Name: "idp", Kind: "bearer", IntrospectionUrl: "https://idp.example/oauth2/introspect", ClientId: "weft",
				ClientSecret: "${WEFT_SECRET_IDP_CLIENT_SECRET}", Scopes: []string{"orders:write"}, Audience: "weft", CacheSeconds: 120},
			{Name: "partners", Kind: "tls_client_cert", CaPem: caPEM, AllowedSubjects: []string{"acme"},
				AllowedSans: []string{"*.partners.example", "billing@acme.example"}},
		},
		Channels: []*adminv1.Channel{{Name: "orders", Path: "/orders", Service: "orders.place", Security: "partners"}},
	}
}

func TestReadInboundSecurity(t *testing.T) {
	inDir(t, map[string]string{"weft.yaml": inboundFile})
	doc, err := Read("weft.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(doc.Config, wantInbound()) {
		t.Fatalf("read\n%v\nwant\n%v", doc.Config, wantInbound())
	}
	for field, want := range map[string]string{
		"security[0].cache_seconds":    "weft.yaml:10",
		"security[0].client_secret":    "weft.yaml:7",
		"security[1].ca_pem":           "weft.yaml:13",
		"security[1].allowed_sans":     "weft.yaml:19",
		"security[1].allowed_subjects": "weft.yaml:17",
	} {
		if got := doc.Locate(field); got != want {
			t.Errorf("Locate(%s) = %q, want %q", field, got, want)
		}
	}
	if err := doc.Resolve(func(name string) (string, bool) { return "from-" + name, name == "WEFT_SECRET_IDP_CLIENT_SECRET" }); err != nil {
		t.Fatal(err)
	}
	if got := doc.Config.GetSecurity()[0].GetClientSecret(); got != "from-WEFT_SECRET_IDP_CLIENT_SECRET" {
		t.Errorf("client_secret resolved to %q", got)
	}
}

func TestReadInboundSecurityErrors(t *testing.T) {
	for _, tt := range []struct {
		name, content string
		want          []string
	}{
		{"a misspelt field", "security:\n- name: p\n  kind: tls_client_cert\n  allowed_san: [a]\n",
			[]string{`weft.yaml:4: security "p": unknown field "allowed_san"`}},
		{"cache_seconds not a number", "security:\n- name: i\n  kind: bearer\n  cache_seconds: soon\n",
			[]string{`weft.yaml:4: security "i": cache_seconds:`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			inDir(t, map[string]string{"weft.yaml": tt.content})
			_, err := Read("weft.yaml")
			checkErrLines(t, err, tt.want)
		})
	}
}

func TestMarshalInboundSecurity(t *testing.T) {
	b, err := Marshal(wantInbound(), YAML)
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	for _, want := range []string{
		"- allowed_sans:\n  - '*.partners.example'\n  - billing@acme.example\n",
		"  ca_pem: |\n    -----BEGIN CERTIFICATE-----\n",
		"  cache_seconds: 120\n",
		"  introspection_url: https://idp.example/oauth2/introspect\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("YAML lacks\n%s\nin\n%s", want, out)
		}
	}
	inDir(t, map[string]string{"weft.yaml": out})
	doc, err := Read("weft.yaml")
	if err != nil || !proto.Equal(doc.Config, wantInbound()) {
		t.Fatalf("read back %v, %v", doc.Config, err)
	}
}
