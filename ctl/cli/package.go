package cli

import (
	"context"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newPackageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "package",
		Aliases: []string{"packages", "pkg"},
		Short:   "Show deployed packages",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List deployed packages at their current versions",
		Args:  args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := call(cmd.Context(), a, "list packages", func(ctx context.Context, c *conn) (*adminv1.ListPackagesResponse, error) {
				return c.packages.ListPackages(ctx, &adminv1.ListPackagesRequest{})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			now := a.now()
			t := newTable(a.stdout, "NAME", "VERSION", "SHA256", "SERVICES", "REVISION", "AUTHOR", "DEPLOYED")
			for _, p := range resp.GetPackages() {
				t.row(p.GetName(), strconv.FormatInt(p.GetVersion(), 10), shortHash(p.GetSha256()),
					strings.Join(p.GetServices(), ","), strconv.FormatInt(p.GetRevision(), 10),
					p.GetAuthor(), ago(now, p.GetCreatedAt()))
			}
			return t.flush()
		},
	})
	return cmd
}
