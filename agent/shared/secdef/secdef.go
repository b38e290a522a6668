// Package secdef defines security definitions and checks them: how a
// channel verifies an inbound request (basic auth, API key, JWT, a bearer
// token checked by OAuth2 token introspection, a TLS client certificate)
// and how an outgoing connection presents credentials (basic auth, API
// key, an HS256 JWT it signs, bearer token, OAuth2 client credentials, TLS
// client certificate). Agents build their verifiers and authenticators
// from these definitions (package agent/security) and the control plane
// checks and stores them with the same Validate, so that the door refuses
// exactly what an agent could not use.
package secdef

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// Kind names the type of a security definition.
type Kind string

// The kinds of security definition.
const (
	KindBasicAuth     Kind = "basic_auth"
	KindAPIKey        Kind = "api_key"
	KindJWT           Kind = "jwt"
	KindBearer        Kind = "bearer"
	KindOAuth2        Kind = "oauth2_client_credentials"
	KindTLSClientCert Kind = "tls_client_cert"
)

// DefaultAPIKeyHeader is the header an api_key definition uses when Header
// is empty.
const DefaultAPIKeyHeader = "X-API-Key"

// JWT signing algorithms a jwt definition may allow.
const (
	HS256 = "HS256"
	RS256 = "RS256"
	ES256 = "ES256"
)

// minHMACSecret is the shortest HS256 secret accepted (RFC 7518 3.2: at
// least the hash size).
const minHMACSecret = 32

// MinRSABits is the smallest RSA key accepted for RS256, in
// public_key_pem as in a JWKS.
const MinRSABits = 2048

// Definition is one named security definition. Only the fields of its Kind
// are used; the others must be empty.
type Definition struct {
	// Name identifies the definition; channels and connections refer to it.
	Name string
	// Kind selects which of the fields below apply.
	Kind Kind

	// Username and Password are the basic_auth credentials.
	Username string
	Password string

	// Header is the api_key header (DefaultAPIKeyHeader when empty) and Key
	// its expected or presented value.
	Header string
	Key    string

	// Algorithms lists the JWT algorithms accepted (HS256, RS256, ES256).
	Algorithms []string
	// Secret is the HS256 shared secret, at least 32 bytes.
	Secret string
	// PublicKeyPEM is an RSA (RS256) or EC P-256 (ES256) public key, as a
	// PUBLIC KEY or CERTIFICATE block.
	PublicKeyPEM string
	// JWKSURL is where to fetch the RS256/ES256 keys instead of PublicKeyPEM.
	JWKSURL string
	// Issuer is the required "iss" claim.
	Issuer string
	// Audience, when set, must be in the "aud" claim.
	Audience string
	// Leeway is the allowed clock skew for exp, nbf and iat.
	Leeway time.Duration

	// Token is the bearer token sent outbound.
	Token string

	// TokenURL, ClientID, ClientSecret and Scopes configure the OAuth2
	// client credentials grant. ClientID and ClientSecret also authenticate
	// the agent to IntrospectionURL, and there Scopes are the scopes an
	// inbound bearer token must all have.
	TokenURL     string
	ClientID     string
	ClientSecret string
	Scopes       []string

	// IntrospectionURL is the OAuth2 token introspection endpoint (RFC
	// 7662) that checks inbound bearer tokens; Audience, when set, must be
	// in its answer's "aud".
	IntrospectionURL string
	// CacheSeconds is how long an introspection answer is reused; 0 means
	// DefaultIntrospectionCache. An answer is never reused past the
	// token's expiry.
	CacheSeconds int

	// CertPEM and KeyPEM are the TLS client certificate (chain) and its
	// private key, presented outbound.
	CertPEM string
	KeyPEM  string

	// CAPEM holds the CA certificates an inbound client certificate must
	// chain to.
	CAPEM string
	// AllowedSubjects and AllowedSANs, when either is set, restrict the
	// inbound client certificates to those whose subject common name is in
	// AllowedSubjects or one of whose subject alternative names is in
	// AllowedSANs: "*.example.com" matches one label in front of
	// example.com, any other pattern the same name (DNS names in any case).
	AllowedSubjects []string
	AllowedSANs     []string
}

