package cli

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newSecurityCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "security",
		Aliases: []string{"sec"},
		Short:   "Manage security definitions: credentials channels check and outgoing connections present",
		Long: `Security definitions hold credentials. Channels use basic_auth, api_key and jwt
definitions to check inbound requests; outgoing connections present basic_auth,
api_key, jwt (an HS256 token signed per request), bearer,
oauth2_client_credentials and tls_client_cert definitions.

Secrets are encrypted at rest and never shown: reads print ••••••••. A secret
flag takes the value itself, @FILE to read it from a file, or - to read one
line from standard input, so that it stays out of shell history:

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

// securityFlags set a definition's fields, for create and update.
type securityFlags struct {
	kind, username, header, jwksURL, issuer, audience, tokenURL, clientID string
	algorithms, scopes                                                    []string
	leeway                                                                time.Duration
	publicKeyFile, certFile, keyFile                                      string
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

func (f *securityFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.kind, "kind", "", "basic_auth, api_key, jwt, bearer, oauth2_client_credentials or tls_client_cert")
	fs.StringVar(&f.username, "username", "", "basic_auth user name")
	fs.StringVar(&f.header, "header", "", "api_key header (default X-API-Key)")
	fs.StringSliceVar(&f.algorithms, "algorithms", nil, "jwt algorithms accepted: HS256, RS256, ES256 (comma-separated)")
	fs.StringVar(&f.publicKeyFile, "public-key-file", "", "jwt RS256/ES256 public key, a PEM file (PUBLIC KEY or CERTIFICATE)")
	fs.StringVar(&f.jwksURL, "jwks-url", "", "jwt: fetch the RS256/ES256 keys from this JWKS URL")
	fs.StringVar(&f.issuer, "issuer", "", "jwt: the required iss claim")
	fs.StringVar(&f.audience, "audience", "", "jwt: the aud claim required when set")
	fs.DurationVar(&f.leeway, "leeway", 0, "jwt: clock skew allowed for exp, nbf and iat, such as 30s")
	fs.StringVar(&f.tokenURL, "token-url", "", "oauth2 token endpoint")
	fs.StringVar(&f.clientID, "client-id", "", "oauth2 client id")
	fs.StringSliceVar(&f.scopes, "scopes", nil, "oauth2 scopes (comma-separated)")
	fs.StringVar(&f.certFile, "cert-file", "", "tls_client_cert certificate chain, a PEM file")
	fs.StringVar(&f.keyFile, "key-file", "", "tls_client_cert private key, a PEM file (secret)")
	f.secrets = map[string]*string{}
	for _, s := range secretFlags {
		v := new(string)
		f.secrets[s.flag] = v
		fs.StringVar(v, s.flag, "", s.what+" (secret): VALUE, @FILE or - for standard input")
	}
}

// apply sets the fields of d whose flags were given and returns their
// proto field names, as an update mask wants them.
func (f *securityFlags) apply(cmd *cobra.Command, d *adminv1.SecurityDefinition, stdin *bufio.Reader) ([]string, error) {
	changed := cmd.Flags().Changed
	var mask []string
	set := func(flag, field string, dst *string, v string) {
		if changed(flag) {
			*dst = strings.TrimSpace(v)
			mask = append(mask, field)
		}
	}
	set("kind", "kind", &d.Kind, f.kind)
	set("username", "username", &d.Username, f.username)
	set("header", "header", &d.Header, f.header)
	set("jwks-url", "jwks_url", &d.JwksUrl, f.jwksURL)
	set("issuer", "issuer", &d.Issuer, f.issuer)
	set("audience", "audience", &d.Audience, f.audience)
	set("token-url", "token_url", &d.TokenUrl, f.tokenURL)
	set("client-id", "client_id", &d.ClientId, f.clientID)
	if changed("algorithms") {
		d.Algorithms = upper(f.algorithms)
		mask = append(mask, "algorithms")
	}
	if changed("scopes") {
		d.Scopes = f.scopes
		mask = append(mask, "scopes")
	}
	if changed("leeway") {
		if f.leeway < 0 {
			return nil, fmt.Errorf("--leeway %s: must not be negative", f.leeway)
		}
		d.LeewayMs = f.leeway.Milliseconds()
		mask = append(mask, "leeway_ms")
	}
	files := []struct {
		flag, field string
		dst         *string
	}{
		{"public-key-file", "public_key_pem", &d.PublicKeyPem},
		{"cert-file", "cert_pem", &d.CertPem},
		{"key-file", "key_pem", &d.KeyPem},
	}
	for _, fl := range files {
		if !changed(fl.flag) {
			continue
		}
		path, _ := cmd.Flags().GetString(fl.flag)
		v, err := readFileFlag(fl.flag, path)
		if err != nil {
			return nil, err
		}
		*fl.dst = v
		mask = append(mask, fl.field)
	}
	for _, s := range secretFlags {
		if !changed(s.flag) {
			continue
		}
		v, err := secretValue(s.flag, *f.secrets[s.flag], stdin)
		if err != nil {
			return nil, err
		}
		switch s.field {
		case "password":
			d.Password = v
		case "key":
			d.Key = v
		case "secret":
			d.Secret = v
		case "token":
			d.Token = v
		case "client_secret":
			d.ClientSecret = v
		}
		mask = append(mask, s.field)
	}
	return mask, nil
}

// secretValue reads a secret flag's value: the value itself, @FILE (the
// file's content, a final line break dropped) or - (one line of stdin).
func secretValue(flag, v string, stdin *bufio.Reader) (string, error) {
	switch {
	case v == "-":
		line, err := stdin.ReadString('\n')
		if err != nil && line == "" {
			return "", fmt.Errorf("--%s -: read standard input: %w", flag, err)
		}
		return strings.TrimRight(line, "\r\n"), nil
	case strings.HasPrefix(v, "@"):
		return readFileFlag(flag, v[1:])
	default:
		return v, nil
	}
}

// readFileFlag reads the file a flag names, dropping a final line break.
func readFileFlag(flag, path string) (string, error) {
	if path == "" {
		return "", nil // clears the field
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--%s: %w", flag, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

func upper(l []string) []string {
	out := make([]string, 0, len(l))
	for _, s := range l {
		if s = strings.ToUpper(strings.TrimSpace(s)); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (a *app) newSecurityCreateCmd() *cobra.Command {
	var f securityFlags
	cmd := &cobra.Command{
		Use:   "create NAME --kind KIND [flags]",
		Short: "Create a security definition",
		Example: `  weftctl security create shop-users --kind basic_auth --username shop --password @shop.pass
  weftctl security create partner-key --kind api_key --header X-Partner-Key --key -
  weftctl security create partner-jwt --kind jwt --algorithms RS256 --public-key-file partner.pem --issuer partner --audience weft
  weftctl security create idp --kind jwt --algorithms ES256 --jwks-url https://idp.example/jwks --issuer https://idp.example/ --leeway 30s
  weftctl security create crm-token --kind oauth2_client_credentials --token-url https://crm.example/oauth/token --client-id weft --client-secret @crm.secret
  weftctl security create bank-cert --kind tls_client_cert --cert-file client.pem --key-file client-key.pem`,
		Args: args("NAME"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			op := fmt.Sprintf("create security definition %q", name)
			d := &adminv1.SecurityDefinition{Name: name}
			if _, err := f.apply(cmd, d, bufio.NewReader(cmd.InOrStdin())); err != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
			resp, err := call(cmd.Context(), a, op, func(ctx context.Context, c *conn) (*adminv1.CreateSecurityDefinitionResponse, error) {
				return c.security.CreateSecurityDefinition(ctx, &adminv1.CreateSecurityDefinitionRequest{Definition: d})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			fmt.Fprintf(a.stdout, "created security definition %s (revision %d)\n", name, resp.GetDefinition().GetRevision())
			return nil
		},
	}
	f.register(cmd)
	_ = cmd.MarkFlagRequired("kind")
	return cmd
}

func (a *app) newSecurityUpdateCmd() *cobra.Command {
	var f securityFlags
	cmd := &cobra.Command{
		Use:   "update NAME [flags]",
		Short: "Change a security definition; agents use the new credentials with no restart",
		Long: `Update changes only the fields whose flags are given; secrets not given keep
