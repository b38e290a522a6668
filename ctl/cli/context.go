package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
)

func (a *app) newContextCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "context",
		Aliases: []string{"contexts"},
		Short:   "Keep the control planes weftctl talks to, with their CA and token",
		Long: `A context names a control plane and how to reach it: its address, the
CA file that signed its certificate and the secret of a token. weftctl
uses the current context for every setting that neither a flag nor an
environment variable gives; --context NAME or WEFT_CONTEXT picks another.

Contexts live in weftctl's config file: $WEFT_CONFIG, else
$XDG_CONFIG_HOME/weft/config.yaml, else ~/.config/weft/config.yaml. It
holds the tokens, so weftctl writes it readable by its owner alone (0600).

Examples:
  weftctl context add prod --addr cp.example.com:7400 \
      --ca weft-ca.pem --token-file weft-admin.token --use
  weftctl context list
  weftctl --context staging agent list`,
	}
	cmd.AddCommand(a.newContextAddCmd(), a.newContextUseCmd(), a.newContextListCmd(), a.newContextRemoveCmd())
	return cmd
}

// contextView is a context as weftctl shows it: never the token, only
// whether one is set.
type contextView struct {
	Name     string `json:"name"`
	Address  string `json:"address"`
	CA       string `json:"ca"`
	TokenSet bool   `json:"token_set"`
	Current  bool   `json:"current"`
}

// viewOf is c as shown, current when the config makes it so.
func viewOf(cfg *ctlConfig, c *ctlContext) contextView {
	return contextView{
		Name: c.Name, Address: c.Address, CA: c.CA,
		TokenSet: c.Token != "", Current: cfg.CurrentContext == c.Name,
	}
}

// printContext writes a context for -o json or -o yaml.
func (a *app) printContext(v contextView) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("render context as JSON: %w", err)
	}
	return a.writeStructured("context", b)
}

// loadContext reads the config file and finds the context named name.
func (a *app) loadContext(name string) (path string, cfg *ctlConfig, c *ctlContext, err error) {
	path, cfg, err = a.loadConfig()
	if err != nil {
		return "", nil, nil, err
	}
	c = cfg.find(name)
	if c == nil {
		return "", nil, nil, fmt.Errorf("context %q not found in %s (see weftctl context list)", name, path)
	}
	return path, cfg, c, nil
}

// tokenState says whether a context holds a token, never the token.
func tokenState(set bool) string {
	if set {
		return "set"
	}
	return "none"
}
