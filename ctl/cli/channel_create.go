package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newChannelCreateCmd() *cobra.Command {
	var f channelFlags
	cmd := &cobra.Command{
		Use:   "create NAME --path PATH --service SERVICE",
		Short: "Create an HTTP channel",
		Long: `Create adds a channel: agents serve PATH and call SERVICE for each request.
--timeout bounds each invocation through the channel.`,
		Example: `  weftctl channel create orders --path /api/orders/{id} --service orders.get --method GET
  weftctl channel create hello --path /api/hello --service hello.greet --method GET,POST --timeout 5s --max-body 1MiB
  weftctl channel create partner --path /api/partner --service orders.create --security partner-jwt --rate-limit 10
  weftctl channel create billing --path /soap/billing --format soap11 --soap-action GetInvoice=billing.get --soap-action PayInvoice=billing.pay`,
		Args: args("NAME"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			ch := &adminv1.Channel{Name: name} // active unless --inactive
			if _, err := f.apply(cmd, ch); err != nil {
				return fmt.Errorf("create channel %q: %w", name, err)
			}
			resp, err := call(cmd.Context(), a, fmt.Sprintf("create channel %q", name), func(ctx context.Context, c *conn) (*adminv1.CreateChannelResponse, error) {
				return c.channels.CreateChannel(ctx, &adminv1.CreateChannelRequest{Channel: ch})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			fmt.Fprintf(a.stdout, "created channel %s (revision %d)\n", resp.GetChannel().GetName(), resp.GetChannel().GetRevision())
			return nil
		},
	}
	f.register(cmd, false)
	_ = cmd.MarkFlagRequired("path") // the service is checked by the control plane: a SOAP channel may route by --soap-action alone
	return cmd
}
