package security_test

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/weft-dev/weft/agent/security"
	"github.com/weft-dev/weft/agent/shared/secdef"
)

// issue makes a certificate signed by parent (self-signed when nil),
// valid around now, for client authentication; edit changes the template
// first.
func issue(t *testing.T, cn string, parent *certPair, edit func(*x509.Certificate)) *certPair {
	t.Helper()
	key := ecKey(t)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if edit != nil {
		edit(tmpl)
	}
	signer, signerCert := key, tmpl
	if parent != nil {
		signer, signerCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, &key.PublicKey, signer)
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
		key:     key,
		certPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		keyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})),
	}
}

// asCA makes a certificate a CA.
func asCA(c *x509.Certificate) {
	c.IsCA, c.BasicConstraintsValid = true, true
	c.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	c.ExtKeyUsage = nil
}

// serveTLS starts an HTTPS server that asks for client certificates as
// the agent's does (tls.RequestClientCert), verifies every request with v
// and answers the subject, or the AuthError.
func serveTLS(t *testing.T, v security.Verifier) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// callWithCert calls srv presenting chain (none when empty): the leaf
// first, then intermediates, the key of the leaf.
func callWithCert(t *testing.T, srv *httptest.Server, chain ...*certPair) result {
	t.Helper()
	client := srv.Client()
	tr := client.Transport.(*http.Transport).Clone()
	if len(chain) > 0 {
		c := tls.Certificate{PrivateKey: chain[0].key, Leaf: chain[0].cert}
		for _, p := range chain {
			c.Certificate = append(c.Certificate, p.cert.Raw)
		}
		tr.TLSClientConfig.Certificates = []tls.Certificate{c}
	}
	client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return result{resp.StatusCode, resp.Header.Get("WWW-Authenticate"), strings.TrimSpace(string(b))}
}

func TestClientCertVerifier(t *testing.T) {
	root := issue(t, "partners root", nil, asCA)
	inter := issue(t, "partners issuing", root, asCA)
	otherCA := issue(t, "other root", nil, asCA)
	uri, _ := url.Parse("spiffe://partners.example/billing")

	good := issue(t, "acme", root, nil)
	viaInter := issue(t, "beta", inter, nil)
	fromOther := issue(t, "acme", otherCA, nil)
	expired := issue(t, "acme", root, func(c *x509.Certificate) {
		c.NotBefore, c.NotAfter = time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)
	})
	serverOnly := issue(t, "acme", root, func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} })
	withSANs := issue(t, "", root, func(c *x509.Certificate) {
		c.DNSNames = []string{"API.Partners.example"}
		c.EmailAddresses = []string{"billing@acme.example"}
		c.URIs = []*url.URL{uri}
		c.IPAddresses = []net.IP{net.ParseIP("10.0.0.7")}
	})

	def := func(subjects, sans []string) secdef.Definition {
		return secdef.Definition{Name: "partners", Kind: secdef.KindTLSClientCert,
			CAPEM: root.certPEM, AllowedSubjects: subjects, AllowedSANs: sans}
	}
	tests := []struct {
		name     string
		def      secdef.Definition
		chain    []*certPair
		status   int
		body     string // the body has it
		bodyNot  string // and not this
		noHeader bool
	}{
		{"good", def(nil, nil), []*certPair{good}, 200, "ok acme", "", true},
		{"through an intermediate", def(nil, nil), []*certPair{viaInter, inter}, 200, "ok beta", "", true},
		{"intermediate not sent", def(nil, nil), []*certPair{viaInter}, 401, "is not signed by a CA this channel trusts", "", true},
		{"none", def(nil, nil), nil, 401, "a TLS client certificate is required; the connection presented none", "", true},
		{"other CA", def(nil, nil), []*certPair{fromOther}, 401, `(subject "CN=acme", issuer "CN=other root") is not signed by a CA this channel trusts`, "", true},
		{"expired", def(nil, nil), []*certPair{expired}, 401, "is expired or not valid yet", "", true},
		{"not for clients", def(nil, nil), []*certPair{serverOnly}, 401, "is not for TLS client authentication", "", true},
		{"subject allowed", def([]string{"zeta", "acme"}, nil), []*certPair{good}, 200, "ok acme", "", true},
		{"subject refused", def([]string{"zeta"}, []string{"acme"}), []*certPair{good}, 401, `client certificate (subject "CN=acme", issuer "CN=partners root") matches no allowed subject or subject alternative name`, "", true},
		{"subject is case-sensitive", def([]string{"ACME"}, nil), []*certPair{good}, 401, "matches no allowed", "", true},
		{"DNS SAN wildcard", def(nil, []string{"*.partners.example"}), []*certPair{withSANs}, 200, "ok API.Partners.example", "", true},
		{"DNS SAN exact, any case", def(nil, []string{"api.partners.example"}), []*certPair{withSANs}, 200, "ok", "", true},
		{"DNS SAN wildcard is one label", def(nil, []string{"*.example"}), []*certPair{withSANs}, 401, "matches no allowed", "", true},
		{"email SAN", def([]string{"zeta"}, []string{"billing@acme.example"}), []*certPair{withSANs}, 200, "ok", "", true},
		{"URI SAN", def(nil, []string{"spiffe://partners.example/billing"}), []*certPair{withSANs}, 200, "ok", "", true},
		{"IP SAN", def(nil, []string{"10.0.0.7"}), []*certPair{withSANs}, 200, "ok", "", true},
		{"SAN refused", def(nil, []string{"billing@other.example"}), []*certPair{withSANs}, 401, "matches no allowed", "", true},
		{"subject rules do not match SANs", def([]string{"api.partners.example"}, nil), []*certPair{withSANs}, 401, "matches no allowed", "", true},
		{"a bundle of CAs", secdef.Definition{Name: "p", Kind: secdef.KindTLSClientCert, CAPEM: otherCA.certPEM + root.certPEM}, []*certPair{good}, 200, "ok acme", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := security.NewVerifier(tt.def)
			if err != nil {
				t.Fatal(err)
			}
			got := callWithCert(t, serveTLS(t, v), tt.chain...)
			if got.status != tt.status || !strings.Contains(got.body, tt.body) {
				t.Fatalf("got %d %q, want %d with %q", got.status, got.body, tt.status, tt.body)
			}
			if tt.noHeader && got.challenge != "" {
				t.Errorf("WWW-Authenticate %q, want none: no HTTP scheme asks for a client certificate", got.challenge)
			}
		})
	}
}

