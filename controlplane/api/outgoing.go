package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/weft-dev/weft/controlplane/configplan"
	"github.com/weft-dev/weft/controlplane/dispatch"
	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/controlplane/validate"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// OutgoingStore is what the outgoing service needs of the store: its
// connections, and the security definitions they may use.
type OutgoingStore interface {
	CreateOutgoingConnection(ctx context.Context, c *adminv1.OutgoingConnection) (*adminv1.OutgoingConnection, error)
	GetOutgoingConnection(ctx context.Context, name string) (*adminv1.OutgoingConnection, error)
	ListOutgoingConnections(ctx context.Context) ([]*adminv1.OutgoingConnection, error)
	UpdateOutgoingConnection(ctx context.Context, c *adminv1.OutgoingConnection) (*adminv1.OutgoingConnection, error)
	DeleteOutgoingConnection(ctx context.Context, name string) (int64, error)
	ListSecurityDefinitions(ctx context.Context) ([]*adminv1.SecurityDefinition, error)
	agentReader
}

var _ OutgoingStore = store.Store(nil)

type outgoingConns struct {
	adminv1.UnimplementedOutgoingServiceServer
	*base
	store OutgoingStore
}

var _ adminv1.OutgoingServiceServer = (*outgoingConns)(nil)

// CreateOutgoingConnection validates and stores a new connection.
func (s *outgoingConns) CreateOutgoingConnection(ctx context.Context, req *adminv1.CreateOutgoingConnectionRequest) (*adminv1.CreateOutgoingConnectionResponse, error) {
	in := req.GetConnection()
	if in == nil {
		return nil, status.Error(codes.InvalidArgument, "create outgoing connection: connection is required")
	}
	what := fmt.Sprintf("create outgoing connection %q", in.GetName())
	c, err := s.check(ctx, what, in, nil)
	if err != nil {
		return nil, err
	}
	out, err := s.store.CreateOutgoingConnection(ctx, c)
	if err != nil {
		return nil, channelStoreError(what, err)
	}
	s.watch.Advance(out.Revision)
	s.log.Info("outgoing connection created", "connection", out.Name, "address", out.Address, "revision", out.Revision, "caller", caller(ctx))
	return &adminv1.CreateOutgoingConnectionResponse{Connection: out}, nil
}

// GetOutgoingConnection reads one connection.
func (s *outgoingConns) GetOutgoingConnection(ctx context.Context, req *adminv1.GetOutgoingConnectionRequest) (*adminv1.GetOutgoingConnectionResponse, error) {
	c, err := s.store.GetOutgoingConnection(ctx, req.GetName())
	if err != nil {
		return nil, storeError(fmt.Sprintf("get outgoing connection %q", req.GetName()), err)
	}
	return &adminv1.GetOutgoingConnectionResponse{Connection: c}, nil
}

// ListOutgoingConnections lists every connection.
func (s *outgoingConns) ListOutgoingConnections(ctx context.Context, _ *adminv1.ListOutgoingConnectionsRequest) (*adminv1.ListOutgoingConnectionsResponse, error) {
	cs, err := s.store.ListOutgoingConnections(ctx)
	if err != nil {
		return nil, storeError("list outgoing connections", err)
	}
	return &adminv1.ListOutgoingConnectionsResponse{Connections: cs}, nil
}

// UpdateOutgoingConnection changes the fields the mask names, or every
// field the request sets when it names none.
func (s *outgoingConns) UpdateOutgoingConnection(ctx context.Context, req *adminv1.UpdateOutgoingConnectionRequest) (*adminv1.UpdateOutgoingConnectionResponse, error) {
	in := req.GetConnection()
	if in == nil {
		return nil, status.Error(codes.InvalidArgument, "update outgoing connection: connection is required")
	}
	what := fmt.Sprintf("update outgoing connection %q", in.GetName())
	cur, err := s.store.GetOutgoingConnection(ctx, in.GetName())
	if err != nil {
		return nil, storeError(what, err)
	}
	next := proto.CloneOf(cur)
	if err := applyMask(next, in, req.GetUpdateMask()); err != nil {
		return nil, invalid(what, err)
	}
	c, err := s.check(ctx, what, next, cur)
	if err != nil {
		return nil, err
	}
	out, err := s.store.UpdateOutgoingConnection(ctx, c)
	if err != nil {
		return nil, updateStoreError(what, err)
	}
	s.watch.Advance(out.Revision)
	s.log.Info("outgoing connection updated", "connection", out.Name, "address", out.Address, "revision", out.Revision, "caller", caller(ctx))
	return &adminv1.UpdateOutgoingConnectionResponse{Connection: out}, nil
}

