package api

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weft-dev/weft/controlplane/auth"
	"github.com/weft-dev/weft/controlplane/store"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// access implements AccessService: the admin API's tokens.
type access struct {
	adminv1.UnimplementedAccessServiceServer
	*base
	store AccessStore
}

// AccessStore is what the access service needs of the store.
type AccessStore interface {
	CreateToken(ctx context.Context, t store.NewToken) (store.Token, error)
	ListTokens(ctx context.Context) ([]store.Token, error)
	RevokeToken(ctx context.Context, name string) (store.Token, error)
}

var _ AccessStore = store.Store(nil)

// tokenName is what a token's name may hold.
var tokenName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func (s *access) CreateToken(ctx context.Context, req *adminv1.CreateTokenRequest) (*adminv1.CreateTokenResponse, error) {
	if !tokenName.MatchString(req.GetName()) {
		return nil, status.Errorf(codes.InvalidArgument, "create token: name %q: want 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", req.GetName())
	}
	role, err := roleIn(req.GetRole())
	if err != nil {
		return nil, invalid("create token", err)
	}
	if req.GetTtlSeconds() < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "create token: ttl_seconds %d: want 0 (never expires) or more", req.GetTtlSeconds())
	}
	secret := auth.NewSecret(auth.TokenPrefix)
	nt := store.NewToken{Name: req.GetName(), Role: role, Hash: auth.HashSecret(secret), CreatedBy: caller(ctx)}
	if ttl := req.GetTtlSeconds(); ttl > 0 {
		nt.ExpiresAt = time.Now().Add(time.Duration(ttl) * time.Second)
	}
	t, err := s.store.CreateToken(ctx, nt)
	if err != nil {
		return nil, storeError("create token", err)
	}
	s.log.Info("token created", "token", t.Name, "role", t.Role, "caller", caller(ctx))
	return &adminv1.CreateTokenResponse{Token: tokenOut(t), Secret: secret}, nil
}

func (s *access) ListTokens(ctx context.Context, _ *adminv1.ListTokensRequest) (*adminv1.ListTokensResponse, error) {
	ts, err := s.store.ListTokens(ctx)
	if err != nil {
		return nil, storeError("list tokens", err)
	}
	out := &adminv1.ListTokensResponse{}
	for _, t := range ts {
		out.Tokens = append(out.Tokens, tokenOut(t))
	}
	return out, nil
}

func (s *access) RevokeToken(ctx context.Context, req *adminv1.RevokeTokenRequest) (*adminv1.RevokeTokenResponse, error) {
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "revoke token: name is empty")
	}
	t, err := s.store.RevokeToken(ctx, req.GetName())
	if err != nil {
		return nil, storeError("revoke token "+req.GetName(), err)
	}
	s.log.Info("token revoked", "token", t.Name, "caller", caller(ctx))
	return &adminv1.RevokeTokenResponse{Token: tokenOut(t)}, nil
}

func (s *access) WhoAmI(ctx context.Context, _ *adminv1.WhoAmIRequest) (*adminv1.WhoAmIResponse, error) {
	c, ok := auth.CallerFrom(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "whoami: the call carries no token")
	}
	role, _ := roleOut(c.Role)
	return &adminv1.WhoAmIResponse{Name: c.Name, Role: role}, nil
}

// roleIn is the store's name of a role.
func roleIn(r adminv1.Role) (string, error) {
	switch r {
	case adminv1.Role_ROLE_VIEWER:
		return store.RoleViewer, nil
	case adminv1.Role_ROLE_DEPLOYER:
		return store.RoleDeployer, nil
	case adminv1.Role_ROLE_ADMIN:
		return store.RoleAdmin, nil
	}
	return "", fmt.Errorf("role %s: want ROLE_VIEWER, ROLE_DEPLOYER or ROLE_ADMIN", r)
}

// roleOut is the API's enum of a role.
func roleOut(r string) (adminv1.Role, bool) {
	switch r {
	case store.RoleViewer:
		return adminv1.Role_ROLE_VIEWER, true
	case store.RoleDeployer:
		return adminv1.Role_ROLE_DEPLOYER, true
	case store.RoleAdmin:
		return adminv1.Role_ROLE_ADMIN, true
	}
	return adminv1.Role_ROLE_UNSPECIFIED, false
}

func tokenOut(t store.Token) *adminv1.Token {
	role, _ := roleOut(t.Role)
	return &adminv1.Token{
		Name:      t.Name,
		Role:      role,
		CreatedAt: timestamppb.New(t.CreatedAt),
		ExpiresAt: optionalTime(t.ExpiresAt),
		RevokedAt: optionalTime(t.RevokedAt),
		CreatedBy: t.CreatedBy,
	}
}

// optionalTime is t, or nil for the zero time.
func optionalTime(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
