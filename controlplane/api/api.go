// Package api implements the admin API (weft.admin.v1) that weftctl,
// grpcurl and the web admin use. Handlers validate input, check it with
// the rules of config as code (package configplan), call the store and
// map errors to gRPC status codes with messages a user can act on. Each
// service takes the few store methods it calls (PackageStore,
// ChannelStore, ...), declared next to it.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/weft-dev/weft/controlplane/auth"
	"github.com/weft-dev/weft/controlplane/dispatch"
	"github.com/weft-dev/weft/controlplane/pki"
	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/controlplane/validate"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// Options are the API's settings.
type Options struct {
	// Evaluator evaluates the packages whose services only running them
	// tells; nil refuses them.
	Evaluator *validate.Evaluator
	// InvokeTimeout is the default bound of an Invoke.
	InvokeTimeout time.Duration
	// CA is the control plane's CA, whose fingerprint join tokens carry;
	// nil refuses to make join tokens.
	CA *pki.CA
	// Revocations learns at once of the agents revoked here; nil for none.
	Revocations *auth.Revocations
	// Peers reaches the other replicas, for fleet-wide reads; nil asks
	// only the agents of this replica.
	Peers *Forwarder
}

// Store is what the admin API needs of the control plane's store: what
// each of its services needs, declared next to the service.
type Store interface {
	PackageStore
	ChannelStore
	FleetStore
	SecurityStore
	OutgoingStore
	JobStore
	ConfigStore
	StatsStore
	AccessStore
	SecretsStore
}

var _ Store = store.Store(nil)

// Server implements the admin services.
type Server struct {
	packages *packages
	channels *channels
	fleet    *fleet
	security *securityDefs
	outgoing *outgoingConns
	jobs     *jobs
	configs  *configs
	stats    *stats
	access   *access
	secrets  *secretsKeys
}

// base is what every service shares.
type base struct {
	watch    *dispatch.Watch
	dispatch *dispatch.Server
	opts     Options
	log      *slog.Logger
}

// New returns the admin API over s. Changes advance w so that agents
// connected to this replica hear of them at once.
func New(s Store, w *dispatch.Watch, d *dispatch.Server, opts Options, log *slog.Logger) *Server {
	b := &base{watch: w, dispatch: d, opts: opts, log: log.With("component", "api")}
	return &Server{
		packages: &packages{base: b, store: s},
		channels: &channels{base: b, store: s},
		fleet:    &fleet{base: b, store: s},
		security: &securityDefs{base: b, store: s},
		outgoing: &outgoingConns{base: b, store: s},
		jobs:     &jobs{base: b, store: s},
		configs:  &configs{base: b, store: s},
		stats:    &stats{base: b, store: s},
		access:   &access{base: b, store: s},
		secrets:  &secretsKeys{base: b, store: s},
	}
}

// Register adds the admin services to g.
func (s *Server) Register(g *grpc.Server) {
	adminv1.RegisterPackageServiceServer(g, s.packages)
	adminv1.RegisterChannelServiceServer(g, s.channels)
	adminv1.RegisterFleetServiceServer(g, s.fleet)
	adminv1.RegisterSecurityServiceServer(g, s.security)
	adminv1.RegisterOutgoingServiceServer(g, s.outgoing)
	adminv1.RegisterJobServiceServer(g, s.jobs)
	adminv1.RegisterConfigServiceServer(g, s.configs)
	adminv1.RegisterStatsServiceServer(g, s.stats)
	adminv1.RegisterAccessServiceServer(g, s.access)
	adminv1.RegisterSecretsServiceServer(g, s.secrets)
}

// WithCaller returns ctx naming who makes the request, for history and
// logs: the control plane's own ways in (the pickup directory, the sources
// list) name themselves; a call with a token is named by the token (see
// auth.Authorizer).
func WithCaller(ctx context.Context, name string) context.Context {
	// The history keeps 255 bytes of an author: a long file name is cut.
	if len(name) > maxCaller {
		name = strings.ToValidUTF8(name[:maxCaller], "")
	}
	return store.WithAuthor(auth.WithCaller(ctx, name, ""), name)
}

// maxCaller bounds a caller's name, as the history's author column does.
const maxCaller = 255

// caller names who makes a request: its token, or the way in that made
// it; "local" for neither (a test's in-process call).
func caller(ctx context.Context) string {
	if c, ok := auth.CallerFrom(ctx); ok && c.Name != "" {
		return c.Name
	}
	return "local"
}

// Packages returns the package service, for the control plane's own ways in.
func (s *Server) Packages() adminv1.PackageServiceServer { return s.packages }

// Configs is the config service, for the control plane's own ways in (the
// config directory, the pickup directory).
func (s *Server) Configs() adminv1.ConfigServiceServer { return s.configs }