their stored values. A flag given as "" clears its field.`,
		Example: `  weftctl security update partner-key --key @new.key
  weftctl security update idp --leeway 1m`,
		Args: args("NAME"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			op := fmt.Sprintf("update security definition %q", name)
			d := &adminv1.SecurityDefinition{Name: name}
			mask, err := f.apply(cmd, d, bufio.NewReader(cmd.InOrStdin()))
			if err != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
			if len(mask) == 0 {
				return fmt.Errorf("%s: nothing to change; give at least one field's flag (see --help)", op)
			}
			req := &adminv1.UpdateSecurityDefinitionRequest{Definition: d, UpdateMask: &fieldmaskpb.FieldMask{Paths: mask}}
			resp, err := call(cmd.Context(), a, op, func(ctx context.Context, c *conn) (*adminv1.UpdateSecurityDefinitionResponse, error) {
				return c.security.UpdateSecurityDefinition(ctx, req)
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			fmt.Fprintf(a.stdout, "updated security definition %s (revision %d)\n", name, resp.GetDefinition().GetRevision())
			return nil
		},
	}
	f.register(cmd)
	return cmd
}

func (a *app) newSecurityListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List security definitions",
		Args:  args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := call(cmd.Context(), a, "list security definitions", func(ctx context.Context, c *conn) (*adminv1.ListSecurityDefinitionsResponse, error) {
				return c.security.ListSecurityDefinitions(ctx, &adminv1.ListSecurityDefinitionsRequest{})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			t := newTable(a.stdout, "NAME", "KIND", "IDENTITY", "REVISION")
			for _, d := range resp.GetDefinitions() {
				t.row(d.GetName(), d.GetKind(), identityOf(d), strconv.FormatInt(d.GetRevision(), 10))
			}
			return t.flush()
		},
	}
}

// identityOf is the non-secret field that tells a definition apart: the
// user, the header, the issuer, the client id.
func identityOf(d *adminv1.SecurityDefinition) string {
	switch d.GetKind() {
	case "basic_auth":
		return "user " + d.GetUsername()
	case "api_key":
		h := d.GetHeader()
		if h == "" {
			h = "X-API-Key"
		}
		return "header " + h
	case "jwt":
		return fmt.Sprintf("%s issuer %s", strings.Join(d.GetAlgorithms(), ","), d.GetIssuer())
	case "oauth2_client_credentials":
		return fmt.Sprintf("client %s at %s", d.GetClientId(), d.GetTokenUrl())
	case "tls_client_cert":
		return "client certificate"
	}
	return ""
}

func (a *app) newSecurityGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show a security definition, secrets redacted",
		Args:  args("NAME"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			resp, err := call(cmd.Context(), a, fmt.Sprintf("get security definition %q", name), func(ctx context.Context, c *conn) (*adminv1.GetSecurityDefinitionResponse, error) {
				return c.security.GetSecurityDefinition(ctx, &adminv1.GetSecurityDefinitionRequest{Name: name})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			d := resp.GetDefinition()
			now := a.now()
			t := newTable(a.stdout)
			t.kv("name", d.GetName())
			t.kv("kind", d.GetKind())
			for _, kv := range [][2]string{
				{"username", d.GetUsername()}, {"password", d.GetPassword()},
				{"header", d.GetHeader()}, {"key", d.GetKey()},
				{"algorithms", strings.Join(d.GetAlgorithms(), ",")}, {"secret", d.GetSecret()},
				{"public key", firstLine(d.GetPublicKeyPem())}, {"jwks url", d.GetJwksUrl()},
				{"issuer", d.GetIssuer()}, {"audience", d.GetAudience()},
				{"token", d.GetToken()}, {"token url", d.GetTokenUrl()}, {"client id", d.GetClientId()},
				{"client secret", d.GetClientSecret()}, {"scopes", strings.Join(d.GetScopes(), ",")},
				{"certificate", firstLine(d.GetCertPem())}, {"private key", d.GetKeyPem()},
			} {
				if kv[1] != "" {
					t.kv(kv[0], kv[1])
				}
			}
			if ms := d.GetLeewayMs(); ms > 0 {
				t.kv("leeway", (time.Duration(ms) * time.Millisecond).String())
			}
			t.kv("revision", strconv.FormatInt(d.GetRevision(), 10))
			t.kv("created", when(now, d.GetCreatedAt()))
			t.kv("updated", when(now, d.GetUpdatedAt()))
			return t.flush()
		},
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

func (a *app) newSecurityDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a security definition no channel or connection uses",
		Args:  args("NAME"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			resp, err := call(cmd.Context(), a, fmt.Sprintf("delete security definition %q", name), func(ctx context.Context, c *conn) (*adminv1.DeleteSecurityDefinitionResponse, error) {
				return c.security.DeleteSecurityDefinition(ctx, &adminv1.DeleteSecurityDefinitionRequest{Name: name})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			fmt.Fprintf(a.stdout, "deleted security definition %s (revision %d)\n", name, resp.GetRevision())
			return nil
		},
	}
}
