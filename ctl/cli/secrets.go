package cli

import (
	"github.com/spf13/cobra"
)

func (a *app) newSecretsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "Manage the keys that seal secrets at rest (admin role)",
		Long: `The control plane seals every secret it stores (the secrets of security
definitions, its CA's key) with a data key, and each data key with the key
file given to --secrets-key. Rotating makes a new data key and re-seals
every secret with it, on every replica of the database at once and with
no restart. Needs the admin role.`,
	}
	cmd.AddCommand(a.newSecretsRotateKeyCmd())
	return cmd
}
