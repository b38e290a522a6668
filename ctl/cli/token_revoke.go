package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newTokenRevokeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke NAME",
		Short: "Make a token unusable at once",
		Args:  args("NAME"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			if err := checkTokenName(name); err != nil {
				return err
			}
			resp, err := call(cmd.Context(), a, fmt.Sprintf("revoke token %q", name), func(ctx context.Context, c *conn) (*adminv1.RevokeTokenResponse, error) {
				return c.access.RevokeToken(ctx, &adminv1.RevokeTokenRequest{Name: name})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			fmt.Fprintf(a.stdout, "revoked token %q (role %s): the control plane refuses it from now on\n",
				resp.GetToken().GetName(), roleName(resp.GetToken().GetRole()))
			return nil
		},
	}
}
