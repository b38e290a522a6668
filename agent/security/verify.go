// Package security verifies inbound requests and presents outbound
// credentials by security definitions (package agent/shared/secdef, which
// defines and checks them): a channel verifies a request by basic auth, an
// API key, a JWT, a bearer token checked by OAuth2 token introspection or a
// TLS client certificate; an outgoing connection presents basic auth, an
// API key, an HS256 JWT it signs, a bearer token, OAuth2 client
// credentials or a TLS client certificate.
package security

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"

	"github.com/weft-dev/weft/agent/shared/secdef"
)

// Principal is who an inbound request was verified as.
type Principal struct {
	// Definition is the name of the security definition that verified it.
	Definition string
	// Kind is that definition's kind.
	Kind secdef.Kind
	// Subject is the basic auth user name, the JWT "sub" claim, the "sub"
	// (else "username") of a token's introspection answer, or the common
	// name (else the first alternative name) of a client certificate;
	// empty for an API key.
	Subject string
	// Claims holds the JWT claims or the introspection answer (numbers as
	// json.Number), or for a client certificate its subject, issuer,
	// serial, not_after and alternative names; nil for other kinds.
	Claims map[string]any
}

// AuthError is a refused inbound request. The channel answers with Status
// and sets the WWW-Authenticate header to Challenge, if any.
type AuthError struct {
	// Status is the HTTP status to answer with: 401, or 503 when the
	// credentials could not be checked (an introspection endpoint down).
	Status int
	// Challenge is the WWW-Authenticate header value; empty for a client
	// certificate, which no HTTP scheme asks for.
	Challenge string
	// Message says why, without revealing any secret; safe to send back.
	Message string
}

// Error returns the message.
func (e *AuthError) Error() string { return e.Message }

// Write answers w with the status, the challenge and the message.
func (e *AuthError) Write(w http.ResponseWriter) {
	if e.Challenge != "" {
		w.Header().Set("WWW-Authenticate", e.Challenge)
	}
	http.Error(w, e.Message, e.Status)
}

// Verifier checks the credentials of an inbound request.
type Verifier interface {
	// Verify returns who sent r, or an *AuthError.
	Verify(r *http.Request) (Principal, error)
}

// NewVerifier returns the Verifier for an inbound definition: basic_auth,
// api_key, jwt, bearer with an introspection URL, or tls_client_cert with
// CA certificates.
func NewVerifier(def secdef.Definition, opts ...Option) (Verifier, error) {
	if err := def.Validate(); err != nil {
		return nil, err
	}
	o := buildOptions(opts)
	switch def.Kind {
	case secdef.KindBasicAuth:
		return &basicVerifier{
			name:      def.Name,
			user:      sha256.Sum256([]byte(def.Username)),
			pass:      sha256.Sum256([]byte(def.Password)),
			challenge: fmt.Sprintf("Basic realm=%s", quote(o.realm)),
		}, nil
	case secdef.KindAPIKey:
		header := def.Header
		if header == "" {
			header = secdef.DefaultAPIKeyHeader
		}
		return &apiKeyVerifier{
			name:      def.Name,
			header:    http.CanonicalHeaderKey(header),
			key:       sha256.Sum256([]byte(def.Key)),
			challenge: fmt.Sprintf("APIKey header=%s", quote(header)),
		}, nil
	case secdef.KindJWT:
		return newJWTVerifier(def, o)
	case secdef.KindBearer:
		if def.Inbound() {
			return newIntrospectionVerifier(def, o), nil
		}
		return nil, fmt.Errorf("%s: cannot verify inbound requests (outbound only: it sends a token; set introspection_url to check inbound tokens)", def)
	case secdef.KindTLSClientCert:
		if def.Inbound() {
			return newClientCertVerifier(def, o)
		}
		return nil, fmt.Errorf("%s: cannot verify inbound requests (outbound only: it presents a certificate; set ca_pem to check inbound certificates)", def)
	}
	return nil, fmt.Errorf("%s: cannot verify inbound requests (outbound only)", def)
}

var (
	_ Verifier = (*basicVerifier)(nil)
	_ Verifier = (*apiKeyVerifier)(nil)
	_ Verifier = (*jwtVerifier)(nil)
)

type basicVerifier struct {
	name       string
	user, pass [sha256.Size]byte
	challenge  string
}

func (v *basicVerifier) Verify(r *http.Request) (Principal, error) {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return Principal{}, &AuthError{Status: http.StatusUnauthorized, Challenge: v.challenge, Message: "basic credentials required"}
	}
	// Compare fixed-size digests so neither the content nor the length
	// leaks through timing; evaluate both before deciding.
	u := sha256.Sum256([]byte(user))
	p := sha256.Sum256([]byte(pass))
	if subtle.ConstantTimeCompare(u[:], v.user[:])&subtle.ConstantTimeCompare(p[:], v.pass[:]) != 1 {
		return Principal{}, &AuthError{Status: http.StatusUnauthorized, Challenge: v.challenge, Message: "invalid user name or password"}
	}
	return Principal{Definition: v.name, Kind: secdef.KindBasicAuth, Subject: user}, nil
}

type apiKeyVerifier struct {
	name      string
	header    string
	key       [sha256.Size]byte
	challenge string
}

func (v *apiKeyVerifier) Verify(r *http.Request) (Principal, error) {
	got := r.Header.Get(v.header)
	if got == "" {
		return Principal{}, &AuthError{Status: http.StatusUnauthorized, Challenge: v.challenge, Message: "API key required in header " + v.header}
	}
	k := sha256.Sum256([]byte(got))
	if subtle.ConstantTimeCompare(k[:], v.key[:]) != 1 {
		return Principal{}, &AuthError{Status: http.StatusUnauthorized, Challenge: v.challenge, Message: "invalid API key"}
	}
	return Principal{Definition: v.name, Kind: secdef.KindAPIKey}, nil
}

// quote returns s as an RFC 7230 quoted-string.
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\r", " ", "\n", " ")
	return `"` + r.Replace(s) + `"`
}
