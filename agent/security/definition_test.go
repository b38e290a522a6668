package security_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/weft-dev/weft/agent/security"
	"github.com/weft-dev/weft/agent/shared/secdef"
)

func TestNewVerifierRefusesOutboundKinds(t *testing.T) {
	_, err := security.NewVerifier(secdef.Definition{Name: "t", Kind: secdef.KindBearer, Token: "x"})
	if err == nil || !strings.Contains(err.Error(), "outbound only") {
		t.Fatalf("NewVerifier(bearer) error = %v", err)
	}
	rsa, _ := rsaKeys(t)
	def := secdef.Definition{Name: "j", Kind: secdef.KindJWT, Algorithms: []string{"RS256"}, PublicKeyPEM: publicPEM(t, &rsa.PublicKey), Issuer: "i"}
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
	def := secdef.Definition{Name: "j", Kind: secdef.KindJWT, Algorithms: []string{"HS256"}, Secret: strings.Repeat("s", 32), Issuer: "weft", Audience: "partner"}
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

// TestJWTOutboundToken checks what a jwt definition signs for an outgoing
// request: an HS256 JWT with typ JWT, the issuer and audience, issued now,
// expiring in five minutes, with a fresh id each time.
func TestJWTOutboundToken(t *testing.T) {
	def := secdef.Definition{Name: "j", Kind: secdef.KindJWT, Algorithms: []string{"HS256"}, Secret: strings.Repeat("s", 32), Issuer: "weft", Audience: "partner"}
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
