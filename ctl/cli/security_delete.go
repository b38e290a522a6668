package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newSecurityDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a security definition no channel or connection uses",
		Args:  args("NAME"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			resp, err := call(cmd.Context(), a, fmt.Sprintf("delete security definition %q", name), func(ctx context.Context, c *conn) (*adminv1.DeleteSecurityDefinitionResponse, error) {
				return c.security.DeleteSecurityDefinition(ctx, &adminv1.DeleteSecurityDefinitionRequest{Name: name})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			fmt.Fprintf(a.stdout, "deleted security definition %s (revision %d)\n", name, resp.GetRevision())
			return nil
		},
	}
}
