package security_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/weft-dev/weft/agent/security"
	"github.com/weft-dev/weft/agent/shared/secdef"
)

// jwksServer serves a settable key set and counts fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    []map[string]string
	fetches int
	fail    bool
}

func newJWKSServer(t *testing.T) *jwksServer {
	s := &jwksServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.fetches++
		if s.fail {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"keys": s.keys})
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(keys ...map[string]string) {
	s.mu.Lock()
	s.keys = keys
	s.mu.Unlock()
}

func (s *jwksServer) setFail(fail bool) {
	s.mu.Lock()
	s.fail = fail
	s.mu.Unlock()
}

func (s *jwksServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches
}

func rsaJWK(kid string, k *rsa.PublicKey) map[string]string {
	return map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
		"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
}

func ecJWK(t *testing.T, kid string, k *ecdsa.PublicKey) map[string]string {
	raw, err := k.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{"kty": "EC", "kid": kid, "crv": "P-256", "x": b64(raw[1:33]), "y": b64(raw[33:])}
}

func TestJWKSRotation(t *testing.T) {
	rk1, rk2 := rsaKeys(t)
	ek := ecKey(t)
	idp := newJWKSServer(t)
	idp.set(rsaJWK("r1", &rk1.PublicKey), ecJWK(t, "e1", &ek.PublicKey),
		map[string]string{"kty": "oct", "kid": "ignored", "k": "c2VjcmV0"})
	clock := newClock()
	const ttl, minInterval = time.Hour, 30 * time.Second
	v, err := security.NewVerifier(secdef.Definition{
		Name: "idp", Kind: secdef.KindJWT, Algorithms: []string{"RS256", "ES256"},
		JWKSURL: idp.URL, Issuer: "https://issuer.test",
	}, security.WithClock(clock.Now), security.WithJWKSRefresh(ttl, minInterval),
		security.WithHTTPClient(&http.Client{Timeout: 5 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, v)
	try := func(alg, kid string, key any) result {
		// Claims are dated at the (moving) test clock.
		c := claims(map[string]any{"iat": clock.Now().Unix(), "exp": clock.Now().Add(time.Hour).Unix()})
		tok := signJWT(t, alg, kid, key, c)
		return call(t, srv, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) })
	}
	steps := []struct {
		name    string
		before  func()
		alg     string
		kid     string
		key     any
		want    string
		fetches int
	}{
		{"first use fetches", nil, "RS256", "r1", rk1, "", 1},
		{"cached", nil, "RS256", "r1", rk1, "", 1},
		{"EC key from the same set", nil, "ES256", "e1", ek, "", 1},
		{"kid with wrong alg, within min interval", nil, "ES256", "r1", ek, "token signing key is not known", 1},
		{"rotated key, refresh limited", func() { idp.set(rsaJWK("r2", &rk2.PublicKey)) }, "RS256", "r2", rk2, "token signing key is not known", 1},
		{"rotated key after min interval", func() { clock.Advance(minInterval) }, "RS256", "r2", rk2, "", 2},
		{"old key gone", func() { clock.Advance(minInterval) }, "RS256", "r1", rk1, "token signing key is not known", 3},
		{"key signed by another key", func() { clock.Advance(minInterval) }, "RS256", "r2", rk1, "token signature is invalid", 3},
		{"ttl expiry refetches", func() { clock.Advance(ttl) }, "RS256", "r2", rk2, "", 4},
		{"outage keeps stale keys", func() { idp.setFail(true); clock.Advance(ttl) }, "RS256", "r2", rk2, "", 5},
		{"outage is rate limited", nil, "RS256", "r9", rk2, "token signing key is not known", 5},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if s.before != nil {
				s.before()
			}
			checkJWTResult(t, try(s.alg, s.kid, s.key), s.want, "ok partner-1")
			if got := idp.count(); got != s.fetches {
				t.Fatalf("fetches = %d, want %d", got, s.fetches)
			}
		})
	}
}

func TestJWKSUnavailable(t *testing.T) {
	idp := newJWKSServer(t)
	idp.setFail(true)
	rk, _ := rsaKeys(t)
	v, err := security.NewVerifier(secdef.Definition{
		Name: "idp", Kind: secdef.KindJWT, Algorithms: []string{"RS256"}, JWKSURL: idp.URL, Issuer: "https://issuer.test",
	}, security.WithClock(func() time.Time { return testNow }))
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, v)
	tok := signJWT(t, "RS256", "r1", rk, claims(nil))
	for range 3 {
		got := call(t, srv, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) })
		checkJWTResult(t, got, "token signing key is not known", "")
	}
	if got := idp.count(); got != 1 {
		t.Fatalf("fetches = %d, want 1 (rate limited)", got)
	}
}

