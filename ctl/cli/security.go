package cli

import (
	"bufio"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/weft-dev/weft/proto/marks"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// secretHelp says how secret flags take their values; create, update and
// the security command's own help repeat it.
const secretHelp = `Secret flags (--password, --key, --secret, --token, --client-secret) take
the value itself, @FILE to read it from a file (a final line break is
dropped), or - to read one line from standard input, so that the secret
stays out of shell history. Each - reads the next line, in the order the
flags are listed above. A secret that itself starts with @ must come from a
file or standard input. The private key of tls_client_cert is always read
from the file --key-file names.`

func (a *app) newSecurityCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "security",
		Aliases: []string{"sec"},
		Short:   "Manage security definitions: credentials channels check and outgoing connections present",
		Long: `Security definitions hold credentials. Channels use basic_auth, api_key, jwt,
bearer with --introspection-url (tokens checked by OAuth2 token introspection)
and tls_client_cert with --ca-file (TLS client certificates, on HTTPS) to check
inbound requests; outgoing connections present basic_auth, api_key, jwt (an
HS256 token signed per request), bearer with --token,
oauth2_client_credentials and tls_client_cert with --cert-file and --key-file.

Secrets are encrypted at rest and never shown: reads print ••••••••.

` + secretHelp + `

  weftctl security create partner --kind basic_auth --username weft --password @partner.pass`,
	}
	cmd.AddCommand(
		a.newSecurityCreateCmd(),
		a.newSecurityListCmd(),
		a.newSecurityGetCmd(),
		a.newSecurityUpdateCmd(),
		a.newSecurityDeleteCmd(),
	)
	return cmd
}

// securityKinds are the kinds of definition, each with the flags that set
// its fields.
var securityKinds = []struct {
	kind  string
	flags []string
}{
	{"basic_auth", []string{"username", "password"}},
	{"api_key", []string{"header", "key"}},
	{"jwt", []string{"algorithms", "secret", "public-key-file", "jwks-url", "issuer", "audience", "leeway"}},
	{"bearer", []string{"token", "introspection-url", "client-id", "client-secret", "scopes", "audience", "cache-seconds"}},
	{"oauth2_client_credentials", []string{"token-url", "client-id", "client-secret", "scopes"}},
	{"tls_client_cert", []string{"cert-file", "key-file", "ca-file", "allowed-subjects", "allowed-sans"}},
}

// jwtAlgorithms are the values --algorithms accepts.
var jwtAlgorithms = []string{"HS256", "RS256", "ES256"}

// securityFlags set a definition's fields, for create and update.
type securityFlags struct {
	kind, username, header, jwksURL, issuer, audience, tokenURL, clientID string
	introspectionURL, description                                         string
	cacheSeconds                                                          int32
	algorithms, scopes, allowedSubjects, allowedSANs                      []string
	leeway                                                                time.Duration
	publicKeyFile, certFile, keyFile, caFile                              string
	secrets                                                               map[string]*string // flag -> value
}

// secretFlags are the flags that carry a secret, and the fields they set.
var secretFlags = []struct{ flag, field, what string }{
	{"password", "password", "basic_auth password"},
	{"key", "key", "api_key value"},
	{"secret", "secret", "jwt HS256 shared secret, at least 32 bytes"},
	{"token", "token", "bearer token"},
	{"client-secret", "client_secret", "oauth2 client secret"},
}

// secretField returns the field of d that the secret field name sets.
func secretField(d *adminv1.SecurityDefinition, field string) *string {
	switch field {
	case "password":
		return &d.Password
	case "key":
		return &d.Key
	case "secret":
		return &d.Secret
	case "token":
		return &d.Token
	case "client_secret":
		return &d.ClientSecret
	}
	panic("unknown secret field " + field)
}

