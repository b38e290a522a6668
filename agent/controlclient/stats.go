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

func (s statsSender) Send(ctx context.Context, buckets []*agentv1.StatsBucket) error {
	api, _ := s.c.api.Load().(agentv1.AgentServiceClient)
	if api == nil {
		return errNotConnected
	}
	if _, err := api.ReportStats(ctx, &agentv1.ReportStatsRequest{AgentId: s.c.id.ID, Buckets: buckets}); err != nil {
		return fmt.Errorf("report %d statistics buckets: %w", len(buckets), err)
	}
	return nil
}
