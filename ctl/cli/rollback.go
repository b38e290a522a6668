package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newRollbackCmd() *cobra.Command {
	var (
		to   string
		wait waitFlags
	)
	cmd := &cobra.Command{
		Use:   "rollback PACKAGE",
		Short: "Deploy the content of an older version of a package again",
		Long: `Rollback makes the content of an older version of PACKAGE current again, as a
new version in a new revision: the history only grows. Without --to it
restores the version before the current one. It is refused when the current
version already has that content, and when the old version's services
collide with what is deployed now (a channel calls a service it lacks, or
another package registers one of its services). An undeployed package is
restored by naming a version with --to.

--wait waits for the agents as deploy --wait does (see weftctl deploy --help).`,
		Example: `  weftctl rollback hello
  weftctl rollback hello --to 3 --wait`,
		Args: args("PACKAGE"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			op := fmt.Sprintf("rollback %q", name)
			if err := wait.check(); err != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
			var version int64
			if cmd.Flags().Changed("to") {
				v, err := parseVersion(to)
				if err != nil {
					return fmt.Errorf("%s: --to: %w", op, err)
				}
				version = v
			}
			resp, err := call(cmd.Context(), a, op, func(ctx context.Context, c *conn) (*adminv1.RollbackResponse, error) {
				return c.packages.Rollback(ctx, &adminv1.RollbackRequest{Name: name, ToVersion: version})
			})
			if err != nil {
				return err
			}
			p := resp.GetPackage()
			if a.json() {
				if err := a.printJSON(resp); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(a.stdout, "rolled back %s to the content of v%d as v%d, revision %d\n",
					p.GetName(), resp.GetRestoredVersion(), p.GetVersion(), resp.GetRevision())
			}
			if !wait.wait {
				return nil
			}
			return a.waitDeployed(cmd.Context(), []waitTarget{{name: p.GetName(), version: p.GetVersion()}}, wait.timeout)
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the version to restore, such as 3 or v3 (default: the one before the current)")
	wait.register(cmd)
	return cmd
}
