package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
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
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// dialOptions says how to reach the control plane and how to prove who is
// calling.
type dialOptions struct {
	// Addr is the control plane's host:port.
	Addr setting
	// CA is the PEM file of the CA that signed the control plane's
	// certificate; empty for the system's roots.
	CA setting
	// Token is the bearer token's secret; empty to send none.
	Token setting
	// Plaintext dials without TLS and sends no token: for tests and local
	// debugging only.
	Plaintext bool
	// ConnectTimeout bounds one connection attempt, so an unreachable control
	// plane fails in seconds rather than at the end of the call's deadline.
	ConnectTimeout time.Duration
}

// conn is a connection to the control plane's admin API.
type conn struct {
	cc     *grpc.ClientConn
	addr   string
	dialer *recordingDialer
	// tls records TLS handshakes; nil with --plaintext.
	tls *recordingCreds
	// ca and token are where the CA and the token came from, for errors.
	ca, token setting

	packages adminv1.PackageServiceClient
	channels adminv1.ChannelServiceClient
	fleet    adminv1.FleetServiceClient
	security adminv1.SecurityServiceClient
	outgoing adminv1.OutgoingServiceClient
	jobs     adminv1.JobServiceClient
	config   adminv1.ConfigServiceClient
	stats    adminv1.StatsServiceClient
	access   adminv1.AccessServiceClient
	secrets  adminv1.SecretsServiceClient
}

