package security_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/weft-dev/weft/agent/security"
)

func TestValidate(t *testing.T) {
	rk, _ := rsaKeys(t)
	ek := ecKey(t)
	secret := strings.Repeat("s", 32)
	cert := newCert(t, "client", false, nil, time.Now().Add(time.Hour))
	other := newCert(t, "other", false, nil, time.Now().Add(time.Hour))
	expired := newCert(t, "old", false, nil, time.Now().Add(-time.Minute))
	jwtDef := func(f func(*security.Definition)) security.Definition {
		d := security.Definition{Name: "partner", Kind: security.KindJWT, Algorithms: []string{"HS256"}, Secret: secret, Issuer: "iss"}
		f(&d)
		return d
	}
	tests := []struct {
		name string
		def  security.Definition
		want string // "" for valid; else the exact message
	}{
		{"basic ok", security.Definition{Name: "b", Kind: security.KindBasicAuth, Username: "u", Password: "p"}, ""},
		{"basic no password", security.Definition{Name: "b", Kind: security.KindBasicAuth, Username: "u"}, `basic_auth "b": password is required`},
		{"basic colon", security.Definition{Name: "b", Kind: security.KindBasicAuth, Username: "u:x", Password: "p"}, `basic_auth "b": username must not contain ':'`},
		{"api key ok", security.Definition{Name: "k", Kind: security.KindAPIKey, Key: "abc"}, ""},
		{"api key bad header", security.Definition{Name: "k", Kind: security.KindAPIKey, Header: "X Key", Key: "abc"}, `api_key "k": header "X Key" is not a valid HTTP header name`},
		{"api key no key", security.Definition{Name: "k", Kind: security.KindAPIKey}, `api_key "k": key is required`},
		{"jwt hs ok", jwtDef(func(*security.Definition) {}), ""},
		{"jwt no issuer", jwtDef(func(d *security.Definition) { d.Issuer = "" }), `jwt "partner": issuer is required`},
		{"jwt no algorithms", jwtDef(func(d *security.Definition) { d.Algorithms = nil }), `jwt "partner": algorithms is required (any of HS256, RS256, ES256)`},
		{"jwt none", jwtDef(func(d *security.Definition) { d.Algorithms = []string{"none"} }), `jwt "partner": algorithms[0] "none" is not supported (any of HS256, RS256, ES256)`},
		{"jwt short secret", jwtDef(func(d *security.Definition) { d.Secret = "short" }), `jwt "partner": secret is 5 bytes, HS256 needs at least 32`},
		{"jwt negative leeway", jwtDef(func(d *security.Definition) { d.Leeway = -time.Second }), `jwt "partner": leeway -1s must not be negative`},
		{"jwt rs pem ok", jwtDef(func(d *security.Definition) {
			d.Algorithms, d.Secret, d.PublicKeyPEM = []string{"RS256"}, "", publicPEM(t, &rk.PublicKey)
		}), ""},
		{"jwt rs no key", jwtDef(func(d *security.Definition) { d.Algorithms, d.Secret = []string{"RS256"}, "" }),
			`jwt "partner": public_key_pem or jwks_url is required for RS256/ES256`},
		{"jwt ec key for rs", jwtDef(func(d *security.Definition) {
			d.Algorithms, d.Secret, d.PublicKeyPEM = []string{"RS256"}, "", publicPEM(t, &ek.PublicKey)
		}), `jwt "partner": public_key_pem is an EC key but algorithms does not allow ES256`},
		{"jwt bad pem", jwtDef(func(d *security.Definition) {
			d.Algorithms, d.Secret, d.PublicKeyPEM = []string{"ES256"}, "", "garbage"
		}), `jwt "partner": public_key_pem: no PEM block found`},
		{"jwt jwks ok", jwtDef(func(d *security.Definition) {
			d.Algorithms, d.Secret, d.JWKSURL = []string{"RS256", "ES256"}, "", "https://idp.test/jwks"
		}), ""},
		{"jwt jwks relative", jwtDef(func(d *security.Definition) {
			d.Algorithms, d.Secret, d.JWKSURL = []string{"ES256"}, "", "/jwks"
		}), `jwt "partner": jwks_url "/jwks" must be an absolute http(s) URL`},
		{"jwt stray field", jwtDef(func(d *security.Definition) { d.Password = "x" }), `jwt "partner": password not used by jwt`},
		{"bearer ok", security.Definition{Name: "t", Kind: security.KindBearer, Token: "abc"}, ""},
		{"bearer empty", security.Definition{Name: "t", Kind: security.KindBearer}, `bearer "t": token is required (a token to send), or introspection_url (to check inbound tokens)`},
		{"oauth2 ok", security.Definition{Name: "o", Kind: security.KindOAuth2, TokenURL: "https://idp.test/token", ClientID: "c", ClientSecret: "s", Scopes: []string{"a", "b"}}, ""},
		{"oauth2 no secret", security.Definition{Name: "o", Kind: security.KindOAuth2, TokenURL: "https://idp.test/token", ClientID: "c"}, `oauth2_client_credentials "o": client_secret is required`},
		{"oauth2 bad scope", security.Definition{Name: "o", Kind: security.KindOAuth2, TokenURL: "https://idp.test/token", ClientID: "c", ClientSecret: "s", Scopes: []string{"a b"}}, `oauth2_client_credentials "o": scopes[0] "a b" is not a valid scope`},
		{"tls ok", security.Definition{Name: "x", Kind: security.KindTLSClientCert, CertPEM: cert.certPEM, KeyPEM: cert.keyPEM}, ""},
		{"tls mismatch", security.Definition{Name: "x", Kind: security.KindTLSClientCert, CertPEM: cert.certPEM, KeyPEM: other.keyPEM}, `tls_client_cert "x": key does not match the certificate`},
		{"tls no key", security.Definition{Name: "x", Kind: security.KindTLSClientCert, CertPEM: cert.certPEM}, `tls_client_cert "x": key_pem is required`},
		{"tls expired", security.Definition{Name: "x", Kind: security.KindTLSClientCert, CertPEM: expired.certPEM, KeyPEM: expired.keyPEM},
			fmt.Sprintf(`tls_client_cert "x": cert_pem: certificate expired on %s`, expired.cert.NotAfter.UTC().Format(time.RFC3339))},
		{"no name", security.Definition{Kind: security.KindBearer, Token: "t"}, `security definition (bearer): name is required`},
		{"no kind", security.Definition{Name: "n"}, `security definition "n": kind is required`},
		{"unknown kind", security.Definition{Name: "n", Kind: "saml"}, `security definition "n": unknown kind "saml" (want one of basic_auth, api_key, jwt, bearer, oauth2_client_credentials, tls_client_cert)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.def.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || err.Error() != tt.want):
				t.Fatalf("Validate() = %v\nwant %s", err, tt.want)
			}
		})
	}
}

func TestInbound(t *testing.T) {
	for kind, want := range map[security.Kind]bool{
		security.KindBasicAuth: true, security.KindAPIKey: true, security.KindJWT: true,
		security.KindBearer: false, security.KindOAuth2: false, security.KindTLSClientCert: false,
	} {
		if got := (security.Definition{Kind: kind}).Inbound(); got != want {
			t.Errorf("%s Inbound() = %v, want %v", kind, got, want)
		}
	}
}

func TestNewVerifierRefusesOutboundKinds(t *testing.T) {
	_, err := security.NewVerifier(security.Definition{Name: "t", Kind: security.KindBearer, Token: "x"})
	if err == nil || !strings.Contains(err.Error(), "outbound only") {
		t.Fatalf("NewVerifier(bearer) error = %v", err)
	}
	rsa, _ := rsaKeys(t)
	def := security.Definition{Name: "j", Kind: security.KindJWT, Algorithms: []string{"RS256"}, PublicKeyPEM: publicPEM(t, &rsa.PublicKey), Issuer: "i"}
	if def.Outbound() {
		t.Errorf("a jwt definition with only a public key says Outbound() = true")
	}
	_, err = security.NewAuthenticator(def)
	if err == nil || !strings.Contains(err.Error(), "signed with HS256") {
		t.Fatalf("NewAuthenticator(jwt RS256) error = %v", err)
	}
}

// TestJWTOutboundRoundTrip signs a token with a jwt definition's secret and
// verifies it with the same definition, as a partner running Weft would.
func TestJWTOutboundRoundTrip(t *testing.T) {
	def := security.Definition{Name: "j", Kind: security.KindJWT, Algorithms: []string{"HS256"}, Secret: strings.Repeat("s", 32), Issuer: "weft", Audience: "partner"}
	if !def.Outbound() {
		t.Fatal("a jwt definition with an HS256 secret says Outbound() = false")
	}
	a, err := security.NewAuthenticator(def)
	if err != nil {
		t.Fatal(err)
	}
	v, err := security.NewVerifier(def)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	if err := a.Apply(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(req); err != nil {
		t.Fatalf("the signed token does not verify: %v", err)
	}
	other := def
	other.Secret = strings.Repeat("x", 32)
	v2, _ := security.NewVerifier(other)
	if _, err := v2.Verify(req); err == nil {
		t.Fatal("the signed token verifies under another secret")
	}
}

func TestDefinitionLogsNoSecret(t *testing.T) {
	d := security.Definition{Name: "b", Kind: security.KindBasicAuth, Username: "u", Password: "hunter2"}
	for _, s := range []string{d.String(), fmt.Sprint(d), d.LogValue().String()} {
		if strings.Contains(s, "hunter2") {
			t.Fatalf("%q shows the password", s)
		}
	}
}

// TestJWTOutboundToken checks what a jwt definition signs for an outgoing
// request: an HS256 JWT with typ JWT, the issuer and audience, issued now,
// expiring in five minutes, with a fresh id each time.
func TestJWTOutboundToken(t *testing.T) {
	def := security.Definition{Name: "j", Kind: security.KindJWT, Algorithms: []string{"HS256"}, Secret: strings.Repeat("s", 32), Issuer: "weft", Audience: "partner"}
	a, err := security.NewAuthenticator(def, security.WithClock(func() time.Time { return testNow }))
	if err != nil {
		t.Fatal(err)
	}
	decode := func(seg string) map[string]any {
		t.Helper()
		b, err := base64.RawURLEncoding.DecodeString(seg)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	ids := map[any]bool{}
	for range 2 {
		tok, ok := strings.CutPrefix(authHeader(t, a), "Bearer ")
		parts := strings.Split(tok, ".")
		if !ok || len(parts) != 3 {
			t.Fatalf("token = %q", tok)
		}
		if hdr := decode(parts[0]); len(hdr) != 2 || hdr["alg"] != "HS256" || hdr["typ"] != "JWT" {
			t.Fatalf("header = %v", hdr)
		}
		c := decode(parts[1])
		want := map[string]any{"iss": "weft", "aud": "partner", "iat": float64(testNow.Unix()), "exp": float64(testNow.Add(5 * time.Minute).Unix())}
		for k, v := range want {
			if c[k] != v {
				t.Errorf("claim %s = %v, want %v", k, c[k], v)
			}
		}
		jti, _ := c["jti"].(string)
		if len(jti) != 24 || ids[jti] {
			t.Errorf("jti = %q, want 24 hex digits, fresh", jti)
		}
		ids[jti] = true
		if len(c) != len(want)+1 {
			t.Errorf("claims = %v", c)
		}
	}
}