func TestClientCertOverPlainHTTP(t *testing.T) {
	root := issue(t, "root", nil, asCA)
	v, err := security.NewVerifier(secdef.Definition{Name: "p", Kind: secdef.KindTLSClientCert, CAPEM: root.certPEM})
	if err != nil {
		t.Fatal(err)
	}
	got := call(t, serve(t, v), nil)
	if got.status != 401 || !strings.Contains(got.body, "a TLS client certificate over HTTPS is required; this request came over plain HTTP") {
		t.Fatalf("plain HTTP: %d %q", got.status, got.body)
	}
}

// TestClientCertClock checks the certificate at the verifier's clock.
func TestClientCertClock(t *testing.T) {
	root := issue(t, "root", nil, asCA)
	leaf := issue(t, "acme", root, nil)
	clock := newClock()
	clock.t = time.Now()
	v, err := security.NewVerifier(secdef.Definition{Name: "p", Kind: secdef.KindTLSClientCert, CAPEM: root.certPEM}, security.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	srv := serveTLS(t, v)
	if got := callWithCert(t, srv, leaf); got.status != 200 {
		t.Fatalf("now: %d %q", got.status, got.body)
	}
	clock.Advance(2 * time.Hour)
	if got := callWithCert(t, srv, leaf); got.status != 401 || !strings.Contains(got.body, "expired") {
		t.Fatalf("two hours later: %d %q, want 401 expired", got.status, got.body)
	}
}

func TestClientCertPrincipal(t *testing.T) {
	root := issue(t, "root", nil, asCA)
	leaf := issue(t, "acme", root, func(c *x509.Certificate) { c.DNSNames = []string{"acme.example"} })
	v, err := security.NewVerifier(secdef.Definition{Name: "p", Kind: secdef.KindTLSClientCert, CAPEM: root.certPEM})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "https://agent/", nil)
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf.cert}}
	p, err := v.Verify(r)
	if err != nil {
		t.Fatal(err)
	}
	if p.Definition != "p" || p.Kind != secdef.KindTLSClientCert || p.Subject != "acme" {
		t.Errorf("principal %+v", p)
	}
	if p.Claims["subject"] != "CN=acme" || p.Claims["issuer"] != "CN=root" {
		t.Errorf("claims %v", p.Claims)
	}
	if dns, _ := p.Claims["dns_names"].([]any); len(dns) != 1 || dns[0] != "acme.example" {
		t.Errorf("claims dns_names %v", p.Claims["dns_names"])
	}
}

