package security_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weft-dev/weft/agent/security"
	"github.com/weft-dev/weft/agent/shared/secdef"
)

// serve starts a server that verifies every request with v and answers
// the subject, or the AuthError.
func serve(t *testing.T, v security.Verifier) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := v.Verify(r)
		var ae *security.AuthError
		if errors.As(err, &ae) {
			ae.Write(w)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "ok "+p.Subject)
	}))
	t.Cleanup(srv.Close)
	return srv
}

type result struct {
	status    int
	challenge string
	body      string
}

func call(t *testing.T, srv *httptest.Server, setup func(*http.Request)) result {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(req)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return result{resp.StatusCode, resp.Header.Get("WWW-Authenticate"), strings.TrimSpace(string(b))}
}

func TestBasicAuth(t *testing.T) {
	def := secdef.Definition{Name: "b", Kind: secdef.KindBasicAuth, Username: "ada", Password: "s3cret"}
	v, err := security.NewVerifier(def)
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, v)
	out, err := security.NewAuthenticator(def)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		setup  func(*http.Request)
		status int
	}{
		{"good via authenticator", func(r *http.Request) { out.Apply(context.Background(), r) }, 200},
		{"wrong password", func(r *http.Request) { r.SetBasicAuth("ada", "nope") }, 401},
		{"wrong user", func(r *http.Request) { r.SetBasicAuth("bob", "s3cret") }, 401},
		{"password prefix", func(r *http.Request) { r.SetBasicAuth("ada", "s3cre") }, 401},
		{"missing", nil, 401},
		{"bearer instead", func(r *http.Request) { r.Header.Set("Authorization", "Bearer s3cret") }, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := call(t, srv, tt.setup)
			if got.status != tt.status {
				t.Fatalf("status = %d (%s), want %d", got.status, got.body, tt.status)
			}
			if tt.status == 200 && got.body != "ok ada" {
				t.Fatalf("body = %q", got.body)
			}
			if tt.status == 401 && got.challenge != `Basic realm="weft"` {
				t.Fatalf("challenge = %q", got.challenge)
			}
		})
	}
}

