package cli

import (
	"context"
	"strconv"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newSecurityListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List security definitions, secrets redacted",
		Args:  args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := call(cmd.Context(), a, "list security definitions", func(ctx context.Context, c *conn) (*adminv1.ListSecurityDefinitionsResponse, error) {
				return c.security.ListSecurityDefinitions(ctx, &adminv1.ListSecurityDefinitionsRequest{})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			t := newTable(a.stdout, "NAME", "KIND", "IDENTITY", "SECRETS", "REVISION")
			for _, d := range resp.GetDefinitions() {
				t.row(d.GetName(), d.GetKind(), identityOf(d), secretsOf(d), strconv.FormatInt(d.GetRevision(), 10))
			}
			return t.flush()
		},
	}
}
