package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newOutgoingCreateCmd() *cobra.Command {
	var f outgoingFlags
	cmd := &cobra.Command{
		Use:   "create NAME --address URL [flags]",
		Short: "Create an outgoing HTTP connection",
		Example: `  weftctl outgoing create crm --address https://crm.example --path /api/customers/{id} --security crm-token --timeout 5s
  weftctl outgoing create erp --address https://erp.internal --method POST --format xml --ca-file internal-ca.pem --header X-Tenant=acme
  weftctl outgoing create quotes --address http://quotes.example --path /soap --method POST --format soap11 --soap-action urn:quotes#GetQuote`,
		Args: args("NAME"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			op := fmt.Sprintf("create outgoing connection %q", name)
			c := &adminv1.OutgoingConnection{Name: name} // active unless --inactive
			if _, err := f.apply(cmd, c); err != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
			resp, err := call(cmd.Context(), a, op, func(ctx context.Context, cn *conn) (*adminv1.CreateOutgoingConnectionResponse, error) {
				return cn.outgoing.CreateOutgoingConnection(ctx, &adminv1.CreateOutgoingConnectionRequest{Connection: c})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			fmt.Fprintf(a.stdout, "created outgoing connection %s (revision %d)\n", name, resp.GetConnection().GetRevision())
			return nil
		},
	}
	f.register(cmd, false)
	_ = cmd.MarkFlagRequired("address")
	return cmd
}