func TestAPIKey(t *testing.T) {
	tests := []struct {
		name      string
		header    string
		send      string // header to send in
		value     string
		status    int
		challenge string
	}{
		{"good default header", "", "X-API-Key", "k-123", 200, ""},
		{"header is case-insensitive", "", "x-api-key", "k-123", 200, ""},
		{"bad key", "", "X-API-Key", "k-124", 401, `APIKey header="X-API-Key"`},
		{"missing", "", "", "", 401, `APIKey header="X-API-Key"`},
		{"custom header", "X-Partner-Key", "X-Partner-Key", "k-123", 200, ""},
		{"custom header, sent in default", "X-Partner-Key", "X-API-Key", "k-123", 401, `APIKey header="X-Partner-Key"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := security.NewVerifier(secdef.Definition{Name: "k", Kind: secdef.KindAPIKey, Header: tt.header, Key: "k-123"})
			if err != nil {
				t.Fatal(err)
			}
			got := call(t, serve(t, v), func(r *http.Request) {
				if tt.send != "" {
					r.Header.Set(tt.send, tt.value)
				}
			})
			if got.status != tt.status || got.challenge != tt.challenge {
				t.Fatalf("got %d %q (%s), want %d %q", got.status, got.challenge, got.body, tt.status, tt.challenge)
			}
		})
	}
	t.Run("authenticator round trip", func(t *testing.T) {
		def := secdef.Definition{Name: "k", Kind: secdef.KindAPIKey, Header: "X-Partner-Key", Key: "k-9"}
		v, _ := security.NewVerifier(def)
		a, err := security.NewAuthenticator(def)
		if err != nil {
			t.Fatal(err)
		}
		if got := call(t, serve(t, v), func(r *http.Request) { a.Apply(context.Background(), r) }); got.status != 200 {
			t.Fatalf("status = %d (%s)", got.status, got.body)
		}
	})
}

func TestJWTHS256(t *testing.T) {
	secret := []byte(strings.Repeat("k", 32))
	rk, _ := rsaKeys(t)
	def := secdef.Definition{
		Name: "partner", Kind: secdef.KindJWT, Algorithms: []string{"HS256"}, Secret: string(secret),
		Issuer: "https://issuer.test", Audience: "weft", Leeway: 30 * time.Second,
	}
	v, err := security.NewVerifier(def, security.WithClock(func() time.Time { return testNow }))
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, v)
	good := signJWT(t, "HS256", "", secret, claims(nil))
	tests := []struct {
		name  string
		token string
		want  string // "" accepted, else error_description
	}{
		{"good", good, ""},
		{"audience in array", signJWT(t, "HS256", "", secret, claims(map[string]any{"aud": []string{"other", "weft"}})), ""},
		{"expired within leeway", signJWT(t, "HS256", "", secret, claims(map[string]any{"exp": testNow.Add(-20 * time.Second).Unix()})), ""},
		{"expired", signJWT(t, "HS256", "", secret, claims(map[string]any{"exp": testNow.Add(-time.Minute).Unix()})), "token is expired"},
		{"no exp", signJWT(t, "HS256", "", secret, claims(map[string]any{"exp": nil})), "token has no exp claim"},
		{"nbf within leeway", signJWT(t, "HS256", "", secret, claims(map[string]any{"nbf": testNow.Add(20 * time.Second).Unix()})), ""},
		{"nbf in future", signJWT(t, "HS256", "", secret, claims(map[string]any{"nbf": testNow.Add(time.Minute).Unix()})), "token is not valid yet"},
		{"iat in future", signJWT(t, "HS256", "", secret, claims(map[string]any{"iat": testNow.Add(time.Minute).Unix()})), "token is issued in the future"},
		{"exp not a number", signJWT(t, "HS256", "", secret, claims(map[string]any{"exp": "tomorrow"})), "token exp claim is not a number"},
		{"wrong issuer", signJWT(t, "HS256", "", secret, claims(map[string]any{"iss": "https://evil.test"})), "token issuer is not accepted"},
		{"wrong audience", signJWT(t, "HS256", "", secret, claims(map[string]any{"aud": "other"})), "token audience is not accepted"},
		{"wrong audience array", signJWT(t, "HS256", "", secret, claims(map[string]any{"aud": []string{"a", "b"}})), "token audience is not accepted"},
		{"no audience", signJWT(t, "HS256", "", secret, claims(map[string]any{"aud": nil})), "token audience is not accepted"},
		{"wrong secret", signJWT(t, "HS256", "", []byte(strings.Repeat("x", 32)), claims(nil)), "token signature is invalid"},
		{"wrong alg", signJWT(t, "RS256", "", rk, claims(nil)), `token algorithm "RS256" is not allowed`},
		{"none alg", signJWT(t, "none", "", nil, claims(nil)), `token algorithm "none" is not allowed`},
		{"none alg, uppercase", signJWT(t, "NONE", "", nil, claims(nil)), `token algorithm "NONE" is not allowed`},
		{"tampered claims", tamperClaims(t, good), "token signature is invalid"},
		{"tampered signature", tamperSig(good), "token signature is invalid"},
		{"not a JWT", "abc.def", "token is not a JWS compact serialization"},
		{"bad header", "!!!.e30.", "token header: not base64url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := call(t, srv, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tt.token) })
			checkJWTResult(t, got, tt.want, "ok partner-1")
		})
	}
	t.Run("missing", func(t *testing.T) {
		got := call(t, srv, nil)
		if got.status != 401 || got.challenge != `Bearer realm="weft"` {
			t.Fatalf("got %d %q", got.status, got.challenge)
		}
	})
}

func checkJWTResult(t *testing.T, got result, want, okBody string) {
	t.Helper()
	if want == "" {
		if got.status != 200 || got.body != okBody {
			t.Fatalf("got %d %q, want 200 %q", got.status, got.body, okBody)
		}
		return
	}
	challenge := `Bearer realm="weft", error="invalid_token", error_description="` + strings.ReplaceAll(want, `"`, `\"`) + `"`
	if got.status != 401 || got.challenge != challenge {
		t.Fatalf("got %d %q\nwant 401 %q", got.status, got.challenge, challenge)
	}
}

func tamperClaims(t *testing.T, tok string) string {
	p := strings.Split(tok, ".")
	p[1] = segment(t, claims(map[string]any{"sub": "admin"}))
	return strings.Join(p, ".")
}

func tamperSig(tok string) string {
	i := strings.LastIndexByte(tok, '.') + 1
	c := byte('A')
	if tok[i] == 'A' {
		c = 'B'
	}
	return tok[:i] + string(c) + tok[i+1:]
}

func TestJWTPublicKeys(t *testing.T) {
	rk, rk2 := rsaKeys(t)
	ek, ek2 := ecKey(t), ecKey(t)
	hmacWithPEM := []byte(publicPEM(t, &rk.PublicKey))
	tests := []struct {
		name  string
		alg   string
		pub   any
		sign  any
		token string // overrides signing
		want  string
	}{
		{"RS256 good", "RS256", &rk.PublicKey, rk, "", ""},
		{"RS256 other key", "RS256", &rk.PublicKey, rk2, "", "token signature is invalid"},
		{"ES256 good", "ES256", &ek.PublicKey, ek, "", ""},
		{"ES256 other key", "ES256", &ek.PublicKey, ek2, "", "token signature is invalid"},
		{"HS256 with the public key as secret", "RS256", &rk.PublicKey, nil,
			signJWT(t, "HS256", "", hmacWithPEM, claims(nil)), `token algorithm "HS256" is not allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var pubPEM string
			switch k := tt.pub.(type) {
			case *rsa.PublicKey, *ecdsa.PublicKey:
				pubPEM = publicPEM(t, k)
			}
			v, err := security.NewVerifier(secdef.Definition{
				Name: "p", Kind: secdef.KindJWT, Algorithms: []string{tt.alg}, PublicKeyPEM: pubPEM,
				Issuer: "https://issuer.test",
			}, security.WithClock(func() time.Time { return testNow }))
			if err != nil {
				t.Fatal(err)
			}
			tok := tt.token
			if tok == "" {
				tok = signJWT(t, tt.alg, "", tt.sign, claims(nil))
			}
			got := call(t, serve(t, v), func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) })
			checkJWTResult(t, got, tt.want, "ok partner-1")
			if tt.want == "" {
				bad := call(t, serve(t, v), func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tamperSig(tok)) })
				checkJWTResult(t, bad, "token signature is invalid", "")
			}
		})
	}
}

