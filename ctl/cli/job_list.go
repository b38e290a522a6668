package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newJobListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List jobs with their schedules, next runs and last outcomes",
		Args:  args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := call(cmd.Context(), a, "list jobs", func(ctx context.Context, c *conn) (*adminv1.ListJobsResponse, error) {
				return c.jobs.ListJobs(ctx, &adminv1.ListJobsRequest{})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			now := a.now()
			t := newTable(a.stdout, "NAME", "SERVICE", "TYPE", "SCHEDULE", "PLACEMENT", "STATE", "NEXT RUN", "LEASE", "LAST RUN")
			for _, j := range resp.GetJobs() {
				holder := ""
				if placementOf(j) == placeOne {
					holder = j.GetLease().GetAgentId()
				}
				last := ""
				if r := j.GetLastRun(); r != nil {
					last = fmt.Sprintf("%s (%s)", r.GetOutcome(), ago(now, r.GetStartedAt()))
				}
				t.row(j.GetName(), j.GetService(), j.GetType(), scheduleOf(j), placementOf(j), stateOf(j),
					tableTime(j.GetNextRunAt()), holder, last)
			}
			return t.flush()
		},
	}
}
