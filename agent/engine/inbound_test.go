package engine

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/weft-dev/weft/agent/channel"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// TestApplyInboundDefinitions builds the verifiers of an introspecting
// bearer definition and of a tls_client_cert definition with CAs, which
// have no credential to present outbound, and serves channels with them.
func TestApplyInboundDefinitions(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"active": r.PostFormValue("token") == "good", "sub": "ada"})
	}))
	defer idp.Close()

	objs := newRelayObjects("http://backend.invalid")
	objs.security = append(objs.security,
		&adminv1.SecurityDefinition{Name: "idp", Kind: "bearer", IntrospectionUrl: idp.URL, ClientId: "weft", ClientSecret: "s", CacheSeconds: 5},
		&adminv1.SecurityDefinition{Name: "mtls", Kind: "tls_client_cert", CaPem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
			AllowedSubjects: []string{"acme"}, AllowedSans: []string{"*.acme.example"}})
	objs.channels = append(objs.channels,
		&adminv1.Channel{Name: "by-token", Path: "/by-token", Methods: []string{"POST"}, Service: "relay.get", Active: proto.Bool(true), Security: "idp"},
		&adminv1.Channel{Name: "by-cert", Path: "/by-cert", Methods: []string{"POST"}, Service: "relay.get", Active: proto.Bool(true), Security: "mtls"})
	e := New(slog.New(slog.DiscardHandler), 5*time.Second)
	objs.apply(t, e, 1)
	if c := e.Current().conns; c.verifiers["idp"] == nil || c.verifiers["mtls"] == nil || c.auths["idp"] != nil || c.auths["mtls"] != nil || c.certs["mtls"] != nil {
		t.Fatalf("verifiers %v, authenticators %v, certificates %v", c.verifiers, c.auths, c.certs)
	}
	srv := httptest.NewServer(&channel.Handler{Current: e.Route, MaxBodyBytes: 1 << 20, NewCID: NewCID, Log: slog.New(slog.DiscardHandler)})
	defer srv.Close()
	post := func(path, token string) (int, string) {
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(`{"id":"1"}`))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Error string `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body.Error
	}
	if status, msg := post("/by-token", "bad"); status != 401 || msg != "token is not active" {
		t.Errorf("an inactive token: %d %q", status, msg)
	}
	if status, msg := post("/by-cert", ""); status != 401 || !strings.Contains(msg, "client certificate over HTTPS is required") {
		t.Errorf("plain HTTP on a client certificate channel: %d %q", status, msg)
	}
	// The good token passes the check; relay.get then fails on its
	// backend, which does not exist: anything but a 401 will do.
	if status, msg := post("/by-token", "good"); status == 401 {
		t.Errorf("an active token: %d %q", status, msg)
	}
}
