package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newOutgoingDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete an outgoing connection",
		Args:  args("NAME"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			resp, err := call(cmd.Context(), a, fmt.Sprintf("delete outgoing connection %q", name), func(ctx context.Context, c *conn) (*adminv1.DeleteOutgoingConnectionResponse, error) {
				return c.outgoing.DeleteOutgoingConnection(ctx, &adminv1.DeleteOutgoingConnectionRequest{Name: name})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			fmt.Fprintf(a.stdout, "deleted outgoing connection %s (revision %d)\n", name, resp.GetRevision())
			return nil
		},
	}
}
