package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newAgentTokenListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the join tokens, newest first, without their secrets",
		Args:  args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := call(cmd.Context(), a, "list join tokens", func(ctx context.Context, c *conn) (*adminv1.ListJoinTokensResponse, error) {
				return c.fleet.ListJoinTokens(ctx, &adminv1.ListJoinTokensRequest{})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			now := a.now()
			t := newTable(a.stdout, "ID", "STATE", "USED", "CREATED", "EXPIRES", "LABELS", "AGENTS", "CREATED BY")
			for _, jt := range resp.GetJoinTokens() {
				t.row(jt.GetId(), joinTokenState(jt, now), fmt.Sprintf("%d/%d", jt.GetUsed(), jt.GetUses()),
					tableTime(jt.GetCreatedAt()), tableTime(jt.GetExpiresAt()), labelsOf(jt.GetLabels()),
					strings.Join(jt.GetAgents(), ","), jt.GetCreatedBy())
			}
			return t.flush()
		},
	}
}