func TestJWKSConcurrentVerifiersShareOneFetch(t *testing.T) {
	rk, _ := rsaKeys(t)
	idp := newJWKSServer(t)
	idp.set(rsaJWK("r1", &rk.PublicKey))
	v, err := security.NewVerifier(secdef.Definition{
		Name: "idp", Kind: secdef.KindJWT, Algorithms: []string{"RS256"}, JWKSURL: idp.URL, Issuer: "https://issuer.test",
	}, security.WithClock(func() time.Time { return testNow }))
	if err != nil {
		t.Fatal(err)
	}
	tok := signJWT(t, "RS256", "r1", rk, claims(nil))
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			if _, err := v.Verify(r); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := idp.count(); got != 1 {
		t.Fatalf("fetches = %d, want 1", got)
	}
}

// TestJWKSSkipsUnusableKeys checks that keys go-jose cannot read, or that
// are too weak or not for signing, are skipped one by one, and that a set
// with none left is not used.
func TestJWKSSkipsUnusableKeys(t *testing.T) {
	rk1, rk2 := rsaKeys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ek, ek384 := ecKey(t), func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}()
	raw384, err := ek384.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	enc := rsaJWK("enc", &rk1.PublicKey)
	enc["use"] = "enc"
	evenE := rsaJWK("even-e", &rk1.PublicKey)
	evenE["e"] = b64([]byte{2})
	// A private JWK still verifies with its public half.
	var priv map[string]string
	if b, err := json.Marshal(jose.JSONWebKey{Key: ek, KeyID: "priv", Algorithm: "ES256", Use: "sig"}); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(b, &priv); err != nil {
		t.Fatal(err)
	}
	if priv["d"] == "" {
		t.Fatal("the private JWK has no d")
	}
	idp := newJWKSServer(t)
	idp.set(
		rsaJWK("small", &small.PublicKey),
		map[string]string{"kty": "EC", "kid": "p384", "crv": "P-384", "x": b64(raw384[1:49]), "y": b64(raw384[49:])},
		map[string]string{"kty": "EC", "kid": "off-curve", "crv": "P-256", "x": b64(make([]byte, 32)), "y": b64(make([]byte, 32))},
		map[string]string{"kty": "RSA", "kid": "bad-n", "n": "!!", "e": "AQAB"},
		map[string]string{"kty": "foo", "kid": "foo"},
		map[string]string{"kid": "no-kty"},
		enc, evenE, priv,
		rsaJWK("good", &rk2.PublicKey),
	)
	v, err := security.NewVerifier(secdef.Definition{
		Name: "idp", Kind: secdef.KindJWT, Algorithms: []string{"RS256", "ES256"}, JWKSURL: idp.URL, Issuer: "https://issuer.test",
	}, security.WithClock(func() time.Time { return testNow }))
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, v)
	tests := []struct {
		name string
		alg  string
		kid  string
		key  any
		want string
	}{
		{"good key", "RS256", "good", rk2, ""},
		{"private JWK", "ES256", "priv", ek, ""},
		{"no kid tries every key", "RS256", "", rk2, ""},
		{"RSA under 2048 bits", "RS256", "small", small, "token signing key is not known"},
		{"encryption key", "RS256", "enc", rk1, "token signing key is not known"},
		{"even exponent", "RS256", "even-e", rk1, "token signing key is not known"},
		{"P-384", "ES256", "p384", ek, "token signing key is not known"},
		{"no kid, no key of that signer", "RS256", "", rk1, "token signature is invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := signJWT(t, tt.alg, tt.kid, tt.key, claims(nil))
			got := call(t, srv, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) })
			checkJWTResult(t, got, tt.want, "ok partner-1")
		})
	}

	t.Run("nothing usable", func(t *testing.T) {
		idp := newJWKSServer(t)
		idp.set(rsaJWK("small", &small.PublicKey), enc)
		v, err := security.NewVerifier(secdef.Definition{
			Name: "idp", Kind: secdef.KindJWT, Algorithms: []string{"RS256"}, JWKSURL: idp.URL, Issuer: "https://issuer.test",
		}, security.WithClock(func() time.Time { return testNow }))
		if err != nil {
			t.Fatal(err)
		}
		tok := signJWT(t, "RS256", "enc", rk1, claims(nil))
		checkJWTResult(t, call(t, serve(t, v), func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }),
			"token signing key is not known", "")
	})
}
