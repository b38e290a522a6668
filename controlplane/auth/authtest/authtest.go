// Package authtest lets tests of the agent API run without certificates:
// its interceptors vouch for whatever agent id each request states, as a
// verified client certificate would. Only tests may use it; the control
// plane's own server checks certificates (see auth.Authorizer), and the
// end-to-end tests run that.
package authtest

import (
	"context"

	"google.golang.org/grpc"

	"github.com/weft-dev/weft/controlplane/auth"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// VouchForClaims returns server options whose interceptors name, in each
// call's context, the agent the request says it is.
func VouchForClaims() []grpc.ServerOption {
	unary := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		if r, ok := req.(interface{ GetAgentId() string }); ok {
			ctx = auth.WithAgent(ctx, r.GetAgentId())
		}
		return next(ctx, req)
	}
	stream := func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, next grpc.StreamHandler) error {
		return next(srv, &vouched{ServerStream: ss, ctx: ss.Context()})
	}
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(unary), grpc.ChainStreamInterceptor(stream)}
}

// vouched is a stream whose context names the agent its first message
// states: a Sync hello or a Commands open.
type vouched struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *vouched) Context() context.Context { return s.ctx }

func (s *vouched) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if _, ok := auth.AgentFrom(s.ctx); ok {
		return nil
	}
	switch m := m.(type) {
	case *agentv1.SyncRequest:
		if h := m.GetHello(); h != nil {
			s.ctx = auth.WithAgent(s.ctx, h.GetAgentId())
		}
	case *agentv1.CommandsRequest:
		if o := m.GetOpen(); o != nil {
			s.ctx = auth.WithAgent(s.ctx, o.GetAgentId())
		}
	}
	return nil
}
