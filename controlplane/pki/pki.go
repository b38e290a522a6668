// Package pki is the control plane's certificate authority: it makes the
// CA on first start (or loads one an operator brings), issues the control
// plane's own server certificate, and signs the certificates agents
// enroll for, each bound to one agent id. The crypto is the standard
// library's; this package only decides what goes into a certificate.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"regexp"
	"sync"
	"time"
)

// CA signs the control plane's and the agents' certificates.
type CA struct {
	cert    *x509.Certificate
	certPEM []byte
	key     crypto.Signer
	now     func() time.Time

	mu     sync.Mutex
	server *tls.Certificate // the current server certificate, nil before the first
}

// caLifetime is how long a CA made on first start is valid.
const caLifetime = 10 * 365 * 24 * time.Hour

// serverLifetime is how long the control plane's server certificate is
// valid; it is issued again, in memory, once two thirds of it has passed.
const serverLifetime = 30 * 24 * time.Hour

// backdate is how far before now a certificate's validity starts, for
// clocks that run a little behind the control plane's. Agent certificates
// are not backdated: revocation compares their start with its time.
const backdate = 5 * time.Minute

// NewCA makes a CA: an ECDSA P-256 key and a self-signed certificate named
// name. It returns its certificate and key, PEM, for the store.
func NewCA(name string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("make CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"Weft"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("make CA certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode CA key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// LoadCA reads a CA from its certificate and private key, PEM. The
// certificate must be a CA's and the key must match it.
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("CA certificate %q is not a CA's (it needs basic constraints CA:TRUE and the certSign key usage)", cert.Subject.CommonName)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, errors.New("CA key: cannot sign")
	}
	return &CA{cert: cert, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), key: signer, now: time.Now}, nil
}

// parseCert reads the first certificate of a PEM text.
func parseCert(certPEM []byte) (*x509.Certificate, error) {
	for rest := certPEM; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no CERTIFICATE block in the PEM text")
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		return x509.ParseCertificate(block.Bytes)
	}
}

// Certificate is the CA's certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// CertPEM is the CA's certificate, PEM: what clients trust.
func (ca *CA) CertPEM() []byte { return ca.certPEM }

// Pool is a pool holding only the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// Fingerprint is the CA certificate's sha256 as "sha256:HEX": what
// weft-agent --ca-fingerprint takes.
func (ca *CA) Fingerprint() string { return Fingerprint(ca.cert.Raw) }

// Fingerprint is the sha256 of a certificate's DER as "sha256:HEX".
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ServerCertificate returns the control plane's server certificate for
// hosts (DNS names and IP addresses), issuing a new one when there is none
// or two thirds of its life have passed. Its chain holds the CA, so that an
// agent that knows only the CA's fingerprint can check it.
func (ca *CA) ServerCertificate(hosts []string) (*tls.Certificate, error) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	now := ca.now()
	if c := ca.server; c != nil && now.Before(c.Leaf.NotAfter.Add(-serverLifetime/3)) {
		return c, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("make server key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "weft-controlplane", Organization: []string{"Weft"}},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(serverLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("issue server certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("issue server certificate: %w", err)
	}
	ca.server = &tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: key, Leaf: leaf}
	return ca.server, nil
}

// AgentCertificate signs a certificate for agent id from its PKCS #10
// request (DER), valid for lifetime from now: the subject's common name is
// the id, and it serves only as a TLS client certificate.
func (ca *CA) AgentCertificate(id string, csrDER []byte, lifetime time.Duration) (*x509.Certificate, []byte, error) {
	if err := CheckAgentID(id); err != nil {
		return nil, nil, err
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, nil, fmt.Errorf("csr_der: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, nil, fmt.Errorf("csr_der: signature: %w", err)
	}
	switch k := csr.PublicKey.(type) {
	case *ecdsa.PublicKey, ed25519.PublicKey:
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, nil, fmt.Errorf("csr_der: an RSA key of %d bits; at least 2048", k.N.BitLen())
		}
	default:
		return nil, nil, fmt.Errorf("csr_der: a %T key; want ECDSA, Ed25519 or RSA", k)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	now := ca.now().Truncate(time.Second)
	notAfter := now.Add(lifetime)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: id, Organization: []string{"Weft agents"}},
		NotBefore:    now,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, csr.PublicKey, ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("issue agent certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("issue agent certificate: %w", err)
	}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// AgentID is the agent id a verified client certificate binds: its
// subject's common name. An empty id is an error: such a certificate is
// not an agent's.
func AgentID(cert *x509.Certificate) (string, error) {
	id := cert.Subject.CommonName
	if err := CheckAgentID(id); err != nil {
		return "", fmt.Errorf("client certificate: %w", err)
	}
	return id, nil
}

// AgentIDPattern is what an agent id may look like: it appears in URLs,
// file names and certificates. The agent API refuses any other.
var AgentIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// CheckAgentID refuses an id that cannot name an agent.
func CheckAgentID(id string) error {
	if !AgentIDPattern.MatchString(id) {
		return fmt.Errorf("agent id %q: want 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit", id)
	}
	return nil
}

// Serial is a certificate's serial number, hex.
func Serial(cert *x509.Certificate) string { return cert.SerialNumber.Text(16) }

// newSerial is a random 128-bit serial number.
func newSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("make serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}
