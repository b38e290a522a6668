// Package identity keeps an agent's identity in its state directory: the
// key and the certificate that bind the agent to its id, and the control
// plane's CA, the one CA the agent trusts. It enrolls the agent with a join
// token, gives the control client its mutual TLS credentials, and renews the
// certificate before it expires.
//
// The files are in DIR/identity, DIR being the agent's --state-dir:
// agent.key (ECDSA P-256, PKCS #8 PEM, 0600), agent.crt and ca.pem. Each is
// written atomically; the key is written beside the old one and takes its
// place only once the certificate for it is stored, so that a crash never
// leaves a certificate with a key that is not its own.
package identity

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/credentials"

	"github.com/weft-dev/weft/agent/state"
)

// The identity's files, in DirName under the state directory.
const (
	DirName  = "identity"
	KeyFile  = "agent.key"
	CertFile = "agent.crt"
	CAFile   = "ca.pem"
	// nextKeyFile holds a new key until its certificate is stored.
	nextKeyFile = "agent.key.next"
)

// Dir returns the directory of the identity of the agent whose state
// directory is stateDir.
func Dir(stateDir string) string { return filepath.Join(stateDir, DirName) }

// enrollHint says how to enroll; weftctl agent token create prints both.
const enrollHint = "--join TOKEN --ca-fingerprint sha256:... (weftctl agent token create prints both)"

// Config says who the agent is, where it keeps its identity, and how it
// enrolls when it has none.
type Config struct {
	// StateDir is the agent's state directory; the identity is in its
	// DirName subdirectory.
	StateDir string
	// ID is the agent's id, the common name of its certificate.
	ID string
	// ControlPlane is the control plane's address, host:port; its host is
	// the name the control plane's certificate must carry.
	ControlPlane string
	// JoinToken is the one-time token to enroll with; empty for none.
	JoinToken string
	// CAFingerprint names the CA the control plane must present when the
	// agent enrolls, as Fingerprint writes it.
	CAFingerprint string
	// CAFile is a PEM bundle of CAs to verify the control plane with when
	// the agent enrolls, instead of CAFingerprint.
	CAFile string
}

// Identity is an agent's identity: its certificate and key, and the CA it
// trusts. It is safe for concurrent use; a renewal replaces the certificate
// under the connections that use it.
type Identity struct {
	cfg    Config
	dir    string
	server string // the name the control plane's certificate must carry
	log    *slog.Logger
	// The CAs the agent may enroll with, by fingerprint, and the flag that
	// names them. With a bundle, the control plane is verified against it.
	want      []string
	bundle    *x509.CertPool
	trustFlag string

	mu     sync.Mutex
	cert   *tls.Certificate // with Leaf; nil until the agent has one
	ca     *x509.Certificate
	roots  *x509.CertPool // holds ca alone
	enroll bool           // the agent must enroll before it connects
}

// Open reads the identity kept in cfg.StateDir and says whether the agent
// may start with it. It refuses an identity of another id, and, without a
// join token, a missing or damaged identity or one from another CA than
// the configured one; with a join token those enroll again (see Enroll).
// An expired certificate without a join token is logged, not refused: the
// agent serves its last good state, and cannot reconnect until it enrolls
// again.
func Open(cfg Config, log *slog.Logger) (*Identity, error) {
	id := &Identity{cfg: cfg, dir: Dir(cfg.StateDir), server: ServerName(cfg.ControlPlane), log: log.With("component", "identity")}
	if cfg.ID == "" {
		return nil, errors.New("identity: the agent id is empty")
	}
	if id.server == "" {
		return nil, errors.New("identity: the control plane's address is empty")
	}
	if err := id.readTrust(); err != nil {
		return nil, err
	}
	if cfg.JoinToken != "" && id.want == nil {
		return nil, errors.New("--join needs --ca-fingerprint or --ca, to know the control plane it sends the token to")
	}
	l, err := id.read()
	var other *otherIDError
	switch {
	case errors.As(err, &other):
		return nil, err
	case err != nil && cfg.JoinToken == "":
		return nil, fmt.Errorf("%w; restore the files, or enroll again with %s", err, enrollHint)
	case err != nil:
		id.log.Warn("the identity in the state directory is damaged; enrolling again", "dir", id.dir, "err", err)
		id.enroll = true
	case l == nil && cfg.JoinToken == "":
		return nil, fmt.Errorf("no certificate in %s; enroll with %s", id.dir, enrollHint)
	case l == nil:
		id.enroll = true
	case !id.trusts(l.ca) && cfg.JoinToken == "":
		return nil, fmt.Errorf("the CA in %s is %s, not the one %s names; to move the agent to that control plane, enroll again with --join TOKEN",
			filepath.Join(id.dir, CAFile), Fingerprint(l.ca), id.trustFlag)
	case !id.trusts(l.ca):
		id.log.Info("the identity in the state directory is from another CA than "+id.trustFlag+" names; enrolling again", "dir", id.dir, "ca", Fingerprint(l.ca))
		id.enroll = true
	case time.Now().After(l.cert.Leaf.NotAfter) && cfg.JoinToken != "":
		id.log.Info("the agent's certificate expired; enrolling again", "dir", id.dir, "expired", l.cert.Leaf.NotAfter)
		id.enroll = true
	default:
		id.set(l.cert, l.ca)
		if leaf := l.cert.Leaf; time.Now().After(leaf.NotAfter) {
			id.log.Error(expiredMessage, "dir", id.dir, "expired", leaf.NotAfter, "fix", expiredFix)
		} else {
			id.log.Info("loaded the agent's identity", "dir", id.dir, "expires", leaf.NotAfter, "ca", Fingerprint(l.ca))
		}
	}
	return id, nil
}