// TestJWTHeaderRefusals covers header parameters that are refused even
// under a valid signature: an embedded key is never trusted, and "crit" and
// "b64" would change what must be understood or what is signed.
func TestJWTHeaderRefusals(t *testing.T) {
	secret := []byte(strings.Repeat("k", 32))
	rk, attacker := rsaKeys(t)
	hsDef := secdef.Definition{Name: "hs", Kind: secdef.KindJWT, Algorithms: []string{"HS256"}, Secret: string(secret), Issuer: "https://issuer.test"}
	rsDef := secdef.Definition{Name: "rs", Kind: secdef.KindJWT, Algorithms: []string{"RS256"}, PublicKeyPEM: publicPEM(t, &rk.PublicKey), Issuer: "https://issuer.test"}
	attackerJWK := rsaJWK("attacker", &attacker.PublicKey)
	privateJWK := rsaJWK("private", &attacker.PublicKey)
	privateJWK["d"] = b64(attacker.D.Bytes())
	body := segment(t, claims(nil))
	tests := []struct {
		name  string
		def   secdef.Definition
		hdr   map[string]any
		key   any
		token string // overrides signing
		want  string
	}{
		{"crit", hsDef, map[string]any{"alg": "HS256", "crit": []string{"exp"}, "exp": 1}, secret, "", "token header has unsupported critical extensions"},
		{"crit b64 with unencoded payload", hsDef, map[string]any{"alg": "HS256", "crit": []string{"b64"}, "b64": false}, secret, "", "token header has unsupported critical extensions"},
		{"empty crit", hsDef, map[string]any{"alg": "HS256", "crit": []string{}}, secret, "", "token header has unsupported critical extensions"},
		{"b64 without crit", hsDef, map[string]any{"alg": "HS256", "b64": false}, secret, "", "token header parameter b64 is not supported"},
		{"embedded jwk, HS256", hsDef, map[string]any{"alg": "HS256", "jwk": attackerJWK}, secret, "", "token header must not embed a key (jwk)"},
		{"embedded jwk signing the token", rsDef, map[string]any{"alg": "RS256", "jwk": attackerJWK}, attacker, "", "token header must not embed a key (jwk)"},
		{"embedded jwk of the right key", rsDef, map[string]any{"alg": "RS256", "jwk": rsaJWK("real", &rk.PublicKey)}, rk, "", "token header must not embed a key (jwk)"},
		{"embedded private jwk", rsDef, map[string]any{"alg": "RS256", "jwk": privateJWK}, attacker, "", "token is not a well-formed JWS"},
		{"kid not a string", hsDef, map[string]any{"alg": "HS256", "kid": 7}, secret, "", "token is not a well-formed JWS"},
		{"header not JSON", hsDef, nil, nil, b64([]byte("not json")) + "." + body + ".", "token is not a well-formed JWS"},
		{"signature not base64url", hsDef, nil, nil, segment(t, map[string]any{"alg": "HS256"}) + "." + body + ".!!!", "token is not a well-formed JWS"},
		{"JWS JSON serialization", hsDef, nil, nil, `{"payload":"` + body + `","protected":"","signature":""}`, "token is not a JWS compact serialization"},
		{"typ is ignored", hsDef, map[string]any{"alg": "HS256", "typ": "at+jwt"}, secret, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := security.NewVerifier(tt.def, security.WithClock(func() time.Time { return testNow }))
			if err != nil {
				t.Fatal(err)
			}
			tok := tt.token
			if tok == "" {
				tok = signWithHeader(t, tt.hdr, tt.key, body)
			}
			got := call(t, serve(t, v), func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) })
			checkJWTResult(t, got, tt.want, "ok partner-1")
		})
	}
}

