package controlclient

import (
	"context"
	"fmt"

	"github.com/weft-dev/weft/agent/stats"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// StatsSender returns the sender of the agent's statistics: ReportStats
// over this client's connection. Before Run has a connection, every Send
// fails, and the Reporter keeps the buckets.
func (c *Client) StatsSender() stats.Sender { return statsSender{c} }

type statsSender struct{ c *Client }

var _ stats.Sender = statsSender{}

func (s statsSender) Send(ctx context.Context, epoch string, buckets []*agentv1.StatsBucket) error {
	api, _ := s.c.api.Load().(agentv1.AgentServiceClient)
	if api == nil {
		return errNotConnected
	}
	resp, err := api.ReportStats(ctx, &agentv1.ReportStatsRequest{AgentId: s.c.id.ID, Buckets: buckets, Epoch: epoch})
	if err != nil {
		return fmt.Errorf("report %d statistics buckets: %w", len(buckets), err)
	}
	for _, r := range resp.GetRefused() {
		// Not sent again: the control plane would refuse it again.
		s.c.log.Warn("the control plane refused a statistics bucket", "why", r)
	}
	return nil
}
