package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/weft-dev/weft/proto/configfile"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// exportMaxBytes bounds the export the client accepts: the control plane's
// own bound on a message, as an export with source can be large.
const exportMaxBytes = 64 << 20

func (a *app) newExportCmd() *cobra.Command {
	var (
		file, format  string
		kinds, names  []string
		includeSource bool
	)
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write the config (security, outgoing connections, channels, jobs, packages) as YAML or JSON",
		Long: `export writes the control plane's config as one document, to keep in a
repository and compare: security definitions, outgoing connections, channels,
jobs, and the deployed packages (by name; with --include-source, with their
files).

The document is stable: lists are sorted by name, keys are sorted (YAML),
and times, revisions and other state the control plane keeps are left out,
so two exports of the same config are byte for byte the same.

A package's file is written as text: (its source, in a YAML literal block)
when it is UTF-8, else as content: (base64).

Secrets are never written: each one set reads as a placeholder
${WEFT_SECRET_<NAME>_<FIELD>}, such as ${WEFT_SECRET_CRM_TOKEN_TOKEN} for the
token of the definition crm-token. Every other ${ in a value is written $${,
which import reads back as ${, so that import gives back each value exactly.

--format defaults to yaml, or to json or yaml when the global --output says
so. --file writes the file atomically (a temporary file renamed over it).`,
		Example: `  weftctl export --file weft.yaml
  weftctl export --kind channel --kind security
  weftctl export --name crm --name orders --format json
  weftctl export --kind package --include-source --file packages.yaml`,
		Args: args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := a.exportFormat(cmd, format)
			if err != nil {
				return err
			}
			req := &adminv1.ExportConfigRequest{Kinds: kinds, Names: names, IncludeSource: includeSource}
			resp, err := call(cmd.Context(), a, "export config", func(ctx context.Context, c *conn) (*adminv1.ExportConfigResponse, error) {
				return c.config.ExportConfig(ctx, req, grpc.MaxCallRecvMsgSize(exportMaxBytes))
			})
			if err != nil {
				return err
			}
			b, err := configfile.Marshal(resp.GetConfig(), f)
			if err != nil {
				return err
			}
			if file == "" || file == "-" {
				_, err := a.stdout.Write(b)
				return err
			}
			if err := configfile.WriteFile(file, b); err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "wrote %s: %s\n", file, configfile.Summary(resp.GetConfig()))
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&file, "file", "f", "", "write to FILE instead of standard output (- means standard output)")
	fl.StringVar(&format, "format", "", "yaml or json (default yaml, or the global --output when json or yaml)")
	fl.StringSliceVar(&kinds, "kind", nil, "export only this kind: security, outgoing, channel, job or package (repeat or comma-separate)")
	fl.StringSliceVar(&names, "name", nil, "export only the objects of this name (repeat or comma-separate); each must exist")
	fl.BoolVar(&includeSource, "include-source", false, "put the packages' source files in the export")
	return cmd
}

// exportFormat is the format export writes: --format, else the global
// --output when it names a format, else yaml. The two must agree when both
// are given.
func (a *app) exportFormat(cmd *cobra.Command, format string) (string, error) {
	format = strings.ToLower(strings.TrimSpace(format))
	global := ""
	if cmd.Flags().Changed("output") && a.output != outputTable {
		global = a.output
	}
	switch {
	case format != "" && format != outputYAML && format != outputJSON:
		return "", fmt.Errorf("--format %q: want yaml or json", format)
	case format != "" && global != "" && format != global:
		return "", fmt.Errorf("--format %s and --output %s disagree; give one", format, global)
	case format != "":
		return format, nil
	case global != "":
		return global, nil
	default:
		return outputYAML, nil
	}
}
