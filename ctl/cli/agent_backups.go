package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// packagesWidth is how much of a backup's package list the table shows.
const packagesWidth = 60

func (a *app) newAgentBackupsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "backups AGENT",
		Short: "List the backups an agent keeps of the states it replaced",
		Long: `List the backups an agent keeps of the states it replaced, newest first.

Before each swap that changes what it runs, an agent keeps the state it
replaces in its state directory, a circular log of the last 100 (weft-agent
--backups N, 0 for none). The agent must be connected: its backups are read
from the agent itself.`,
		Args: args("AGENT"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			id := argv[0]
			resp, err := call(cmd.Context(), a, fmt.Sprintf("list backups of agent %q", id), func(ctx context.Context, c *conn) (*adminv1.ListAgentBackupsResponse, error) {
				return c.fleet.ListAgentBackups(ctx, &adminv1.ListAgentBackupsRequest{AgentId: id})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			now := a.now()
			t := newTable(a.stdout, "ID", "REVISION", "REPLACED BY", "REPLACED AT", "PACKAGES", "SIZE")
			for _, b := range resp.GetBackups() {
				t.row(b.GetId(), strconv.FormatInt(b.GetRevision(), 10), strconv.FormatInt(b.GetReplacedByRevision(), 10),
					ago(now, b.GetReplacedAt()), shorten(strings.Join(b.GetPackages(), ","), packagesWidth),
					humanBytes(b.GetSizeBytes()))
			}
			if err := t.flush(); err != nil {
				return err
			}
			switch {
			case resp.GetLimit() == 0:
				fmt.Fprintf(a.stderr, "agent %s keeps no backups (it runs with --backups 0)\n", id)
			case len(resp.GetBackups()) == 0:
				fmt.Fprintf(a.stderr, "no backups yet: agent %s keeps the last %d states it replaced\n", id, resp.GetLimit())
			}
			return nil
		},
	}
}

// humanBytes renders a size for people, such as 812 B or 12.3 KiB.
func humanBytes(n int64) string {
	if n < 1<<10 {
		return fmt.Sprintf("%d B", n)
	}
	v, unit := float64(n)/(1<<10), "KiB"
	for _, next := range []string{"MiB", "GiB", "TiB"} {
		if v < 1<<10 {
			break
		}
		v, unit = v/(1<<10), next
	}
	return fmt.Sprintf("%.1f %s", v, unit)
}