// register adds the flags to cmd.
func (f *securityFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.kind, "kind", "", "basic_auth, api_key, jwt, bearer, oauth2_client_credentials or tls_client_cert")
	fs.StringVar(&f.description, "description", "", "what the definition is for, at most 1024 characters")
	fs.StringVar(&f.username, "username", "", "basic_auth user name")
	fs.StringVar(&f.header, "header", "", "api_key header (default X-API-Key)")
	fs.StringSliceVar(&f.algorithms, "algorithms", nil, "jwt algorithms accepted: HS256, RS256, ES256 (comma-separated)")
	fs.StringVar(&f.publicKeyFile, "public-key-file", "", "jwt RS256/ES256 public key, a PEM file (PUBLIC KEY or CERTIFICATE)")
	fs.StringVar(&f.jwksURL, "jwks-url", "", "jwt: fetch the RS256/ES256 keys from this JWKS URL")
	fs.StringVar(&f.issuer, "issuer", "", "jwt: the required iss claim")
	fs.StringVar(&f.audience, "audience", "", "jwt, or bearer with --introspection-url: the aud required when set")
	fs.DurationVar(&f.leeway, "leeway", 0, "jwt: clock skew allowed for exp, nbf and iat, such as 30s")
	fs.StringVar(&f.tokenURL, "token-url", "", "oauth2 token endpoint")
	fs.StringVar(&f.clientID, "client-id", "", "oauth2 client id; for bearer, the client id the agent introspects tokens with")
	fs.StringSliceVar(&f.scopes, "scopes", nil, "oauth2 scopes asked for; for bearer, the scopes a token must all have (comma-separated)")
	fs.StringVar(&f.introspectionURL, "introspection-url", "", "bearer: check inbound tokens with this OAuth2 token introspection endpoint (RFC 7662)")
	fs.Int32Var(&f.cacheSeconds, "cache-seconds", 0, "bearer with --introspection-url: how long an answer is reused, at most until the token expires (0: 60, at most 3600)")
	fs.StringVar(&f.certFile, "cert-file", "", "tls_client_cert certificate chain to present outbound, a PEM file")
	fs.StringVar(&f.keyFile, "key-file", "", "tls_client_cert private key, a PEM file (secret)")
	fs.StringVar(&f.caFile, "ca-file", "", "tls_client_cert: the CA certificates inbound client certificates must chain to, a PEM file")
	fs.StringSliceVar(&f.allowedSubjects, "allowed-subjects", nil, `tls_client_cert: subject common names a client certificate may have, exact or "*.example.com" (comma-separated)`)
	fs.StringSliceVar(&f.allowedSANs, "allowed-sans", nil, `tls_client_cert: DNS names, emails or URIs a client certificate may have among its alternative names, exact or "*.example.com" (comma-separated)`)
	f.secrets = map[string]*string{}
	for _, s := range secretFlags {
		v := new(string)
		f.secrets[s.flag] = v
		fs.StringVar(v, s.flag, "", s.what+"; secret: VALUE, @FILE, or - to read a line of standard input")
	}
}

