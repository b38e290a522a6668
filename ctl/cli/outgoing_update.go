package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newOutgoingUpdateCmd() *cobra.Command {
	var f outgoingFlags
	cmd := &cobra.Command{
		Use:   "update NAME [flags]",
		Short: "Change an outgoing connection; services use it with no restart",
		Long: `Update changes only the fields whose flags are given; the rest keep their
values. A flag given as "" clears its field. --header replaces every extra
header; --header "" removes them.`,
		Example: `  weftctl outgoing update crm --address https://crm-2.example
  weftctl outgoing update crm --header X-Tenant=acme --header X-Region=eu
  weftctl outgoing update crm --inactive`,
		Args: args("NAME"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			op := fmt.Sprintf("update outgoing connection %q", name)
			c := &adminv1.OutgoingConnection{Name: name}
			mask, err := f.apply(cmd, c)
			if err != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
			if len(mask) == 0 {
				// An empty mask would replace every field.
				return fmt.Errorf("%s: nothing to change; give at least one field's flag (see --help)", op)
			}
			req := &adminv1.UpdateOutgoingConnectionRequest{Connection: c, UpdateMask: &fieldmaskpb.FieldMask{Paths: mask}}
			resp, err := call(cmd.Context(), a, op, func(ctx context.Context, cn *conn) (*adminv1.UpdateOutgoingConnectionResponse, error) {
				return cn.outgoing.UpdateOutgoingConnection(ctx, req)
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			fmt.Fprintf(a.stdout, "updated outgoing connection %s (revision %d)\n", name, resp.GetConnection().GetRevision())
			return nil
		},
	}
	f.register(cmd, true)
	return cmd
}
