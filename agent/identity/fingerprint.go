package identity

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"net"
	"strings"
)

// fingerprintPrefix starts every fingerprint: the hash it is made with.
const fingerprintPrefix = "sha256:"

// Fingerprint returns the fingerprint of cert as weftctl agent token create
// prints the control plane's: "sha256:" and the lowercase hex of the SHA-256
// of the certificate's DER.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return fingerprintPrefix + hex.EncodeToString(sum[:])
}

// errFingerprint says what a fingerprint looks like.
var errFingerprint = errors.New("want sha256: and 64 hex digits, as weftctl agent token create prints it")

// ParseFingerprint checks that s is a fingerprint and returns it in the form
// Fingerprint writes. It also takes upper case hex and hex pairs separated
// by colons, as openssl x509 -fingerprint -sha256 prints them.
func ParseFingerprint(s string) (string, error) {
	s = strings.TrimSpace(s)
	if len(s) < len(fingerprintPrefix) || !strings.EqualFold(s[:len(fingerprintPrefix)], fingerprintPrefix) {
		return "", errFingerprint
	}
	digits := strings.ToLower(s[len(fingerprintPrefix):])
	if strings.Contains(digits, ":") {
		pairs := strings.Split(digits, ":")
		for _, p := range pairs {
			if len(p) != 2 {
				return "", errFingerprint
			}
		}
		digits = strings.Join(pairs, "")
	}
	if b, err := hex.DecodeString(digits); err != nil || len(b) != sha256.Size {
		return "", errFingerprint
	}
	return fingerprintPrefix + digits, nil
}

// ServerName returns the host of the control plane's address addr, the
// name its certificate must carry: host of host:port, and of the endpoint
// of a gRPC target such as dns:///host:port; of a list of addresses, the
// first one's.
func ServerName(addr string) string {
	addr, _, _ = strings.Cut(addr, ",")
	addr = strings.TrimSpace(addr)
	if _, rest, ok := strings.Cut(addr, "://"); ok {
		addr = rest[strings.LastIndex(rest, "/")+1:]
	}
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
}
