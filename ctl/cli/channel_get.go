package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newChannelGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show one channel",
		Args:  args("NAME"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			resp, err := call(cmd.Context(), a, fmt.Sprintf("get channel %q", name), func(ctx context.Context, c *conn) (*adminv1.GetChannelResponse, error) {
				return c.channels.GetChannel(ctx, &adminv1.GetChannelRequest{Name: name})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			return a.printChannel(resp.GetChannel())
		},
	}
}
