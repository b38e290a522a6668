package cli

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// statusErrorWidth is how much of an agent's refusal deploy status shows.
const statusErrorWidth = 80

func (a *app) newDeployStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status [PACKAGE[@VERSION]]",
		Short: "Show, per agent, whether a package version is deployed, pending or failed",
		Long: `Status shows, for each agent, where a package version stands: deployed (the
agent serves its revision or a later one), pending (not yet), or failed (the
agent refused its revision or a later one; ERROR says why). PACKAGE defaults
to the package deployed last, VERSION to the current one; a version that is
no longer current is answered all the same. A disconnected agent catches up
when it connects. An agent that serves the version but could not keep it on
its disk says why in ERROR ("not persisted: ..."); it retries.`,
		Example: `  weftctl deploy status
  weftctl deploy status hello
  weftctl deploy status hello@3 -o json`,
		Args: func(cmd *cobra.Command, argv []string) error {
			if len(argv) > 1 {
				return fmt.Errorf("unexpected argument %q (usage: %s)", argv[1], cmd.UseLine())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, argv []string) error {
			var (
				name    string
				version int64
				op      = "deploy status"
			)
			if len(argv) == 1 {
				var err error
				if name, version, err = parsePackageRef(argv[0]); err != nil {
					return fmt.Errorf("deploy status: %w", err)
				}
				op = versionLabel("deploy status of", name, version)
			}
			resp, err := call(cmd.Context(), a, op, func(ctx context.Context, c *conn) (*adminv1.GetDeployStatusResponse, error) {
				return c.packages.GetDeployStatus(ctx, &adminv1.GetDeployStatusRequest{Name: name, Version: version})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			p := resp.GetPackage()
			fmt.Fprintf(a.stdout, "package %s v%d %s, revision %d\n", p.GetName(), p.GetVersion(), shortHash(p.GetSha256()), p.GetRevision())
			t := newTable(a.stdout, "AGENT", "STATE", "CONNECTED", "APPLIED", "ERROR")
			for _, ag := range resp.GetAgents() {
				msg := ag.GetError()
				if why := ag.GetNotPersisted(); why != "" {
					msg = "not persisted: " + why
				}
				t.row(ag.GetAgentId(), deployState(ag.GetState()), yesNo(ag.GetConnected()),
					strconv.FormatInt(ag.GetAppliedRevision(), 10), shorten(msg, statusErrorWidth))
			}
			return t.flush()
		},
	}
}

// deployState renders an agent's state for a package version.
func deployState(s adminv1.DeployState) string {
	switch s {
	case adminv1.DeployState_DEPLOY_STATE_DEPLOYED:
		return "deployed"
	case adminv1.DeployState_DEPLOY_STATE_PENDING:
		return "pending"
	case adminv1.DeployState_DEPLOY_STATE_FAILED:
		return "failed"
	default:
		return "unknown"
	}
}
