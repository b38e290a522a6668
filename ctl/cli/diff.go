package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/weft-dev/weft/proto/configfile"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// The signs diff prints before each object, by the plan's action.
var planSigns = map[string]string{"create": "+", "update": "~", "delete": "-", "unchanged": "="}

func (a *app) newDiffCmd() *cobra.Command {
	var (
		envFile        string
		prune, verbose bool
	)
	cmd := &cobra.Command{
		Use:   "diff FILE",
		Short: "Compare a config file with the live control plane; exit 1 when they differ",
		Long: `diff reads a config file (YAML or JSON, as export writes it), asks the
control plane what applying it would change, and prints the plan. It
changes nothing; weftctl import applies the same plan.

  + channel hello                          would be created
  ~ outgoing crm: timeout_ms 5000 → 3000   would be updated, field by field
  ~ security crm-token: token changed (secret)
  - job old                                would be deleted (with --prune)
  = package hello                          unchanged (with -v)

Objects are matched by kind and name. Without --prune, live objects the
file lacks are not mentioned; with it they are planned as deletes.

A file may list other files to read with it under include: (paths
relative to the file); their objects join its own. Each problem in a file
is named by its file:line.

Each ${VAR} in the file's strings is replaced by the variable from the
environment, else from --env-file (KEY=VALUE lines, # comments). A variable
set in neither, or set empty, is an error naming it and where it is used.
$${ is a literal ${ (export writes one so), and any other ${ (such as ${5}
or ${ x }) is an error naming its file:line. Secrets are compared by the
control plane and never shown.

Exit status: 0 when the file matches the live config, 1 when it differs,
2 on any error (a bad file, a missing variable, a refused config), so that
a CI job can tell "differs" from "broken".`,
		Example: `  weftctl diff weft.yaml
  weftctl diff prod.yaml --env-file prod.env --prune
  weftctl diff weft.yaml -o json`,
		Args: func(cmd *cobra.Command, got []string) error {
			return withExit(exitDiffErr, args("FILE")(cmd, got))
		},
		RunE: func(cmd *cobra.Command, argv []string) error {
			changes, err := a.diff(cmd.Context(), argv[0], envFile, prune, verbose)
			if err != nil {
				return withExit(exitDiffErr, err)
			}
			if changes {
				return withExit(exitFailed, ErrDiffers)
			}
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return withExit(exitDiffErr, fmt.Errorf("%w (see %s --help)", err, cmd.CommandPath()))
	})
	fl := cmd.Flags()
	fl.StringVar(&envFile, "env-file", "", "read ${VAR}s the environment lacks from this file of KEY=VALUE lines")
	fl.BoolVar(&prune, "prune", false, "plan a delete for each live object the file lacks")
	fl.BoolVarP(&verbose, "verbose", "v", false, "list unchanged objects too")
	return cmd
}

// diff plans file against the live config, prints the plan, and reports
// whether it holds changes.
func (a *app) diff(ctx context.Context, file, envFile string, prune, verbose bool) (bool, error) {
	doc, err := a.readConfig([]string{file}, envFile)
	if err != nil {
		return false, err
	}
	req := &adminv1.PlanConfigRequest{Config: doc.Config, Prune: prune}
	resp, err := call(ctx, a, "plan config", func(ctx context.Context, c *conn) (*adminv1.PlanConfigResponse, error) {
		return c.config.PlanConfig(ctx, req, grpc.MaxCallSendMsgSize(exportMaxBytes))
	})
	if err != nil {
		return false, doc.Explain(err)
	}
	if a.json() {
		return resp.GetChanges(), a.printJSON(resp)
	}
	return resp.GetChanges(), printPlan(a.stdout, resp, verbose)
}

// readConfig reads config files as one config and resolves its ${VAR}s
// from the environment, else from envFile.
func (a *app) readConfig(files []string, envFile string) (*configfile.Doc, error) {
	doc, err := configfile.ReadFiles(files...)
	if err != nil {
		return nil, err
	}
	vars, err := configfile.ReadEnvFile(envFile)
	if err != nil {
		return nil, err
	}
	lookup := func(name string) (string, bool) {
		if v := a.getenv(name); v != "" {
			return v, true
		}
		v, ok := vars[name]
		return v, ok && v != ""
	}
	if err := doc.Resolve(lookup); err != nil {
		return nil, err
	}
	return doc, nil
}

// printPlan writes the plan, one object a line, then a summary. Unchanged
// objects are listed only when verbose.
func printPlan(w io.Writer, resp *adminv1.PlanConfigResponse, verbose bool) error {
	summary := fmt.Sprintf("plan: %s; revision %d", planCounts(resp.GetItems(), "to create", "to update", "to delete"), resp.GetRevision())
	if !resp.GetChanges() {
		summary = fmt.Sprintf("no changes: %d objects unchanged; revision %d", countAction(resp.GetItems(), "unchanged"), resp.GetRevision())
	}
	return writePlan(w, resp.GetItems(), verbose, summary)
}

// writePlan writes the items of a plan, one object a line (unchanged ones
// only when verbose), then the summary line.
func writePlan(w io.Writer, items []*adminv1.PlanItem, verbose bool, summary string) error {
	var b bytes.Buffer
	for _, it := range items {
		if it.GetAction() == "unchanged" && !verbose {
			continue
		}
		sign, ok := planSigns[it.GetAction()]
		if !ok {
			sign = "?"
		}
		fmt.Fprintf(&b, "%s %s %s", sign, it.GetKind(), it.GetName())
		var changes []string
		for _, c := range it.GetChanges() {
			changes = append(changes, describeChange(c))
		}
		if len(changes) > 0 {
			fmt.Fprintf(&b, ": %s", strings.Join(changes, "; "))
		}
		b.WriteByte('\n')
	}
	b.WriteString(summary + "\n")
	_, err := w.Write(b.Bytes())
	return err
}

// planCounts counts the items by action, in the words given for create,
// update and delete: "1 to create, 2 to update, 0 to delete, 3 unchanged".
func planCounts(items []*adminv1.PlanItem, created, updated, deleted string) string {
	return fmt.Sprintf("%d %s, %d %s, %d %s, %d unchanged",
		countAction(items, "create"), created, countAction(items, "update"), updated,
		countAction(items, "delete"), deleted, countAction(items, "unchanged"))
}

// countAction counts the items of one action.
func countAction(items []*adminv1.PlanItem, action string) int {
	n := 0
	for _, it := range items {
		if it.GetAction() == action {
			n++
		}
	}
	return n
}

// secretShown is what the control plane shows for a secret that is set.
const secretShown = "(secret)"

// describeChange is one field change as "field from → to"; a secret says
// only that it changed, and how its being set did.
func describeChange(c *adminv1.FieldChange) string {
	if c.GetFrom() == secretShown || c.GetTo() == secretShown {
		switch {
		case c.GetFrom() == "":
			return c.GetField() + " set (secret)"
		case c.GetTo() == "":
			return c.GetField() + " cleared (secret)"
		default:
			return c.GetField() + " changed (secret)"
		}
	}
	return fmt.Sprintf("%s %s → %s", c.GetField(), orUnset(c.GetFrom()), orUnset(c.GetTo()))
}

// orUnset is v, or "(unset)" when empty.
func orUnset(v string) string {
	if v == "" {
		return "(unset)"
	}
	return v
}
