package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

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
			return a.printSecurity(resp.GetDefinition())
		},
	}
}

// printSecurity writes a definition as key: value lines: its name and kind,
// the fields it sets (secrets as the control plane redacts them) and when
// it changed.
func (a *app) printSecurity(d *adminv1.SecurityDefinition) error {
	t := newTable(a.stdout)
	t.kv("name", d.GetName())
	if s := d.GetDescription(); s != "" {
		t.kv("description", s)
	}
	t.kv("kind", d.GetKind())
	leeway := ""
	if ms := d.GetLeewayMs(); ms > 0 {
		leeway = (time.Duration(ms) * time.Millisecond).String()
	}
	cache := ""
	if d.GetIntrospectionUrl() != "" {
		secs := d.GetCacheSeconds()
		if secs == 0 {
			secs = 60
		}
		cache = (time.Duration(secs) * time.Second).String()
	}
	cas := ""
	if n := pemCount(d.GetCaPem()); n > 0 {
		cas = strconv.Itoa(n)
	}
	for _, kv := range [][2]string{
		{"username", d.GetUsername()}, {"password", d.GetPassword()},
		{"header", d.GetHeader()}, {"key", d.GetKey()},
		{"algorithms", strings.Join(d.GetAlgorithms(), ",")}, {"secret", d.GetSecret()},
		{"public key", firstLine(d.GetPublicKeyPem())}, {"jwks url", d.GetJwksUrl()},
		{"issuer", d.GetIssuer()}, {"audience", d.GetAudience()}, {"leeway", leeway},
		{"token", d.GetToken()},
		{"token url", d.GetTokenUrl()}, {"client id", d.GetClientId()},
		{"client secret", d.GetClientSecret()}, {"scopes", strings.Join(d.GetScopes(), ",")},
		{"introspection url", d.GetIntrospectionUrl()}, {"cache", cache},
		{"certificate", firstLine(d.GetCertPem())}, {"private key", d.GetKeyPem()},
		{"CA certificates", cas},
		{"allowed subjects", strings.Join(d.GetAllowedSubjects(), ",")},
		{"allowed sans", strings.Join(d.GetAllowedSans(), ",")},
	} {
		if kv[1] != "" {
			t.kv(kv[0], kv[1])
		}
	}
	now := a.now()
	t.kv("revision", strconv.FormatInt(d.GetRevision(), 10))
	t.kv("created", when(now, d.GetCreatedAt()))
	t.kv("updated", when(now, d.GetUpdatedAt()))
	return t.flush()
}