// String names the definition without any secret, e.g. `jwt "partner"`.
func (d Definition) String() string {
	return fmt.Sprintf("%s %q", d.Kind, d.Name)
}

// LogValue keeps secrets out of logs: only the name and kind are logged.
func (d Definition) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", d.Name), slog.String("kind", string(d.Kind)))
}

// Inbound reports whether the definition can verify inbound requests. A
// bearer definition does with an introspection URL, a tls_client_cert one
// with CA certificates.
func (d Definition) Inbound() bool {
	switch d.Kind {
	case KindBasicAuth, KindAPIKey, KindJWT:
		return true
	case KindBearer:
		return d.IntrospectionURL != ""
	case KindTLSClientCert:
		return d.CAPEM != ""
	}
	return false
}

// Outbound reports whether the definition can supply outbound credentials.
// A jwt definition signs outbound tokens with HS256, so it needs a secret;
// a bearer definition sends its token, so it is not one that checks
// tokens; a tls_client_cert definition needs a certificate to present.
func (d Definition) Outbound() bool {
	switch d.Kind {
	case KindJWT:
		return d.Secret != "" && slices.Contains(d.Algorithms, HS256)
	case KindBearer:
		return d.IntrospectionURL == ""
	case KindTLSClientCert:
		return d.CertPEM != "" || d.KeyPEM != "" || d.CAPEM == ""
	case KindBasicAuth, KindAPIKey, KindOAuth2:
		return true
	}
	return false
}

// Validate checks the definition and returns an error naming the field that
// is wrong, e.g. `jwt "partner": issuer is required`.
func (d Definition) Validate() error {
	if strings.TrimSpace(d.Name) == "" {
		return fmt.Errorf("security definition (%s): name is required", d.Kind)
	}
	var err error
	switch d.Kind {
	case KindBasicAuth:
		err = d.validateBasic()
	case KindAPIKey:
		err = d.validateAPIKey()
	case KindJWT:
		err = d.validateJWT()
	case KindBearer:
		err = d.validateBearer()
	case KindOAuth2:
		err = d.validateOAuth2()
	case KindTLSClientCert:
		err = d.validateTLSClientCert()
	case "":
		return fmt.Errorf("security definition %q: kind is required", d.Name)
	default:
		return fmt.Errorf("security definition %q: unknown kind %q (want one of %s, %s, %s, %s, %s, %s)",
			d.Name, d.Kind, KindBasicAuth, KindAPIKey, KindJWT, KindBearer, KindOAuth2, KindTLSClientCert)
	}
	if err == nil {
		err = d.checkUnused()
	}
	if err != nil {
		return fmt.Errorf("%s: %w", d, err)
	}
	return nil
}

// fieldsOf lists, for each kind, the fields it uses (named as in errors).
var fieldsOf = map[Kind][]string{
	KindBasicAuth:     {"username", "password"},
	KindAPIKey:        {"header", "key"},
	KindJWT:           {"algorithms", "secret", "public_key_pem", "jwks_url", "issuer", "audience", "leeway"},
	KindBearer:        {"token", "introspection_url", "client_id", "client_secret", "scopes", "audience", "cache_seconds"},
	KindOAuth2:        {"token_url", "client_id", "client_secret", "scopes"},
	KindTLSClientCert: {"cert_pem", "key_pem", "ca_pem", "allowed_subjects", "allowed_sans"},
}

