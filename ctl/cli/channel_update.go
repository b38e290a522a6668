package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newChannelUpdateCmd() *cobra.Command {
	var f channelFlags
	cmd := &cobra.Command{
		Use:   "update NAME [flags]",
		Short: "Change a channel",
		Long: `Update changes only the fields whose flags are given; the rest keep their
values. --method "" resets the methods to the default (POST).

Here --timeout bounds the channel's invocations; the deadline of the call
to the control plane keeps its default.`,
		Example: `  weftctl channel update orders --inactive
  weftctl channel update orders --method GET --method HEAD --timeout 10s`,
		Args: args("NAME"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			op := fmt.Sprintf("update channel %q", name)
			ch := &adminv1.Channel{Name: name}
			mask, err := f.apply(cmd, ch)
			if err != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
			if len(mask) == 0 {
				// An empty mask would replace every field.
				return fmt.Errorf("%s: nothing to change; give at least one field's flag (see --help)", op)
			}
			req := &adminv1.UpdateChannelRequest{Channel: ch, UpdateMask: &fieldmaskpb.FieldMask{Paths: mask}}
			resp, err := call(cmd.Context(), a, op, func(ctx context.Context, c *conn) (*adminv1.UpdateChannelResponse, error) {
				return c.channels.UpdateChannel(ctx, req)
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			fmt.Fprintf(a.stdout, "updated channel %s (revision %d)\n", resp.GetChannel().GetName(), resp.GetChannel().GetRevision())
			return nil
		},
	}
	f.register(cmd, true)
	return cmd
}