// apply sets the fields of d whose flags were given and returns their
// proto field names, in flag order, as an update mask wants them. It reads
// secrets given as - from stdin.
func (f *securityFlags) apply(cmd *cobra.Command, d *adminv1.SecurityDefinition, stdin io.Reader) ([]string, error) {
	changed := cmd.Flags().Changed
	if changed("kind") {
		if err := f.checkKind(cmd); err != nil {
			return nil, err
		}
	}
	var mask []string
	set := func(flag, field string, dst *string, v string) {
		if changed(flag) {
			*dst = strings.TrimSpace(v)
			mask = append(mask, field)
		}
	}
	set("kind", "kind", &d.Kind, strings.ToLower(f.kind))
	set("description", "description", &d.Description, f.description)
	set("username", "username", &d.Username, f.username)
	set("header", "header", &d.Header, f.header)
	if changed("algorithms") {
		algs, err := parseAlgorithms(f.algorithms)
		if err != nil {
			return nil, err
		}
		d.Algorithms = algs
		mask = append(mask, "algorithms")
	}
	set("jwks-url", "jwks_url", &d.JwksUrl, f.jwksURL)
	set("issuer", "issuer", &d.Issuer, f.issuer)
	set("audience", "audience", &d.Audience, f.audience)
	if changed("leeway") {
		if f.leeway < 0 {
			return nil, fmt.Errorf("--leeway %s: must not be negative", f.leeway)
		}
		d.LeewayMs = f.leeway.Milliseconds()
		mask = append(mask, "leeway_ms")
	}
	set("token-url", "token_url", &d.TokenUrl, f.tokenURL)
	set("client-id", "client_id", &d.ClientId, f.clientID)
	if changed("scopes") {
		d.Scopes = nonEmpty(f.scopes)
		mask = append(mask, "scopes")
	}
	set("introspection-url", "introspection_url", &d.IntrospectionUrl, f.introspectionURL)
	if changed("cache-seconds") {
		if f.cacheSeconds < 0 {
			return nil, fmt.Errorf("--cache-seconds %d: must not be negative", f.cacheSeconds)
		}
		d.CacheSeconds = f.cacheSeconds
		mask = append(mask, "cache_seconds")
	}
	if changed("allowed-subjects") {
		d.AllowedSubjects = nonEmpty(f.allowedSubjects)
		mask = append(mask, "allowed_subjects")
	}
	if changed("allowed-sans") {
		d.AllowedSans = nonEmpty(f.allowedSANs)
		mask = append(mask, "allowed_sans")
	}
	pemFiles := []struct {
		flag, field, path string
		dst               *string
		want              pemWant
	}{
		{"public-key-file", "public_key_pem", f.publicKeyFile, &d.PublicKeyPem, pemPublicKey},
		{"cert-file", "cert_pem", f.certFile, &d.CertPem, pemCertificate},
		{"key-file", "key_pem", f.keyFile, &d.KeyPem, pemPrivateKey},
		{"ca-file", "ca_pem", f.caFile, &d.CaPem, pemCertificate},
	}
	for _, p := range pemFiles {
		if !changed(p.flag) {
			continue
		}
		v, err := readPEMFlag(p.flag, p.path, p.want)
		if err != nil {
			return nil, err
		}
		*p.dst = v
		mask = append(mask, p.field)
	}
	in := bufio.NewReader(stdin)
	for _, s := range secretFlags {
		if !changed(s.flag) {
			continue
		}
		v, err := secretValue(s.flag, *f.secrets[s.flag], in)
		if err != nil {
			return nil, err
		}
		*secretField(d, s.field) = v
		mask = append(mask, s.field)
	}
	return mask, nil
}

// checkKind refuses an unknown --kind, and flags given with it that set
// fields the kind does not use.
func (f *securityFlags) checkKind(cmd *cobra.Command) error {
	kind := strings.ToLower(strings.TrimSpace(f.kind))
	names := make([]string, 0, len(securityKinds))
	for _, k := range securityKinds {
		names = append(names, k.kind)
		if k.kind != kind {
			continue
		}
		for _, other := range securityKinds {
			for _, flag := range other.flags {
				if cmd.Flags().Changed(flag) && !slices.Contains(k.flags, flag) {
					return fmt.Errorf("--%s does not apply to --kind %s (it takes --%s)", flag, kind, strings.Join(k.flags, ", --"))
				}
			}
		}
		return nil
	}
	return fmt.Errorf("--kind %q: want one of %s", f.kind, strings.Join(names, ", "))
}

// parseAlgorithms upper-cases JWT algorithms and refuses unknown ones.
func parseAlgorithms(in []string) ([]string, error) {
	out := nonEmpty(in)
	for i, alg := range out {
		out[i] = strings.ToUpper(alg)
		if !slices.Contains(jwtAlgorithms, out[i]) {
			return nil, fmt.Errorf("--algorithms %q: want %s", alg, strings.Join(jwtAlgorithms, ", "))
		}
	}
	return out, nil
}

