package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newAgentTokenRevokeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Make a join token unusable; agents that enrolled with it keep working",
		Args:  args("ID"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			id := argv[0]
			resp, err := call(cmd.Context(), a, fmt.Sprintf("revoke join token %q", id), func(ctx context.Context, c *conn) (*adminv1.RevokeJoinTokenResponse, error) {
				return c.fleet.RevokeJoinToken(ctx, &adminv1.RevokeJoinTokenRequest{Id: id})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			jt := resp.GetJoinToken()
			fmt.Fprintf(a.stdout, "revoked join token %s: no agent can enroll with it from now on", jt.GetId())
			if n := len(jt.GetAgents()); n > 0 {
				fmt.Fprintf(a.stdout, " (the %d agent(s) that did keep working; revoke them with weftctl agent revoke ID)", n)
			}
			fmt.Fprintln(a.stdout)
			return nil
		},
	}
}
