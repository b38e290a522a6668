package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newJobDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a job and its run history",
		Args:  args("NAME"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			resp, err := call(cmd.Context(), a, fmt.Sprintf("delete job %q", name), func(ctx context.Context, c *conn) (*adminv1.DeleteJobResponse, error) {
				return c.jobs.DeleteJob(ctx, &adminv1.DeleteJobRequest{Name: name})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			fmt.Fprintf(a.stdout, "deleted job %s (revision %d)\n", name, resp.GetRevision())
			return nil
		},
	}
}