// checkUnused refuses fields set that the kind does not use, so a typo in
// the kind does not silently drop a credential.
func (d Definition) checkUnused() error {
	set := map[string]bool{
		"username": d.Username != "", "password": d.Password != "",
		"header": d.Header != "", "key": d.Key != "",
		"algorithms": len(d.Algorithms) > 0, "secret": d.Secret != "", "public_key_pem": d.PublicKeyPEM != "",
		"jwks_url": d.JWKSURL != "", "issuer": d.Issuer != "", "audience": d.Audience != "", "leeway": d.Leeway != 0,
		"token":     d.Token != "",
		"token_url": d.TokenURL != "", "client_id": d.ClientID != "", "client_secret": d.ClientSecret != "", "scopes": len(d.Scopes) > 0,
		"introspection_url": d.IntrospectionURL != "", "cache_seconds": d.CacheSeconds != 0,
		"cert_pem": d.CertPEM != "", "key_pem": d.KeyPEM != "",
		"ca_pem": d.CAPEM != "", "allowed_subjects": len(d.AllowedSubjects) > 0, "allowed_sans": len(d.AllowedSANs) > 0,
	}
	used := fieldsOf[d.Kind]
	var extra []string
	for f, ok := range set {
		if ok && !slices.Contains(used, f) {
			extra = append(extra, f)
		}
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		return fmt.Errorf("%s not used by %s", strings.Join(extra, ", "), d.Kind)
	}
	return nil
}

func (d Definition) validateBasic() error {
	switch {
	case d.Username == "":
		return errors.New("username is required")
	case strings.Contains(d.Username, ":"):
		return errors.New("username must not contain ':'")
	case d.Password == "":
		return errors.New("password is required")
	}
	return nil
}

func (d Definition) validateAPIKey() error {
	if d.Header != "" && !validHeaderName(d.Header) {
		return fmt.Errorf("header %q is not a valid HTTP header name", d.Header)
	}
	switch strings.ToLower(d.Header) {
	case "authorization", "cookie", "host", "content-type", "content-length":
		return fmt.Errorf("header %q is reserved, choose another (default %s)", d.Header, DefaultAPIKeyHeader)
	}
	if d.Key == "" {
		return errors.New("key is required")
	}
	if strings.ContainsAny(d.Key, "\r\n") {
		return errors.New("key must not contain line breaks")
	}
	return nil
}

// validateBearer checks an outbound bearer definition (token) or an
// inbound one (introspection_url and what goes with it), never both.
func (d Definition) validateBearer() error {
	switch {
	case d.Token != "" && d.IntrospectionURL != "":
		return errors.New("set token (a token to send) or introspection_url (to check inbound tokens), not both")
	case d.IntrospectionURL != "":
		return d.validateIntrospection()
	}
	if d.Token == "" {
		return errors.New("token is required (a token to send), or introspection_url (to check inbound tokens)")
	}
	if strings.ContainsAny(d.Token, " \t\r\n") {
		return errors.New("token must not contain white space")
	}
	var inbound []string
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"client_id", d.ClientID != ""}, {"client_secret", d.ClientSecret != ""}, {"scopes", len(d.Scopes) > 0},
		{"audience", d.Audience != ""}, {"cache_seconds", d.CacheSeconds != 0},
	} {
		if f.set {
			inbound = append(inbound, f.name)
		}
	}
	if len(inbound) > 0 {
		return fmt.Errorf("%s used only with introspection_url, to check inbound tokens", strings.Join(inbound, ", "))
	}
	return nil
}

// DefaultIntrospectionCache is how long an introspection answer is reused
// when the definition's cache_seconds is 0.
const DefaultIntrospectionCache = time.Minute

// MaxIntrospectionCache bounds cache_seconds: a token revoked at the
// authorization server is still accepted for at most this long.
const MaxIntrospectionCache = time.Hour

