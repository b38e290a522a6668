package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weft-dev/weft/agent/cpdial"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// requestTimeout bounds one Enroll or Renew call.
const requestTimeout = 30 * time.Second

// Backoff paces the retries of enrollment and renewal;
// *controlclient.Backoff is one.
type Backoff interface {
	// Next returns the wait before the next attempt.
	Next() time.Duration
	// Reset starts the waits again from the shortest.
	Reset()
	// Sleep waits d, or until ctx ends and returns its error.
	Sleep(ctx context.Context, d time.Duration) error
}

// NeedsEnroll reports whether the agent must enroll before it connects.
func (id *Identity) NeedsEnroll() bool {
	id.mu.Lock()
	defer id.mu.Unlock()
	return id.enroll
}

// Enroll enrolls the agent when Open found it must, and returns nil at once
// otherwise. It sends the join token, with a request for a certificate for
// a new key, to the control plane once it has verified it against
// --ca-fingerprint or --ca, and keeps the certificate and the CA it gets:
// from then on the agent trusts that CA alone. While the control plane is
// unreachable, it retries, waiting b between attempts, until ctx ends (it
// returns ctx's error then). It gives up at once, with the reason, when the
// control plane is not the one the agent was told to trust, or refuses the
// token.
func (id *Identity) Enroll(ctx context.Context, b Backoff) error {
	if !id.NeedsEnroll() {
		return nil
	}
	for {
		err := id.enrollOnce(ctx)
		if err == nil {
			b.Reset()
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var perm *permanentError
		if errors.As(err, &perm) {
			return perm.err
		}
		wait := b.Next()
		id.log.Warn("cannot enroll with the control plane; retrying", "addr", id.cfg.ControlPlane, "err", err, "retry_in", wait.Round(time.Millisecond))
		if err := b.Sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// permanentError is an enrollment that trying again cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }

// permanent wraps the error format makes as a permanentError.
func permanent(format string, args ...any) error {
	return &permanentError{err: fmt.Errorf(format, args...)}
}

// refusedCodes are the answers to Enroll that trying again cannot change.
var refusedCodes = []codes.Code{
	codes.Unauthenticated, codes.PermissionDenied, codes.InvalidArgument,
	codes.FailedPrecondition, codes.AlreadyExists, codes.Unimplemented,
}

// enrollTLS is the TLS config of an enrollment's handshake with the
// replica whose host is server. The control plane's certificate is
// verified in VerifyConnection, for server, against the CA
// --ca-fingerprint names, which the control plane presents in its chain,
// or against the --ca bundle; why it was refused goes to refused. The
// token is sent only over a connection that passed.
func (id *Identity) enrollTLS(server string, refused *atomic.Pointer[error]) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		ServerName:         server,
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			err := id.verifyServer(cs.PeerCertificates, server)
			if err != nil {
				refused.Store(&err)
			}
			return err
		},
	}
}

// enrollBackoffMax bounds the waits of an enrollment's connection; each
// attempt dials anew, and Enroll's own backoff spaces the attempts.
const enrollBackoffMax = 5 * time.Second

