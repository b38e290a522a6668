package cli

import (
	"context"
	"strconv"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newOutgoingListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List outgoing connections",
		Args:  args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := call(cmd.Context(), a, "list outgoing connections", func(ctx context.Context, c *conn) (*adminv1.ListOutgoingConnectionsResponse, error) {
				return c.outgoing.ListOutgoingConnections(ctx, &adminv1.ListOutgoingConnectionsRequest{})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			t := newTable(a.stdout, "NAME", "METHOD", "URL", "FORMAT", "SECURITY", "ACTIVE", "REVISION")
			for _, c := range resp.GetConnections() {
				t.row(c.GetName(), methodOf(c), c.GetAddress()+c.GetPathTemplate(), outFormatOf(c), c.GetSecurity(),
					yesNo(c.GetActive()), strconv.FormatInt(c.GetRevision(), 10))
			}
			return t.flush()
		},
	}
}
