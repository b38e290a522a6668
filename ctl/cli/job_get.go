package cli

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newJobGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show a job with its next run, lease and last run",
		Args:  args("NAME"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			resp, err := call(cmd.Context(), a, fmt.Sprintf("get job %q", name), func(ctx context.Context, c *conn) (*adminv1.GetJobResponse, error) {
				return c.jobs.GetJob(ctx, &adminv1.GetJobRequest{Name: name})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			return a.printJob(resp.GetJob())
		},
	}
}

// printJob writes a job as key: value lines, defaults filled in.
func (a *app) printJob(j *adminv1.Job) error {
	now := a.now()
	payload, agents, timeout := "{}", "every agent", "service default"
	if j.GetPayload() != "" {
		payload = shorten(j.GetPayload(), 120)
	}
	if len(j.GetAgentLabels()) > 0 {
		agents = labelsOf(j.GetAgentLabels())
	}
	if ms := j.GetTimeoutMs(); ms > 0 {
		timeout = (time.Duration(ms) * time.Millisecond).String()
	}
	t := newTable(a.stdout)
	t.kv("name", j.GetName())
	if d := j.GetDescription(); d != "" {
		t.kv("description", d)
	}
	t.kv("service", j.GetService())
	t.kv("type", j.GetType())
	t.kv("schedule", scheduleOf(j))
	if j.GetStartAt() != nil && j.GetType() != jobOneTime {
		t.kv("start", stamp(j.GetStartAt()))
	}
	t.kv("payload", payload)
	t.kv("agents", agents)
	t.kv("placement", placementOf(j))
	t.kv("run missed", yesNo(j.GetRunMissed()))
	t.kv("timeout", timeout)
	t.kv("state", stateOf(j))
	t.kv("next run", whenNext(now, j.GetNextRunAt()))
	if l := j.GetLease(); l != nil {
		t.kv("lease", leaseOf(now, l))
	}
	t.kv("last run", lastRunOf(now, j.GetLastRun()))
	if e := j.GetLastRun().GetError(); e != "" {
		t.kv("last error", shorten(e, 200))
	}
	t.kv("revision", strconv.FormatInt(j.GetRevision(), 10))
	t.kv("created", when(now, j.GetCreatedAt()))
	t.kv("updated", when(now, j.GetUpdatedAt()))
	return t.flush()
}

// leaseOf renders a lease, such as "edge-2 (token 3, expires
// 2026-03-04T05:06:27Z (in 20s))".
func leaseOf(now time.Time, l *adminv1.JobLease) string {
	expires := "expires " + whenNext(now, l.GetExpiresAt())
	if l.GetExpiresAt() != nil && !l.GetExpiresAt().AsTime().After(now) {
		expires = "expired " + ago(now, l.GetExpiresAt())
	}
	return fmt.Sprintf("%s (token %d, %s)", l.GetAgentId(), l.GetToken(), expires)
}

// lastRunOf renders a job's newest run on one line; "never" for none.
func lastRunOf(now time.Time, r *adminv1.JobRun) string {
	if r == nil {
		return "never"
	}
	s := fmt.Sprintf("%s %s on %s, cid %s", r.GetOutcome(), when(now, r.GetStartedAt()), r.GetAgentId(), r.GetCid())
	if d := runDuration(r); d != "" {
		s += ", took " + d
	}
	return s
}
