package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newSecurityCreateCmd() *cobra.Command {
	var f securityFlags
	cmd := &cobra.Command{
		Use:   "create NAME --kind KIND [flags]",
		Short: "Create a security definition",
		Long: `Create stores a new security definition. --kind says which flags apply:

  basic_auth                 --username, --password
  api_key                    --header, --key
  jwt                        --algorithms, --secret, --public-key-file, --jwks-url,
                             --issuer, --audience, --leeway
  bearer                     --token (outbound: the token sent), or
                             --introspection-url, --client-id, --client-secret,
                             --scopes, --audience, --cache-seconds (inbound: tokens
                             checked by OAuth2 token introspection)
  oauth2_client_credentials  --token-url, --client-id, --client-secret, --scopes
  tls_client_cert            --cert-file, --key-file (outbound: the certificate
                             presented), or --ca-file, --allowed-subjects,
                             --allowed-sans (inbound: client certificates checked
                             on HTTPS channels)

` + secretHelp,
		Example: `  weftctl security create shop-users --kind basic_auth --username shop --password @shop.pass
  weftctl security create partner-key --kind api_key --header X-Partner-Key --key - < partner.key
  weftctl security create partner-jwt --kind jwt --algorithms RS256 --public-key-file partner.pem --issuer partner --audience weft
  weftctl security create idp --kind jwt --algorithms ES256 --jwks-url https://idp.example/jwks --issuer https://idp.example/ --leeway 30s
  weftctl security create crm-token --kind oauth2_client_credentials --token-url https://crm.example/oauth/token --client-id weft --client-secret @crm.secret --scopes read,write
  weftctl security create bank-cert --kind tls_client_cert --cert-file client.pem --key-file client-key.pem
  weftctl security create partners-mtls --kind tls_client_cert --ca-file partners-ca.pem --allowed-sans "*.partners.example,billing@acme.example"
  weftctl security create idp-tokens --kind bearer --introspection-url https://idp.example/oauth2/introspect \
    --client-id weft --client-secret @idp.secret --scopes orders:write --audience weft --cache-seconds 120`,
		Args: args("NAME"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			op := fmt.Sprintf("create security definition %q", name)
			d := &adminv1.SecurityDefinition{Name: name}
			if _, err := f.apply(cmd, d, cmd.InOrStdin()); err != nil {
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