// validateIntrospection checks an inbound bearer definition.
func (d Definition) validateIntrospection() error {
	if err := validURL("introspection_url", d.IntrospectionURL); err != nil {
		return err
	}
	if u, _ := url.Parse(d.IntrospectionURL); u.User != nil {
		return errors.New("introspection_url must not hold credentials; set client_id and client_secret")
	}
	switch {
	case d.ClientID == "":
		return errors.New("client_id is required with introspection_url (RFC 7662 wants the caller authenticated)")
	case strings.ContainsAny(d.ClientID, "\r\n"):
		return errors.New("client_id must not contain line breaks")
	case d.ClientSecret == "":
		return errors.New("client_secret is required with introspection_url (RFC 7662 wants the caller authenticated)")
	}
	for i, s := range d.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			return fmt.Errorf("scopes[%d] %q is not a valid scope", i, s)
		}
	}
	if d.CacheSeconds < 0 || time.Duration(d.CacheSeconds)*time.Second > MaxIntrospectionCache {
		return fmt.Errorf("cache_seconds %d: want 0 (%d) to %d", d.CacheSeconds,
			int(DefaultIntrospectionCache/time.Second), int(MaxIntrospectionCache/time.Second))
	}
	return nil
}

func (d Definition) validateOAuth2() error {
	if err := validURL("token_url", d.TokenURL); err != nil {
		return err
	}
	switch {
	case d.ClientID == "":
		return errors.New("client_id is required")
	case d.ClientSecret == "":
		return errors.New("client_secret is required")
	}
	for i, s := range d.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			return fmt.Errorf("scopes[%d] %q is not a valid scope", i, s)
		}
	}
	return nil
}

func (d Definition) validateJWT() error {
	if len(d.Algorithms) == 0 {
		return fmt.Errorf("algorithms is required (any of %s, %s, %s)", HS256, RS256, ES256)
	}
	var needPublic bool
	for i, a := range d.Algorithms {
		switch a {
		case HS256:
			if d.Secret == "" {
				return errors.New("secret is required for HS256")
			}
			if len(d.Secret) < minHMACSecret {
				return fmt.Errorf("secret is %d bytes, HS256 needs at least %d", len(d.Secret), minHMACSecret)
			}
		case RS256, ES256:
			needPublic = true
		default:
			return fmt.Errorf("algorithms[%d] %q is not supported (any of %s, %s, %s)", i, a, HS256, RS256, ES256)
		}
	}
	if d.Secret != "" && !slices.Contains(d.Algorithms, HS256) {
		return errors.New("secret is set but algorithms does not allow HS256")
	}
	switch {
	case needPublic && d.PublicKeyPEM == "" && d.JWKSURL == "":
		return errors.New("public_key_pem or jwks_url is required for RS256/ES256")
	case d.PublicKeyPEM != "" && d.JWKSURL != "":
		return errors.New("set public_key_pem or jwks_url, not both")
	case !needPublic && (d.PublicKeyPEM != "" || d.JWKSURL != ""):
		return errors.New("public_key_pem/jwks_url is set but algorithms allows neither RS256 nor ES256")
	}
	if d.PublicKeyPEM != "" {
		if _, err := d.PublicKey(); err != nil {
			return err
		}
	}
	if d.JWKSURL != "" {
		if err := validURL("jwks_url", d.JWKSURL); err != nil {
			return err
		}
	}
	if d.Issuer == "" {
		return errors.New("issuer is required")
	}
	if d.Leeway < 0 {
		return fmt.Errorf("leeway %s must not be negative", d.Leeway)
	}
	return nil
}

// PublicKey parses PublicKeyPEM and checks that an allowed algorithm can
// use it.
func (d Definition) PublicKey() (crypto.PublicKey, error) {
	block, _ := pem.Decode([]byte(d.PublicKeyPEM))
	if block == nil {
		return nil, errors.New("public_key_pem: no PEM block found")
	}
	var pub any
	switch block.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("public_key_pem: %w", err)
		}
		pub = k
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("public_key_pem: %w", err)
		}
		pub = k
	case "CERTIFICATE":
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("public_key_pem: %w", err)
		}
		pub = c.PublicKey
	default:
		return nil, fmt.Errorf("public_key_pem: PEM block %q, want PUBLIC KEY or CERTIFICATE", block.Type)
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if !slices.Contains(d.Algorithms, RS256) {
			return nil, errors.New("public_key_pem is an RSA key but algorithms does not allow RS256")
		}
		if k.N.BitLen() < MinRSABits {
			return nil, fmt.Errorf("public_key_pem: RSA key has %d bits, want at least %d", k.N.BitLen(), MinRSABits)
		}
		return k, nil
	case *ecdsa.PublicKey:
		if !slices.Contains(d.Algorithms, ES256) {
			return nil, errors.New("public_key_pem is an EC key but algorithms does not allow ES256")
		}
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("public_key_pem: EC curve %s, ES256 needs P-256", k.Curve.Params().Name)
		}
		return k, nil
	default:
		return nil, fmt.Errorf("public_key_pem: unsupported key type %T (want RSA or EC P-256)", pub)
	}
}

