package e2e

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-dev/weft/agent/security"
	"github.com/weft-dev/weft/agent/shared/secdef"
	"github.com/weft-dev/weft/tests/testenv"
)

// remote is the world outside Weft that the tests call through outgoing
// connections and that calls Weft's channels: plain HTTP servers A and B,
// an HTTPS server with a self-signed certificate, one that also requires a
// client certificate, an OAuth2 token endpoint, a JWKS endpoint and a SOAP
// service. What credentials it accepts can change while it runs.
type remote struct {
	a, b, tls, mtls *httptest.Server

	serverCAFile string // PEM of the HTTPS servers' certificate
	clientCert   testenv.CertFiles
	otherCert    testenv.CertFiles // a client certificate from a CA the server does not trust

	rsaKey *rsa.PrivateKey
	ecKey  *ecdsa.PrivateKey
	rsaPub string // PEM file path
	hsKey  string // HS256 secret of inbound and outbound JWTs

	mu   sync.Mutex
	want map[string]string // what each /check/{kind} accepts
}

// The credentials the remote accepts at first.
const (
	basicUser      = "weft"
	basicPassword  = "basic-secret-1"
	apiKeyHeader   = "X-Partner-Key"
	apiKeyValue    = "key-secret-1"
	bearerToken    = "bearer-secret-1"
	oauthClientID  = "weft-client"
	oauthSecret    = "oauth-secret-1"
	oauthToken     = "oauth-access-token-1"
	jwtIssuer      = "partner"
	jwtAudience    = "weft"
	quotePrice     = 42.5
	quotesAction   = "urn:quotes#GetQuote"
	jwksKeyID      = "es-key-1"
	hsSecretLength = 40
)

func newRemote(t *testing.T) *remote {
	t.Helper()
	dir := t.TempDir()
	r := &remote{
		want: map[string]string{
			"basic":         basicUser + ":" + basicPassword,
			"apikey":        apiKeyValue,
			"bearer":        bearerToken,
			"oauth2":        oauthToken,
			"oauth2-secret": oauthSecret,
			"tlscert":       "client.weft.test",
		},
		hsKey: strings.Repeat("h", hsSecretLength),
	}
	var err error
	if r.rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if r.ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&r.rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	r.rsaPub = testenv.WritePEM(t, dir, "rsa-pub.pem", "PUBLIC KEY", der)

	clientCA := testenv.NewCA(t, "client CA")
	r.clientCert = clientCA.ClientCert(t, dir, "client", "client.weft.test")
	r.otherCert = testenv.NewCA(t, "other CA").ClientCert(t, dir, "other", "client.weft.test")

	mux := http.NewServeMux()
	mux.HandleFunc("GET /customers/{id}", r.customer)
	mux.HandleFunc("GET /check/{kind}", r.check)
	mux.HandleFunc("POST /token", r.token)
	mux.HandleFunc("GET /jwks", r.jwks)
	mux.HandleFunc("POST /soap", r.soap)

	r.a = httptest.NewServer(withServer("A", mux))
	r.b = httptest.NewServer(withServer("B", mux))
	r.tls = httptest.NewTLSServer(withServer("TLS", mux))
	r.mtls = httptest.NewUnstartedServer(withServer("mTLS", mux))
	pool := x509.NewCertPool()
	pool.AddCert(clientCA.Cert)
	r.mtls.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	r.mtls.StartTLS()
	for _, s := range []*httptest.Server{r.a, r.b, r.tls, r.mtls} {
		t.Cleanup(s.Close)
	}
	// httptest gives every TLS server the same self-signed certificate.
	r.serverCAFile = testenv.WritePEM(t, dir, "server-ca.pem", "CERTIFICATE", r.tls.Certificate().Raw)
	return r
}

// accept changes what /check/{kind} accepts.
func (r *remote) accept(kind, value string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.want[kind] = value
}

func (r *remote) wanted(kind string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.want[kind]
}

// withServer names the server in every answer's X-Server header.
func withServer(name string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("X-Server", name)
		h.ServeHTTP(w, req)
	})
}

func (r *remote) customer(w http.ResponseWriter, req *http.Request) {
	id := req.PathValue("id")
	writeJSON(w, http.StatusOK, map[string]any{"id": json.Number(id), "name": "Customer " + id, "server": w.Header().Get("X-Server")})
}

