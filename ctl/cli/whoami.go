package cli

import (
	"context"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newWhoAmICmd() *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Name the token weftctl sends and its role",
		Long: `Ask the control plane which token weftctl's calls carry and what its
role allows: viewer reads, deployer also deploys and changes config, admin
also manages tokens, join tokens, agents and keys. It checks a context:
the address, the CA and the token at once.`,
		Args: args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := call(cmd.Context(), a, "who am I", func(ctx context.Context, c *conn) (*adminv1.WhoAmIResponse, error) {
				return c.access.WhoAmI(ctx, &adminv1.WhoAmIRequest{})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			c, err := a.conn()
			if err != nil {
				return err
			}
			t := newTable(a.stdout)
			t.kv("name", resp.GetName())
			t.kv("role", roleName(resp.GetRole()))
			t.kv("control plane", c.addr)
			t.kv("token from", c.token.from)
			return t.flush()
		},
	}
}
