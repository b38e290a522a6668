package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"sigs.k8s.io/yaml"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// variablePattern finds a ${VAR} in a config file's string.
var variablePattern = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

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
changes nothing: import is not there yet.

  + channel hello                          would be created
  ~ outgoing crm: timeout_ms 5000 → 3000   would be updated, field by field
  ~ security crm-token: token changed (secret)
  - job old                                would be deleted (with --prune)
  = package hello                          unchanged (with -v)

Objects are matched by kind and name. Without --prune, live objects the
file lacks are not mentioned; with it they are planned as deletes.

Each ${VAR} in the file's strings is replaced by the variable from the
environment, else from --env-file (KEY=VALUE lines, # comments). A variable
set in neither, or set empty, is an error naming it and where it is used.
Secrets are compared by the control plane and never shown.

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
	cfg, err := readConfigFile(file)
	if err != nil {
		return false, err
	}
	vars, err := readEnvFile(envFile)
	if err != nil {
		return false, err
	}
	lookup := func(name string) (string, bool) {
		if v := a.getenv(name); v != "" {
			return v, true
		}
		v, ok := vars[name]
		return v, ok && v != ""
	}
	if err := resolveConfig(cfg, lookup); err != nil {
		return false, fmt.Errorf("%s: %w", file, err)
	}
	req := &adminv1.PlanConfigRequest{Config: cfg, Prune: prune}
	resp, err := call(ctx, a, "plan config", func(ctx context.Context, c *conn) (*adminv1.PlanConfigResponse, error) {
		return c.config.PlanConfig(ctx, req, grpc.MaxCallSendMsgSize(exportMaxBytes))
	})
	if err != nil {
		return false, err
	}
	if a.json() {
		return resp.GetChanges(), a.printJSON(resp)
	}
	return resp.GetChanges(), printPlan(a.stdout, resp, verbose)
}

// readConfigFile reads a YAML or JSON config file into a Config. A field
// the format does not know is an error naming it.
func readConfigFile(file string) (*adminv1.Config, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		return nil, fmt.Errorf("%s: not YAML or JSON: %w", file, err)
	}
	cfg := &adminv1.Config{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(j, cfg); err != nil {
		return nil, fmt.Errorf("%s: not a config: %w", file, err)
	}
	return cfg, nil
}

// readEnvFile reads KEY=VALUE lines; blank lines and lines starting with
// # are skipped, and a value in matching single or double quotes loses
// them. No file is no variables.
func readEnvFile(file string) (map[string]string, error) {
	vars := map[string]string{}
	if file == "" {
		return vars, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseEnv(file, f)
}

// envKeyPattern is what an env file's key may be.
var envKeyPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// parseEnv parses the env file read from r, naming file and line in errors.
func parseEnv(file string, r io.Reader) (map[string]string, error) {
	vars := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		if !ok || !envKeyPattern.MatchString(key) {
			return nil, fmt.Errorf("%s:%d: want KEY=VALUE, KEY letters, digits and _", file, n)
		}
		value = strings.TrimSpace(value)
		if len(value) >= 2 && (value[0] == '"' || value[0] == '\'') && value[len(value)-1] == value[0] {
			value = value[1 : len(value)-1]
		}
		vars[key] = value
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return vars, nil
}

// resolveConfig replaces each ${VAR} in the strings of cfg's objects by
// lookup's value. Every variable lookup lacks is reported, with the object
// and field that uses it.
func resolveConfig(cfg *adminv1.Config, lookup func(string) (string, bool)) error {
	var errs []error
	kinds := []struct {
		kind string
		l    protoreflect.List
	}{
		{"security", listOf(cfg, "security")},
		{"outgoing", listOf(cfg, "outgoing")},
		{"channel", listOf(cfg, "channels")},
		{"job", listOf(cfg, "jobs")},
		{"package", listOf(cfg, "packages")},
	}
	for _, k := range kinds {
		for i := range k.l.Len() {
			m := k.l.Get(i).Message()
			name := m.Get(m.Descriptor().Fields().ByName("name")).String()
			var missing []string
			resolveMessage(m, "", lookup, func(field, variable string) {
				missing = append(missing, fmt.Sprintf("%s %q: %s: variable %s is not set (in the environment or --env-file)", k.kind, name, field, variable))
			})
			slices.Sort(missing)
			for _, e := range missing {
				errs = append(errs, errors.New(e))
			}
		}
	}
	return errors.Join(errs...)
}

// listOf is the list field of cfg by name.
func listOf(cfg *adminv1.Config, field protoreflect.Name) protoreflect.List {
	m := cfg.ProtoReflect()
	return m.Get(m.Descriptor().Fields().ByName(field)).List()
}

// resolveMessage resolves the strings of m in place: singular, in lists,
// in map values and in nested messages. missing is told of each variable
// lookup lacks, with the field's path under prefix.
func resolveMessage(m protoreflect.Message, prefix string, lookup func(string) (string, bool), missing func(field, variable string)) {
	resolve := func(path, s string) string {
		return variablePattern.ReplaceAllStringFunc(s, func(ref string) string {
			name := ref[2 : len(ref)-1]
			v, ok := lookup(name)
			if !ok {
				missing(path, name)
				return ref
			}
			return v
		})
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		path := prefix + string(fd.Name())
		switch {
		case fd.IsList():
			l := v.List()
			for i := range l.Len() {
				at := fmt.Sprintf("%s[%d]", path, i)
				switch fd.Kind() {
				case protoreflect.StringKind:
					l.Set(i, protoreflect.ValueOfString(resolve(at, l.Get(i).String())))
				case protoreflect.MessageKind:
					resolveMessage(l.Get(i).Message(), at+".", lookup, missing)
				}
			}
		case fd.IsMap():
			if fd.MapValue().Kind() != protoreflect.StringKind {
				return true
			}
			mp := v.Map()
			mp.Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				mp.Set(k, protoreflect.ValueOfString(resolve(fmt.Sprintf("%s[%q]", path, k.String()), mv.String())))
				return true
			})
		case fd.Kind() == protoreflect.StringKind:
			m.Set(fd, protoreflect.ValueOfString(resolve(path, v.String())))
		case fd.Kind() == protoreflect.MessageKind:
			resolveMessage(v.Message(), path+".", lookup, missing)
		}
		return true
	})
}

// printPlan writes the plan, one object a line, then a summary. Unchanged
// objects are listed only when verbose.
func printPlan(w io.Writer, resp *adminv1.PlanConfigResponse, verbose bool) error {
	var b bytes.Buffer
	counts := map[string]int{}
	for _, it := range resp.GetItems() {
		counts[it.GetAction()]++
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
	if !resp.GetChanges() {
		fmt.Fprintf(&b, "no changes: %d objects unchanged\n", counts["unchanged"])
	} else {
		fmt.Fprintf(&b, "plan: %d to create, %d to update, %d to delete, %d unchanged\n",
			counts["create"], counts["update"], counts["delete"], counts["unchanged"])
	}
	_, err := w.Write(b.Bytes())
	return err
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
