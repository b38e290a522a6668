package cli

import (
	"context"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newTokenListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the tokens, without their secrets",
		Args:  args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := call(cmd.Context(), a, "list tokens", func(ctx context.Context, c *conn) (*adminv1.ListTokensResponse, error) {
				return c.access.ListTokens(ctx, &adminv1.ListTokensRequest{})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			now := a.now()
			t := newTable(a.stdout, "NAME", "ROLE", "STATE", "CREATED", "EXPIRES", "REVOKED", "CREATED BY")
			for _, tok := range resp.GetTokens() {
				expires := tableTime(tok.GetExpiresAt())
				if expires == "" {
					expires = "never"
				}
				t.row(tok.GetName(), roleName(tok.GetRole()), stateNow(now, tok.GetExpiresAt(), tok.GetRevokedAt()),
					tableTime(tok.GetCreatedAt()), expires, tableTime(tok.GetRevokedAt()), tok.GetCreatedBy())
			}
			return t.flush()
		},
	}
}
