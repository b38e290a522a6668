package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newJobRunCmd() *cobra.Command {
	var agent string
	cmd := &cobra.Command{
		Use:   "run NAME [--agent ID]",
		Short: "Run a job now, outside its schedule, and show each run",
		Long: `Run runs the job now and waits for its runs: on --agent when given, else on
the lease holder (or any selected agent) of a one job, and on every selected
agent of an every job. It prints each run's agent, correlation id, outcome,
duration and error, and exits non-zero unless every run's outcome is ok.
The call waits at most --rpc-timeout (30s): raise it for longer jobs.`,
		Example: `  weftctl job run sync
  weftctl job run sync --agent edge-berlin-1 --rpc-timeout 2m`,
		Args: args("NAME"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			op := fmt.Sprintf("run job %q", name)
			resp, err := call(cmd.Context(), a, op, func(ctx context.Context, c *conn) (*adminv1.RunJobResponse, error) {
				return c.jobs.RunJob(ctx, &adminv1.RunJobRequest{Name: name, AgentId: agent})
			})
			if err != nil {
				return err
			}
			if a.json() {
				err = a.printJSON(resp)
			} else {
				err = a.printRuns(resp.GetRuns())
			}
			if err != nil {
				return err
			}
			if err := runsFailed(resp.GetRuns()); err != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&agent, "agent", "", "id of the agent to run it on (default: as the placement says)")
	return cmd
}

// printRuns writes the runs of a manual run as a table.
func (a *app) printRuns(runs []*adminv1.JobRun) error {
	t := newTable(a.stdout, "AGENT", "CID", "OUTCOME", "DURATION", "ERROR")
	for _, r := range runs {
		t.row(r.GetAgentId(), r.GetCid(), r.GetOutcome(), runDuration(r), shorten(r.GetError(), 100))
	}
	return t.flush()
}

// runsFailed says which runs did not end ok, such as "1 of 2 runs did not
// succeed: edge-2 error"; nil when all did. No run at all is a failure too.
func runsFailed(runs []*adminv1.JobRun) error {
	if len(runs) == 0 {
		return errors.New("no agent ran it")
	}
	var bad []string
	for _, r := range runs {
		if r.GetOutcome() != outcomeOK {
			bad = append(bad, r.GetAgentId()+" "+r.GetOutcome())
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d runs did not succeed: %s", len(bad), len(runs), strings.Join(bad, ", "))
}
