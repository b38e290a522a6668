package secdef_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-dev/weft/agent/shared/secdef"
)

func TestValidate(t *testing.T) {
	rk := rsaKey()
	ek := ecKey(t)
	secret := strings.Repeat("s", 32)
	cert := newCert(t, "client", time.Now().Add(time.Hour))
	other := newCert(t, "other", time.Now().Add(time.Hour))
	expired := newCert(t, "old", time.Now().Add(-time.Minute))
	jwtDef := func(f func(*secdef.Definition)) secdef.Definition {
		d := secdef.Definition{Name: "partner", Kind: secdef.KindJWT, Algorithms: []string{"HS256"}, Secret: secret, Issuer: "iss"}
		f(&d)
		return d
	}
	tests := []struct {
		name string
		def  secdef.Definition
		want string // "" for valid; else the exact message
	}{
		{"basic ok", secdef.Definition{Name: "b", Kind: secdef.KindBasicAuth, Username: "u", Password: "p"}, ""},
		{"basic no password", secdef.Definition{Name: "b", Kind: secdef.KindBasicAuth, Username: "u"}, `basic_auth "b": password is required`},
		{"basic colon", secdef.Definition{Name: "b", Kind: secdef.KindBasicAuth, Username: "u:x", Password: "p"}, `basic_auth "b": username must not contain ':'`},
		{"api key ok", secdef.Definition{Name: "k", Kind: secdef.KindAPIKey, Key: "abc"}, ""},
		{"api key bad header", secdef.Definition{Name: "k", Kind: secdef.KindAPIKey, Header: "X Key", Key: "abc"}, `api_key "k": header "X Key" is not a valid HTTP header name`},
		{"api key no key", secdef.Definition{Name: "k", Kind: secdef.KindAPIKey}, `api_key "k": key is required`},
		{"jwt hs ok", jwtDef(func(*secdef.Definition) {}), ""},
		{"jwt no issuer", jwtDef(func(d *secdef.Definition) { d.Issuer = "" }), `jwt "partner": issuer is required`},
		{"jwt no algorithms", jwtDef(func(d *secdef.Definition) { d.Algorithms = nil }), `jwt "partner": algorithms is required (any of HS256, RS256, ES256)`},
		{"jwt none", jwtDef(func(d *secdef.Definition) { d.Algorithms = []string{"none"} }), `jwt "partner": algorithms[0] "none" is not supported (any of HS256, RS256, ES256)`},
		{"jwt short secret", jwtDef(func(d *secdef.Definition) { d.Secret = "short" }), `jwt "partner": secret is 5 bytes, HS256 needs at least 32`},
		{"jwt negative leeway", jwtDef(func(d *secdef.Definition) { d.Leeway = -time.Second }), `jwt "partner": leeway -1s must not be negative`},
		{"jwt rs pem ok", jwtDef(func(d *secdef.Definition) {
			d.Algorithms, d.Secret, d.PublicKeyPEM = []string{"RS256"}, "", publicPEM(t, &rk.PublicKey)
		}), ""},
		{"jwt rs no key", jwtDef(func(d *secdef.Definition) { d.Algorithms, d.Secret = []string{"RS256"}, "" }),
			`jwt "partner": public_key_pem or jwks_url is required for RS256/ES256`},
		{"jwt ec key for rs", jwtDef(func(d *secdef.Definition) {
			d.Algorithms, d.Secret, d.PublicKeyPEM = []string{"RS256"}, "", publicPEM(t, &ek.PublicKey)
		}), `jwt "partner": public_key_pem is an EC key but algorithms does not allow ES256`},
		{"jwt bad pem", jwtDef(func(d *secdef.Definition) {
			d.Algorithms, d.Secret, d.PublicKeyPEM = []string{"ES256"}, "", "garbage"
		}), `jwt "partner": public_key_pem: no PEM block found`},
		{"jwt jwks ok", jwtDef(func(d *secdef.Definition) {
			d.Algorithms, d.Secret, d.JWKSURL = []string{"RS256", "ES256"}, "", "https://idp.test/jwks"
		}), ""},
		{"jwt jwks relative", jwtDef(func(d *secdef.Definition) {
			d.Algorithms, d.Secret, d.JWKSURL = []string{"ES256"}, "", "/jwks"
		}), `jwt "partner": jwks_url "/jwks" must be an absolute http(s) URL`},
		{"jwt stray field", jwtDef(func(d *secdef.Definition) { d.Password = "x" }), `jwt "partner": password not used by jwt`},
		{"bearer ok", secdef.Definition{Name: "t", Kind: secdef.KindBearer, Token: "abc"}, ""},
		{"bearer empty", secdef.Definition{Name: "t", Kind: secdef.KindBearer}, `bearer "t": token is required (a token to send), or introspection_url (to check inbound tokens)`},
		{"oauth2 ok", secdef.Definition{Name: "o", Kind: secdef.KindOAuth2, TokenURL: "https://idp.test/token", ClientID: "c", ClientSecret: "s", Scopes: []string{"a", "b"}}, ""},
		{"oauth2 no secret", secdef.Definition{Name: "o", Kind: secdef.KindOAuth2, TokenURL: "https://idp.test/token", ClientID: "c"}, `oauth2_client_credentials "o": client_secret is required`},
		{"oauth2 bad scope", secdef.Definition{Name: "o", Kind: secdef.KindOAuth2, TokenURL: "https://idp.test/token", ClientID: "c", ClientSecret: "s", Scopes: []string{"a b"}}, `oauth2_client_credentials "o": scopes[0] "a b" is not a valid scope`},
		{"tls ok", secdef.Definition{Name: "x", Kind: secdef.KindTLSClientCert, CertPEM: cert.certPEM, KeyPEM: cert.keyPEM}, ""},
		{"tls mismatch", secdef.Definition{Name: "x", Kind: secdef.KindTLSClientCert, CertPEM: cert.certPEM, KeyPEM: other.keyPEM}, `tls_client_cert "x": key does not match the certificate`},
		{"tls no key", secdef.Definition{Name: "x", Kind: secdef.KindTLSClientCert, CertPEM: cert.certPEM}, `tls_client_cert "x": key_pem is required`},
		{"tls expired", secdef.Definition{Name: "x", Kind: secdef.KindTLSClientCert, CertPEM: expired.certPEM, KeyPEM: expired.keyPEM},
			fmt.Sprintf(`tls_client_cert "x": cert_pem: certificate expired on %s`, expired.cert.NotAfter.UTC().Format(time.RFC3339))},
		{"no name", secdef.Definition{Kind: secdef.KindBearer, Token: "t"}, `security definition (bearer): name is required`},
		{"no kind", secdef.Definition{Name: "n"}, `security definition "n": kind is required`},
		{"unknown kind", secdef.Definition{Name: "n", Kind: "saml"}, `security definition "n": unknown kind "saml" (want one of basic_auth, api_key, jwt, bearer, oauth2_client_credentials, tls_client_cert)`},
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
	for kind, want := range map[secdef.Kind]bool{
		secdef.KindBasicAuth: true, secdef.KindAPIKey: true, secdef.KindJWT: true,
		secdef.KindBearer: false, secdef.KindOAuth2: false, secdef.KindTLSClientCert: false,
	} {
		if got := (secdef.Definition{Kind: kind}).Inbound(); got != want {
			t.Errorf("%s Inbound() = %v, want %v", kind, got, want)
		}
	}
}

func TestDefinitionLogsNoSecret(t *testing.T) {
	d := secdef.Definition{Name: "b", Kind: secdef.KindBasicAuth, Username: "u", Password: "hunter2"}
	for _, s := range []string{d.String(), fmt.Sprint(d), d.LogValue().String()} {
		if strings.Contains(s, "hunter2") {
			t.Fatalf("%q shows the password", s)
		}
	}
}

// rsaKey generates an RSA key once per test binary (generation is slow
// under -race).
var rsaKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func ecKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func publicPEM(t *testing.T, pub crypto.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// certPair is a PEM certificate with its key.
type certPair struct {
	cert            *x509.Certificate
	certPEM, keyPEM string
}

// newCert makes a self-signed client certificate for cn, valid from an
// hour ago to notAfter.
func newCert(t *testing.T, cn string, notAfter time.Time) *certPair {
	t.Helper()
	key := ecKey(t)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &certPair{
		cert:    cert,
		certPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		keyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})),
	}
}
