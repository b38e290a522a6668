package worker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weft-dev/weft/agent/certfile"
	"github.com/weft-dev/weft/agent/channel"
	"github.com/weft-dev/weft/agent/connguard"
	"github.com/weft-dev/weft/agent/engine"
	"github.com/weft-dev/weft/agent/observe"
	"github.com/weft-dev/weft/agent/sdk"
	"github.com/weft-dev/weft/agent/stats"
	workerv1 "github.com/weft-dev/weft/proto/weft/worker/v1"
)

// Main runs a worker with the arguments after Command, the descriptors its
// agent passed, until its agent closes the socket pair or stops it with
// SIGTERM. It ignores SIGINT: a terminal's Ctrl-C is for its agent, which
// stops its workers in order.
func Main(args []string) error {
	cfg, err := Parse(args)
	if err != nil {
		return err
	}
	if err := capMemory(cfg.MemoryLimit); err != nil {
		return err
	}
	signal.Ignore(os.Interrupt)
	// The duplicates are what the worker uses: closing the inherited
	// descriptors leaves a socket open only as long as it is in use.
	af := os.NewFile(AgentFD, "agent")
	conn, err := net.FileConn(af)
	af.Close()
	if err != nil {
		return fmt.Errorf("the socket to the agent (fd %d): %w", AgentFD, err)
	}
	var lis Listeners
	fd := uintptr(ListenersFD)
	for _, l := range []struct {
		want bool
		to   *net.Listener
		name string
	}{{cfg.Plain, &lis.Plain, "plain"}, {cfg.TLSCert != "", &lis.TLS, "TLS"}} {
		if !l.want {
			continue
		}
		f := os.NewFile(fd, l.name)
		*l.to, err = net.FileListener(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("the channels' %s listener (fd %d): %w", l.name, fd, err)
		}
		fd++
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	return Run(ctx, cfg, lis, conn)
}

// Listeners are the sockets a worker serves channels on.
type Listeners struct {
	Plain net.Listener // plain HTTP; nil for none
	TLS   net.Listener // HTTPS with Config.TLSCert and TLSKey; nil for none
}

// MaxMessage bounds one message between an agent and a worker, both ways:
// a snapshot with every package's files, an invocation's input or output,
// a batch of events.
const MaxMessage = 1 << 30

// threadHeadroom is address space a worker may map beyond its cap for the
// threads it starts later: with cgo, each one reserves a C stack (8 MiB by
// default) that holds no service data.
const threadHeadroom = 64 * 8 << 20

// capMemory bounds what the process may map to what it maps now plus
// limit (and room for threads), so that a service that allocates past its
// cap ends this worker ("fatal error: out of memory") rather than the
// host; the collector works harder as the heap nears the cap.
func capMemory(limit int64) error {
	if limit <= 0 {
		return nil
	}
	debug.SetMemoryLimit(limit)
	// Goroutine stacks count against the cap too; a recursion without end
	// stops at a quarter of it rather than at Go's 1 GB.
	debug.SetMaxStack(int(min(max(limit/4, 16<<20), 1<<30)))
	base, err := mappedBytes()
	if err != nil {
		return err
	}
	lim := uint64(base + limit + threadHeadroom)
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: lim, Max: lim}); err != nil {
		return fmt.Errorf("cap the worker's memory at %d bytes: %w", limit, err)
	}
	return nil
}

// DrainTimeout bounds what a stopping worker does after its requests: its
// invocations' end and its last batch of events and statistics.
const DrainTimeout = 3 * time.Second

// statsEvery is how often a worker sends its statistics to its agent: a
// worker that crashes loses at most this much of them.
const statsEvery = time.Second

