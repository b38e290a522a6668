package cli

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Version is weftctl's version, set at build time with
// -ldflags "-X github.com/weft-dev/weft/ctl/cli.Version=v1.2.3". Left empty,
// the module version from the build info is used.
var Version = ""

// version returns the version to report.
func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			return v
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
	}
	return "dev"
}

func (a *app) newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print weftctl's version",
		Args:  args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := struct {
				Version  string `json:"version"`
				Go       string `json:"go"`
				Platform string `json:"platform"`
			}{version(), runtime.Version(), runtime.GOOS + "/" + runtime.GOARCH}
			if a.json() {
				b, err := json.MarshalIndent(v, "", "  ")
				if err != nil {
					return fmt.Errorf("render version: %w", err)
				}
				return a.writeStructured("version", b)
			}
			_, err := fmt.Fprintf(a.stdout, "weftctl %s (%s %s)\n", v.Version, v.Go, v.Platform)
			return err
		},
	}
}
