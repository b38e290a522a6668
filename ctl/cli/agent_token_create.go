package cli

import (
	"context"
	"fmt"
	"math"
	"net"
	"strings"
	"time"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// Defaults of agent token create, the control plane's own.
const (
	defaultJoinTTL  = time.Hour
	defaultJoinUses = 1
)

func (a *app) newAgentTokenCreateCmd() *cobra.Command {
	var (
		labels       []string
		ttl          time.Duration
		uses         int
		controlPlane string
	)
	cmd := &cobra.Command{
		Use:   "create [--labels k=v,k=v] [--ttl 1h] [--uses 1]",
		Short: "Make a join token and print the command that enrolls an agent with it",
		Long: `Make a join token and print the weft-agent command that enrolls a new
agent with it: the control plane's address, the token's secret and the
fingerprint of the control plane's CA. The secret is shown this once (in
-o json, as the secret field).

The address in the command is the one weftctl dialed; when the agent's
host reaches the control plane by another, give it with --controlplane.`,
		Example: `  weftctl agent token create --labels site=berlin,env=prod
  weftctl agent token create --uses 10 --ttl 24h --controlplane cp.internal:7400`,
		Args: args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := &adminv1.CreateJoinTokenRequest{}
			var err error
			if req.Labels, err = parsePairs("--labels", labels); err != nil {
				return err
			}
			if req.TtlSeconds, err = ttlSeconds("ttl", ttl, false); err != nil {
				return err
			}
			if uses < 1 || uses > math.MaxInt32 {
				return fmt.Errorf("--uses %d: want at least 1 (how many agents may enroll with the token)", uses)
			}
			req.Uses = int32(uses)
			controlPlane = strings.TrimSpace(controlPlane)
			if cmd.Flags().Changed("controlplane") {
				if _, _, err := net.SplitHostPort(controlPlane); err != nil {
					return fmt.Errorf("--controlplane %q: want host:port: %w", controlPlane, err)
				}
			}
			resp, err := call(cmd.Context(), a, "create join token", func(ctx context.Context, c *conn) (*adminv1.CreateJoinTokenResponse, error) {
				return c.fleet.CreateJoinToken(ctx, req)
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			if controlPlane == "" {
				c, err := a.conn()
				if err != nil {
					return err
				}
				controlPlane = c.addr
			}
			jt := resp.GetJoinToken()
			usesText := fmt.Sprintf("%d uses", jt.GetUses())
			if jt.GetUses() == 1 {
				usesText = "1 use"
			}
			fmt.Fprintf(a.stdout, "created join token %s: %s, expires %s", jt.GetId(), usesText, whenNext(a.now(), jt.GetExpiresAt()))
			if l := labelsOf(jt.GetLabels()); l != "" {
				fmt.Fprintf(a.stdout, ", labels %s", l)
			}
			fmt.Fprintln(a.stdout)
			fmt.Fprintln(a.stdout, "\nOn the new agent's host, run (the secret will not be shown again):")
			fmt.Fprintf(a.stdout, "\n  weft-agent --controlplane %s --join %s --ca-fingerprint %s\n",
				shellQuote(controlPlane), shellQuote(resp.GetSecret()), shellQuote(resp.GetCaFingerprint()))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&labels, "labels", nil, "labels for the agents that enroll with it, as KEY=VALUE,KEY=VALUE")
	f.DurationVar(&ttl, "ttl", defaultJoinTTL, "how long the token works")
	f.IntVar(&uses, "uses", defaultJoinUses, "how many agents may enroll with it")
	f.StringVar(&controlPlane, "controlplane", "", "address the agent dials, host:port, shown in the command (default the address weftctl dialed)")
	return cmd
}
