package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newImportCmd() *cobra.Command {
	var (
		envFile                string
		prune, dryRun, verbose bool
		baseRevision           int64
	)
	cmd := &cobra.Command{
		Use:   "import FILE...",
		Short: "Apply config files to the control plane: all of it in one revision, or nothing",
		Long: `import reads config files (YAML or JSON, as export writes them) as one
config, prints the plan (as diff does), and applies it: every change in one
transaction, as one revision. When anything is wrong nothing is changed,
and every problem is named by its file:line.

  + channel hello                          created
  ~ outgoing crm: timeout_ms 5000 → 3000   updated, field by field
  - job old                                deleted (with --prune)
  imported: 1 created, 1 updated, 1 deleted, 4 unchanged; revision 12

Objects are matched by kind and name. Without --prune, live objects the
files lack are left as they are; with it they are deleted. The control
plane orders the changes (security definitions and packages before the
channels and jobs that use them) and checks every reference against the
config the import leaves: a channel calling a service no package
registers, or using a security definition that is not there, is refused.
Unchanged objects are not written; a second import of the same files
changes nothing.

A file may list other files to read with it under include: (paths
relative to the file). Each ${VAR} in the files' strings is replaced by the
variable from the environment, else from --env-file; one set in neither is
an error naming it and where it is used. $${ is a literal ${ (export writes
one so), and any other ${ (such as ${5} or ${ x }) is an error naming its
file:line. Packages are deployed only from
files that carry their source (export --include-source); a package listed
by name alone must be deployed already.

--dry-run plans and checks everything and changes nothing.

--base-revision N applies the plan only if the live config is still at
revision N, the one a reviewed diff showed (weftctl diff prints it):
otherwise nothing is changed and import fails, so that what runs is what
was reviewed.`,
		Example: `  weftctl import weft.yaml
  weftctl import prod.yaml --env-file prod.env --prune
  weftctl import base.yaml overrides.yaml --dry-run`,
		Args: func(cmd *cobra.Command, got []string) error {
			if len(got) == 0 {
				return fmt.Errorf("missing FILE (usage: %s)", cmd.UseLine())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, files []string) error {
			return a.importConfig(cmd.Context(), files, envFile, prune, dryRun, verbose, baseRevision)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&envFile, "env-file", "", "read ${VAR}s the environment lacks from this file of KEY=VALUE lines")
	fl.BoolVar(&prune, "prune", false, "delete each live object the files lack")
	fl.BoolVar(&dryRun, "dry-run", false, "print the plan and change nothing")
	fl.BoolVarP(&verbose, "verbose", "v", false, "list unchanged objects too")
	fl.Int64Var(&baseRevision, "base-revision", 0, "apply only if the live config is still at this revision (the one weftctl diff showed)")
	return cmd
}

// importConfig imports files as one config and prints what it did.
func (a *app) importConfig(ctx context.Context, files []string, envFile string, prune, dryRun, verbose bool, baseRevision int64) error {
	doc, err := a.readConfig(files, envFile)
	if err != nil {
		return err
	}
	if baseRevision < 0 {
		return fmt.Errorf("--base-revision %d: must not be negative", baseRevision)
	}
	req := &adminv1.ImportConfigRequest{Config: doc.Config, Prune: prune, DryRun: dryRun, BaseRevision: baseRevision}
	resp, err := call(ctx, a, "import config", func(ctx context.Context, c *conn) (*adminv1.ImportConfigResponse, error) {
		return c.config.ImportConfig(ctx, req, grpc.MaxCallSendMsgSize(exportMaxBytes))
	})
	if err != nil {
		return doc.Explain(err)
	}
	if a.json() {
		return a.printJSON(resp)
	}
	items := resp.GetItems()
	var summary string
	switch {
	case !resp.GetChanges():
		summary = fmt.Sprintf("no changes: %d objects unchanged; revision %d", countAction(items, "unchanged"), resp.GetRevision())
	case dryRun:
		summary = fmt.Sprintf("dry run, nothing was changed: %s; revision %d", planCounts(items, "to create", "to update", "to delete"), resp.GetRevision())
	default:
		summary = fmt.Sprintf("imported: %s; revision %d", planCounts(items, "created", "updated", "deleted"), resp.GetRevision())
	}
	return writePlan(a.stdout, items, verbose, summary)
}
