package cli

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newOutgoingPingCmd() *cobra.Command {
	var agent string
	cmd := &cobra.Command{
		Use:   "ping NAME [--agent ID]",
		Short: "Call a connection's address from an agent and show the status and latency",
		Long: `Ping asks an agent to send a HEAD (a GET when the server refuses HEAD) to the
connection's address with its headers and credentials, and prints the agent,
the URL, the HTTP status and the latency to the response headers. Any HTTP
answer means the remote is reachable, whatever its status; when there is
none, ping exits non-zero and says why.`,
		Example: `  weftctl outgoing ping crm
  weftctl outgoing ping crm --agent edge-berlin-1`,
		Args: args("NAME"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			op := fmt.Sprintf("ping outgoing connection %q", name)
			resp, err := call(cmd.Context(), a, op, func(ctx context.Context, c *conn) (*adminv1.PingOutgoingConnectionResponse, error) {
				return c.outgoing.PingOutgoingConnection(ctx, &adminv1.PingOutgoingConnectionRequest{Name: name, AgentId: agent})
			})
			if err != nil {
				return err
			}
			if a.json() {
				err = a.printJSON(resp)
			} else {
				err = a.printPing(resp)
			}
			if err != nil {
				return err
			}
			if resp.GetError() != "" {
				return fmt.Errorf("%s from agent %s: no answer: %s", op, resp.GetAgentId(), resp.GetError())
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&agent, "agent", "", "agent to ping from (default: any connected agent)")
	return cmd
}

// printPing writes a ping's outcome as a one-row table; status and latency
// are "-" when the remote did not answer.
func (a *app) printPing(resp *adminv1.PingOutgoingConnectionResponse) error {
	status, latency := "", ""
	if resp.GetStatus() != 0 {
		status = strconv.Itoa(int(resp.GetStatus()))
	}
	if resp.GetError() == "" {
		latency = (time.Duration(resp.GetLatencyUs()) * time.Microsecond).Round(10 * time.Microsecond).String()
	}
	t := newTable(a.stdout, "AGENT", "URL", "STATUS", "LATENCY")
	t.row(resp.GetAgentId(), resp.GetUrl(), status, latency)
	return t.flush()
}
