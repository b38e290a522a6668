package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
)

func (a *app) newContextListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the contexts, marking the current one (never their tokens)",
		Args:  args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			if a.json() {
				out := struct {
					CurrentContext string        `json:"current_context"`
					Contexts       []contextView `json:"contexts"`
				}{CurrentContext: cfg.CurrentContext, Contexts: []contextView{}}
				for i := range cfg.Contexts {
					out.Contexts = append(out.Contexts, viewOf(cfg, &cfg.Contexts[i]))
				}
				b, err := json.MarshalIndent(out, "", "  ")
				if err != nil {
					return fmt.Errorf("render contexts as JSON: %w", err)
				}
				return a.writeStructured("contexts", b)
			}
			if len(cfg.Contexts) == 0 {
				fmt.Fprintf(a.stderr, "no contexts in %s (add one with weftctl context add NAME --addr HOST:PORT)\n", path)
				return nil
			}
			t := newTable(a.stdout, "CURRENT", "NAME", "ADDRESS", "CA", "TOKEN")
			for i := range cfg.Contexts {
				v := viewOf(cfg, &cfg.Contexts[i])
				current := ""
				if v.Current {
					current = "*"
				}
				t.row(current, v.Name, v.Address, v.CA, tokenState(v.TokenSet))
			}
			return t.flush()
		},
	}
}
