package cli

import (
	"bytes"
	"context"
	"fmt"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newDeployShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show PACKAGE[@VERSION]",
		Short: "Print the source of a package version",
		Long: `Show prints the source of a package at its current version, or at VERSION
(hello@3 or hello@v3): each file preceded by a line "// ==> name.go <==".
With -o json it prints the package, its files with their content (base64,
as protobuf JSON renders bytes) and whether it is current.`,
		Example: `  weftctl deploy show hello
  weftctl deploy show hello@2 > /tmp/hello-v2.go`,
		Args: args("PACKAGE[@VERSION]"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name, version, err := parsePackageRef(argv[0])
			if err != nil {
				return fmt.Errorf("deploy show: %w", err)
			}
			op := versionLabel("get package", name, version)
			resp, err := call(cmd.Context(), a, op, func(ctx context.Context, c *conn) (*adminv1.GetPackageResponse, error) {
				return c.packages.GetPackage(ctx, &adminv1.GetPackageRequest{Name: name, Version: version})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			var buf bytes.Buffer
			for i, f := range resp.GetSources() {
				if i > 0 {
					buf.WriteByte('\n')
				}
				fmt.Fprintf(&buf, "// ==> %s <==\n", f.GetName())
				buf.Write(f.GetContent())
				if len(f.GetContent()) > 0 && !bytes.HasSuffix(f.GetContent(), []byte("\n")) {
					buf.WriteByte('\n')
				}
			}
			_, err = a.stdout.Write(buf.Bytes())
			return err
		},
	}
}
