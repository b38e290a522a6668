package cli

import (
	"context"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// errorWidth is how much of an agent's last error the table shows.
const errorWidth = 40

func (a *app) newAgentListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List every agent the control plane has seen",
		Args:  args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := call(cmd.Context(), a, "list agents", func(ctx context.Context, c *conn) (*adminv1.ListAgentsResponse, error) {
				return c.fleet.ListAgents(ctx, &adminv1.ListAgentsRequest{})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			now := a.now()
			t := newTable(a.stdout, "ID", "STATUS", "APPLIED", "DESIRED", "CONNECTED", "HTTP", "LAST SEEN", "ERROR")
			for _, ag := range resp.GetAgents() {
				t.row(ag.GetId(), agentStatus(ag),
					strconv.FormatInt(ag.GetAppliedRevision(), 10), strconv.FormatInt(ag.GetDesiredRevision(), 10),
					yesNo(ag.GetConnected()), ag.GetHttpAddress(), ago(now, ag.GetLastSeen()),
					shorten(agentError(ag), errorWidth))
			}
			return t.flush()
		},
	}
}

// unpersisted marks the status of an agent that serves a state it could
// not keep on its disk: it is one word with the sync status, so a script
// comparing the column with "in-sync" sees the difference.
const unpersisted = ",unpersisted"

// revokedStatus is the status of a revoked agent: its sync status no
// longer matters, as the control plane refuses it.
const revokedStatus = "revoked"

// agentStatus renders an agent's sync status, marked when the agent could
// not keep what it serves on disk; "revoked" for a revoked agent.
func agentStatus(ag *adminv1.Agent) string {
	if ag.GetRevokedAt() != nil {
		return revokedStatus
	}
	s := syncStatus(ag.GetSyncStatus())
	if ag.GetNotPersisted() != "" {
		s += unpersisted
	}
	return s
}

// agentError is what went wrong on an agent: its refusal, then why it
// could not keep what it serves on disk.
func agentError(ag *adminv1.Agent) string {
	var errs []string
	if e := ag.GetLastError(); e != "" {
		errs = append(errs, e)
	}
	if e := ag.GetNotPersisted(); e != "" {
		errs = append(errs, "not persisted: "+e)
	}
	return strings.Join(errs, "; ")
}