func TestValidateClientCertDefinitions(t *testing.T) {
	root := issue(t, "root", nil, asCA)
	out := newCert(t, "client", false, nil, time.Now().Add(time.Hour))
	in := func(f func(*secdef.Definition)) secdef.Definition {
		d := secdef.Definition{Name: "x", Kind: secdef.KindTLSClientCert, CAPEM: root.certPEM}
		f(&d)
		return d
	}
	keyBlock := strings.Replace(out.keyPEM, "PRIVATE KEY", "EC PRIVATE KEY", 2)
	tests := []struct {
		name          string
		def           secdef.Definition
		want          string // "" for valid; else the exact message
		inbound, outb bool
	}{
		{"inbound", in(func(*secdef.Definition) {}), "", true, false},
		{"inbound with rules", in(func(d *secdef.Definition) {
			d.AllowedSubjects, d.AllowedSANs = []string{"acme", "*.acme.example"}, []string{"*.partners.example", "a@b.example", "spiffe://x/y"}
		}), "", true, false},
		{"both ways", in(func(d *secdef.Definition) { d.CertPEM, d.KeyPEM = out.certPEM, out.keyPEM }), "", true, true},
		{"outbound", secdef.Definition{Name: "x", Kind: secdef.KindTLSClientCert, CertPEM: out.certPEM, KeyPEM: out.keyPEM}, "", false, true},
		{"neither", secdef.Definition{Name: "x", Kind: secdef.KindTLSClientCert},
			`tls_client_cert "x": cert_pem is required (a certificate to present), or ca_pem (to check inbound client certificates)`, false, true},
		{"rules without ca", secdef.Definition{Name: "x", Kind: secdef.KindTLSClientCert, CertPEM: out.certPEM, KeyPEM: out.keyPEM, AllowedSANs: []string{"a"}},
			`tls_client_cert "x": allowed_sans used only with ca_pem, to check inbound client certificates`, false, true},
		{"not PEM", in(func(d *secdef.Definition) { d.CAPEM = "garbage" }), `tls_client_cert "x": ca_pem: no PEM block found`, true, false},
		{"second block is a key", in(func(d *secdef.Definition) { d.CAPEM += keyBlock }),
			`tls_client_cert "x": ca_pem: PEM block 2 is "EC PRIVATE KEY", want CERTIFICATE`, true, false},
		{"second block broken", in(func(d *secdef.Definition) {
			d.CAPEM += string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("nope")}))
		}), "", true, false}, // checked below: the message is x509's
		{"text after the blocks", in(func(d *secdef.Definition) { d.CAPEM += "trailing" }),
			`tls_client_cert "x": ca_pem: the text after PEM block 1 is not a PEM block`, true, false},
		{"empty subject", in(func(d *secdef.Definition) { d.AllowedSubjects = []string{"a", ""} }),
			`tls_client_cert "x": allowed_subjects[1] "": want a name without surrounding white space`, true, false},
		{"inner wildcard", in(func(d *secdef.Definition) { d.AllowedSANs = []string{"a.*.example"} }),
			`tls_client_cert "x": allowed_sans[0] "a.*.example": "*" is allowed only as a leading "*."`, true, false},
		{"wildcard email", in(func(d *secdef.Definition) { d.AllowedSANs = []string{"*.a@b.example"} }),
			`tls_client_cert "x": allowed_sans[0] "*.a@b.example": a "*." pattern matches DNS names, not email addresses or URIs`, true, false},
		{"bare wildcard", in(func(d *secdef.Definition) { d.AllowedSubjects = []string{"*."} }),
			`tls_client_cert "x": allowed_subjects[0] "*.": want a name after "*."`, true, false},
		{"stray field", in(func(d *secdef.Definition) { d.Token = "t" }), `tls_client_cert "x": token not used by tls_client_cert`, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.def.Validate()
			switch {
			case tt.name == "second block broken":
				if err == nil || !strings.HasPrefix(err.Error(), `tls_client_cert "x": ca_pem: PEM block 2: x509: `) {
					t.Fatalf("Validate() = %v, want one naming PEM block 2", err)
				}
			case tt.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || err.Error() != tt.want):
				t.Fatalf("Validate() = %v\nwant %s", err, tt.want)
			}
			if tt.def.Inbound() != tt.inbound || tt.def.Outbound() != tt.outb {
				t.Errorf("Inbound() %v Outbound() %v, want %v %v", tt.def.Inbound(), tt.def.Outbound(), tt.inbound, tt.outb)
			}
		})
	}
}

// TestClientCertDirections: an inbound-only definition presents nothing
// outbound, an outbound-only one verifies nothing inbound.
func TestClientCertDirections(t *testing.T) {
	root := issue(t, "root", nil, asCA)
	out := newCert(t, "client", false, nil, time.Now().Add(time.Hour))
	in := secdef.Definition{Name: "in", Kind: secdef.KindTLSClientCert, CAPEM: root.certPEM}
	if _, err := security.NewAuthenticator(in); err == nil || !strings.Contains(err.Error(), "inbound only") {
		t.Errorf("NewAuthenticator(inbound tls_client_cert) = %v", err)
	}
	if _, err := in.TLSConfig(); err == nil {
		t.Error("TLSConfig() of an inbound tls_client_cert gave a config")
	}
	outDef := secdef.Definition{Name: "out", Kind: secdef.KindTLSClientCert, CertPEM: out.certPEM, KeyPEM: out.keyPEM}
	if _, err := security.NewVerifier(outDef); err == nil || !strings.Contains(err.Error(), "outbound only") {
		t.Errorf("NewVerifier(outbound tls_client_cert) = %v", err)
	}
}
