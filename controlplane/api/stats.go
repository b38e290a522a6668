package api

import (
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// stats answers what the agents measured.
type stats struct {
	adminv1.UnimplementedStatsServiceServer
	*Server
}

var _ adminv1.StatsServiceServer = (*stats)(nil)
