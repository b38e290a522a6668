package cli

import (
	"context"
	"strconv"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newChannelListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List channels",
		Args:  args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := call(cmd.Context(), a, "list channels", func(ctx context.Context, c *conn) (*adminv1.ListChannelsResponse, error) {
				return c.channels.ListChannels(ctx, &adminv1.ListChannelsRequest{})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			t := newTable(a.stdout, "NAME", "PATH", "METHODS", "FORMAT", "SERVICE", "SECURITY", "RATE LIMIT", "ACTIVE", "REVISION")
			for _, ch := range resp.GetChannels() {
				t.row(ch.GetName(), ch.GetPath(), methodsOf(ch), formatOf(ch), ch.GetService(), ch.GetSecurity(),
					rateOf(ch), yesNo(ch.GetActive()), strconv.FormatInt(ch.GetRevision(), 10))
			}
			return t.flush()
		},
	}
}
