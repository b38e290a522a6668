package api

import (
	"context"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weft-dev/weft/controlplane/auth"
	"github.com/weft-dev/weft/controlplane/store"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// The bounds of a join token.
const (
	defaultJoinTTL = time.Hour
	maxJoinTTL     = 30 * 24 * time.Hour
	maxJoinUses    = 10000
)

func (s *fleet) CreateJoinToken(ctx context.Context, req *adminv1.CreateJoinTokenRequest) (*adminv1.CreateJoinTokenResponse, error) {
	const what = "create join token"
	if s.opts.CA == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "%s: this control plane has no CA", what)
	}
	ttl := time.Duration(req.GetTtlSeconds()) * time.Second
	switch {
	case req.GetTtlSeconds() < 0 || ttl > maxJoinTTL:
		return nil, status.Errorf(codes.InvalidArgument, "%s: ttl_seconds %d: want 0 (an hour) up to %d (30 days)", what, req.GetTtlSeconds(), int64(maxJoinTTL/time.Second))
	case ttl == 0:
		ttl = defaultJoinTTL
	}
	uses := int(req.GetUses())
	switch {
	case uses < 0 || uses > maxJoinUses:
		return nil, status.Errorf(codes.InvalidArgument, "%s: uses %d: want 0 (one) up to %d", what, uses, maxJoinUses)
	case uses == 0:
		uses = 1
	}
	for k, v := range req.GetLabels() {
		if k == "" || strings.ContainsAny(k, "=,") || strings.ContainsAny(v, ",") {
			return nil, status.Errorf(codes.InvalidArgument, "%s: label %q=%q: a key is not empty and holds no '=' or ','; a value holds no ','", what, k, v)
		}
	}
	secret := auth.NewSecret(auth.JoinTokenPrefix)
	jt, err := s.store.CreateJoinToken(ctx, store.NewJoinToken{
		ID:        auth.NewID(),
		Hash:      auth.HashSecret(secret),
		Labels:    req.GetLabels(),
		ExpiresAt: time.Now().Add(ttl),
		Uses:      uses,
		CreatedBy: caller(ctx),
	})
	if err != nil {
		return nil, storeError(what, err)
	}
	s.log.Info("join token created", "join_token", jt.ID, "uses", jt.Uses, "expires_at", jt.ExpiresAt, "caller", caller(ctx))
	return &adminv1.CreateJoinTokenResponse{JoinToken: joinTokenOut(jt), Secret: secret, CaFingerprint: s.opts.CA.Fingerprint()}, nil
}

func (s *fleet) ListJoinTokens(ctx context.Context, _ *adminv1.ListJoinTokensRequest) (*adminv1.ListJoinTokensResponse, error) {
	jts, err := s.store.ListJoinTokens(ctx)
	if err != nil {
		return nil, storeError("list join tokens", err)
	}
	out := &adminv1.ListJoinTokensResponse{}
	for _, jt := range jts {
		out.JoinTokens = append(out.JoinTokens, joinTokenOut(jt))
	}
	return out, nil
}

func (s *fleet) RevokeJoinToken(ctx context.Context, req *adminv1.RevokeJoinTokenRequest) (*adminv1.RevokeJoinTokenResponse, error) {
	if req.GetId() == "" {
		return nil, status.Error(codes.InvalidArgument, "revoke join token: id is empty")
	}
	jt, err := s.store.RevokeJoinToken(ctx, req.GetId())
	if err != nil {
		return nil, storeError("revoke join token "+req.GetId(), err)
	}
	s.log.Info("join token revoked", "join_token", jt.ID, "caller", caller(ctx))
	return &adminv1.RevokeJoinTokenResponse{JoinToken: joinTokenOut(jt)}, nil
}

func (s *fleet) RevokeAgent(ctx context.Context, req *adminv1.RevokeAgentRequest) (*adminv1.RevokeAgentResponse, error) {
	id := req.GetId()
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "revoke agent: id is empty")
	}
	a, err := s.store.RevokeAgent(ctx, id)
	if err != nil {
		return nil, storeError("revoke agent "+id, err)
	}
	if s.opts.Revocations != nil {
		s.opts.Revocations.Add(id, a.RevokedAt)
	}
	closed := s.dispatch.Disconnect(id)
	rev, err := s.store.Revision(ctx)
	if err != nil {
		return nil, storeError("revoke agent "+id, err)
	}
	s.log.Warn("agent revoked", "agent", id, "streams_closed", closed, "caller", caller(ctx))
	return &adminv1.RevokeAgentResponse{Agent: agentOut(a, rev), Closed: int32(closed)}, nil
}

func joinTokenOut(jt store.JoinToken) *adminv1.JoinToken {
	return &adminv1.JoinToken{
		Id:        jt.ID,
		Labels:    jt.Labels,
		CreatedAt: timestamppb.New(jt.CreatedAt),
		ExpiresAt: timestamppb.New(jt.ExpiresAt),
		Uses:      int32(jt.Uses),
		Used:      int32(jt.Used),
		RevokedAt: optionalTime(jt.RevokedAt),
		CreatedBy: jt.CreatedBy,
		Agents:    jt.Agents,
	}
}