// enrollOnce makes one attempt at enrolling.
func (id *Identity) enrollOnce(ctx context.Context) error {
	key, csr, err := newRequest(id.cfg.ID)
	if err != nil {
		return permanent("enroll: %w", err)
	}
	var refused atomic.Pointer[error] // why the control plane's certificate was refused
	creds := &transportCredentials{id: id, config: func(server string) (*tls.Config, error) {
		return id.enrollTLS(server, &refused), nil
	}}
	conn, err := cpdial.Dial(id.cfg.ControlPlane, enrollBackoffMax, grpc.WithTransportCredentials(creds))
	if err != nil {
		return permanent("control plane %s: %w", id.cfg.ControlPlane, err)
	}
	defer conn.Close()
	callCtx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	resp, err := agentv1.NewAgentServiceClient(conn).Enroll(callCtx, &agentv1.EnrollRequest{
		JoinToken: id.cfg.JoinToken, AgentId: id.cfg.ID, CsrDer: csr,
	})
	// With several replicas, one may be refused and the next pass: the
	// token went only to one that passed, and a call that succeeded did.
	if r := refused.Load(); r != nil && err != nil {
		return permanent("enroll at %s: %w; the join token was not sent", id.cfg.ControlPlane, *r)
	}
	if err != nil {
		if st := status.Convert(err); slices.Contains(refusedCodes, st.Code()) {
			return permanent("the control plane at %s refused to enroll agent %q: %s (%s)", id.cfg.ControlPlane, id.cfg.ID, st.Message(), st.Code())
		}
		return fmt.Errorf("enroll at %s: %w", id.cfg.ControlPlane, err)
	}
	cas, err := parseCerts([]byte(resp.GetCaPem()))
	if err != nil {
		return permanent("enroll at %s: the CA in the answer: %w", id.cfg.ControlPlane, err)
	}
	ca := cas[0]
	if !id.trusts(ca) {
		return permanent("enroll at %s: the control plane sent the CA %s, not the one %s names", id.cfg.ControlPlane, Fingerprint(ca), id.trustFlag)
	}
	leaf, err := id.checkIssued(resp.GetCertificatePem(), key, ca)
	if err != nil {
		return permanent("enroll at %s: %w", id.cfg.ControlPlane, err)
	}
	if err := id.store(key, leaf.Raw, ca); err != nil {
		return permanent("enroll: %w", err)
	}
	id.set(&tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}, ca)
	id.mu.Lock()
	id.enroll = false
	id.mu.Unlock()
	id.log.Info("enrolled with the control plane", "addr", id.cfg.ControlPlane, "dir", id.dir, "expires", leaf.NotAfter, "ca", Fingerprint(ca))
	return nil
}

// verifyServer checks the chain the control plane presents: its first
// certificate must be a server certificate for the control plane's host,
// issued by the --ca bundle or by a CA of the chain whose fingerprint is
// --ca-fingerprint.
func (id *Identity) verifyServer(chain []*x509.Certificate, server string) error {
	if len(chain) == 0 {
		return errors.New("the control plane presented no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	roots := id.bundle
	if roots == nil {
		roots = x509.NewCertPool()
		found := false
		var seen []string
		for _, c := range chain[1:] {
			fp := Fingerprint(c)
			if slices.Contains(id.want, fp) {
				roots.AddCert(c)
				found = true
			}
			seen = append(seen, fp)
		}
		if !found {
			presented := "none"
			if len(seen) > 0 {
				presented = strings.Join(seen, ", ")
			}
			return fmt.Errorf("the control plane presented no CA with the fingerprint --ca-fingerprint gives (%s); the CAs it presented: %s", id.want[0], presented)
		}
	}
	_, err := chain[0].Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, DNSName: server, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("the control plane's certificate: %w", err)
	}
	return nil
}

// checkIssued checks the certificate the control plane issued, PEM: it is
// for key and the agent's id, a client certificate, and ca's.
func (id *Identity) checkIssued(certPEM string, key *ecdsa.PrivateKey, ca *x509.Certificate) (*x509.Certificate, error) {
	certs, err := parseCerts([]byte(certPEM))
	if err != nil {
		return nil, fmt.Errorf("the certificate in the answer: %w", err)
	}
	leaf := certs[0]
	switch {
	case !samePublicKey(key.Public(), leaf.PublicKey):
		return nil, errors.New("the certificate in the answer is not for the key the agent sent")
	case leaf.Subject.CommonName != id.cfg.ID:
		return nil, fmt.Errorf("the certificate in the answer is for agent %q, not %q", leaf.Subject.CommonName, id.cfg.ID)
	}
	if err := verifyClient(leaf, ca, time.Now()); err != nil {
		return nil, fmt.Errorf("the certificate in the answer: %w", err)
	}
	return leaf, nil
}

// newRequest makes a key and a certificate request for it, DER.
func newRequest(agentID string) (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: agentID}}, key)
	if err != nil {
		return nil, nil, err
	}
	return key, csr, nil
}