// validateTLSClientCert checks an outbound tls_client_cert definition
// (cert_pem and key_pem), an inbound one (ca_pem and the rules), or one
// that is both.
func (d Definition) validateTLSClientCert() error {
	if d.CAPEM == "" {
		var rules []string
		if len(d.AllowedSubjects) > 0 {
			rules = append(rules, "allowed_subjects")
		}
		if len(d.AllowedSANs) > 0 {
			rules = append(rules, "allowed_sans")
		}
		if len(rules) > 0 {
			return fmt.Errorf("%s used only with ca_pem, to check inbound client certificates", strings.Join(rules, ", "))
		}
		if d.CertPEM == "" && d.KeyPEM == "" {
			return errors.New("cert_pem is required (a certificate to present), or ca_pem (to check inbound client certificates)")
		}
	}
	if d.CAPEM != "" {
		if _, err := ParseCAs(d.CAPEM); err != nil {
			return err
		}
		if err := checkRules("allowed_subjects", d.AllowedSubjects, false); err != nil {
			return err
		}
		if err := checkRules("allowed_sans", d.AllowedSANs, true); err != nil {
			return err
		}
		if d.CertPEM == "" && d.KeyPEM == "" {
			return nil
		}
	}
	_, err := d.clientCertificate(time.Now())
	return err
}

// clientCertificate parses CertPEM and KeyPEM, checks they belong together
// and that the certificate is valid at now.
func (d Definition) clientCertificate(now time.Time) (tls.Certificate, error) {
	if d.CertPEM == "" {
		return tls.Certificate{}, errors.New("cert_pem is required")
	}
	if d.KeyPEM == "" {
		return tls.Certificate{}, errors.New("key_pem is required")
	}
	block, _ := pem.Decode([]byte(d.CertPEM))
	if block == nil || block.Type != "CERTIFICATE" {
		return tls.Certificate{}, errors.New("cert_pem: no CERTIFICATE block found")
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cert_pem: %w", err)
	}
	kb, _ := pem.Decode([]byte(d.KeyPEM))
	if kb == nil || !strings.HasSuffix(kb.Type, "PRIVATE KEY") {
		return tls.Certificate{}, errors.New("key_pem: no PRIVATE KEY block found")
	}
	if x509.IsEncryptedPEMBlock(kb) { // deprecated, but gives the clearest message
		return tls.Certificate{}, errors.New("key_pem: encrypted keys are not supported")
	}
	priv, err := parsePrivateKey(kb.Bytes)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("key_pem: %w", err)
	}
	pub, ok := priv.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(leaf.PublicKey) {
		return tls.Certificate{}, errors.New("key does not match the certificate")
	}
	cert, err := tls.X509KeyPair([]byte(d.CertPEM), []byte(d.KeyPEM))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cert_pem/key_pem: %w", err)
	}
	if now.After(leaf.NotAfter) {
		return tls.Certificate{}, fmt.Errorf("cert_pem: certificate expired on %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(leaf.NotBefore) {
		return tls.Certificate{}, fmt.Errorf("cert_pem: certificate is not valid before %s", leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return cert, nil
}

func parsePrivateKey(der []byte) (crypto.Signer, error) {
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
		return nil, fmt.Errorf("unsupported private key type %T", k)
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	return nil, errors.New("cannot parse private key (want PKCS#8, PKCS#1 or SEC 1)")
}

// TLSConfig returns a client TLS configuration presenting the
// tls_client_cert certificate. Callers add RootCAs and ServerName as the
// connection needs.
func (d Definition) TLSConfig() (*tls.Config, error) {
	if d.Kind != KindTLSClientCert {
		return nil, fmt.Errorf("%s: TLSConfig needs kind %s", d, KindTLSClientCert)
	}
	if d.CertPEM == "" {
		return nil, fmt.Errorf("%s: no certificate to present: cert_pem is not set", d)
	}
	cert, err := d.clientCertificate(time.Now())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d, err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
	}, nil
}

func validURL(field, s string) error {
	if s == "" {
		return fmt.Errorf("%s is required", field)
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%s %q must be an absolute http(s) URL", field, s)
	}
	return nil
}

// validHeaderName reports whether s is an RFC 7230 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// ParseCAs reads a PEM bundle of CA certificates, naming the block (from 1)
// at fault.
func ParseCAs(bundle string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	rest := []byte(bundle)
	n := 0
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		n++
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("ca_pem: PEM block %d is %q, want CERTIFICATE", n, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("ca_pem: PEM block %d: %w", n, err)
		}
		pool.AddCert(c)
	}
	switch {
	case n == 0:
		return nil, errors.New("ca_pem: no PEM block found")
	case len(bytes.TrimSpace(rest)) > 0:
		return nil, fmt.Errorf("ca_pem: the text after PEM block %d is not a PEM block", n)
	}
	return pool, nil
}

