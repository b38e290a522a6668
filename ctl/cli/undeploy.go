package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newUndeployCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "undeploy PACKAGE",
		Short: "Remove a deployed package and its services",
		Long: `Undeploy removes PACKAGE and the services it registers from the agents, in
one new revision. It is refused while active channels call those services,
naming them; deactivate or delete them first, or give --force, which
deactivates them in the same revision. The package's history is kept: weftctl
deploy history still lists it, rollback --to restores a version, and a later
deploy of the same name continues its version numbers.`,
		Example: `  weftctl undeploy hello
  weftctl undeploy hello --force`,
		Args: args("PACKAGE"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			resp, err := call(cmd.Context(), a, fmt.Sprintf("undeploy %q", name), func(ctx context.Context, c *conn) (*adminv1.UndeployResponse, error) {
				return c.packages.Undeploy(ctx, &adminv1.UndeployRequest{Name: name, Force: force})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			services := strings.Join(resp.GetServices(), ", ")
			if services == "" {
				services = "none"
			}
			fmt.Fprintf(a.stdout, "undeployed %s (services: %s), revision %d\n", name, services, resp.GetRevision())
			if chs := resp.GetDeactivatedChannels(); len(chs) > 0 {
				fmt.Fprintf(a.stdout, "deactivated channels: %s\n", strings.Join(chs, ", "))
			}
			if jobs := resp.GetPausedJobs(); len(jobs) > 0 {
				fmt.Fprintf(a.stdout, "paused jobs: %s\n", strings.Join(jobs, ", "))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "deactivate the active channels and pause the active jobs that call its services")
	return cmd
}