// What the agent logs of an expired certificate without a join token.
const (
	expiredMessage = "the agent's certificate expired: the control plane refuses it, and the agent serves its last good state until it enrolls again"
	expiredFix     = "restart the agent with a new join token: " + enrollHint
)

// readTrust reads the CAs the agent may enroll with.
func (id *Identity) readTrust() error {
	switch {
	case id.cfg.CAFingerprint != "" && id.cfg.CAFile != "":
		return errors.New("--ca-fingerprint and --ca: give one")
	case id.cfg.CAFingerprint != "":
		fp, err := ParseFingerprint(id.cfg.CAFingerprint)
		if err != nil {
			return fmt.Errorf("--ca-fingerprint %q: %w", id.cfg.CAFingerprint, err)
		}
		id.want, id.trustFlag = []string{fp}, "--ca-fingerprint"
	case id.cfg.CAFile != "":
		certs, err := readCerts(id.cfg.CAFile)
		if err != nil {
			return fmt.Errorf("--ca %s: %w", id.cfg.CAFile, err)
		}
		id.bundle = x509.NewCertPool()
		for _, c := range certs {
			id.bundle.AddCert(c)
			id.want = append(id.want, Fingerprint(c))
		}
		id.trustFlag = "--ca " + id.cfg.CAFile
	}
	return nil
}

// trusts reports whether ca is one the agent may enroll with; any is when
// neither --ca-fingerprint nor --ca is given.
func (id *Identity) trusts(ca *x509.Certificate) bool {
	return id.want == nil || slices.Contains(id.want, Fingerprint(ca))
}

// otherIDError is an identity of another agent id.
type otherIDError struct{ dir, have, want string }

func (e *otherIDError) Error() string {
	return fmt.Sprintf("the certificate in %s is for agent %q, not --id %q; give this agent another --state-dir, or start it with --id %q",
		e.dir, e.have, e.want, e.have)
}

// loaded is an identity read from the files.
type loaded struct {
	cert *tls.Certificate
	ca   *x509.Certificate
}

// read reads the identity's files: nil when there is no certificate, an
// *otherIDError when it is for another id.
func (id *Identity) read() (*loaded, error) {
	certPath := filepath.Join(id.dir, CertFile)
	certs, err := readCerts(certPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certPath, err)
	}
	leaf := certs[0]
	if cn := leaf.Subject.CommonName; cn != id.cfg.ID {
		return nil, &otherIDError{dir: id.dir, have: cn, want: id.cfg.ID}
	}
	key, err := id.readKey(leaf)
	if err != nil {
		return nil, err
	}
	caPath := filepath.Join(id.dir, CAFile)
	cas, err := readCerts(caPath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", caPath, err)
	}
	ca := cas[0]
	// Expiry is Open's to judge; this checks the certificate is the CA's.
	if err := verifyClient(leaf, ca, latest(leaf.NotBefore, ca.NotBefore)); err != nil {
		return nil, fmt.Errorf("%s: %w", certPath, err)
	}
	return &loaded{cert: &tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}, ca: ca}, nil
}

// readKey reads the key of leaf. A new key left beside the old one is put
// in its place when leaf is its certificate (a crash came between the two),
// and removed otherwise (a crash came before the certificate was stored).
func (id *Identity) readKey(leaf *x509.Certificate) (crypto.Signer, error) {
	keyPath, nextPath := filepath.Join(id.dir, KeyFile), filepath.Join(id.dir, nextKeyFile)
	if next, err := readKey(nextPath); err == nil && samePublicKey(next.Public(), leaf.PublicKey) {
		if err := os.Rename(nextPath, keyPath); err != nil {
			return nil, fmt.Errorf("%s: %w", keyPath, err)
		}
		syncDir(id.dir)
	} else if !errors.Is(err, fs.ErrNotExist) {
		_ = os.Remove(nextPath)
	}
	key, err := readKey(keyPath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	if !samePublicKey(key.Public(), leaf.PublicKey) {
		return nil, fmt.Errorf("%s is not the key of %s", keyPath, CertFile)
	}
	return key, nil
}

// set makes cert and ca the identity's.
func (id *Identity) set(cert *tls.Certificate, ca *x509.Certificate) {
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	id.mu.Lock()
	defer id.mu.Unlock()
	id.cert, id.ca, id.roots = cert, ca, roots
}

// store writes key, the certificate certDER for it and, unless nil, the CA
// into the identity's directory.
func (id *Identity) store(key *ecdsa.PrivateKey, certDER []byte, ca *x509.Certificate) error {
	if err := os.MkdirAll(id.dir, 0o700); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	keyPath, nextPath := filepath.Join(id.dir, KeyFile), filepath.Join(id.dir, nextKeyFile)
	if err := state.WriteFileAtomic(nextPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})); err != nil {
		return err
	}
	if ca != nil {
		if err := state.WriteFileAtomic(filepath.Join(id.dir, CAFile), certPEM(ca.Raw)); err != nil {
			return err
		}
	}
	if err := state.WriteFileAtomic(filepath.Join(id.dir, CertFile), certPEM(certDER)); err != nil {
		return err
	}
	if err := os.Rename(nextPath, keyPath); err != nil {
		return fmt.Errorf("write %s: %w", keyPath, err)
	}
	syncDir(id.dir)
	return nil
}