// check answers 200 when the request carries the credential of its kind,
// else 401.
func (r *remote) check(w http.ResponseWriter, req *http.Request) {
	kind := req.PathValue("kind")
	want := r.wanted(kind)
	var got string
	switch kind {
	case "basic":
		u, p, _ := req.BasicAuth()
		got = u + ":" + p
	case "apikey":
		got = req.Header.Get(apiKeyHeader)
	case "bearer", "oauth2":
		got = strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer ")
	case "jwt":
		v, err := security.NewVerifier(secdef.Definition{Name: "remote", Kind: secdef.KindJWT, Algorithms: []string{secdef.HS256}, Secret: r.hsKey, Issuer: "weft", Audience: "partner"})
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]any{"error": err.Error()})
			return
		}
		if _, err := v.Verify(req); err != nil {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"error": err.Error()})
			return
		}
		got, want = "ok", "ok"
	case "tlscert":
		if req.TLS != nil && len(req.TLS.PeerCertificates) > 0 {
			got = req.TLS.PeerCertificates[0].Subject.CommonName
		}
	}
	if want == "" || got != want {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "bad " + kind + " credential"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "kind": kind, "server": w.Header().Get("X-Server")})
}

// token is an OAuth2 token endpoint for the client credentials grant.
func (r *remote) token(w http.ResponseWriter, req *http.Request) {
	id, secret, _ := req.BasicAuth()
	if req.FormValue("grant_type") != "client_credentials" || id != oauthClientID || secret != r.wanted("oauth2-secret") {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_client"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"access_token": oauthToken, "token_type": "Bearer", "expires_in": 3600})
}

// jwks publishes the EC key inbound ES256 JWTs are signed with.
func (r *remote) jwks(w http.ResponseWriter, _ *http.Request) {
	pub := r.ecKey.PublicKey
	writeJSON(w, http.StatusOK, map[string]any{"keys": []map[string]string{{
		"kty": "EC", "crv": "P-256", "kid": jwksKeyID, "alg": "ES256", "use": "sig",
		"x": b64(pub.X.FillBytes(make([]byte, 32))),
		"y": b64(pub.Y.FillBytes(make([]byte, 32))),
	}}})
}

// soap is a SOAP 1.1 quotes service: GetQuote answers a fixed price, and a
// Fault for an unknown symbol.
func (r *remote) soap(w http.ResponseWriter, req *http.Request) {
	var env struct {
		Body struct {
			GetQuote struct {
				Symbol string `xml:"Symbol"`
			} `xml:"urn:quotes GetQuote"`
		} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Body"`
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	if err := xml.NewDecoder(req.Body).Decode(&env); err != nil || strings.Trim(req.Header.Get("SOAPAction"), `"`) != quotesAction {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>bad request (SOAPAction %q)</faultstring></s:Fault></s:Body></s:Envelope>`, req.Header.Get("SOAPAction"))
		return
	}
	if env.Body.GetQuote.Symbol != "WFT" {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>unknown symbol %s</faultstring></s:Fault></s:Body></s:Envelope>`, env.Body.GetQuote.Symbol)
		return
	}
	fmt.Fprintf(w, `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><q:GetQuoteResponse xmlns:q="urn:quotes"><q:Price>%g</q:Price></q:GetQuoteResponse></s:Body></s:Envelope>`, quotePrice)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// signJWT makes a JWT with claims, signed with HS256 (key []byte), RS256
// (*rsa.PrivateKey) or ES256 (*ecdsa.PrivateKey).
func signJWT(t *testing.T, key any, kid string, claims map[string]any) string {
	t.Helper()
	alg := "HS256"
	switch key.(type) {
	case *rsa.PrivateKey:
		alg = "RS256"
	case *ecdsa.PrivateKey:
		alg = "ES256"
	}
	hdr := map[string]string{"alg": alg, "typ": "JWT"}
	if kid != "" {
		hdr["kid"] = kid
	}
	h, _ := json.Marshal(hdr)
	c, _ := json.Marshal(claims)
	signed := b64(h) + "." + b64(c)
	digest := sha256.Sum256([]byte(signed))
	var sig []byte
	switch k := key.(type) {
	case []byte:
		m := hmac.New(sha256.New, k)
		m.Write([]byte(signed))
		sig = m.Sum(nil)
	case *rsa.PrivateKey:
		var err error
		if sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, digest[:]); err != nil {
			t.Fatal(err)
		}
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		sig = append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	}
	return signed + "." + b64(sig)
}

// jwtClaims are good claims for an inbound JWT.
func jwtClaims(sub string) map[string]any {
	now := time.Now()
	return map[string]any{"iss": jwtIssuer, "aud": jwtAudience, "sub": sub, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
}
