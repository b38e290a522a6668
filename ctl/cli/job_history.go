package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// defaultJobRuns is how many runs job history shows unless --limit says.
const defaultJobRuns = 20

func (a *app) newJobHistoryCmd() *cobra.Command {
	var limit int32
	cmd := &cobra.Command{
		Use:   "history NAME [--limit N]",
		Short: "List a job's last runs, newest first",
		Long: `History lists the job's last runs, newest first: the firing each run was for,
when it started, the agent, what triggered it (schedule, manual, or recovery
for a missed firing run when an agent was back), the outcome (ok, error,
timeout, skipped while the previous run still ran, or running), how long it
took, its correlation id (as in the agent's log) and its error.`,
		Example: `  weftctl job history sync
  weftctl job history sync --limit 100 -o json`,
		Args: args("NAME"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			op := fmt.Sprintf("history of job %q", name)
			if limit < 1 {
				return fmt.Errorf("%s: --limit %d: must be at least 1", op, limit)
			}
			resp, err := call(cmd.Context(), a, op, func(ctx context.Context, c *conn) (*adminv1.ListJobRunsResponse, error) {
				return c.jobs.ListJobRuns(ctx, &adminv1.ListJobRunsRequest{Name: name, Limit: limit})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			t := newTable(a.stdout, "SCHEDULED", "STARTED", "AGENT", "TRIGGER", "OUTCOME", "DURATION", "CID", "ERROR")
			for _, r := range resp.GetRuns() {
				t.row(tableTime(r.GetScheduledAt()), tableTime(r.GetStartedAt()), r.GetAgentId(), r.GetTrigger(),
					r.GetOutcome(), runDuration(r), r.GetCid(), shorten(r.GetError(), 80))
			}
			return t.flush()
		},
	}
	cmd.Flags().Int32Var(&limit, "limit", defaultJobRuns, "show at most N runs")
	return cmd
}
