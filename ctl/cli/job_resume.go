package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newJobResumeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "resume NAME",
		Short: "Let a paused job fire again",
		Args:  args("NAME"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			resp, err := call(cmd.Context(), a, fmt.Sprintf("resume job %q", name), func(ctx context.Context, c *conn) (*adminv1.ResumeJobResponse, error) {
				return c.jobs.ResumeJob(ctx, &adminv1.ResumeJobRequest{Name: name})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			a.printJobChange("resumed", resp.GetJob())
			return nil
		},
	}
}
