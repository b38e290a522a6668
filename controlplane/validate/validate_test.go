package validate

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math"
	"math/big"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func TestChannel(t *testing.T) {
	existing := []*adminv1.Channel{{Name: "orders", Path: "/api/orders/{id}", Methods: []string{"GET"}, Service: "s", Active: proto.Bool(true)}}
	tests := []struct {
		name string
		ch   *adminv1.Channel
		want string // "" when valid
	}{
		{"valid", &adminv1.Channel{Name: "a", Path: "/api/a", Service: "s"}, ""},
		{"same path other method", &adminv1.Channel{Name: "a", Path: "/api/orders/{x}", Service: "s", Methods: []string{"DELETE"}}, ""},
		{"update of itself", &adminv1.Channel{Name: "orders", Path: "/api/orders/{id}", Service: "s", Methods: []string{"GET"}}, ""},
		{"no name", &adminv1.Channel{Path: "/a", Service: "s"}, "channel name is required"},
		{"bad name", &adminv1.Channel{Name: "a b", Path: "/a", Service: "s"}, `channel name "a b"`},
		{"no service", &adminv1.Channel{Name: "a", Path: "/a"}, "service is required"},
		{"bad method", &adminv1.Channel{Name: "a", Path: "/a", Service: "s", Methods: []string{"FETCH"}}, `methods: "FETCH"`},
		{"bad path", &adminv1.Channel{Name: "a", Path: "a", Service: "s"}, "path: \"a\" must start with /"},
		{"negative timeout", &adminv1.Channel{Name: "a", Path: "/a", Service: "s", TimeoutMs: -1}, "timeout_ms -1"},
		{"huge body", &adminv1.Channel{Name: "a", Path: "/a", Service: "s", MaxBodyBytes: 1 << 40}, "max_body_bytes"},
		{"collides", &adminv1.Channel{Name: "b", Path: "/api/orders/{n}", Service: "s", Methods: []string{"get"}}, `channels "b" (/api/orders/{n}) and "orders" (/api/orders/{id}) both take GET`},
		{"rate and burst", &adminv1.Channel{Name: "a", Path: "/a", Service: "s", RateLimit: 0.5, RateBurst: 3}, ""},
		{"negative rate", &adminv1.Channel{Name: "a", Path: "/a", Service: "s", RateLimit: -0.1}, "rate_limit -0.1"},
		{"NaN rate", &adminv1.Channel{Name: "a", Path: "/a", Service: "s", RateLimit: math.NaN()}, "rate_limit NaN"},
		{"infinite rate", &adminv1.Channel{Name: "a", Path: "/a", Service: "s", RateLimit: math.Inf(1)}, "rate_limit +Inf"},
		{"huge rate", &adminv1.Channel{Name: "a", Path: "/a", Service: "s", RateLimit: 2e6}, "rate_limit 2e+06"},
		{"negative burst", &adminv1.Channel{Name: "a", Path: "/a", Service: "s", RateLimit: 1, RateBurst: -1}, "rate_burst -1"},
		{"burst without a rate", &adminv1.Channel{Name: "a", Path: "/a", Service: "s", RateBurst: 2}, "rate_burst is set but rate_limit is 0"},
		{"security", &adminv1.Channel{Name: "a", Path: "/a", Service: "s", Security: "partner"}, ""},
		{"bad security name", &adminv1.Channel{Name: "a", Path: "/a", Service: "s", Security: "no/pe"}, `security: security definition name "no/pe"`},
		{"soap routed by actions alone", &adminv1.Channel{Name: "a", Path: "/a", DataFormat: "soap12", SoapActions: map[string]string{"urn:Op": "s.op"}}, ""},
		{"soap with service and actions", &adminv1.Channel{Name: "a", Path: "/a", Service: "s", DataFormat: "soap11", SoapActions: map[string]string{"Op": "s.op"}}, ""},
		{"soap without service or actions", &adminv1.Channel{Name: "a", Path: "/a", DataFormat: "soap11"}, "service is required"},
		{"actions on json", &adminv1.Channel{Name: "a", Path: "/a", Service: "s", SoapActions: map[string]string{"Op": "s.op"}}, `soap_actions: only soap11 and soap12 channels route SOAP actions; this one's data_format is ""`},
		{"actions on xml without service", &adminv1.Channel{Name: "a", Path: "/a", DataFormat: "xml", SoapActions: map[string]string{"Op": "s.op"}}, "service is required"},
		{"empty action", &adminv1.Channel{Name: "a", Path: "/a", DataFormat: "soap11", SoapActions: map[string]string{"": "s.op"}}, `soap_actions: action "": want 1-1024 characters`},
		{"blank action", &adminv1.Channel{Name: "a", Path: "/a", DataFormat: "soap11", SoapActions: map[string]string{"  ": "s.op"}}, `soap_actions: action "  "`},
		{"action to a bad service", &adminv1.Channel{Name: "a", Path: "/a", DataFormat: "soap11", SoapActions: map[string]string{"Op": "bad service"}}, `soap_actions["Op"]: service name "bad service"`},
		{"action to no service", &adminv1.Channel{Name: "a", Path: "/a", DataFormat: "soap11", SoapActions: map[string]string{"Op": ""}}, `soap_actions["Op"]: service name is required`},
		{"bad service name", &adminv1.Channel{Name: "a", Path: "/a", Service: "a b"}, `service: service name "a b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Channel(tt.ch, existing)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Channel = %v", err)
				}
				if len(got.Methods) == 0 {
					t.Fatal("methods not defaulted")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Channel = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestPackage(t *testing.T) {
	const good = `package greet

import "github.com/weft-dev/weft/agent/sdk"

type In struct{ Name string ` + "`json:\"name\"`" + ` }

func init() { sdk.Register("greet.hi", func(c *sdk.Context, in In) (In, error) { return in, nil }) }
`
	tests := []struct {
		name  string
		pname string
		files []*adminv1.SourceFile
		want  string // "" when valid
	}{
		{"valid", "", []*adminv1.SourceFile{{Name: "greet.go", Content: []byte(good)}}, ""},
		{"no files", "", nil, "no .go files"},
		{"test file", "", []*adminv1.SourceFile{{Name: "greet.go", Content: []byte(good)}, {Name: "greet_test.go", Content: []byte("package greet")}}, "test files are not deployed"},
		{"not go", "", []*adminv1.SourceFile{{Name: "greet.txt", Content: []byte(good)}}, "ending in .go"},
		{"two packages", "", []*adminv1.SourceFile{{Name: "a.go", Content: []byte(good)}, {Name: "b.go", Content: []byte("package other")}}, "b.go: package other; the other files say package greet"},
		{"bad name", "a b", []*adminv1.SourceFile{{Name: "greet.go", Content: []byte(good)}}, `package name "a b"`},
		{"compile error", "", []*adminv1.SourceFile{{Name: "greet.go", Content: []byte(good + "\nfunc f() { nope() }\n")}}, "greet.go:9:"},
		{"forbidden import", "", []*adminv1.SourceFile{{Name: "greet.go", Content: []byte(strings.Replace(good, `import "github.com/weft-dev/weft/agent/sdk"`, "import (\n\t\"github.com/weft-dev/weft/agent/sdk\"\n\t_ \"os/exec\"\n)", 1))}}, `greet.go:5:4: import "os/exec" is not allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Package(context.Background(), tt.pname, tt.files, nil)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Package = %v", err)
				}
				if p.Name != "greet" || len(p.Services) != 1 || p.Services[0] != "greet.hi" || len(p.Sha256) != 64 {
					t.Fatalf("Package = %+v", p)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Package = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// clientCert returns a self-signed P-256 certificate valid from notBefore
// for an hour, and its key, both PEM.
func clientCert(t *testing.T, notBefore time.Time) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "weft test"},
		NotBefore:    notBefore,
		NotAfter:     notBefore.Add(time.Hour),
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

func TestSecurityDefinition(t *testing.T) {
	cert, key := clientCert(t, time.Now().Add(-time.Minute))
	otherCert, _ := clientCert(t, time.Now().Add(-time.Minute))
	oldCert, oldKey := clientCert(t, time.Now().Add(-2*time.Hour))
	secret := strings.Repeat("s", 32)
	tests := []struct {
		name string
		d    *adminv1.SecurityDefinition
		want string // "" when valid
	}{
		{"basic_auth", &adminv1.SecurityDefinition{Name: "b", Kind: "basic_auth", Username: "u", Password: "p"}, ""},
		{"api_key", &adminv1.SecurityDefinition{Name: "k", Kind: "api_key", Key: "k"}, ""},
		{"jwt HS256", &adminv1.SecurityDefinition{Name: "j", Kind: "jwt", Algorithms: []string{"HS256"}, Secret: secret, Issuer: "i", LeewayMs: 30_000}, ""},
		{"jwt RS256 by JWKS", &adminv1.SecurityDefinition{Name: "j", Kind: "jwt", Algorithms: []string{"RS256"}, JwksUrl: "https://idp.example/jwks", Issuer: "i"}, ""},
		{"bearer", &adminv1.SecurityDefinition{Name: "t", Kind: "bearer", Token: "tok"}, ""},
		{"oauth2", &adminv1.SecurityDefinition{Name: "o", Kind: "oauth2_client_credentials", TokenUrl: "https://idp.example/token", ClientId: "c", ClientSecret: "s", Scopes: []string{"a"}}, ""},
		{"tls_client_cert", &adminv1.SecurityDefinition{Name: "m", Kind: "tls_client_cert", CertPem: cert, KeyPem: key}, ""},
		{"no name", &adminv1.SecurityDefinition{Kind: "bearer", Token: "t"}, "security definition name is required"},
		{"bad name", &adminv1.SecurityDefinition{Name: "a/b", Kind: "bearer", Token: "t"}, `security definition name "a/b"`},
		{"no kind", &adminv1.SecurityDefinition{Name: "x"}, `security definition "x": kind is required`},
		{"unknown kind", &adminv1.SecurityDefinition{Name: "x", Kind: "ntlm"}, `security definition "x": unknown kind "ntlm"`},
		{"basic_auth without password", &adminv1.SecurityDefinition{Name: "b", Kind: "basic_auth", Username: "u"}, `basic_auth "b": password is required`},
		{"api_key reserved header", &adminv1.SecurityDefinition{Name: "k", Kind: "api_key", Header: "Authorization", Key: "k"}, `api_key "k": header "Authorization" is reserved`},
		{"jwt short secret", &adminv1.SecurityDefinition{Name: "j", Kind: "jwt", Algorithms: []string{"HS256"}, Secret: "short", Issuer: "i"}, `jwt "j": secret is 5 bytes, HS256 needs at least 32`},
		{"jwt without issuer", &adminv1.SecurityDefinition{Name: "j", Kind: "jwt", Algorithms: []string{"HS256"}, Secret: secret}, `jwt "j": issuer is required`},
		{"negative leeway", &adminv1.SecurityDefinition{Name: "j", Kind: "jwt", Algorithms: []string{"HS256"}, Secret: secret, Issuer: "i", LeewayMs: -1}, `security definition "j": leeway_ms -1: want 0 to 600000`},
		{"huge leeway", &adminv1.SecurityDefinition{Name: "j", Kind: "jwt", Algorithms: []string{"HS256"}, Secret: secret, Issuer: "i", LeewayMs: 3_600_000}, "leeway_ms 3600000"},
		{"leeway on another kind", &adminv1.SecurityDefinition{Name: "t", Kind: "bearer", Token: "t", LeewayMs: 5}, `bearer "t": leeway not used by bearer`},
		{"a field the kind does not use", &adminv1.SecurityDefinition{Name: "t", Kind: "bearer", Token: "t", Password: "p"}, `bearer "t": password not used by bearer`},
		{"oauth2 bad token_url", &adminv1.SecurityDefinition{Name: "o", Kind: "oauth2_client_credentials", TokenUrl: "idp/token", ClientId: "c", ClientSecret: "s"}, `token_url "idp/token" must be an absolute http(s) URL`},
		{"tls key of another certificate", &adminv1.SecurityDefinition{Name: "m", Kind: "tls_client_cert", CertPem: otherCert, KeyPem: key}, `tls_client_cert "m": key does not match the certificate`},
		{"tls expired", &adminv1.SecurityDefinition{Name: "m", Kind: "tls_client_cert", CertPem: oldCert, KeyPem: oldKey}, "cert_pem: certificate expired"},
		{"tls without key", &adminv1.SecurityDefinition{Name: "m", Kind: "tls_client_cert", CertPem: cert}, "key_pem is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := SecurityDefinition(tt.d)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("SecurityDefinition = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("SecurityDefinition = %v, want an error containing %q", err, tt.want)
			}
			for _, s := range []string{tt.d.Password, tt.d.Key, tt.d.Secret, tt.d.Token, tt.d.ClientSecret, tt.d.KeyPem} {
				if len(s) > 1 && strings.Contains(err.Error(), s) {
					t.Fatalf("SecurityDefinition = %v, which shows the secret %q", err, s)
				}
			}
		})
	}
}

func TestOutgoingConnection(t *testing.T) {
	ca, _ := clientCert(t, time.Now().Add(-time.Minute))
	tests := []struct {
		name string
		c    *adminv1.OutgoingConnection
		want string // "" when valid
	}{
		{"minimal", &adminv1.OutgoingConnection{Name: "crm", Address: "https://crm.example"}, ""},
		{"every field", &adminv1.OutgoingConnection{
			Name: "crm", Address: "https://crm.example:8443/api", PathTemplate: "/orders/{id}", Method: "POST",
			DataFormat: "soap12", SoapAction: "urn:Place", TimeoutMs: 5000, TlsSkipVerify: true, CaBundlePem: ca,
			Security: "partner", PoolSize: 20, Headers: map[string]string{"X-Team": "weft"}, Active: proto.Bool(true),
		}, ""},
		{"no name", &adminv1.OutgoingConnection{Address: "https://crm.example"}, "outgoing connection name is required"},
		{"bad name", &adminv1.OutgoingConnection{Name: "a b", Address: "https://crm.example"}, `outgoing connection name "a b"`},
		{"no address", &adminv1.OutgoingConnection{Name: "crm"}, `outgoing "crm": address: must not be empty`},
		{"ftp address", &adminv1.OutgoingConnection{Name: "crm", Address: "ftp://crm.example"}, `address: scheme "ftp" is not http or https`},
		{"credentials in the address", &adminv1.OutgoingConnection{Name: "crm", Address: "https://u:pw@crm.example"}, "address: must not carry credentials"},
		{"query in the address", &adminv1.OutgoingConnection{Name: "crm", Address: "https://crm.example?a=1"}, "address: must not have a query"},
		{"relative path template", &adminv1.OutgoingConnection{Name: "crm", Address: "https://crm.example", PathTemplate: "orders"}, "path_template:"},
		{"bad method", &adminv1.OutgoingConnection{Name: "crm", Address: "https://crm.example", Method: "FETCH"}, `method: "FETCH" is not one of`},
		{"bad data format", &adminv1.OutgoingConnection{Name: "crm", Address: "https://crm.example", DataFormat: "yaml"}, `data_format: "yaml"`},
		{"soap action on json", &adminv1.OutgoingConnection{Name: "crm", Address: "https://crm.example", SoapAction: "urn:x"}, "soap_action: only valid with format soap11 or soap12"},
		{"negative timeout", &adminv1.OutgoingConnection{Name: "crm", Address: "https://crm.example", TimeoutMs: -1}, `outgoing connection "crm": timeout_ms -1`},
		{"huge timeout", &adminv1.OutgoingConnection{Name: "crm", Address: "https://crm.example", TimeoutMs: 2 * time.Hour.Milliseconds()}, "timeout_ms 7200000"},
		{"negative pool", &adminv1.OutgoingConnection{Name: "crm", Address: "https://crm.example", PoolSize: -1}, `outgoing connection "crm": pool_size -1`},
		{"huge pool", &adminv1.OutgoingConnection{Name: "crm", Address: "https://crm.example", PoolSize: 20_000}, "pool_size 20000"},
		{"bad CA bundle", &adminv1.OutgoingConnection{Name: "crm", Address: "https://crm.example", CaBundlePem: "not PEM"}, "ca_bundle_pem: no PEM certificate could be parsed"},
		{"bad header name", &adminv1.OutgoingConnection{Name: "crm", Address: "https://crm.example", Headers: map[string]string{"X Team": "a"}}, `headers: "X Team" is not a valid header name`},
		{"header value with a line break", &adminv1.OutgoingConnection{Name: "crm", Address: "https://crm.example", Headers: map[string]string{"X-A": "a\r\nB: c"}}, `headers: value of "X-A" contains a line break`},
		{"bad security name", &adminv1.OutgoingConnection{Name: "crm", Address: "https://crm.example", Security: "a b"}, `outgoing connection "crm": security: security definition name "a b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := OutgoingConnection(tt.c)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("OutgoingConnection = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("OutgoingConnection = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestDescription(t *testing.T) {
	for _, tt := range []struct {
		name, in, wantErr string
	}{
		{name: "empty", in: ""},
		{name: "lines and tabs", in: "Orders by id.\n\tOwned by the shop team."},
		{name: "at the bound", in: strings.Repeat("é", MaxDescription)},
		{name: "over the bound", in: strings.Repeat("é", MaxDescription+1), wantErr: "description: is 1025 characters; want at most 1024"},
		{name: "a control character", in: "bell\a", wantErr: "description: holds the control character U+0007 at byte 4"},
		{name: "not UTF-8", in: "\xff", wantErr: "description: is not valid UTF-8"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := Description(tt.in)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Description(%q) = %v, want nil", tt.in, err)
			}
			if tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr) {
				t.Fatalf("Description(%q) = %v, want %q", tt.in, err, tt.wantErr)
			}
		})
	}
}
