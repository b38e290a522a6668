package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/weft-dev/weft/proto/sources"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newDeployCmd() *cobra.Command {
	var (
		name string
		list string
		wait waitFlags
	)
	cmd := &cobra.Command{
		Use:   "deploy PATH... | --sources FILE",
		Short: "Deploy service packages, and show deploy history and status",
		Long: `Deploy sends Go source to the control plane, which checks it and stores it
as one new revision; agents pick it up from there.

Each PATH is a .go file or a package directory (its .go files, without
_test.go files and subdirectories). Files from one directory form one
package. --sources FILE adds the paths a sources list names: one .go file or
package directory per line, relative to the list; blank lines are skipped,
and a # at the start of a line or after a blank starts a comment
("orders/   # the orders service"); each bad line is reported as FILE:LINE.
Nothing is stored when any package is refused. A directory named like a
subcommand (history, show, status) is deployed as ./history.

With --wait, deploy then waits until every connected agent has applied each
package: it prints "deployed on N agents: ..." and exits 0; it exits non-zero
as soon as an agent refuses a package, naming the agent and its error, or
when --wait-timeout passes, naming the agents still pending. Agents that are
not connected are not waited for: they catch up when they connect. When no
agent is connected at all, deploy says so and exits 0. A package whose
source was unchanged is checked all the same. With -o json the deploy
response goes to stdout and what --wait finds to stderr.`,
		Example: `  weftctl deploy ./services/hello
  weftctl deploy hello.go --name greeter
  weftctl deploy ./services/hello ./services/orders -o json
  weftctl deploy ./services/hello --wait --wait-timeout 1m
  weftctl deploy --sources services-sources.txt --wait
  weftctl deploy history hello
  weftctl deploy show hello@3
  weftctl deploy status hello`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && !cmd.Flags().Changed("sources") {
				return fmt.Errorf("missing PATH or --sources FILE (usage: %s)", cmd.UseLine())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := wait.check(); err != nil {
				return fmt.Errorf("deploy: %w", err)
			}
			if list != "" {
				listed, err := sources.ReadList(list)
				if err != nil {
					return fmt.Errorf("deploy: %w", err)
				}
				args = append(listed, args...)
			}
			pkgs, err := sources.Packages(args)
			if err != nil {
				return fmt.Errorf("deploy: %w", err)
			}
			if cmd.Flags().Changed("name") {
				if len(pkgs) != 1 {
					return fmt.Errorf("deploy: --name names one package, but the paths hold %d", len(pkgs))
				}
				if strings.TrimSpace(name) == "" {
					return errors.New("deploy: --name must not be empty")
				}
				pkgs[0].Name = name
			}
			resp, err := call(cmd.Context(), a, "deploy", func(ctx context.Context, c *conn) (*adminv1.DeployResponse, error) {
				return c.packages.Deploy(ctx, &adminv1.DeployRequest{Packages: pkgs})
			})
			if err != nil {
				return err
			}
			if err := a.printDeploy(resp); err != nil {
				return err
			}
			if !wait.wait {
				return nil
			}
			var targets []waitTarget
			for _, d := range resp.GetPackages() {
				targets = append(targets, waitTarget{name: d.GetPackage().GetName(), version: d.GetPackage().GetVersion()})
			}
			return a.waitDeployed(cmd.Context(), targets, wait.timeout)
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "package name (default: the Go package name); only with one package")
	cmd.Flags().StringVar(&list, "sources", "", "deploy the files and directories a sources list names, one per line")
	wait.register(cmd)
	cmd.AddCommand(a.newDeployHistoryCmd(), a.newDeployShowCmd(), a.newDeployStatusCmd())
	return cmd
}

// printDeploy writes what a deploy stored.
func (a *app) printDeploy(resp *adminv1.DeployResponse) error {
	if a.json() {
		return a.printJSON(resp)
	}
	for _, d := range resp.GetPackages() {
		p := d.GetPackage()
		if d.GetUnchanged() {
			fmt.Fprintf(a.stdout, "unchanged %s v%d %s (identical source, nothing deployed)\n",
				p.GetName(), p.GetVersion(), shortHash(p.GetSha256()))
			continue
		}
		services := strings.Join(p.GetServices(), ", ")
		if services == "" {
			services = "none"
		}
		fmt.Fprintf(a.stdout, "deployed %s v%d %s services: %s\n",
			p.GetName(), p.GetVersion(), shortHash(p.GetSha256()), services)
	}
	fmt.Fprintf(a.stdout, "revision %d\n", resp.GetRevision())
	return nil
}
