package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newJobUpdateCmd() *cobra.Command {
	var f jobFlags
	cmd := &cobra.Command{
		Use:   "update NAME [flags]",
		Short: "Change a job; agents use the change with no restart",
		Long: `Update changes only the fields whose flags are given; the rest keep their
values. A flag given as "" clears its field: --start "", --payload "",
--agent-label "" (every agent), --every "" (no interval). The interval is
replaced as a whole: --hours 2 alone makes it exactly 2h. --active and
--inactive resume and pause the job.

` + jobFlagHelp,
		Example: `  weftctl job update sync --every 15m
  weftctl job update digest --cron "30 6 * * *" --tz Europe/Paris
  weftctl job update sync --placement every --agent-label ""
  weftctl job update report --payload - < report.json`,
		Args: args("NAME"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			op := fmt.Sprintf("update job %q", name)
			j := &adminv1.Job{Name: name}
			mask, err := f.apply(cmd, j, cmd.InOrStdin())
			if err != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
			if err := f.checkType(cmd, j.GetType(), false); err != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
			if len(mask) == 0 {
				// An empty mask would replace every field.
				return fmt.Errorf("%s: nothing to change; give at least one field's flag (see --help)", op)
			}
			req := &adminv1.UpdateJobRequest{Job: j, UpdateMask: &fieldmaskpb.FieldMask{Paths: mask}}
			resp, err := call(cmd.Context(), a, op, func(ctx context.Context, c *conn) (*adminv1.UpdateJobResponse, error) {
				return c.jobs.UpdateJob(ctx, req)
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			a.printJobChange("updated", resp.GetJob())
			return nil
		},
	}
	f.register(cmd, true)
	return cmd
}
