package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newJobPauseCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "pause NAME",
		Short: "Stop a job from firing until it is resumed",
		Args:  args("NAME"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			resp, err := call(cmd.Context(), a, fmt.Sprintf("pause job %q", name), func(ctx context.Context, c *conn) (*adminv1.PauseJobResponse, error) {
				return c.jobs.PauseJob(ctx, &adminv1.PauseJobRequest{Name: name})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			a.printJobChange("paused", resp.GetJob())
			return nil
		},
	}
}
