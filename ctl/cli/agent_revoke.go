package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newAgentRevokeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Cut an agent off: close its streams and refuse its id from now on (admin role)",
		Long: `Revoke an agent: the control plane closes its streams at once and from
then on refuses its certificate, a renewal and a new enrollment under the
same id. The agent stays listed, as revoked. Needs the admin role.`,
		Args: args("ID"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			id := argv[0]
			resp, err := call(cmd.Context(), a, fmt.Sprintf("revoke agent %q", id), func(ctx context.Context, c *conn) (*adminv1.RevokeAgentResponse, error) {
				return c.fleet.RevokeAgent(ctx, &adminv1.RevokeAgentRequest{Id: id})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			revoked := resp.GetAgent().GetId()
			if revoked == "" {
				revoked = id
			}
			streams := "streams"
			if resp.GetClosed() == 1 {
				streams = "stream"
			}
			fmt.Fprintf(a.stdout, "revoked agent %q: closed %d %s; its certificate, renewals and enrollments under this id are refused from now on\n",
				revoked, resp.GetClosed(), streams)
			return nil
		},
	}
}
