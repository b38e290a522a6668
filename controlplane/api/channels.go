package api

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/weft-dev/weft/controlplane/configplan"
	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/controlplane/validate"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// ChannelStore is what the channel service needs of the store: its
// channels, and what their references point at.
type ChannelStore interface {
	CreateChannel(ctx context.Context, ch *adminv1.Channel) (*adminv1.Channel, error)
	GetChannel(ctx context.Context, name string) (*adminv1.Channel, error)
	ListChannels(ctx context.Context) ([]*adminv1.Channel, error)
	UpdateChannel(ctx context.Context, ch *adminv1.Channel) (*adminv1.Channel, error)
	DeleteChannel(ctx context.Context, name string) (int64, error)
	ListServices(ctx context.Context) ([]*adminv1.Service, error)
	ListSecurityDefinitions(ctx context.Context) ([]*adminv1.SecurityDefinition, error)
}

var _ ChannelStore = store.Store(nil)

type channels struct {
	adminv1.UnimplementedChannelServiceServer
	*base
	store ChannelStore
}

var _ adminv1.ChannelServiceServer = (*channels)(nil)

// CreateChannel validates and stores a new channel.
func (s *channels) CreateChannel(ctx context.Context, req *adminv1.CreateChannelRequest) (*adminv1.CreateChannelResponse, error) {
	in := req.GetChannel()
	if in == nil {
		return nil, status.Error(codes.InvalidArgument, "create channel: channel is required")
	}
	what := fmt.Sprintf("create channel %q", in.GetName())
	ch, err := s.check(ctx, what, in, nil)
	if err != nil {
		return nil, err
	}
	out, err := s.store.CreateChannel(ctx, ch)
	if err != nil {
		return nil, channelStoreError(what, err)
	}
	s.watch.Advance(out.Revision)
	s.log.Info("channel created", "channel", out.Name, "path", out.Path, "service", out.Service, "revision", out.Revision, "caller", caller(ctx))
	return &adminv1.CreateChannelResponse{Channel: out}, nil
}

// GetChannel reads one channel.
func (s *channels) GetChannel(ctx context.Context, req *adminv1.GetChannelRequest) (*adminv1.GetChannelResponse, error) {
	ch, err := s.store.GetChannel(ctx, req.GetName())
	if err != nil {
		return nil, storeError(fmt.Sprintf("get channel %q", req.GetName()), err)
	}
	return &adminv1.GetChannelResponse{Channel: ch}, nil
}

// ListChannels lists every channel.
func (s *channels) ListChannels(ctx context.Context, _ *adminv1.ListChannelsRequest) (*adminv1.ListChannelsResponse, error) {
	chs, err := s.store.ListChannels(ctx)
	if err != nil {
		return nil, storeError("list channels", err)
	}
	return &adminv1.ListChannelsResponse{Channels: chs}, nil
}

// UpdateChannel changes the fields of a channel that the mask names, or
// every field when the mask is empty.
func (s *channels) UpdateChannel(ctx context.Context, req *adminv1.UpdateChannelRequest) (*adminv1.UpdateChannelResponse, error) {
	in := req.GetChannel()
	if in == nil {
		return nil, status.Error(codes.InvalidArgument, "update channel: channel is required")
	}
	what := fmt.Sprintf("update channel %q", in.GetName())
	cur, err := s.store.GetChannel(ctx, in.GetName())
	if err != nil {
		return nil, storeError(what, err)
	}
	next := in
	if mask := req.GetUpdateMask(); len(mask.GetPaths()) > 0 {
		next = proto.CloneOf(cur)
		if err := applyMask(next, in, mask); err != nil {
			return nil, invalid(what, err)
		}
		if slices.Contains(mask.GetPaths(), "active") && in.Active == nil {
			next.Active = proto.Bool(false) // named and not given: false, as ever
		}
	}
	ch, err := s.check(ctx, what, next, cur)
	if err != nil {
		return nil, err
	}
	out, err := s.store.UpdateChannel(ctx, ch)
	if err != nil {
		return nil, updateStoreError(what, err)
	}
	s.watch.Advance(out.Revision)
	s.log.Info("channel updated", "channel", out.Name, "revision", out.Revision, "caller", caller(ctx))
	return &adminv1.UpdateChannelResponse{Channel: out}, nil
}

// DeleteChannel removes a channel.
func (s *channels) DeleteChannel(ctx context.Context, req *adminv1.DeleteChannelRequest) (*adminv1.DeleteChannelResponse, error) {
	rev, err := s.store.DeleteChannel(ctx, req.GetName())
	if err != nil {
		return nil, storeError(fmt.Sprintf("delete channel %q", req.GetName()), err)
	}
	s.watch.Advance(rev)
	s.log.Info("channel deleted", "channel", req.GetName(), "revision", rev, "caller", caller(ctx))
	return &adminv1.DeleteChannelResponse{Revision: rev}, nil
}

// check validates in and returns it normalised (validate.Channel, as an
// import does); unless that is cur unchanged (cur is nil for a new
// channel), it checks it against the live config as an import of it would
// (configplan.CheckChannel): the store checks the same again in its
// transaction.
func (s *channels) check(ctx context.Context, what string, in, cur *adminv1.Channel) (*adminv1.Channel, error) {
	ch, err := validate.Channel(in, nil)
	if err != nil {
		return ch, invalid(what, err)
	}
	if cur != nil && configplan.Unchanged(cur, ch) {
		return ch, nil
	}
	existing, err := s.store.ListChannels(ctx)
	if err != nil {
		return ch, storeError(what, err)
	}
	svcs, err := s.store.ListServices(ctx)
	if err != nil {
		return ch, storeError(what, err)
	}
	var defs []*adminv1.SecurityDefinition
	if ch.GetSecurity() != "" {
		if defs, err = s.store.ListSecurityDefinitions(ctx); err != nil {
			return ch, storeError(what, err)
		}
	}
	if err := configplan.CheckChannel(ch, existing, configplan.LiveTargets(svcs, defs)); err != nil {
		return ch, checkError(what, err, cur != nil)
	}
	return ch, nil
}

// channelStoreError maps a store error of a create or update: a missing
// service is a precondition, not a missing channel, and so is a security
// definition of the wrong kind (storeError), not a duplicate.
func channelStoreError(what string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return status.Errorf(codes.FailedPrecondition, "%s: %s", what, trimSentinel(err, store.ErrNotFound))
	}
	return storeError(what, err)
}

// checkError maps an error of configplan's checks of one object: a broken
// rule between objects as the store's error for it would be (on an update
// when update is set); anything else as invalid input.
func checkError(what string, err error, update bool) error {
	switch {
	case !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrWrongKind) && !errors.Is(err, store.ErrConflict):
		return invalid(what, err)
	case update:
		return updateStoreError(what, err)
	}
	return channelStoreError(what, err)
}

// updateStoreError maps a store error of an update: the object exists,
// so a conflict (a path another channel serves, a security definition of
// the wrong kind) is a precondition, like a missing reference.
func updateStoreError(what string, err error) error {
	if errors.Is(err, store.ErrConflict) {
		return status.Errorf(codes.FailedPrecondition, "%s: %s", what, trimSentinel(err, store.ErrConflict))
	}
	return channelStoreError(what, err)
}
