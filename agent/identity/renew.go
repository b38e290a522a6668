package identity

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// Renewer asks the control plane for a new certificate for the agent, over
// a connection the agent's certificate authenticates;
// *controlclient.Client is one.
type Renewer interface {
	Renew(ctx context.Context, req *agentv1.RenewRequest) (*agentv1.RenewResponse, error)
}

// RenewAt returns when cert is due for renewal: once less than a third of
// its lifetime remains.
func RenewAt(cert *x509.Certificate) time.Time {
	return cert.NotAfter.Add(-cert.NotAfter.Sub(cert.NotBefore) / 3)
}

// KeepRenewed renews the agent's certificate through r whenever it is due
// (see RenewAt), until ctx ends. A renewal is for a new key; it stores the
// key and the certificate, then swaps them in: the connections open go on,
// and new ones present the new certificate. A failed renewal is logged and
// retried, waiting b between attempts; once the certificate has expired,
// each attempt logs an error that says how to enroll again.
func (id *Identity) KeepRenewed(ctx context.Context, r Renewer, b Backoff) error {
	for {
		leaf := id.Certificate()
		if leaf == nil {
			return fmt.Errorf("renew: the agent has no certificate")
		}
		at := RenewAt(leaf)
		id.log.Debug("certificate renewal", "at", at, "expires", leaf.NotAfter)
		if err := sleepUntil(ctx, at); err != nil {
			return nil
		}
		err := id.renewOnce(ctx, r)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			if renewed := id.Certificate(); time.Now().Before(RenewAt(renewed)) {
				b.Reset()
				continue
			}
			// A certificate due at once would be renewed again and again.
			wait := b.Next()
			id.log.Warn("the renewed certificate is already due for renewal; waiting", "expires", id.Certificate().NotAfter, "retry_in", wait.Round(time.Millisecond))
			if b.Sleep(ctx, wait) != nil {
				return nil
			}
			continue
		}
		wait := b.Next()
		code := status.Code(err)
		switch {
		case time.Now().After(leaf.NotAfter):
			id.log.Error(expiredMessage, "dir", id.dir, "expired", leaf.NotAfter, "fix", expiredFix, "err", err, "retry_in", wait.Round(time.Millisecond))
		case code == codes.Unauthenticated || code == codes.PermissionDenied:
			id.log.Error("the control plane refused to renew the agent's certificate; retrying", "expires", leaf.NotAfter, "err", err, "retry_in", wait.Round(time.Millisecond))
		default:
			id.log.Warn("cannot renew the agent's certificate; retrying", "expires", leaf.NotAfter, "err", err, "retry_in", wait.Round(time.Millisecond))
		}
		if b.Sleep(ctx, wait) != nil {
			return nil
		}
	}
}

// renewOnce makes one attempt at renewing the certificate.
func (id *Identity) renewOnce(ctx context.Context, r Renewer) error {
	key, csr, err := newRequest(id.cfg.ID)
	if err != nil {
		return fmt.Errorf("renew: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	resp, err := r.Renew(ctx, &agentv1.RenewRequest{CsrDer: csr})
	if err != nil {
		return fmt.Errorf("renew: %w", err)
	}
	ca := id.CA()
	if p := resp.GetCaPem(); p != "" {
		if cas, err := parseCerts([]byte(p)); err == nil && !cas[0].Equal(ca) {
			return fmt.Errorf("renew: the control plane's CA is now %s, not %s, the one the agent trusts; enroll the agent again", Fingerprint(cas[0]), Fingerprint(ca))
		}
	}
	leaf, err := id.checkIssued(resp.GetCertificatePem(), key, ca)
	if err != nil {
		return fmt.Errorf("renew: %w", err)
	}
	if err := id.store(key, leaf.Raw, nil); err != nil {
		return fmt.Errorf("renew: %w", err)
	}
	id.set(&tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}, ca)
	id.log.Info("renewed the agent's certificate", "expires", leaf.NotAfter, "renew_at", RenewAt(leaf))
	return nil
}

// sleepUntil waits until t, or until ctx ends and returns its error.
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