// checkRules checks the patterns of allowed_subjects or allowed_sans
// (field): each is a name, or "*." and a name.
func checkRules(field string, rules []string, sans bool) error {
	for i, r := range rules {
		rest, wild := strings.CutPrefix(r, "*.")
		switch {
		case r == "" || strings.TrimSpace(r) != r:
			return fmt.Errorf("%s[%d] %q: want a name without surrounding white space", field, i, r)
		case wild && rest == "":
			return fmt.Errorf(`%s[%d] %q: want a name after "*."`, field, i, r)
		case strings.Contains(rest, "*"):
			return fmt.Errorf(`%s[%d] %q: "*" is allowed only as a leading "*."`, field, i, r)
		case wild && sans && strings.ContainsAny(rest, "@:/"):
			return fmt.Errorf(`%s[%d] %q: a "*." pattern matches DNS names, not email addresses or URIs`, field, i, r)
		}
	}
	return nil
}

// Of is the definition the API's message d describes: as agents use it,
// and as the control plane checks it (Validate, Inbound, Outbound).
func Of(d *adminv1.SecurityDefinition) Definition {
	return Definition{
		Name: d.GetName(), Kind: Kind(d.GetKind()),
		Username: d.GetUsername(), Password: d.GetPassword(),
		Header: d.GetHeader(), Key: d.GetKey(),
		Algorithms: d.GetAlgorithms(), Secret: d.GetSecret(), PublicKeyPEM: d.GetPublicKeyPem(), JWKSURL: d.GetJwksUrl(),
		Issuer: d.GetIssuer(), Audience: d.GetAudience(), Leeway: time.Duration(d.GetLeewayMs()) * time.Millisecond,
		Token:    d.GetToken(),
		TokenURL: d.GetTokenUrl(), ClientID: d.GetClientId(), ClientSecret: d.GetClientSecret(), Scopes: d.GetScopes(),
		IntrospectionURL: d.GetIntrospectionUrl(), CacheSeconds: int(d.GetCacheSeconds()),
		CertPEM: d.GetCertPem(), KeyPEM: d.GetKeyPem(),
		CAPEM: d.GetCaPem(), AllowedSubjects: d.GetAllowedSubjects(), AllowedSANs: d.GetAllowedSans(),
	}
}
