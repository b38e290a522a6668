package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (a *app) newContextUseCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "use NAME",
		Short: "Make a context the current one",
		Args:  args("NAME"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			path, cfg, c, err := a.loadContext(argv[0])
			if err != nil {
				return err
			}
			cfg.CurrentContext = c.Name
			if err := saveConfig(path, cfg); err != nil {
				return err
			}
			if a.json() {
				return a.printContext(viewOf(cfg, c))
			}
			fmt.Fprintf(a.stdout, "switched to context %q (%s)\n", c.Name, c.Address)
			return nil
		},
	}
}
