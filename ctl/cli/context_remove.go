package cli

import (
	"fmt"
	"slices"

	"github.com/spf13/cobra"
)

func (a *app) newContextRemoveCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "remove NAME",
		Aliases: []string{"rm", "delete"},
		Short:   "Remove a context, and its token, from weftctl's config file",
		Args:    args("NAME"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			path, cfg, c, err := a.loadContext(argv[0])
			if err != nil {
				return err
			}
			removed := viewOf(cfg, c)
			name := c.Name
			cfg.Contexts = slices.DeleteFunc(cfg.Contexts, func(x ctlContext) bool { return x.Name == name })
			if removed.Current {
				cfg.CurrentContext = ""
			}
			if err := saveConfig(path, cfg); err != nil {
				return err
			}
			if a.json() {
				return a.printContext(removed)
			}
			fmt.Fprintf(a.stdout, "removed context %q from %s\n", name, path)
			if removed.Current {
				fmt.Fprintln(a.stdout, "no context is current now: pick one with weftctl context use NAME")
			}
			return nil
		},
	}
}
