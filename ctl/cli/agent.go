package cli

import (
	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newAgentCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "agent",
		Aliases: []string{"agents"},
		Short:   "Show the agents and how far they are in sync; enroll and revoke them",
	}
	cmd.AddCommand(a.newAgentListCmd(), a.newAgentGetCmd(), a.newAgentBackupsCmd(), a.newAgentLogsCmd(),
		a.newAgentTokenCmd(), a.newAgentRevokeCmd())
	return cmd
}

// syncStatus renders an agent's sync status.
func syncStatus(s adminv1.SyncStatus) string {
	switch s {
	case adminv1.SyncStatus_SYNC_STATUS_IN_SYNC:
		return "in-sync"
	case adminv1.SyncStatus_SYNC_STATUS_PENDING:
		return "pending"
	case adminv1.SyncStatus_SYNC_STATUS_FAILED:
		return "failed"
	case adminv1.SyncStatus_SYNC_STATUS_DISCONNECTED:
		return "disconnected"
	default:
		return "unknown"
	}
}