// storeError maps a store error to a status: what. is the operation.
func storeError(what string, err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return status.Errorf(codes.NotFound, "%s: %v", what, trimSentinel(err, store.ErrNotFound))
	case errors.Is(err, store.ErrConflict):
		return status.Errorf(codes.AlreadyExists, "%s: %v", what, trimSentinel(err, store.ErrConflict))
	case errors.Is(err, store.ErrRefused):
		// A join token or an agent that can no longer be used.
		return status.Errorf(codes.FailedPrecondition, "%s: %v", what, trimSentinel(err, store.ErrRefused))
	case errors.Is(err, store.ErrOtherOrigin):
		return status.Errorf(codes.FailedPrecondition, "%s: %v", what, trimSentinel(err, store.ErrOtherOrigin))
	case errors.Is(err, store.ErrWrongKind):
		// The definition exists but does not fit: the reference must change.
		return status.Errorf(codes.FailedPrecondition, "%s: %v", what, trimSentinel(err, store.ErrWrongKind))
	case store.Unavailable(err):
		return &unavailableError{what: what, err: err}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// The context's own words: err's may name the database's address.
		ctxErr := context.Canceled
		if errors.Is(err, context.DeadlineExceeded) {
			ctxErr = context.DeadlineExceeded
		}
		return status.Errorf(status.FromContextError(ctxErr).Code(), "%s: %v", what, ctxErr)
	default:
		return status.Errorf(codes.Internal, "%s: %v", what, err)
	}
}

// unavailableError is a store error that says the database cannot be
// reached. Its status tells the client only that, and what failed; the
// error itself, which names the database's address and user, goes to the
// control plane's log (see DatabaseErrors).
type unavailableError struct {
	what string
	err  error
}

func (e *unavailableError) Error() string { return e.what + ": " + e.err.Error() }
func (e *unavailableError) Unwrap() error { return e.err }

// GRPCStatus is the status the client gets.
func (e *unavailableError) GRPCStatus() *status.Status {
	return status.New(codes.Unavailable, e.what+": "+store.ErrUnavailable.Error())
}

// DatabaseErrors returns interceptors that apply the one rule for a
// database that cannot be reached to every call of the server: the client
// gets Unavailable with a message that names no host, port, user or
// database, and the control plane logs the error itself. A handler states
// such an error with storeError, or returns the store's error as it is.
func DatabaseErrors(log *slog.Logger) (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
	log = log.With("component", "api")
	unary := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		resp, err := next(ctx, req)
		if err != nil {
			err = databaseError(log, info.FullMethod, err)
		}
		return resp, err
	}
	stream := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, next grpc.StreamHandler) error {
		err := next(srv, ss)
		if err != nil {
			err = databaseError(log, info.FullMethod, err)
		}
		return err
	}
	return unary, stream
}

// databaseError returns err, or in its place the status a client is told
// when it says the database cannot be reached.
func databaseError(log *slog.Logger, method string, err error) error {
	var ue *unavailableError
	switch {
	case errors.As(err, &ue):
		log.Error("the database is unavailable", "method", method, "op", ue.what, "err", ue.err)
		return ue.GRPCStatus().Err()
	case store.Unavailable(err):
		log.Error("the database is unavailable", "method", method, "err", err)
		return status.Error(codes.Unavailable, store.ErrUnavailable.Error())
	}
	return err
}

// trimSentinel drops the sentinel's text from the end of a message: the
// status code already says "not found" or "already exists", and the message
// names the wrong kind itself.
func trimSentinel(err, sentinel error) string {
	return strings.TrimSuffix(err.Error(), ": "+sentinel.Error())
}

func invalid(what string, err error) error {
	return status.Errorf(codes.InvalidArgument, "%s: %v", what, err)
}

// RejectUnknownFields is a unary interceptor that refuses a request holding
// fields this control plane does not know, naming them: a client built for
// a newer API, or a typo in a hand-written request, must not be half-obeyed.
func RejectUnknownFields(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	if m, ok := req.(proto.Message); ok {
		if unknown := unknownFields(m.ProtoReflect(), ""); len(unknown) > 0 {
			return nil, status.Errorf(codes.InvalidArgument, "request %s has unknown fields: %s", m.ProtoReflect().Descriptor().FullName(), strings.Join(unknown, ", "))
		}
	}
	return next(ctx, req)
}

// unknownFields lists the unknown fields of m and its messages, each as
// path.#number.
func unknownFields(m protoreflect.Message, path string) []string {
	var out []string
	for b := m.GetUnknown(); len(b) > 0; {
		num, _, n := protowire.ConsumeField(b)
		if n < 0 {
			out = append(out, path+"(malformed)")
			break
		}
		out = append(out, fmt.Sprintf("%s#%d", path, num))
		b = b[n:]
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		name := path + string(fd.Name())
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				out = append(out, unknownFields(l.Get(i).Message(), fmt.Sprintf("%s[%d].", name, i))...)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				out = append(out, unknownFields(mv.Message(), fmt.Sprintf("%s[%v].", name, k.Interface()))...)
				return true
			})
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			out = append(out, unknownFields(v.Message(), name+".")...)
		}
		return true
	})
	return out
}
