package cli

import (
	"context"
	"strconv"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newServiceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "service",
		Aliases: []string{"services", "svc"},
		Short:   "Show the services deployed packages register",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List services",
		Args:  args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := call(cmd.Context(), a, "list services", func(ctx context.Context, c *conn) (*adminv1.ListServicesResponse, error) {
				return c.packages.ListServices(ctx, &adminv1.ListServicesRequest{})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			t := newTable(a.stdout, "NAME", "PACKAGE", "VERSION")
			for _, s := range resp.GetServices() {
				t.row(s.GetName(), s.GetPackage(), strconv.FormatInt(s.GetPackageVersion(), 10))
			}
			return t.flush()
		},
	})
	return cmd
}
