package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// historyTime is how the deploy history shows when a version was stored,
// in local time.
const historyTime = "2006-01-02 15:04:05"

func (a *app) newDeployHistoryCmd() *cobra.Command {
	var limit int32
	cmd := &cobra.Command{
		Use:   "history [PACKAGE]",
		Short: "List stored package versions, newest first",
		Long: `History lists the stored versions of PACKAGE, or of every package, newest
first. Versions are kept after a rollback or an undeploy, and any of them can
be shown (weftctl deploy show PACKAGE@VERSION) or restored (weftctl rollback
PACKAGE --to VERSION).`,
		Example: `  weftctl deploy history
  weftctl deploy history hello --limit 5`,
		Args: func(cmd *cobra.Command, argv []string) error {
			if len(argv) > 1 {
				return fmt.Errorf("unexpected argument %q (usage: %s)", argv[1], cmd.UseLine())
			}
			if len(argv) == 1 && strings.TrimSpace(argv[0]) == "" {
				return fmt.Errorf("PACKAGE must not be empty")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, argv []string) error {
			var name string
			op := "deploy history"
			if len(argv) == 1 {
				name = argv[0]
				op = fmt.Sprintf("deploy history of %q", name)
			}
			if limit < 0 {
				return fmt.Errorf("%s: --limit %d: must not be negative", op, limit)
			}
			resp, err := call(cmd.Context(), a, op, func(ctx context.Context, c *conn) (*adminv1.ListPackageVersionsResponse, error) {
				return c.packages.ListPackageVersions(ctx, &adminv1.ListPackageVersionsRequest{Name: name, Limit: limit})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			t := newTable(a.stdout, "PACKAGE", "VERSION", "SHA256", "AUTHOR", "SIZE", "REVISION", "DEPLOYED AT", "SERVICES")
			for _, p := range resp.GetVersions() {
				sha := p.GetSha256()
				if len(sha) > 8 {
					sha = sha[:8]
				}
				deployed := ""
				if ts := p.GetCreatedAt(); ts != nil {
					deployed = ts.AsTime().In(time.Local).Format(historyTime)
				}
				t.row(p.GetName(), strconv.FormatInt(p.GetVersion(), 10), sha, p.GetAuthor(),
					humanBytes(p.GetSizeBytes()), strconv.FormatInt(p.GetRevision(), 10), deployed,
					strings.Join(p.GetServices(), ","))
			}
			return t.flush()
		},
	}
	cmd.Flags().Int32Var(&limit, "limit", 0, "show at most N versions (0: the control plane's default, 100)")
	return cmd
}