// Run serves the agent on conn and, once asked, the channels on lis, until
// ctx ends or the agent hangs up; then it stops gracefully.
func Run(ctx context.Context, cfg Config, lis Listeners, conn net.Conn) error {
	debug.SetGCPercent(cfg.GCPercent)
	fwd := newForwarder(cfg.SlowThreshold, cfg.Metrics)
	log := slog.New(&logHandler{f: fwd, level: cfg.LogLevel})
	if cfg.ProfileDir != "" {
		stop, err := startProfiles(cfg.ProfileDir, cfg.Index)
		if err != nil {
			return err
		}
		// Deferred first, so it runs last: the profiles cover the drain.
		defer func() {
			if err := stop(); err != nil {
				log.Warn("the worker's profiles are incomplete", "err", err)
			}
		}()
	}
	eng := engine.New(log, cfg.InvokeTimeout)
	eng.MaxPackageBytes = cfg.MaxPackageBytes
	fwd.slowAfter = eng.SlowAfter
	// Statistics are counted here and sent in buckets: sending every
	// request's event to the agent would cost more than serving it.
	var observer observe.Observer = fwd
	var rec *stats.Recorder
	if cfg.Stats {
		rec = stats.NewRecorder()
		observer = observe.Observers{rec, fwd}
		go func() {
			t := time.NewTicker(statsEvery)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case now := <-t.C:
					fwd.addStats(rec.Take(now))
				}
			}
		}()
	}
	eng.Observer = observer
	handler := &channel.Handler{
		Current:      eng.Route,
		MaxBodyBytes: cfg.MaxBodyBytes,
		NewCID:       engine.NewCID,
		Log:          log.With("component", "channel"),
		Observer:     observer,
	}
	w := &server{eng: eng, fwd: fwd, log: log, served: make(chan error, 2)}
	guard := connguard.New(connguard.Limits{
		Header: min(10*time.Second, cfg.HTTPReadTimeout),
		Body:   cfg.HTTPReadTimeout,
		Idle:   2 * time.Minute,
	})
	gctx, stopGuard := context.WithCancel(context.Background()) // also while draining
	defer stopGuard()
	go guard.Run(gctx)
	if lis.Plain != nil {
		w.servers = append(w.servers, served{newServer(guard, handler), guard.Listener(lis.Plain)})
	}
	if lis.TLS != nil {
		certs, err := certfile.New(cfg.TLSCert, cfg.TLSKey, log.With("component", "tls"))
		if err != nil {
			return err
		}
		srv := newServer(guard, handler)
		srv.TLSConfig = &tls.Config{
			GetCertificate: certs.GetCertificate,
			MinVersion:     tls.VersionTLS12,
			// Ask for a client certificate, but neither require one nor
			// check it here: each channel's security definition has its
			// own CAs, and checks the certificate (agent/security).
			ClientAuth: tls.RequestClientCert,
		}
		w.servers = append(w.servers, served{srv, tls.NewListener(guard.Listener(lis.TLS), srv.TLSConfig)})
	}
	gs := grpc.NewServer(grpc.MaxRecvMsgSize(MaxMessage), grpc.MaxSendMsgSize(MaxMessage))
	workerv1.RegisterWorkerServiceServer(gs, w)
	hungUp := make(chan error, 1)
	go func() { hungUp <- gs.Serve(&oneConn{conn: conn, closed: make(chan struct{})}) }()

	var err error
	select {
	case <-ctx.Done():
	case err = <-hungUp: // the agent is gone: nobody to serve for
	case err = <-w.served:
	}
	// Stop taking requests and let those in flight end, then let the
	// agent read what they reported.
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	for _, sv := range w.servers {
		if serr := sv.srv.Shutdown(sctx); serr != nil {
			log.Warn("requests still running when the worker stopped", "err", serr)
		}
	}
	dctx, dcancel := context.WithTimeout(context.Background(), DrainTimeout)
	defer dcancel()
	ended := make(chan struct{})
	go func() {
		w.running.Lock() // the invocations under way have ended; no more start
		close(ended)
	}()
	select {
	case <-ended:
	case <-dctx.Done():
		log.Warn("invocations still running when the worker stopped")
	}
	if rec != nil {
		fwd.addStats(rec.TakeAll())
	}
	fwd.close()
	stopped := make(chan struct{})
	go func() { gs.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-dctx.Done():
		gs.Stop()
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// newServer is an HTTP server of the channels. Its connections' reads
// are bounded by guard rather than by the server's timeouts, which would
// cost a timer operation three times a request: guard cuts a client that
// sends its headers or body slowly, holding a connection and a goroutine,
// or idles too long. It bounds only the reading: once the channel has read
// a request's body, a long service, its late 504 and the answer are not
// cut by it.
func newServer(guard *connguard.Guard, h http.Handler) *http.Server {
	srv := &http.Server{Handler: h}
	guard.Watch(srv)
	return srv
}

// served is an HTTP server and the listener it serves.
type served struct {
	srv *http.Server
	lis net.Listener
}

// server answers the agent.
type server struct {
	workerv1.UnimplementedWorkerServiceServer
	eng     *engine.Engine
	fwd     *forwarder
	servers []served
	log     *slog.Logger
	served  chan error // a Serve's end
	// running is read-locked by each invocation; the worker locks it when
	// it stops, which waits for them and refuses new ones.
	running sync.RWMutex

	mu       sync.Mutex
	prepared *engine.Prepared
	serving  bool
}

func (w *server) Prepare(ctx context.Context, req *workerv1.PrepareRequest) (*workerv1.PrepareResponse, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.prepared != nil {
		return nil, status.Error(codes.FailedPrecondition, "a snapshot is prepared already: commit or abort it first")
	}
	p, errs := w.eng.Prepare(ctx, req.GetDesired())
	if len(errs) > 0 {
		return &workerv1.PrepareResponse{Errors: errs}, nil
	}
	if err := ctx.Err(); err != nil {
		// The agent gave up on this Prepare: it will not commit it.
		p.Abort()
		return nil, status.FromContextError(err).Err()
	}
	w.prepared = p
	out := &workerv1.PrepareResponse{Hash: p.State().Hash, SlowAfterMs: map[string]int64{}}
	for name, d := range p.State().SlowAfter() {
		out.SlowAfterMs[name] = d.Milliseconds()
	}
	return out, nil
}

func (w *server) Commit(context.Context, *workerv1.CommitRequest) (*workerv1.CommitResponse, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.prepared == nil {
		return nil, status.Error(codes.FailedPrecondition, "no snapshot is prepared")
	}
	w.prepared.Commit()
	w.prepared = nil
	return &workerv1.CommitResponse{}, nil
}

func (w *server) Abort(context.Context, *workerv1.AbortRequest) (*workerv1.AbortResponse, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.prepared != nil {
		w.prepared.Abort()
		w.prepared = nil
	}
	return &workerv1.AbortResponse{}, nil
}

func (w *server) Serve(context.Context, *workerv1.ServeRequest) (*workerv1.ServeResponse, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.serving {
		w.serving = true
		for _, sv := range w.servers {
			go func() { w.served <- sv.srv.Serve(sv.lis) }()
		}
	}
	return &workerv1.ServeResponse{}, nil
}

func (w *server) Invoke(ctx context.Context, req *workerv1.InvokeRequest) (*workerv1.InvokeResponse, error) {
	if !w.running.TryRLock() {
		return nil, status.Error(codes.Unavailable, "the worker is stopping")
	}
	defer w.running.RUnlock()
	r := sdk.Request{CID: req.GetCid(), Method: req.GetMethod(), Header: HeaderOf(req.GetHeader())}
	out := w.eng.Invoke(ctx, req.GetService(), r, req.GetInput(), time.Duration(req.GetTimeoutMs())*time.Millisecond)
	return &workerv1.InvokeResponse{
		Cid: out.CID, Status: int32(out.Status), Output: out.Output, Error: out.Error,
		Header: HeaderValues(out.Header), ContentType: out.ContentType, DurationNs: int64(out.Duration),
	}, nil
}

func (w *server) Ping(ctx context.Context, req *workerv1.PingRequest) (*workerv1.PingResponse, error) {
	addr, st, latency, err := w.eng.Ping(ctx, req.GetConnection())
	out := &workerv1.PingResponse{Address: addr, Status: int32(st), LatencyNs: int64(latency)}
	if err != nil {
		out.Error = err.Error()
	}
	return out, nil
}

func (w *server) Inventory(context.Context, *workerv1.InventoryRequest) (*workerv1.InventoryResponse, error) {
	return &workerv1.InventoryResponse{Inventory: w.eng.Inventory()}, nil
}

func (w *server) SetTailing(_ context.Context, req *workerv1.SetTailingRequest) (*workerv1.SetTailingResponse, error) {
	w.fwd.tailing.Store(req.GetTailing())
	return &workerv1.SetTailingResponse{}, nil
}

func (w *server) Events(_ *workerv1.EventsRequest, stream grpc.ServerStreamingServer[workerv1.EventsResponse]) error {
	return w.fwd.send(stream.Context(), stream.Send)
}

// HeaderValues turns an HTTP header into its wire form.
func HeaderValues(h http.Header) map[string]*workerv1.HeaderValues {
	if len(h) == 0 {
		return nil
	}
	out := make(map[string]*workerv1.HeaderValues, len(h))
	for k, v := range h {
		out[k] = &workerv1.HeaderValues{Values: v}
	}
	return out
}

// HeaderOf turns a header's wire form back into an HTTP header.
func HeaderOf(m map[string]*workerv1.HeaderValues) http.Header {
	if len(m) == 0 {
		return nil
	}
	out := make(http.Header, len(m))
	for k, v := range m {
		out[k] = v.GetValues()
	}
	return out
}

// oneConn is a listener that yields one connection, the socket pair's end,
// then blocks until closed: the agent connects to its worker exactly once.
type oneConn struct {
	mu     sync.Mutex
	conn   net.Conn
	closed chan struct{}
	once   sync.Once
}

func (l *oneConn) Accept() (net.Conn, error) {
	l.mu.Lock()
	c := l.conn
	l.conn = nil
	l.mu.Unlock()
	if c != nil {
		return &hangUp{Conn: c, l: l}, nil
	}
	<-l.closed
	return nil, net.ErrClosed
}

func (l *oneConn) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *oneConn) Addr() net.Addr { return pairAddr{} }

// hangUp closes its listener when the connection closes, so that Serve
// returns when the agent hangs up.
type hangUp struct {
	net.Conn
	l *oneConn
}

func (c *hangUp) Close() error {
	err := c.Conn.Close()
	c.l.Close()
	return err
}

type pairAddr struct{}

func (pairAddr) Network() string { return "unix" }
func (pairAddr) String() string  { return "agent" }
