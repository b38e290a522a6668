// Package auth decides who may call what on the control plane's one gRPC
// port. Agents prove who they are with a client certificate from the
// control plane's CA, bound to their id; people and automation send a
// bearer token with a role. Every RPC has a policy in Policy: one without
// is refused, and a test fails.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/weft-dev/weft/controlplane/pki"
	"github.com/weft-dev/weft/controlplane/store"
)

// Tokens finds admin API tokens by the hash of their secret.
type Tokens interface {
	TokenByHash(ctx context.Context, hash string) (store.Token, error)
}

// Authorizer checks every call against Policy.
type Authorizer struct {
	tokens  Tokens
	revoked *Revocations
	now     func() time.Time
	log     *slog.Logger
}

// New returns an Authorizer that finds tokens in t and refuses the agents
// r holds revoked.
func New(t Tokens, r *Revocations, log *slog.Logger) *Authorizer {
	return &Authorizer{tokens: t, revoked: r, now: time.Now, log: log.With("component", "auth")}
}

// Interceptors returns the unary and stream interceptors that authorize
// each call before its handler runs.
func (a *Authorizer) Interceptors() (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
	unary := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		ctx, err := a.Authorize(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
	stream := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, next grpc.StreamHandler) error {
		ctx, err := a.Authorize(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		return next(srv, &authorizedStream{ServerStream: ss, ctx: ctx})
	}
	return unary, stream
}

// authorizedStream is a stream whose context names its caller.
type authorizedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *authorizedStream) Context() context.Context { return s.ctx }

// Authorize checks that the caller of method in ctx may call it, and
// returns ctx naming the caller: an agent's id (AgentFrom) or a token's
// name and role (CallerFrom).
func (a *Authorizer) Authorize(ctx context.Context, method string) (context.Context, error) {
	need, ok := Policy[method]
	if !ok {
		a.log.Error("a call to a method with no access policy was refused", "method", method)
		return nil, status.Errorf(codes.PermissionDenied, "%s has no access policy; refused", method)
	}
	switch need {
	case Public:
		return ctx, nil
	case AgentCert:
		id, err := a.agent(ctx)
		if err != nil {
			return nil, err
		}
		return WithAgent(ctx, id), nil
	default:
		t, err := a.token(ctx)
		if err != nil {
			return nil, err
		}
		if RoleRank(t.Role) < need.rank() {
			return nil, status.Errorf(codes.PermissionDenied, "token %q has role %s; %s needs role %s or stronger", t.Name, t.Role, method, need)
		}
		return WithCaller(ctx, t.Name, t.Role), nil
	}
}

// agent reads the agent id of the verified client certificate of ctx's
// connection.
func (a *Authorizer) agent(ctx context.Context) (string, error) {
	p, _ := peer.FromContext(ctx)
	var info credentials.TLSInfo
	if p != nil {
		info, _ = p.AuthInfo.(credentials.TLSInfo)
	}
	if len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		return "", status.Error(codes.Unauthenticated, "the agent API needs a client certificate from this control plane's CA: enroll the agent with weft-agent --join TOKEN --ca-fingerprint FP (weftctl agent token create prints both)")
	}
	id, err := pki.AgentID(info.State.VerifiedChains[0][0])
	if err != nil {
		return "", status.Error(codes.Unauthenticated, err.Error())
	}
	if at, revoked := a.revoked.At(id); revoked {
		return "", status.Errorf(codes.PermissionDenied, "agent %q was revoked at %s; enroll a new agent id with a new join token", id, at.UTC().Format(time.RFC3339))
	}
	return id, nil
}

// token reads and checks the bearer token of ctx's call.
func (a *Authorizer) token(ctx context.Context) (store.Token, error) {
	secret, err := bearer(ctx)
	if err != nil {
		return store.Token{}, err
	}
	t, err := a.tokens.TokenByHash(ctx, HashSecret(secret))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Token{}, status.Error(codes.Unauthenticated, "unknown token: no token of this control plane has that secret")
	case store.Unavailable(err):
		// The client hears only that; the error names the database.
		a.log.Error("the database is unavailable", "op", "check a token", "err", err)
		return store.Token{}, status.Error(codes.Unavailable, "check the token: "+store.ErrUnavailable.Error())
	case err != nil:
		a.log.Error("cannot read a token", "err", err)
		return store.Token{}, status.Error(codes.Internal, "check the token: cannot read it")
	}
	now := a.now()
	if !t.RevokedAt.IsZero() {
		return store.Token{}, status.Errorf(codes.Unauthenticated, "token %q was revoked at %s", t.Name, t.RevokedAt.UTC().Format(time.RFC3339))
	}
	if !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt) {
		return store.Token{}, status.Errorf(codes.Unauthenticated, "token %q expired at %s", t.Name, t.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return t, nil
}

// bearer reads the secret of the call's "authorization: Bearer SECRET".
func bearer(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return "", status.Error(codes.Unauthenticated, `this call needs a token: send "authorization: Bearer SECRET" (weftctl: --token, WEFT_TOKEN or a context)`)
	}
	if len(vals) > 1 {
		return "", status.Error(codes.Unauthenticated, "the call sends more than one authorization header")
	}
	scheme, secret, ok := strings.Cut(strings.TrimSpace(vals[0]), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || strings.TrimSpace(secret) == "" {
		return "", status.Error(codes.Unauthenticated, `the authorization header must be "Bearer SECRET"`)
	}
	return strings.TrimSpace(secret), nil
}

// The prefixes of the secrets this package makes, so that a secret found
// in a file or a log says what it is.
const (
	TokenPrefix     = "weft_"
	JoinTokenPrefix = "weftjoin_"
)

// NewSecret makes a secret: prefix and 32 random bytes, base64url.
func NewSecret(prefix string) string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// HashSecret is what the store keeps of a secret: its sha256, hex.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// NewID makes a short random id, such as a join token's.
func NewID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// callerKey and agentKey are the context keys of a call's caller.
type (
	callerKey struct{}
	agentKey  struct{}
)

// Caller is who makes a call with a token.
type Caller struct {
	Name string // the token's name
	Role string // its role
}

// WithCaller returns ctx naming the caller: a token's name and role, or
// one of the control plane's own ways in (with no role).
func WithCaller(ctx context.Context, name, role string) context.Context {
	return context.WithValue(ctx, callerKey{}, Caller{Name: name, Role: role})
}

// CallerFrom is the caller ctx names.
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// WithAgent returns ctx naming the agent that makes the call, as its
// verified certificate binds it.
func WithAgent(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, agentKey{}, id)
}

// AgentFrom is the agent ctx names.
func AgentFrom(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(agentKey{}).(string)
	return id, ok && id != ""
}

// CheckAgent refuses a request that names an agent other than the one
// whose certificate made it: an agent acts only as its own id.
func CheckAgent(ctx context.Context, claimed string) error {
	id, ok := AgentFrom(ctx)
	switch {
	case !ok:
		return status.Error(codes.Unauthenticated, "the agent API needs a client certificate from this control plane's CA")
	case claimed != id:
		return status.Errorf(codes.PermissionDenied, "the certificate is agent %q's; the request names agent %q: an agent acts only as its own id", id, claimed)
	}
	return nil
}

// ErrNoPolicy is Need's error for a method Policy does not name.
var ErrNoPolicy = errors.New("no access policy")

// Need is what a method requires of its caller.
func Need(method string) (Requirement, error) {
	r, ok := Policy[method]
	if !ok {
		return 0, fmt.Errorf("%s: %w", method, ErrNoPolicy)
	}
	return r, nil
}
