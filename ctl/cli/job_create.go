package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newJobCreateCmd() *cobra.Command {
	var f jobFlags
	cmd := &cobra.Command{
		Use:   "create NAME --service SERVICE --type one_time|interval|cron [flags]",
		Short: "Create a scheduled job",
		Long:  "Create stores a new job; it is active unless --inactive is given.\n\n" + jobFlagHelp,
		Example: `  weftctl job create report --service reports.build --type one_time --start 2026-11-28T10:00:00Z
  weftctl job create sync --service crm.sync --type interval --every 1h30m --placement one --agent-label region=eu
  weftctl job create digest --service mail.digest --type cron --cron "0 7 * * 1-5" --tz Europe/Berlin --payload @digest.json --run-missed`,
		Args: args("NAME"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			op := fmt.Sprintf("create job %q", name)
			j := &adminv1.Job{Name: name} // active unless --inactive
			if _, err := f.apply(cmd, j, cmd.InOrStdin()); err != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
			if err := f.checkType(cmd, j.GetType(), true); err != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
			resp, err := call(cmd.Context(), a, op, func(ctx context.Context, c *conn) (*adminv1.CreateJobResponse, error) {
				return c.jobs.CreateJob(ctx, &adminv1.CreateJobRequest{Job: j})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			a.printJobChange("created", resp.GetJob())
			return nil
		},
	}
	f.register(cmd, false)
	_ = cmd.MarkFlagRequired("service")
	_ = cmd.MarkFlagRequired("type")
	return cmd
}

// printJobChange writes one line about a job that was changed, with its
// revision and, when it has one, its next firing.
func (a *app) printJobChange(verb string, j *adminv1.Job) {
	next := ""
	if j.GetNextRunAt() != nil {
		next = ", next run " + whenNext(a.now(), j.GetNextRunAt())
	}
	fmt.Fprintf(a.stdout, "%s job %s (revision %d%s)\n", verb, j.GetName(), j.GetRevision(), next)
}
