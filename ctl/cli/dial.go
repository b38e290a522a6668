package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// dialOptions says how to reach the control plane. Transport security and
// credentials (TLS, a bearer token from WEFT_TOKEN) belong here, so adding
// them changes dial and not the commands.
type dialOptions struct {
	// Addr is the control plane's host:port.
	Addr string
	// ConnectTimeout bounds one connection attempt, so an unreachable control
	// plane fails in seconds rather than at the end of the call's deadline.
	ConnectTimeout time.Duration
}

// conn is a connection to the control plane's admin API.
type conn struct {
	cc       *grpc.ClientConn
	addr     string
	dialer   *recordingDialer
	packages adminv1.PackageServiceClient
	channels adminv1.ChannelServiceClient
	fleet    adminv1.FleetServiceClient
	security adminv1.SecurityServiceClient
	outgoing adminv1.OutgoingServiceClient
	jobs     adminv1.JobServiceClient
	config   adminv1.ConfigServiceClient
	stats    adminv1.StatsServiceClient
}

// dial prepares a connection to the control plane. gRPC connects lazily, on
// the first call, so an unreachable address surfaces as that call's error.
func dial(opts dialOptions) (*conn, error) {
	addr := strings.TrimSpace(opts.Addr)
	if addr == "" {
		return nil, errors.New("--addr is empty (set --addr or WEFT_ADDR to the control plane's host:port)")
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("--addr %q: want host:port: %w", addr, err)
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = defaultConnectTimeout
	}
	d := &recordingDialer{timeout: opts.ConnectTimeout}
	// passthrough hands addr to the dialer as it is, so a failed name lookup
	// is reported by the dialer like any other dial error.
	cc, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(d.dial),
		grpc.WithConnectParams(grpc.ConnectParams{MinConnectTimeout: opts.ConnectTimeout}),
		grpc.WithStatsHandler(answerTracker{}),
	)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	return &conn{
		cc:       cc,
		addr:     addr,
		dialer:   d,
		packages: adminv1.NewPackageServiceClient(cc),
		channels: adminv1.NewChannelServiceClient(cc),
		fleet:    adminv1.NewFleetServiceClient(cc),
		security: adminv1.NewSecurityServiceClient(cc),
		outgoing: adminv1.NewOutgoingServiceClient(cc),
		jobs:     adminv1.NewJobServiceClient(cc),
		config:   adminv1.NewConfigServiceClient(cc),
		stats:    adminv1.NewStatsServiceClient(cc),
	}, nil
}

// Close releases the connection.
func (c *conn) Close() error { return c.cc.Close() }

// explain turns the error of the RPC op into one a user can act on. parent is
// the command's context, rctx the call's (which carries the deadline timeout
// and the answered flag of withAnswerFlag).
func (c *conn) explain(parent, rctx context.Context, timeout time.Duration, op string, err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s: %w", op, err)
	}
	dialErr, connected := c.dialer.state()
	answered := answeredIn(rctx)
	switch {
	case parent.Err() != nil:
		return fmt.Errorf("%s: interrupted", op)
	case deadlinePassed(rctx) && !connected:
		reason := fmt.Sprintf("no answer within %s", timeout)
		if dialErr != nil {
			reason = dialReason(dialErr, c.dialer.timeout)
		}
		return c.unreachable(reason)
	case deadlinePassed(rctx) && (!answered || st.Code() == codes.DeadlineExceeded):
		// The server's copy of the deadline may fire a moment before ours
		// and answer DeadlineExceeded itself.
		return &rpcError{op: op, st: status.Newf(codes.DeadlineExceeded,
			"no answer within %s (raise --rpc-timeout if the control plane is busy)", timeout)}
	case st.Code() == codes.Unavailable && !answered && dialErr != nil:
		return c.unreachable(dialReason(dialErr, c.dialer.timeout))
	case st.Code() == codes.Unavailable && !answered:
		// Connected, but the peer does not speak gRPC or hung up.
		return c.unreachable(connectionError(st.Message()))
	}
	return &rpcError{op: op, st: st}
}

// deadlinePassed reports whether the call's deadline has passed or is about
// to.
func deadlinePassed(rctx context.Context) bool {
	d, ok := rctx.Deadline()
	return rctx.Err() != nil || (ok && time.Until(d) < deadlineSlack)
}

