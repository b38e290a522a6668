package api

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/controlplane/validate"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

type channels struct {
	adminv1.UnimplementedChannelServiceServer
	*Server
}

var _ adminv1.ChannelServiceServer = (*channels)(nil)

// CreateChannel validates and stores a new channel.
func (s *channels) CreateChannel(ctx context.Context, req *adminv1.CreateChannelRequest) (*adminv1.CreateChannelResponse, error) {
	in := req.GetChannel()
	if in == nil {
		return nil, status.Error(codes.InvalidArgument, "create channel: channel is required")
	}
	what := fmt.Sprintf("create channel %q", in.GetName())
	ch, err := s.check(ctx, what, channelIn(in))
	if err != nil {
		return nil, err
	}
	out, err := s.store.CreateChannel(ctx, ch)
	if err != nil {
		return nil, channelStoreError(what, err)
	}
	s.watch.Advance(out.Revision)
	s.log.Info("channel created", "channel", out.Name, "path", out.Path, "service", out.Service, "revision", out.Revision, "caller", caller(ctx))
	return &adminv1.CreateChannelResponse{Channel: channelOut(out)}, nil
}

// GetChannel reads one channel.
func (s *channels) GetChannel(ctx context.Context, req *adminv1.GetChannelRequest) (*adminv1.GetChannelResponse, error) {
	ch, err := s.store.GetChannel(ctx, req.GetName())
	if err != nil {
		return nil, storeError(fmt.Sprintf("get channel %q", req.GetName()), err)
	}
	return &adminv1.GetChannelResponse{Channel: channelOut(ch)}, nil
}

// ListChannels lists every channel.
func (s *channels) ListChannels(ctx context.Context, _ *adminv1.ListChannelsRequest) (*adminv1.ListChannelsResponse, error) {
	chs, err := s.store.ListChannels(ctx)
	if err != nil {
		return nil, storeError("list channels", err)
	}
	out := &adminv1.ListChannelsResponse{}
	for _, c := range chs {
		out.Channels = append(out.Channels, channelOut(c))
	}
	return out, nil
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
	next := channelIn(in)
	if paths := req.GetUpdateMask().GetPaths(); len(paths) > 0 {
		next = cur
		for _, p := range paths {
			switch p {
			case "path":
				next.Path = in.GetPath()
			case "methods":
				next.Methods = in.GetMethods()
			case "service":
				next.Service = in.GetService()
			case "active":
				next.Active = in.GetActive()
			case "timeout_ms":
				next.TimeoutMs = in.GetTimeoutMs()
			case "max_body_bytes":
				next.MaxBodyBytes = in.GetMaxBodyBytes()
			case "data_format":
				next.DataFormat = in.GetDataFormat()
			case "security":
				next.Security = in.GetSecurity()
			case "rate_limit":
				next.RateLimit = in.GetRateLimit()
			case "rate_burst":
				next.RateBurst = in.GetRateBurst()
			case "soap_actions":
				next.SOAPActions = in.GetSoapActions()
			default:
				return nil, status.Errorf(codes.InvalidArgument, "%s: update_mask: unknown or read-only field %q; want path, methods, service, active, timeout_ms, max_body_bytes, data_format, security, rate_limit, rate_burst or soap_actions", what, p)
			}
		}
	}
	ch, err := s.check(ctx, what, next)
	if err != nil {
		return nil, err
	}
	out, err := s.store.UpdateChannel(ctx, ch)
	if err != nil {
		return nil, updateStoreError(what, err)
	}
	s.watch.Advance(out.Revision)
	s.log.Info("channel updated", "channel", out.Name, "revision", out.Revision, "caller", caller(ctx))
	return &adminv1.UpdateChannelResponse{Channel: channelOut(out)}, nil
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

// check validates ch against the stored channels and its service.
func (s *channels) check(ctx context.Context, what string, ch store.Channel) (store.Channel, error) {
	existing, err := s.store.ListChannels(ctx)
	if err != nil {
		return ch, storeError(what, err)
	}
	ch, err = validate.Channel(ch, existing)
	if err != nil {
		return ch, invalid(what, err)
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

// updateStoreError maps a store error of an update: the object exists,
// so a conflict (a path another channel serves, a security definition of
// the wrong kind) is a precondition, like a missing reference.
func updateStoreError(what string, err error) error {
	if errors.Is(err, store.ErrConflict) {
		return status.Errorf(codes.FailedPrecondition, "%s: %s", what, trimSentinel(err, store.ErrConflict))
	}
	return channelStoreError(what, err)
}

func channelIn(c *adminv1.Channel) store.Channel {
	return store.Channel{
		Name:         c.GetName(),
		Path:         c.GetPath(),
		Methods:      c.GetMethods(),
		Service:      c.GetService(),
		Active:       c.Active == nil || c.GetActive(),
		TimeoutMs:    c.GetTimeoutMs(),
		MaxBodyBytes: c.GetMaxBodyBytes(),
		DataFormat:   c.GetDataFormat(),
		Security:     c.GetSecurity(),
		RateLimit:    c.GetRateLimit(),
		RateBurst:    c.GetRateBurst(),
		SOAPActions:  c.GetSoapActions(),
	}
}

func channelOut(c store.Channel) *adminv1.Channel {
	return &adminv1.Channel{
		Name:         c.Name,
		Path:         c.Path,
		Methods:      c.Methods,
		Service:      c.Service,
		Active:       proto.Bool(c.Active),
		TimeoutMs:    c.TimeoutMs,
		MaxBodyBytes: c.MaxBodyBytes,
		DataFormat:   c.DataFormat,
		Security:     c.Security,
		RateLimit:    c.RateLimit,
		RateBurst:    c.RateBurst,
		SoapActions:  c.SOAPActions,
		CreatedAt:    timestamppb.New(c.CreatedAt),
		UpdatedAt:    timestamppb.New(c.UpdatedAt),
		Revision:     c.Revision,
	}
}
