package security

import (
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/weft-dev/weft/agent/shared/secdef"
)

// matchName reports whether name matches pattern: "*.example.com" matches
// one label in front of example.com (a.example.com, not example.com nor
// a.b.example.com), case-insensitively; any other pattern matches the
// same text, case-insensitively when fold is set (DNS names).
func matchName(pattern, name string, fold bool) bool {
	if suffix, ok := strings.CutPrefix(pattern, "*."); ok {
		label, rest, ok := strings.Cut(name, ".")
		return ok && label != "" && label != "*" && strings.EqualFold(rest, suffix)
	}
	if fold {
		return strings.EqualFold(pattern, name)
	}
	return pattern == name
}

// clientCertVerifier checks the TLS client certificate a request came
// with: it must chain to one of the definition's CAs, be valid now and be
// for client authentication, and, when there are rules, match one. The
// HTTPS server only asks for the certificate (tls.RequestClientCert): the
// CAs differ from channel to channel, so the check is made here.
type clientCertVerifier struct {
	name     string
	roots    *x509.CertPool
	subjects []string
	sans     []string
	now      func() time.Time
}

var _ Verifier = (*clientCertVerifier)(nil)

func newClientCertVerifier(def secdef.Definition, o options) (*clientCertVerifier, error) {
	roots, err := secdef.ParseCAs(def.CAPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", def, err)
	}
	return &clientCertVerifier{
		name:     def.Name,
		roots:    roots,
		subjects: def.AllowedSubjects,
		sans:     def.AllowedSANs,
		now:      o.now,
	}, nil
}

// refuseCert is a 401 with no WWW-Authenticate challenge: no HTTP scheme asks
// for a client certificate, it is asked for in the TLS handshake.
func refuseCert(format string, args ...any) *AuthError {
	return &AuthError{Status: http.StatusUnauthorized, Message: fmt.Sprintf(format, args...)}
}

func (v *clientCertVerifier) Verify(r *http.Request) (Principal, error) {
	if r.TLS == nil {
		return Principal{}, refuseCert("a TLS client certificate over HTTPS is required; this request came over plain HTTP")
	}
	certs := r.TLS.PeerCertificates
	if len(certs) == 0 {
		return Principal{}, refuseCert("a TLS client certificate is required; the connection presented none")
	}
	leaf := certs[0]
	opts := x509.VerifyOptions{
		Roots:       v.roots,
		CurrentTime: v.now(),
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if len(certs) > 1 {
		opts.Intermediates = x509.NewCertPool()
		for _, c := range certs[1:] {
			opts.Intermediates.AddCert(c)
		}
	}
	if _, err := leaf.Verify(opts); err != nil {
		return Principal{}, refuseCert("client certificate %s %s", describeCert(leaf), whyInvalid(err))
	}
	if len(v.subjects)+len(v.sans) > 0 && !v.allowed(leaf) {
		return Principal{}, refuseCert("client certificate %s matches no allowed subject or subject alternative name", describeCert(leaf))
	}
	return Principal{Definition: v.name, Kind: secdef.KindTLSClientCert, Subject: certSubject(leaf), Claims: certClaims(leaf)}, nil
}

// allowed reports whether c matches a subject or SAN rule.
func (v *clientCertVerifier) allowed(c *x509.Certificate) bool {
	for _, p := range v.subjects {
		if c.Subject.CommonName != "" && matchName(p, c.Subject.CommonName, false) {
			return true
		}
	}
	for _, p := range v.sans {
		for _, n := range c.DNSNames {
			if matchName(p, n, true) {
				return true
			}
		}
		if strings.HasPrefix(p, "*.") {
			continue // a wildcard matches DNS names only
		}
		for _, n := range sanNames(c) {
			if p == n {
				return true
			}
		}
	}
	return false
}

// sanNames are c's subject alternative names other than DNS names: email
// addresses, URIs and IP addresses, as text.
func sanNames(c *x509.Certificate) []string {
	out := append([]string(nil), c.EmailAddresses...)
	for _, u := range c.URIs {
		out = append(out, u.String())
	}
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	return out
}

// whyInvalid says why a certificate did not verify, in the words of a
// refusal.
func whyInvalid(err error) string {
	var inv x509.CertificateInvalidError
	var unknown x509.UnknownAuthorityError
	switch {
	case errors.As(err, &inv) && inv.Reason == x509.Expired:
		return "is expired or not valid yet (" + inv.Detail + ")"
	case errors.As(err, &inv) && inv.Reason == x509.IncompatibleUsage:
		return "is not for TLS client authentication (extended key usage)"
	case errors.As(err, &unknown):
		return "is not signed by a CA this channel trusts"
	}
	return "is not valid: " + err.Error()
}

// describeCert names a certificate in a refusal: its subject and issuer.
func describeCert(c *x509.Certificate) string {
	return fmt.Sprintf("(subject %q, issuer %q)", c.Subject.String(), c.Issuer.String())
}

// certSubject is who the certificate names: its common name, else its
// first subject alternative name.
func certSubject(c *x509.Certificate) string {
	if c.Subject.CommonName != "" {
		return c.Subject.CommonName
	}
	if len(c.DNSNames) > 0 {
		return c.DNSNames[0]
	}
	if names := sanNames(c); len(names) > 0 {
		return names[0]
	}
	return c.Subject.String()
}

// certClaims are what a service is told of the client certificate.
func certClaims(c *x509.Certificate) map[string]any {
	claims := map[string]any{
		"subject":   c.Subject.String(),
		"issuer":    c.Issuer.String(),
		"serial":    hex.EncodeToString(c.SerialNumber.Bytes()),
		"not_after": c.NotAfter.UTC().Format(time.RFC3339),
	}
	list := func(key string, l []string) {
		if len(l) == 0 {
			return
		}
		v := make([]any, len(l))
		for i, s := range l {
			v[i] = s
		}
		claims[key] = v
	}
	list("dns_names", c.DNSNames)
	list("email_addresses", c.EmailAddresses)
	uris := make([]string, len(c.URIs))
	for i, u := range c.URIs {
		uris[i] = u.String()
	}
	list("uris", uris)
	return claims
}
