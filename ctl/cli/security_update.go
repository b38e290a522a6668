package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newSecurityUpdateCmd() *cobra.Command {
	var f securityFlags
	cmd := &cobra.Command{
		Use:   "update NAME [flags]",
		Short: "Change a security definition; agents use the new credentials with no restart",
		Long: `Update changes only the fields whose flags are given; the rest, secrets
included, keep their stored values. A flag given as "" clears its field.

` + secretHelp,
		Example: `  weftctl security update partner-key --key @new.key
  weftctl security update shop-users --password - < shop.pass
  weftctl security update idp --leeway 1m --audience weft`,
		Args: args("NAME"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			op := fmt.Sprintf("update security definition %q", name)
			d := &adminv1.SecurityDefinition{Name: name}
			mask, err := f.apply(cmd, d, cmd.InOrStdin())
			if err != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
			if len(mask) == 0 {
				// An empty mask would replace every field.
				return fmt.Errorf("%s: nothing to change; give at least one field's flag (see --help)", op)
			}
			req := &adminv1.UpdateSecurityDefinitionRequest{Definition: d, UpdateMask: &fieldmaskpb.FieldMask{Paths: mask}}
			resp, err := call(cmd.Context(), a, op, func(ctx context.Context, c *conn) (*adminv1.UpdateSecurityDefinitionResponse, error) {
				return c.security.UpdateSecurityDefinition(ctx, req)
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			fmt.Fprintf(a.stdout, "updated security definition %s (revision %d)\n", name, resp.GetDefinition().GetRevision())
			return nil
		},
	}
	f.register(cmd)
	return cmd
}
