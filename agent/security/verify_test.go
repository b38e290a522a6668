package security_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/weft-dev/weft/agent/security"
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
	def := security.Definition{Name: "b", Kind: security.KindBasicAuth, Username: "ada", Password: "s3cret"}
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
			v, err := security.NewVerifier(security.Definition{Name: "k", Kind: security.KindAPIKey, Header: tt.header, Key: "k-123"})
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
		def := security.Definition{Name: "k", Kind: security.KindAPIKey, Header: "X-Partner-Key", Key: "k-9"}
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
	def := security.Definition{
		Name: "partner", Kind: security.KindJWT, Algorithms: []string{"HS256"}, Secret: string(secret),
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
			v, err := security.NewVerifier(security.Definition{
				Name: "p", Kind: security.KindJWT, Algorithms: []string{tt.alg}, PublicKeyPEM: pubPEM,
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
