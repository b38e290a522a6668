package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newSecretsRotateKeyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rotate-key",
		Short: "Re-seal every secret with a new data key",
		Long: `Make a new data key, sealed with the --secrets-key file's key, and
re-seal every secret the control plane stores with it, in one database
transaction: the older data keys no longer seal anything new. Replicas
sharing the database read the re-sealed secrets and seal with the new key
without a restart. The secrets themselves do not change, so the revision
does not move and agents get nothing new. The key file stays as it is.

  weftctl secrets rotate-key
  weftctl audit --kind secrets-key`,
		Args: args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := call(cmd.Context(), a, "rotate the secrets key", func(ctx context.Context, c *conn) (*adminv1.RotateKeyResponse, error) {
				return c.secrets.RotateKey(ctx, &adminv1.RotateKeyRequest{})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			values := "values"
			if resp.GetResealed() == 1 {
				values = "value"
			}
			fmt.Fprintf(a.stdout, "data key k%d made: %d secret %s re-sealed with it; the revision did not move\n",
				resp.GetKeyId(), resp.GetResealed(), values)
			return nil
		},
	}
}