// check validates in and returns it normalised (validate.OutgoingConnection,
// as an import does); unless that is cur unchanged (cur is nil for a new
// connection), it checks its references against the live config as an
// import of it would: the store checks them again in its transaction.
func (s *outgoingConns) check(ctx context.Context, what string, in, cur *adminv1.OutgoingConnection) (*adminv1.OutgoingConnection, error) {
	c, err := validate.OutgoingConnection(in)
	if err != nil {
		return c, invalid(what, err)
	}
	if c.GetSecurity() == "" || cur != nil && configplan.Unchanged(cur, c) {
		return c, nil
	}
	defs, err := s.store.ListSecurityDefinitions(ctx)
	if err != nil {
		return c, storeError(what, err)
	}
	if err := configplan.CheckOutgoing(c, configplan.LiveTargets(nil, defs)); err != nil {
		return c, checkError(what, err, cur != nil)
	}
	return c, nil
}

// DeleteOutgoingConnection removes a connection.
func (s *outgoingConns) DeleteOutgoingConnection(ctx context.Context, req *adminv1.DeleteOutgoingConnectionRequest) (*adminv1.DeleteOutgoingConnectionResponse, error) {
	rev, err := s.store.DeleteOutgoingConnection(ctx, req.GetName())
	if err != nil {
		return nil, storeError(fmt.Sprintf("delete outgoing connection %q", req.GetName()), err)
	}
	s.watch.Advance(rev)
	s.log.Info("outgoing connection deleted", "connection", req.GetName(), "revision", rev, "caller", caller(ctx))
	return &adminv1.DeleteOutgoingConnectionResponse{Revision: rev}, nil
}

// pingTimeout bounds a ping: the connection's own timeout applies inside
// the agent; this is how long the control plane waits for its answer.
const pingTimeout = 40 * time.Second

// PingOutgoingConnection asks an agent connected to this replica to call
// the connection's address.
func (s *outgoingConns) PingOutgoingConnection(ctx context.Context, req *adminv1.PingOutgoingConnectionRequest) (*adminv1.PingOutgoingConnectionResponse, error) {
	what := fmt.Sprintf("ping outgoing connection %q", req.GetName())
	if _, err := s.store.GetOutgoingConnection(ctx, req.GetName()); err != nil {
		return nil, storeError(what, err)
	}
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	id, res, err := s.dispatch.Run(ctx, req.GetAgentId(), &agentv1.Command{Kind: &agentv1.Command_Ping{Ping: &agentv1.PingCommand{Connection: req.GetName()}}})
	switch {
	case errors.Is(err, dispatch.ErrNoAgent):
		if on := s.anyElsewhere(ctx, s.store, what, nil); on != nil {
			return nil, on
		}
		return nil, status.Errorf(codes.FailedPrecondition, "%s: no agent is connected to this control plane to ping from", what)
	case errors.Is(err, dispatch.ErrNotConnected):
		if on := s.elsewhere(ctx, s.store, what, req.GetAgentId()); on != nil {
			return nil, on
		}
		return nil, status.Errorf(codes.FailedPrecondition, "%s: agent %q is not connected to this control plane", what, req.GetAgentId())
	case errors.Is(err, context.DeadlineExceeded):
		return nil, status.Errorf(codes.DeadlineExceeded, "%s: agent %q did not answer in time", what, id)
	case errors.Is(err, context.Canceled):
		return nil, status.FromContextError(err).Err()
	case err != nil: // the agent went away before it answered
		return nil, status.Errorf(codes.Unavailable, "%s: %v", what, err)
	case res.GetError() != "":
		return nil, status.Errorf(codes.Internal, "%s: agent %q says: %s", what, id, res.GetError())
	}
	p := res.GetPing()
	return &adminv1.PingOutgoingConnectionResponse{
		AgentId:   id,
		Url:       p.GetUrl(),
		Status:    p.GetStatus(),
		LatencyUs: p.GetLatencyUs(),
		Error:     p.GetError(),
	}, nil
}