// TestJWTKeyConfusion checks a definition that allows both HS256 and RS256:
// the algorithm picks the key, and a key never verifies a token of the
// other family.
func TestJWTKeyConfusion(t *testing.T) {
	secret := []byte(strings.Repeat("k", 32))
	rk, _ := rsaKeys(t)
	pubPEM := publicPEM(t, &rk.PublicKey)
	v, err := security.NewVerifier(secdef.Definition{
		Name: "both", Kind: secdef.KindJWT, Algorithms: []string{"HS256", "RS256"}, Secret: string(secret),
		PublicKeyPEM: pubPEM, Issuer: "https://issuer.test",
	}, security.WithClock(func() time.Time { return testNow }))
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, v)
	body := segment(t, claims(nil))
	tests := []struct {
		name  string
		token string
		want  string
	}{
		{"HS256 with the secret", signJWT(t, "HS256", "", secret, claims(nil)), ""},
		{"RS256 with the key", signJWT(t, "RS256", "", rk, claims(nil)), ""},
		{"HS256 keyed with the public key PEM", signJWT(t, "HS256", "", []byte(pubPEM), claims(nil)), "token signature is invalid"},
		{"RS256 header over an HMAC of the secret", signWithHeader(t, map[string]any{"alg": "RS256"}, secret, body), "token signature is invalid"},
		{"HS256 header over an RSA signature", signWithHeader(t, map[string]any{"alg": "HS256"}, rk, body), "token signature is invalid"},
		{"ES256 not allowed", signJWT(t, "ES256", "", ecKey(t), claims(nil)), `token algorithm "ES256" is not allowed`},
		{"none", signJWT(t, "none", "", nil, claims(nil)), `token algorithm "none" is not allowed`},
		{"no alg", signWithHeader(t, map[string]any{"typ": "JWT"}, secret, body), `token algorithm "" is not allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := call(t, srv, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tt.token) })
			checkJWTResult(t, got, tt.want, "ok partner-1")
		})
	}
}

// TestJWTClaims covers claim checks beyond TestJWTHS256, and that claims
// reach the principal with numbers as json.Number.
func TestJWTClaims(t *testing.T) {
	secret := []byte(strings.Repeat("k", 32))
	def := secdef.Definition{
		Name: "partner", Kind: secdef.KindJWT, Algorithms: []string{"HS256"}, Secret: string(secret),
		Issuer: "https://issuer.test", Leeway: 30 * time.Second,
	}
	v, err := security.NewVerifier(def, security.WithClock(func() time.Time { return testNow }))
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, v)
	hs := func(over map[string]any) string { return signJWT(t, "HS256", "", secret, claims(over)) }
	tests := []struct {
		name  string
		token string
		want  string
	}{
		{"any audience without one configured", hs(map[string]any{"aud": "other"}), ""},
		{"expired at the leeway's edge", hs(map[string]any{"exp": testNow.Add(-31 * time.Second).Unix()}), "token is expired"},
		{"exp negative", hs(map[string]any{"exp": -1}), "token exp claim is not a valid date"},
		{"exp too large", hs(map[string]any{"exp": 1e300}), "token exp claim is not a valid date"},
		{"nbf too large", hs(map[string]any{"nbf": 1e300}), "token nbf claim is not a valid date"},
		{"iat not a number", hs(map[string]any{"iat": "now"}), "token iat claim is not a number"},
		{"iss not a string", hs(map[string]any{"iss": 7}), "token claims: iss, sub, aud or jti is not a string"},
		{"claims not an object", signWithHeader(t, map[string]any{"alg": "HS256"}, secret, b64([]byte("[1]"))), "token claims: not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := call(t, srv, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tt.token) })
			checkJWTResult(t, got, tt.want, "ok partner-1")
		})
	}
	t.Run("principal", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", "Bearer "+hs(map[string]any{"scope": "orders"}))
		p, err := v.Verify(r)
		if err != nil {
			t.Fatal(err)
		}
		if p.Definition != "partner" || p.Kind != secdef.KindJWT || p.Subject != "partner-1" || p.Claims["scope"] != "orders" {
			t.Fatalf("principal = %+v", p)
		}
		if exp, ok := p.Claims["exp"].(json.Number); !ok || exp.String() != strconv.FormatInt(testNow.Add(time.Hour).Unix(), 10) {
			t.Fatalf("exp claim = %#v, want json.Number", p.Claims["exp"])
		}
	})
}
