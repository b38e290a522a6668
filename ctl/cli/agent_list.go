package cli

import (
	"context"
	"strconv"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// errorWidth is how much of an agent's last error the table shows.
const errorWidth = 40

func (a *app) newAgentListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List every agent the control plane has seen",
		Args:  args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := call(cmd.Context(), a, "list agents", func(ctx context.Context, c *conn) (*adminv1.ListAgentsResponse, error) {
				return c.fleet.ListAgents(ctx, &adminv1.ListAgentsRequest{})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			now := a.now()
			t := newTable(a.stdout, "ID", "STATUS", "APPLIED", "DESIRED", "CONNECTED", "HTTP", "LAST SEEN", "ERROR")
			for _, ag := range resp.GetAgents() {
				t.row(ag.GetId(), syncStatus(ag.GetSyncStatus()),
					strconv.FormatInt(ag.GetAppliedRevision(), 10), strconv.FormatInt(ag.GetDesiredRevision(), 10),
					yesNo(ag.GetConnected()), ag.GetHttpAddress(), ago(now, ag.GetLastSeen()),
					shorten(ag.GetLastError(), errorWidth))
			}
			return t.flush()
		},
	}
}