// Certificate returns the agent's certificate now, nil before it has one.
func (id *Identity) Certificate() *x509.Certificate {
	id.mu.Lock()
	defer id.mu.Unlock()
	if id.cert == nil {
		return nil
	}
	return id.cert.Leaf
}

// CA returns the CA the agent trusts, nil before it has one.
func (id *Identity) CA() *x509.Certificate {
	id.mu.Lock()
	defer id.mu.Unlock()
	return id.ca
}

// TLSConfig returns the TLS config of a connection to the control plane:
// TLS 1.3, the control plane verified against the agent's CA for the host
// of its address, and the agent's certificate read at each handshake, so
// that a renewed one is used with no restart. It is nil before the agent
// has a certificate.
func (id *Identity) TLSConfig() *tls.Config {
	id.mu.Lock()
	defer id.mu.Unlock()
	if id.cert == nil {
		return nil
	}
	return &tls.Config{
		MinVersion:           tls.VersionTLS13,
		RootCAs:              id.roots,
		ServerName:           id.server,
		GetClientCertificate: id.clientCertificate,
	}
}

// clientCertificate is the agent's certificate now.
func (id *Identity) clientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	id.mu.Lock()
	defer id.mu.Unlock()
	return id.cert, nil
}

// Credentials returns the gRPC transport credentials of the connections to
// the control plane, with the TLS config of each handshake from TLSConfig.
// They may be made before the agent enrolls; a handshake fails until then.
func (id *Identity) Credentials() credentials.TransportCredentials {
	return &transportCredentials{id: id, config: func(server string) (*tls.Config, error) {
		cfg := id.TLSConfig()
		if cfg == nil {
			return nil, errors.New("the agent has no certificate yet: it must enroll first")
		}
		cfg.ServerName = server
		return cfg, nil
	}}
}

// transportCredentials are TLS credentials whose config is made anew for
// each handshake, for the host of the replica dialled (one of several,
// maybe): the CA is known only after enrollment.
type transportCredentials struct {
	id     *Identity
	config func(server string) (*tls.Config, error)
}

var _ credentials.TransportCredentials = (*transportCredentials)(nil)

func (c *transportCredentials) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	server := c.id.server
	if authority != "" {
		server = ServerName(authority)
	}
	cfg, err := c.config(server)
	if err != nil {
		return nil, nil, err
	}
	return credentials.NewTLS(cfg).ClientHandshake(ctx, authority, conn)
}

func (c *transportCredentials) ServerHandshake(net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("identity: the agent's credentials are for clients only")
}

func (c *transportCredentials) Info() credentials.ProtocolInfo {
	return credentials.NewTLS(&tls.Config{ServerName: c.id.server}).Info()
}

func (c *transportCredentials) Clone() credentials.TransportCredentials {
	return &transportCredentials{id: c.id, config: c.config}
}

// OverrideServerName is not supported: the name is the control plane's host.
func (c *transportCredentials) OverrideServerName(string) error {
	return errors.New("identity: the server name is the control plane's host")
}

// verifyClient checks that leaf is a client certificate issued by ca, as
// of at.
func verifyClient(leaf, ca *x509.Certificate, at time.Time) error {
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	return err
}

// latest returns the later of a and b.
func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// readCerts reads the certificates of a PEM file; it has at least one.
func readCerts(name string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return parseCerts(b)
}

// parseCerts parses the certificates of PEM; it has at least one.
func parseCerts(b []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	return certs, nil
}

// readKey reads a PKCS #8 PEM private key.
func readKey(name string) (crypto.Signer, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("no PEM PRIVATE KEY")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("a %T cannot sign", k)
	}
	return s, nil
}

// samePublicKey reports whether a and b are the same public key.
func samePublicKey(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// certPEM encodes a certificate's DER as PEM.
func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// syncDir makes the renames in dir durable, as far as it can.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