// nonEmpty trims the values of a list flag and drops empty ones, so that
// --scopes "" clears the list.
func nonEmpty(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// secretValue reads a secret flag's value: the value itself, @FILE (the
// file's content, a final line break dropped) or - (the next line of
// stdin). A file or line that is empty is refused: a literal "" is how a
// secret is cleared on purpose.
func secretValue(flag, v string, stdin *bufio.Reader) (string, error) {
	switch {
	case v == "-":
		line, err := stdin.ReadString('\n')
		if err != nil && (line == "" || !errors.Is(err, io.EOF)) {
			return "", fmt.Errorf("--%s -: read a line of standard input: %w", flag, err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return "", fmt.Errorf("--%s -: the line read from standard input is empty", flag)
		}
		return line, nil
	case strings.HasPrefix(v, "@"):
		path := v[1:]
		if path == "" {
			return "", fmt.Errorf("--%s @: want @FILE, the file holding the secret", flag)
		}
		s, err := readFileFlag(flag, path)
		if err != nil {
			return "", err
		}
		if s == "" {
			return "", fmt.Errorf("--%s @%s: the file is empty", flag, path)
		}
		return s, nil
	default:
		return v, nil
	}
}

// readFileFlag reads the file a flag names, dropping a final line break.
// An empty path clears the field.
func readFileFlag(flag, path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		// The error names the path: "open client.pem: no such file or directory".
		return "", fmt.Errorf("--%s: %w", flag, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// pemWant says which PEM blocks a file flag takes.
type pemWant struct {
	what string
	ok   func(blockType string) bool
}

// The PEM contents the file flags take.
var (
	pemPublicKey = pemWant{"PUBLIC KEY or CERTIFICATE", func(t string) bool {
		return t == "PUBLIC KEY" || t == "CERTIFICATE"
	}}
	pemCertificate = pemWant{"CERTIFICATE", func(t string) bool { return t == "CERTIFICATE" }}
	pemPrivateKey  = pemWant{"PRIVATE KEY", func(t string) bool { return strings.HasSuffix(t, "PRIVATE KEY") }}
)

// readPEMFlag reads the PEM file a flag names and checks that it holds a
// block of the wanted type; the control plane checks the rest. An empty
// path clears the field.
func readPEMFlag(flag, path string, want pemWant) (string, error) {
	s, err := readFileFlag(flag, path)
	if err != nil || s == "" {
		return s, err
	}
	rest := []byte(s)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return "", fmt.Errorf("--%s %s: holds no PEM %s block", flag, path, want.what)
		}
		if want.ok(b.Type) {
			return s, nil
		}
	}
}

// identityOf lists the non-secret fields that tell a definition apart: the
// user, the header, the algorithms and issuer, the client id.
func identityOf(d *adminv1.SecurityDefinition) string {
	var parts []string
	add := func(label, v string) {
		if v != "" {
			parts = append(parts, label+" "+v)
		}
	}
	switch d.GetKind() {
	case "basic_auth":
		add("user", d.GetUsername())
	case "api_key":
		h := d.GetHeader()
		if h == "" {
			h = "X-API-Key"
		}
		add("header", h)
	case "jwt":
		add("alg", strings.Join(d.GetAlgorithms(), ","))
		add("issuer", d.GetIssuer())
		add("audience", d.GetAudience())
		add("jwks", d.GetJwksUrl())
	case "oauth2_client_credentials":
		add("client", d.GetClientId())
		add("at", d.GetTokenUrl())
	case "bearer":
		if d.GetIntrospectionUrl() != "" {
			add("introspects at", d.GetIntrospectionUrl())
			add("as", d.GetClientId())
			add("scopes", strings.Join(d.GetScopes(), ","))
			add("audience", d.GetAudience())
		}
	case "tls_client_cert":
		if d.GetCertPem() != "" {
			parts = append(parts, "client certificate")
		}
		if n := pemCount(d.GetCaPem()); n > 0 {
			cas := "1 CA"
			if n > 1 {
				cas = fmt.Sprintf("%d CAs", n)
			}
			parts = append(parts, "client certificates from "+cas)
			add("subjects", strings.Join(d.GetAllowedSubjects(), ","))
			add("sans", strings.Join(d.GetAllowedSans(), ","))
		}
	}
	return strings.Join(parts, " ")
}

// secretsOf lists the secrets a definition has set, as the control plane
// returns them (redacted), such as "password=••••••••".
func secretsOf(d *adminv1.SecurityDefinition) string {
	var parts []string
	m := d.ProtoReflect()
	for _, fd := range marks.Fields(m.Descriptor(), marks.Secret) {
		if v := m.Get(fd).String(); v != "" {
			parts = append(parts, string(fd.Name())+"="+v)
		}
	}
	return strings.Join(parts, " ")
}

// pemCount is how many PEM blocks s holds.
func pemCount(s string) int {
	n := 0
	for rest := []byte(s); ; n++ {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return n
		}
	}
}

// firstLine shows a PEM by its first line.
func firstLine(s string) string {
	line, rest, _ := strings.Cut(s, "\n")
	if rest != "" {
		line += " …"
	}
	return line
}