// dial prepares a connection to the control plane. gRPC connects lazily, on
// the first call, so an unreachable address surfaces as that call's error.
func dial(opts dialOptions) (*conn, error) {
	addr := strings.TrimSpace(opts.Addr.value)
	if addr == "" {
		return nil, fmt.Errorf("%s is empty (set --addr, WEFT_ADDR or a context to the control plane's host:port)", opts.Addr.label("address"))
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("%s %q: want host:port: %w", opts.Addr.label("address"), addr, err)
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = defaultConnectTimeout
	}
	c := &conn{
		addr:   addr,
		dialer: &recordingDialer{timeout: opts.ConnectTimeout},
	}
	dopts := []grpc.DialOption{
		grpc.WithContextDialer(c.dialer.dial),
		grpc.WithConnectParams(grpc.ConnectParams{MinConnectTimeout: opts.ConnectTimeout}),
		grpc.WithStatsHandler(answerTracker{}),
	}
	if opts.Plaintext {
		dopts = append(dopts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	} else {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if opts.CA.value != "" {
			pool, err := loadCA(opts.CA)
			if err != nil {
				return nil, err
			}
			cfg.RootCAs = pool
		}
		c.ca, c.token = opts.CA, opts.Token
		c.tls = &recordingCreds{TransportCredentials: credentials.NewTLS(cfg)}
		dopts = append(dopts, grpc.WithTransportCredentials(c.tls))
		if opts.Token.value != "" {
			dopts = append(dopts, grpc.WithPerRPCCredentials(bearer(opts.Token.value)))
		}
	}
	// passthrough hands addr to the dialer as it is, so a failed name lookup
	// is reported by the dialer like any other dial error.
	cc, err := grpc.NewClient("passthrough:///"+addr, dopts...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	c.cc = cc
	c.packages = adminv1.NewPackageServiceClient(cc)
	c.channels = adminv1.NewChannelServiceClient(cc)
	c.fleet = adminv1.NewFleetServiceClient(cc)
	c.security = adminv1.NewSecurityServiceClient(cc)
	c.outgoing = adminv1.NewOutgoingServiceClient(cc)
	c.jobs = adminv1.NewJobServiceClient(cc)
	c.config = adminv1.NewConfigServiceClient(cc)
	c.stats = adminv1.NewStatsServiceClient(cc)
	c.access = adminv1.NewAccessServiceClient(cc)
	c.secrets = adminv1.NewSecretsServiceClient(cc)
	return c, nil
}

// loadCA reads the CA file ca names into a pool of roots.
func loadCA(ca setting) (*x509.CertPool, error) {
	b, err := os.ReadFile(ca.value)
	if err != nil {
		// The error names the path: "open ca.pem: no such file or directory".
		return nil, fmt.Errorf("%s: %w", ca.label("ca"), err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s %s: holds no PEM CERTIFICATE block", ca.label("ca"), ca.value)
	}
	return pool, nil
}

// bearer sends a token as "authorization: Bearer SECRET" with every call.
type bearer string

var _ credentials.PerRPCCredentials = bearer("")

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials: a
// token never travels in the clear.
func (bearer) RequireTransportSecurity() bool { return true }

// recordingCreds is TLS that remembers how the last handshake went, so
// that an untrusted certificate is reported as such rather than as gRPC's
// generic "connection error".
type recordingCreds struct {
	credentials.TransportCredentials

	mu      sync.Mutex
	lastErr error
}

// ClientHandshake implements credentials.TransportCredentials.
func (r *recordingCreds) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	nc, info, err := r.TransportCredentials.ClientHandshake(ctx, authority, raw)
	r.mu.Lock()
	r.lastErr = err
	r.mu.Unlock()
	return nc, info, err
}

// Clone implements credentials.TransportCredentials. A clone records its
// own handshakes; gRPC itself does not clone the credentials it is given.
func (r *recordingCreds) Clone() credentials.TransportCredentials {
	return &recordingCreds{TransportCredentials: r.TransportCredentials.Clone()}
}

// state returns the last handshake's error; nil after a success or before
// any handshake.
func (r *recordingCreds) state() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastErr
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
	handshakeErr := c.tls.state()
	answered := answeredIn(rctx)
	switch {
	case parent.Err() != nil:
		return fmt.Errorf("%s: interrupted", op)
	case !answered && handshakeErr != nil && (st.Code() == codes.Unavailable || deadlinePassed(rctx)):
		return c.unreachable(c.handshakeReason(handshakeErr))
	case deadlinePassed(rctx) && !connected:
		reason := fmt.Sprintf("no answer within %s", timeout)
		if dialErr != nil {
			reason = dialReason(dialErr, c.dialer.timeout)
		}
		return c.unreachable(reason, addrHint)
	case deadlinePassed(rctx) && (!answered || st.Code() == codes.DeadlineExceeded):
		// The server's copy of the deadline may fire a moment before ours
		// and answer DeadlineExceeded itself.
		return &rpcError{op: op, st: status.Newf(codes.DeadlineExceeded,
			"no answer within %s (raise --rpc-timeout if the control plane is busy)", timeout)}
	case st.Code() == codes.Unavailable && !answered && dialErr != nil:
		return c.unreachable(dialReason(dialErr, c.dialer.timeout), addrHint)
	case st.Code() == codes.Unavailable && !answered && c.tls == nil:
		// Connected, but the peer does not speak gRPC in the clear, hung
		// up, or wants TLS.
		return c.unreachable(connectionError(st.Message()),
			"--plaintext dials without TLS: drop it for a control plane that serves TLS; else set --addr or WEFT_ADDR")
	case st.Code() == codes.Unavailable && !answered:
		// Connected, but the peer does not speak gRPC or hung up.
		return c.unreachable(connectionError(st.Message()), addrHint)
	case st.Code() == codes.Unauthenticated:
		return &rpcError{op: op, st: status.New(codes.Unauthenticated, c.refusedCredentials(st.Message()))}
	case st.Code() == codes.PermissionDenied:
		return &rpcError{op: op, st: status.New(codes.PermissionDenied, c.tooWeak(parent, timeout, st.Message()))}
	}
	return &rpcError{op: op, st: st}
}

// tokenHint says how to give weftctl a token.
const tokenHint = "set --token, WEFT_TOKEN or a context with weftctl context add"

// refusedCredentials explains an Unauthenticated answer: the token was
// missing, unknown, expired or revoked, as msg says.
func (c *conn) refusedCredentials(msg string) string {
	switch {
	case c.tls == nil:
		return fmt.Sprintf("the control plane refused the credentials: %s (--plaintext sends no token; %s)", msg, tokenHint)
	case c.token.value == "":
		return fmt.Sprintf("the control plane refused the credentials: %s (no token was sent; %s)", msg, tokenHint)
	default:
		return fmt.Sprintf("the control plane refused the credentials: %s (the token came from %s; %s)", msg, c.token.from, tokenHint)
	}
}

// whoAmITimeout bounds the call with which tooWeak names the caller's role.
const whoAmITimeout = 5 * time.Second

// tooWeak explains a PermissionDenied answer. The control plane says what
// was refused; weftctl asks it which token and role the caller has, so
// that the advice states what the server knows rather than a guess.
func (c *conn) tooWeak(parent context.Context, timeout time.Duration, msg string) string {
	ctx, cancel := context.WithTimeout(parent, min(timeout, whoAmITimeout))
	defer cancel()
	who, err := c.access.WhoAmI(ctx, &adminv1.WhoAmIRequest{})
	if err != nil || who.GetName() == "" {
		return fmt.Sprintf("%s (the token's role is too weak for this; this needs a stronger one)", msg)
	}
	if who.GetRole() == adminv1.Role_ROLE_ADMIN {
		// No role is stronger: the refusal is about something else.
		return fmt.Sprintf("%s (the token %q has role admin)", msg, who.GetName())
	}
	return fmt.Sprintf("%s (the token %q has role %s; this needs a stronger one)", msg, who.GetName(), roleName(who.GetRole()))
}

// handshakeReason says why the TLS handshake failed and what to set, such
// as the CA file when the certificate's authority is unknown.
func (c *conn) handshakeReason(err error) (reason, hint string) {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		record   tls.RecordHeaderError
	)
	const caFile = "the control plane's CA file, weft-ca.pem beside its database"
	switch {
	case errors.As(err, &unknown) && c.ca.value != "":
		return fmt.Sprintf("its certificate is not signed by the CA in %s (%s)", c.ca.value, c.ca.label("ca")),
			"set --ca or WEFT_CA to " + caFile
	case errors.As(err, &unknown):
		return "its certificate is signed by an authority this machine does not trust (" + unknown.Error() + ")",
			"set --ca or WEFT_CA to " + caFile
	case errors.As(err, &hostname):
		return "its certificate does not name the address dialed (" + hostname.Error() + ")",
			"set --addr or WEFT_ADDR to a name or address the certificate holds"
	case errors.As(err, &invalid):
		return "its certificate is not valid (" + invalid.Error() + ")",
			"check the control plane's certificate and this machine's clock; set --ca or WEFT_CA to " + caFile
	case errors.As(err, &record):
		return "it does not speak TLS (" + err.Error() + ")",
			"weftctl speaks TLS only; --plaintext is for tests and local debugging"
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Sprintf("no TLS handshake within %s", c.dialer.timeout), addrHint
	default:
		return "TLS handshake failed: " + err.Error(),
			"set --ca or WEFT_CA to " + caFile
	}
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

// addrHint is what to set when the control plane cannot be reached.
const addrHint = "set --addr, WEFT_ADDR or a context"

// unreachable says that the control plane could not be reached, why, and
// what to set.
func (c *conn) unreachable(reason, hint string) error {
	return &rpcError{
		st: status.New(codes.Unavailable, fmt.Sprintf(
			"cannot reach the control plane at %s: %s (%s)", c.addr, reason, hint)),
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