// deadlineSlack is how close to its deadline a call that failed counts as
// timed out.
const deadlineSlack = 50 * time.Millisecond

// unreachable says that the control plane could not be reached and why.
func (c *conn) unreachable(reason string) error {
	return &rpcError{
		st: status.New(codes.Unavailable, fmt.Sprintf(
			"cannot reach the control plane at %s: %s (set --addr or WEFT_ADDR)", c.addr, reason)),
	}
}

// rpcError is a failed call: the operation and the status the control plane
// (or the connection) gave. It keeps the status for status.FromError.
type rpcError struct {
	op string
	st *status.Status
}

// Error returns the operation and the status message.
func (e *rpcError) Error() string {
	msg := e.st.Message()
	// The control plane names the operation itself; say it once.
	if e.op == "" || strings.HasPrefix(msg, e.op+":") || strings.HasPrefix(msg, e.op+" ") {
		return msg
	}
	return e.op + ": " + msg
}

// GRPCStatus returns the call's status.
func (e *rpcError) GRPCStatus() *status.Status { return e.st }

// recordingDialer dials TCP with a timeout and remembers how the last attempt
// went, so a refused connection can be reported as such rather than as
// gRPC's generic "connection error".
type recordingDialer struct {
	timeout time.Duration

	mu        sync.Mutex
	lastErr   error
	connected bool
}

// dial is a grpc.WithContextDialer function.
func (d *recordingDialer) dial(ctx context.Context, addr string) (net.Conn, error) {
	nd := net.Dialer{Timeout: d.timeout}
	nc, err := nd.DialContext(ctx, "tcp", addr)
	d.mu.Lock()
	d.lastErr = err
	if err == nil {
		d.connected = true
	}
	d.mu.Unlock()
	return nc, err
}

// state returns the last dial error (nil after a success) and whether any
// dial has succeeded.
func (d *recordingDialer) state() (lastErr error, connected bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lastErr, d.connected
}

// dialReason says briefly why a dial failed: "connection refused" rather than
// "dial tcp 127.0.0.1:7400: connect: connection refused".
func dialReason(err error, timeout time.Duration) string {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return dnsErr.Error()
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	var netErr net.Error
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &netErr) && netErr.Timeout()) {
		return fmt.Sprintf("no answer within %s", timeout)
	}
	return err.Error()
}

// connectionError strips gRPC's wrapping from a transport failure:
// `connection error: desc = "error reading server preface: EOF"` becomes
// "error reading server preface: EOF".
func connectionError(msg string) string {
	const prefix = "connection error: desc = "
	if !strings.HasPrefix(msg, prefix) {
		return msg
	}
	if s, err := strconv.Unquote(msg[len(prefix):]); err == nil {
		return s
	}
	return msg
}

// answerKey is the context key of a call's answered flag.
type answerKey struct{}

// withAnswerFlag returns a context whose call records whether the control
// plane answered at all, which tells a status the server sent (such as its
// own Unavailable) from a connection that failed.
func withAnswerFlag(ctx context.Context) context.Context {
	return context.WithValue(ctx, answerKey{}, new(atomic.Bool))
}

// answeredIn reports whether the call made with ctx got any response headers.
func answeredIn(ctx context.Context) bool {
	f, ok := ctx.Value(answerKey{}).(*atomic.Bool)
	return ok && f.Load()
}

// answerTracker is a gRPC stats handler that sets a call's answered flag when
// response headers or trailers arrive.
type answerTracker struct{}

var _ stats.Handler = answerTracker{}

// TagRPC implements stats.Handler.
func (answerTracker) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }

// HandleRPC implements stats.Handler.
func (answerTracker) HandleRPC(ctx context.Context, s stats.RPCStats) {
	switch s.(type) {
	case *stats.InHeader, *stats.InTrailer:
		if f, ok := ctx.Value(answerKey{}).(*atomic.Bool); ok {
			f.Store(true)
		}
	}
}

// TagConn implements stats.Handler.
func (answerTracker) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }

// HandleConn implements stats.Handler.
func (answerTracker) HandleConn(context.Context, stats.ConnStats) {}
