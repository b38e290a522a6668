package channel

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/weft-dev/weft/agent/security"
	"github.com/weft-dev/weft/agent/shared/secdef"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// testCert is a certificate and its key.
type testCert struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// pem is the certificate as PEM.
func (c testCert) pem() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.cert.Raw}))
}

// tlsCert is the certificate for a tls.Config.
func (c testCert) tlsCert() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{c.cert.Raw}, PrivateKey: c.key, Leaf: c.cert}
}

// makeCert makes a client certificate for cn signed by ca, or a CA when ca
// is nil.
func makeCert(t *testing.T, cn string, ca *testCert) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	parent, signer := tmpl, key
	if ca == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.KeyUsage, tmpl.ExtKeyUsage = true, true, x509.KeyUsageCertSign, nil
	} else {
		parent, signer = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return testCert{cert, key}
}

// sendTLS posts JSON to url presenting cert, if any.
func sendTLS(t *testing.T, srv *httptest.Server, path string, cert *testCert) (*http.Response, []byte) {
	t.Helper()
	tr := srv.Client().Transport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	if cert != nil {
		tr.TLSClientConfig.Certificates = []tls.Certificate{cert.tlsCert()}
	}
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Post(srv.URL+path, "application/json", strings.NewReader(`{"n":1}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// TestHandlerClientCert serves a channel protected by a tls_client_cert
// definition over HTTPS, asking for client certificates as the agent's
// workers do, and over plain HTTP.
func TestHandlerClientCert(t *testing.T) {
	ca := makeCert(t, "partners CA", nil)
	other := makeCert(t, "other CA", nil)
	good := makeCert(t, "acme", &ca)
	foreign := makeCert(t, "acme", &other)
	v, err := security.NewVerifier(secdef.Definition{Name: "mtls", Kind: secdef.KindTLSClientCert, CAPEM: ca.pem()})
	if err != nil {
		t.Fatal(err)
	}
	var chans []*adminv1.Channel
	for _, f := range []string{"json", "soap12"} {
		chans = append(chans, &adminv1.Channel{Name: "m-" + f, Path: "/m/" + f, Methods: []string{"POST"}, Service: "svc", Active: proto.Bool(true), DataFormat: f, Security: "mtls"})
	}
	router, err := NewRouter(chans, map[string]security.Verifier{"mtls": v})
	if err != nil {
		t.Fatal(err)
	}
	inv := &recorder{}
	srv := httptest.NewUnstartedServer(newTestHandler(router, inv))
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	defer srv.Close()

	resp, body := sendTLS(t, srv, "/m/json", &good)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a good certificate: %d %s", resp.StatusCode, body)
	}
	if req, _ := inv.last(); req.Principal.Security != "mtls" || req.Principal.Subject != "acme" || req.Principal.Claims["issuer"] != "CN=partners CA" {
		t.Errorf("Principal = %+v", req.Principal)
	}
	for _, tt := range []struct {
		name string
		cert *testCert
		msg  string
	}{
		{"none", nil, "a TLS client certificate is required"},
		{"from another CA", &foreign, "is not signed by a CA this channel trusts"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := sendTLS(t, srv, "/m/json", tt.cert)
			if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != "" {
				t.Fatalf("%d (WWW-Authenticate %q) %s, want 401 with no challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
			}
			if e := readError(t, "json", resp, body); !strings.Contains(e.Message, tt.msg) || e.CID != "cid-test" {
				t.Fatalf("error %+v, want %q", e, tt.msg)
			}
		})
	}
	t.Run("SOAP keeps the 401", func(t *testing.T) {
		tr := srv.Client().Transport.(*http.Transport).Clone()
		defer tr.CloseIdleConnections()
		w := requestIn("soap12", "Op")
		resp, err := (&http.Client{Transport: tr}).Post(srv.URL+"/m/soap12", w.contentType, strings.NewReader(w.body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%d %s, want 401", resp.StatusCode, body)
		}
		if e := readError(t, "soap12", resp, body); e.Code != "env:Sender" || !strings.Contains(e.Message, "client certificate is required") {
			t.Fatalf("fault %+v", e)
		}
	})
	t.Run("plain HTTP", func(t *testing.T) {
		plain := httptest.NewServer(newTestHandler(router, inv))
		defer plain.Close()
		resp, body := send(t, plain.URL+"/m/json", "json", "", nil)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%d %s, want 401", resp.StatusCode, body)
		}
		if e := readError(t, "json", resp, body); !strings.Contains(e.Message, "client certificate over HTTPS is required") {
			t.Fatalf("error %+v", e)
		}
	})
}

// TestHandlerIntrospection serves a channel whose bearer tokens an
// introspection endpoint checks: a token it says is active passes, one it
// says is not gets 401, and an endpoint that fails makes a 503.
func TestHandlerIntrospection(t *testing.T) {
	var mu sync.Mutex
	down := false
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if down {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		active := r.PostFormValue("token") == "good"
		json.NewEncoder(w).Encode(map[string]any{"active": active, "sub": "ada"})
	}))
	defer endpoint.Close()
	v, err := security.NewVerifier(secdef.Definition{Name: "idp", Kind: secdef.KindBearer,
		IntrospectionURL: endpoint.URL, ClientID: "weft", ClientSecret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	router, err := NewRouter([]*adminv1.Channel{
		{Name: "i", Path: "/i", Methods: []string{"POST"}, Service: "svc", Active: proto.Bool(true), Security: "idp"},
		{Name: "i11", Path: "/i11", Methods: []string{"POST"}, Service: "svc", Active: proto.Bool(true), Security: "idp", DataFormat: "soap11"},
	}, map[string]security.Verifier{"idp": v})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newTestHandler(router, &recorder{}))
	defer srv.Close()

	resp, body := send(t, srv.URL+"/i", "json", "", map[string]string{"Authorization": "Bearer good"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("an active token: %d %s", resp.StatusCode, body)
	}
	if got, _ := readReply(t, "json", body); got.Subject != "ada" || got.Security != "idp" {
		t.Errorf("the service saw %+v", got)
	}
	resp, body = send(t, srv.URL+"/i", "json", "", map[string]string{"Authorization": "Bearer bad"})
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("an inactive token: %d (WWW-Authenticate %q) %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
	}
	mu.Lock()
	down = true
	mu.Unlock()
	resp, body = send(t, srv.URL+"/i", "json", "", map[string]string{"Authorization": "Bearer other"})
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("WWW-Authenticate") != "" {
		t.Fatalf("endpoint down: %d (WWW-Authenticate %q) %s, want 503 with no challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
	}
	if e := readError(t, "json", resp, body); !strings.Contains(e.Message, "introspection endpoint is unavailable") {
		t.Fatalf("error %+v", e)
	}
	// On SOAP 1.1 every fault is a 500; a server fault, not a client one.
	resp, body = send(t, srv.URL+"/i11", "soap11", "Op", map[string]string{"Authorization": "Bearer other"})
	if e := readError(t, "soap11", resp, body); resp.StatusCode != http.StatusInternalServerError || e.Code != "soap:Server" {
		t.Fatalf("endpoint down on SOAP 1.1: %d %+v", resp.StatusCode, e)
	}
}
