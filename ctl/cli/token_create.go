package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// defaultTokenTTL is how long a new token works unless --ttl says otherwise.
const defaultTokenTTL = 720 * time.Hour

func (a *app) newTokenCreateCmd() *cobra.Command {
	var (
		role string
		ttl  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "create NAME --role viewer|deployer|admin [--ttl 720h]",
		Short: "Make a token and print its secret, once",
		Long: `Make a token with a role. Its secret is printed this once (in -o json, as
the secret field): the control plane keeps only its hash. Give it to
weftctl with --token, WEFT_TOKEN or weftctl context add --token-file.`,
		Example: `  weftctl token create ci --role deployer --ttl 2160h
  weftctl token create dashboard --role viewer --ttl 0   # never expires`,
		Args: args("NAME"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			if err := checkTokenName(name); err != nil {
				return err
			}
			r, err := parseRole(role)
			if err != nil {
				return err
			}
			secs, err := ttlSeconds("ttl", ttl, true)
			if err != nil {
				return err
			}
			resp, err := call(cmd.Context(), a, fmt.Sprintf("create token %q", name), func(ctx context.Context, c *conn) (*adminv1.CreateTokenResponse, error) {
				return c.access.CreateToken(ctx, &adminv1.CreateTokenRequest{Name: name, Role: r, TtlSeconds: secs})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			tok := resp.GetToken()
			expires := "never expires"
			if tok.GetExpiresAt() != nil {
				expires = "expires " + whenNext(a.now(), tok.GetExpiresAt())
			}
			fmt.Fprintf(a.stdout, "created token %q with role %s; it %s\n", tok.GetName(), roleName(tok.GetRole()), expires)
			fmt.Fprintf(a.stdout, "secret: %s\n", resp.GetSecret())
			fmt.Fprintln(a.stdout, "The secret will not be shown again: store it now (weftctl context add NAME --addr HOST:PORT --token-file FILE, or WEFT_TOKEN).")
			return nil
		},
	}
	cmd.Flags().StringVar(&role, "role", "", "what the token may do: viewer, deployer or admin (required)")
	cmd.Flags().DurationVar(&ttl, "ttl", defaultTokenTTL, "how long the token works, such as 720h; 0 for ever")
	return cmd
}
