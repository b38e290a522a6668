// Package controlclient is the agent's side of the agent protocol: it dials
// the control plane, says hello, applies each snapshot and answers ACK or
// NACK, runs the control plane's commands, and reconnects with jittered
// backoff whenever the connection drops. The agent keeps serving its last
// good state all the while. It also keeps that state on disk, and tells
// the control plane when it cannot (see persister).
package controlclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/weft-dev/weft/agent/channel"
	"github.com/weft-dev/weft/agent/cpdial"
	"github.com/weft-dev/weft/agent/engine"
	"github.com/weft-dev/weft/agent/recent"
	"github.com/weft-dev/weft/agent/sdk"
	"github.com/weft-dev/weft/agent/shared/snapshot"
	"github.com/weft-dev/weft/agent/state"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// Engine is what the client drives.
type Engine interface {
	// Apply serves snap and returns it with its hash, or refuses it.
	Apply(ctx context.Context, snap *agentv1.Desired) (*agentv1.Desired, []*agentv1.ObjectError)
	// Applied is the snapshot served now, nil for none.
	Applied() *agentv1.Desired
	HeldHashes() []string
	Inventory() *agentv1.Inventory
	Invoke(ctx context.Context, service string, req sdk.Request, input []byte, timeout time.Duration) channel.Outcome
	Ping(ctx context.Context, connection string) (address string, status int, latency time.Duration, err error)
}

// Saver keeps the last good snapshot, the one the agent boots from.
type Saver interface {
	Save(s *agentv1.Desired) error
}

// Backups keeps the states that swaps replaced.
type Backups interface {
	KeepBackup(replaced *agentv1.Desired, replacedBy int64, at time.Time) (state.Backup, error)
	Backups() ([]state.Backup, error)
	BackupLimit() int
}

// Samples keeps the recent failed and slow invocations of services.
type Samples interface {
	List(service, which string, limit int) []*agentv1.Invocation
	SlowThreshold(service string) time.Duration
}

// Logs keeps the agent's recent log lines.
type Logs interface {
	Lines(since time.Time, limit int) (lines []string, truncated bool)
	RecentErrors() []string
}

// Tails streams the invocations that end on the agent to the control plane.
type Tails interface {
	Start(id string, f recent.Filter, send func(*agentv1.TailEvents) error) (stop func())
	Stop(id string) bool
}

var (
	_ Engine  = (*engine.Engine)(nil)
	_ Backups = (*state.Dir)(nil)
	_ Samples = (*recent.Samples)(nil)
	_ Logs    = (*recent.Logs)(nil)
	_ Tails   = (*recent.Tail)(nil)
)

// Identity is what the agent says about itself in its hello.
type Identity struct {
	ID           string
	Labels       map[string]string
	BuildVersion string
	HTTPAddress  string
	StartedAt    time.Time
}

// Client connects an agent to its control plane.
type Client struct {
	addr    string
	id      Identity
	engine  Engine
	log     *slog.Logger
	backoff *Backoff
	backups Backups                          // nil: none kept
	jobs    Jobs                             // nil: jobs are not run
	samples Samples                          // nil: none kept
	logs    Logs                             // nil: none kept
	tails   Tails                            // nil: no tails
	now     func() time.Time                 // when a backup's state was replaced
	creds   credentials.TransportCredentials // of the connection to the control plane
	api     atomic.Value                     // agentv1.AgentServiceClient once Run has a connection

	disk      *persister // writes the snapshot and backups, and retries them
	diskRetry *Backoff   // how often disk retries
}

// Option adjusts a Client.
type Option func(*Client)

// WithCredentials makes the client dial the control plane with creds, the
// agent's mutual TLS (identity.Identity.Credentials). Without it the
// client dials with no transport security, which only tests do.
func WithCredentials(creds credentials.TransportCredentials) Option {
	return func(c *Client) { c.creds = creds }
}

// WithBackups makes the client keep a backup in b of each state that a
// swap replaces, and answer the control plane's list_backups from it.
func WithBackups(b Backups) Option {
	return func(c *Client) { c.backups = b }
}

// WithSamples makes the client answer the control plane's samples command
// from s.
func WithSamples(s Samples) Option {
	return func(c *Client) { c.samples = s }
}

// WithLogs makes the client answer the control plane's logs command from
// l, and put its recent errors in the inventory.
func WithLogs(l Logs) Option {
	return func(c *Client) { c.logs = l }
}

// WithTails makes the client run the control plane's tails on t.
func WithTails(t Tails) Option {
	return func(c *Client) { c.tails = t }
}

// New returns a client for the control plane at addr.
func New(addr string, id Identity, e Engine, s Saver, b *Backoff, log *slog.Logger, opts ...Option) *Client {
	c := &Client{addr: addr, id: id, engine: e, backoff: b, log: log.With("component", "controlclient"), now: time.Now,
		creds: insecure.NewCredentials()}
	for _, o := range opts {
		o(c)
	}
	c.disk = newPersister(s, c.log, func() time.Time { return c.now() })
	c.disk.backups = c.backups
	c.diskRetry = NewBackoff(persistRetryMin, persistRetryMax, nil)
	return c
}

// maxMessageBytes bounds one gRPC message: a snapshot carries source files.
const maxMessageBytes = 64 << 20

// unservedLimit is how many sessions in a row a replica may answer with
// Unavailable, while connected, before the agent tries the next one: a
// replica whose database is out of its reach answers, and cannot serve.
const unservedLimit = 3

// Run keeps the agent connected until ctx ends.
func (c *Client) Run(ctx context.Context) error {
	// Writes to the state directory are retried with or without a
	// control plane: a restart while it is away serves what is on disk.
	retryCtx, stopRetry := context.WithCancel(ctx)
	retried := make(chan struct{})
	go func() {
		defer close(retried)
		c.disk.retry(retryCtx, c.diskRetry)
	}()
	defer func() {
		stopRetry()
		<-retried
	}()
	for addrs := c.addr; ; addrs = cpdial.Rotate(addrs) {
		if err := c.runOn(ctx, addrs); err != nil || ctx.Err() != nil {
			return err
		}
	}
}

// runOn keeps the agent connected through one connection to the replicas
// addrs names, until ctx ends or, with several replicas, the one it is
// connected to answers but cannot serve: then it returns nil, for the
// next to be tried first.
func (c *Client) runOn(ctx context.Context, addrs string) error {
	conn, err := cpdial.Dial(addrs, c.backoff.max,
		grpc.WithTransportCredentials(c.creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessageBytes), grpc.MaxCallSendMsgSize(maxMessageBytes)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}),
	)
	if err != nil {
		return fmt.Errorf("control plane %s: %w", addrs, err)
	}
	defer conn.Close()
	api := agentv1.NewAgentServiceClient(conn)
	c.api.Store(api)
	unserved := 0
	for {
		synced, err := c.session(ctx, api)
		if ctx.Err() != nil {
			return nil
		}
		if synced {
			c.backoff.Reset()
		}
		if status.Code(err) == codes.Unavailable && conn.GetState() == connectivity.Ready {
			unserved++
		} else {
			unserved = 0
		}
		if unserved >= unservedLimit && cpdial.Rotate(addrs) != addrs {
			c.log.Warn("the control plane replica answers but cannot serve; trying the next", "addr", addrs, "err", err)
			return nil
		}
		wait := c.backoff.Next()
		if refused(err) {
			c.log.Error("the control plane refused the agent; serving the last good state and retrying", "addr", c.addr,
				"code", status.Code(err), "reason", status.Convert(err).Message(), "retry_in", wait.Round(time.Millisecond))
		} else {
			c.log.Warn("lost the control plane; serving the last good state and retrying", "addr", c.addr, "err", err, "retry_in", wait.Round(time.Millisecond))
		}
		if err := c.awaitConnection(ctx, conn, wait); err != nil {
			return nil
		}
	}
}

// awaitConnection waits wait before the next session. When the connection
// is down it waits only until the connection is up again: a lost control
// plane is met again as soon as the connection reaches one (the same
// replica back, or another), not a backoff later.
func (c *Client) awaitConnection(ctx context.Context, conn *grpc.ClientConn, wait time.Duration) error {
	s := conn.GetState()
	if s == connectivity.Ready {
		return c.backoff.Sleep(ctx, wait) // connected, and yet refused or failed
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	conn.Connect()
	for ; s != connectivity.Ready; s = conn.GetState() {
		if !conn.WaitForStateChange(wctx, s) {
			break
		}
	}
	return ctx.Err()
}

// refused reports whether err is the control plane refusing the agent: no
// valid certificate, or a revoked one, or one for another id.
func refused(err error) bool {
	code := status.Code(err)
	return code == codes.Unauthenticated || code == codes.PermissionDenied
}

// Renew asks the control plane for a new certificate for the agent, over
// the client's connection; it fails before Run has one. The agent's
// identity.Identity renews through it.
func (c *Client) Renew(ctx context.Context, req *agentv1.RenewRequest) (*agentv1.RenewResponse, error) {
	api, _ := c.api.Load().(agentv1.AgentServiceClient)
	if api == nil {
		return nil, errNotConnected
	}
	return api.Renew(ctx, req)
}

// session runs one Sync stream. It reports whether the stream got as far as
// a snapshot, which resets the backoff.
func (c *Client) session(ctx context.Context, api agentv1.AgentServiceClient) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := api.Sync(ctx)
	if err != nil {
		return false, err
	}
	hello := &agentv1.Hello{
		AgentId:         c.id.ID,
		Labels:          c.id.Labels,
		BuildVersion:    c.id.BuildVersion,
		ProtocolVersion: snapshot.ProtocolVersion,
		PackageHashes:   c.engine.HeldHashes(),
		HttpAddress:     c.id.HTTPAddress,
		Pid:             int64(os.Getpid()),
		StartedAtUnixMs: c.id.StartedAt.UnixMilli(),
	}
	if st := c.engine.Applied(); st != nil {
		hello.AppliedRevision, hello.AppliedHash = st.GetRevision(), st.GetHash()
	}
	if err := stream.Send(&agentv1.SyncRequest{Kind: &agentv1.SyncRequest_Hello{Hello: hello}}); err != nil {
		return false, recvError(stream, err)
	}
	// The control plane knows the agent once it has read the hello;
	// commands retries until then.
	go c.commands(ctx, api)
	msgs := make(chan *agentv1.SyncResponse)
	recvErr := make(chan error, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	synced := false
	var acked *agentv1.Ack // the last ACK sent on this stream: the state served
	for {
		var out *agentv1.SyncRequest
		select {
		case err := <-recvErr:
			return synced, err
		case <-c.disk.changed:
			// What is on disk changed: send the ACK of the state served
			// again, with the new reason, so the control plane shows it.
			reason := c.disk.Reason()
			if acked == nil || acked.GetNotPersisted() == reason {
				continue
			}
			out = &agentv1.SyncRequest{Kind: &agentv1.SyncRequest_Ack{Ack: &agentv1.Ack{
				Revision: acked.GetRevision(), Nonce: acked.GetNonce(), Hash: acked.GetHash(), NotPersisted: reason,
			}}}
		case m := <-msgs:
			snap := m.GetDesired()
			if snap == nil {
				continue
			}
			if !synced {
				synced = true
				c.log.Info("connected to the control plane", "addr", c.addr)
			}
			out = c.apply(ctx, snap)
		}
		if ack := out.GetAck(); ack != nil {
			acked = ack
		}
		if err := stream.Send(out); err != nil {
			// Send reports only io.EOF; the stream's real error comes to
			// the receiving goroutine, the stream's one reader.
			if errors.Is(err, io.EOF) {
				select {
				case rerr := <-recvErr:
					return synced, rerr
				case <-ctx.Done():
					return synced, ctx.Err()
				}
			}
			return synced, err
		}
	}
}

// apply applies one snapshot and returns the ACK or NACK to send.
func (c *Client) apply(ctx context.Context, snap *agentv1.Desired) *agentv1.SyncRequest {
	prev := c.engine.Applied() // only this client applies after boot
	errs := checkJobs(snap)
	var st *agentv1.Desired
	if len(errs) == 0 {
		st, errs = c.engine.Apply(ctx, snap)
	}
	if len(errs) > 0 {
		for _, e := range errs {
			c.log.Error("refused snapshot", "revision", snap.GetRevision(), "kind", e.GetKind(), "name", e.GetName(), "err", e.GetMessage())
		}
		return &agentv1.SyncRequest{Kind: &agentv1.SyncRequest_Nack{Nack: &agentv1.Nack{
			Revision: snap.GetRevision(), Nonce: snap.GetNonce(), Errors: errs,
		}}}
	}
	if c.jobs != nil {
		c.jobs.Set(snap.GetJobs())
	}
	// The swap is done and is ACKed whatever the disk says: serving is
	// what matters. A write that fails is retried, and its reason goes
	// with the ACK so that the fleet shows it.
	return &agentv1.SyncRequest{Kind: &agentv1.SyncRequest_Ack{Ack: &agentv1.Ack{
		Revision: snap.GetRevision(), Nonce: snap.GetNonce(), Hash: st.GetHash(), NotPersisted: c.disk.keep(prev, st),
	}}}
}

// recvError returns the stream's real error after a failed Send, which
// only ever reports io.EOF.
func recvError(stream grpc.ClientStream, err error) error {
	if errors.Is(err, io.EOF) {
		if rerr := stream.RecvMsg(new(agentv1.SyncResponse)); rerr != nil {
			return rerr
		}
	}
	return err
}

// commands serves the Commands stream while ctx lives, reopening it when
// it breaks.
func (c *Client) commands(ctx context.Context, api agentv1.AgentServiceClient) {
	b := NewBackoff(100*time.Millisecond, 5*time.Second, nil)
	for ctx.Err() == nil {
		err := c.commandSession(ctx, api)
		if ctx.Err() != nil {
			return
		}
		wait := b.Next()
		level := slog.LevelWarn
		switch {
		case status.Code(err) == codes.FailedPrecondition:
			level = slog.LevelDebug // the control plane has not read the hello yet
		case refused(err):
			level = slog.LevelError
		}
		c.log.Log(ctx, level, "commands stream broke; reopening", "err", err, "retry_in", wait.Round(time.Millisecond))
		if b.Sleep(ctx, wait) != nil {
			return
		}
	}
}

// commandSession serves one Commands stream: each command runs in its own
// goroutine and answers on the stream. The tails it started end with it.
func (c *Client) commandSession(ctx context.Context, api agentv1.AgentServiceClient) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := api.Commands(ctx)
	if err != nil {
		return err
	}
	if err := stream.Send(&agentv1.CommandsRequest{Kind: &agentv1.CommandsRequest_Open{Open: &agentv1.CommandsOpen{AgentId: c.id.ID}}}); err != nil {
		return recvError(stream, err)
	}
	out := &commandStream{stream: stream, live: map[string]*bool{}}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer out.endTails()
	for {
		m, err := stream.Recv()
		if err != nil {
			return err
		}
		cmd := m.GetCommand()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if tc := cmd.GetTail(); tc != nil {
				c.tail(out, cmd.GetId(), tc)
				return
			}
			r := c.run(ctx, cmd)
			if err := out.send(&agentv1.CommandsRequest{Kind: &agentv1.CommandsRequest_Result{Result: r}}); err != nil {
				c.log.Warn("cannot answer a command", "id", cmd.GetId(), "err", err)
			}
		}()
	}
}

// commandStream is the agent's side of one Commands stream: results and
// tail batches share it, one message at a time.
type commandStream struct {
	stream agentv1.AgentService_CommandsClient
	sendMu sync.Mutex
	live   map[string]*bool // with sendMu: whether each tail started here may still send

	tailsMu sync.Mutex        // after sendMu when both are held
	ended   bool              // the stream ended: start no more tails
	stops   map[string]func() // of the tails started on the stream and running, by tail id
}

// send writes m on the stream.
func (s *commandStream) send(m *agentv1.CommandsRequest) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	return s.stream.Send(m)
}

// silence keeps the tail id started on the stream from sending again. Call
// it with sendMu held.
func (s *commandStream) silence(id string) {
	if live := s.live[id]; live != nil {
		*live = false
		delete(s.live, id)
	}
}

// endTails ends the tails started on the stream, and any started later.
func (s *commandStream) endTails() {
	s.tailsMu.Lock()
	s.ended = true
	stops := s.stops
	s.stops = nil
	s.tailsMu.Unlock()
	for _, stop := range stops {
		stop()
	}
}

// errTailStopped ends a tail whose batch lost the race with its stop.
var errTailStopped = errors.New("the tail was stopped")

// tail starts or stops a tail and answers the command. The answer to a
// start goes out before the tail's first batch, and the answer to a stop
// after its last.
func (c *Client) tail(s *commandStream, id string, tc *agentv1.TailCommand) {
	r := &agentv1.CommandResult{Id: id}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	tailID := tc.GetTailId()
	switch {
	case c.tails == nil:
		r.Error = "this agent runs no tails"
	case tailID == "":
		r.Error = "tail: tail_id is empty"
	case tc.GetStop():
		s.silence(tailID)
		c.tails.Stop(tailID)
		s.tailsMu.Lock()
		delete(s.stops, tailID)
		s.tailsMu.Unlock()
	default:
		s.tailsMu.Lock()
		if s.ended {
			s.tailsMu.Unlock()
			return // nobody to answer
		}
		s.silence(tailID) // the tail it replaces
		live := true
		s.live[tailID] = &live
		f := recent.Filter{Service: tc.GetService(), Channel: tc.GetChannel(), Samples: tc.GetSamples()}
		if s.stops == nil {
			s.stops = map[string]func(){}
		}
		s.stops[tailID] = c.tails.Start(tailID, f, func(ev *agentv1.TailEvents) error {
			s.sendMu.Lock()
			defer s.sendMu.Unlock()
			if !live {
				return errTailStopped
			}
			return s.stream.Send(&agentv1.CommandsRequest{Kind: &agentv1.CommandsRequest_Tail{Tail: ev}})
		})
		s.tailsMu.Unlock()
	}
	if err := s.stream.Send(&agentv1.CommandsRequest{Kind: &agentv1.CommandsRequest_Result{Result: r}}); err != nil {
		c.log.Warn("cannot answer a command", "id", id, "err", err)
	}
}

// run executes one command.
func (c *Client) run(ctx context.Context, cmd *agentv1.Command) *agentv1.CommandResult {
	r := &agentv1.CommandResult{Id: cmd.GetId()}
	switch k := cmd.GetKind().(type) {
	case *agentv1.Command_Invoke:
		inv := k.Invoke
		out := c.engine.Invoke(ctx, inv.GetService(), sdk.Request{Method: "INVOKE"}, inv.GetInput(), time.Duration(inv.GetTimeoutMs())*time.Millisecond)
		r.Kind = &agentv1.CommandResult_Invoke{Invoke: &agentv1.InvokeResult{
			Cid:        out.CID,
			Output:     out.Output,
			Status:     int32(out.Status),
			Error:      out.Error,
			DurationUs: out.Duration.Microseconds(),
		}}
	case *agentv1.Command_Inventory:
		r.Kind = &agentv1.CommandResult_Inventory{Inventory: c.inventory()}
	case *agentv1.Command_Samples:
		res, err := c.listSamples(k.Samples)
		if err != nil {
			r.Error = err.Error()
			break
		}
		r.Kind = &agentv1.CommandResult_Samples{Samples: res}
	case *agentv1.Command_Logs:
		res, err := c.logLines(k.Logs)
		if err != nil {
			r.Error = err.Error()
			break
		}
		r.Kind = &agentv1.CommandResult_Logs{Logs: res}
	case *agentv1.Command_Ping:
		addr, status, latency, err := c.engine.Ping(ctx, k.Ping.GetConnection())
		res := &agentv1.PingResult{Url: addr, Status: int32(status), LatencyUs: latency.Microseconds()}
		if err != nil {
			res.Error = err.Error()
		}
		r.Kind = &agentv1.CommandResult_Ping{Ping: res}
	case *agentv1.Command_RunJob:
		if c.jobs == nil {
			r.Error = "this agent runs no jobs"
			break
		}
		run, err := c.jobs.RunNow(ctx, k.RunJob.GetJob())
		if err != nil {
			r.Error = err.Error()
			break
		}
		r.Kind = &agentv1.CommandResult_JobRun{JobRun: run}
	case *agentv1.Command_ListBackups:
		list, err := c.listBackups()
		if err != nil {
			r.Error = err.Error()
			break
		}
		r.Kind = &agentv1.CommandResult_Backups{Backups: list}
	default:
		r.Error = fmt.Sprintf("this agent does not know the command %T; upgrade it", k)
	}
	return r
}

// inventory answers inventory: the engine's, with what the agent says
// about itself.
func (c *Client) inventory() *agentv1.Inventory {
	inv := c.engine.Inventory()
	inv.BuildVersion = c.id.BuildVersion
	inv.Labels = c.id.Labels
	if !c.id.StartedAt.IsZero() {
		inv.StartedAtUnixMs = c.id.StartedAt.UnixMilli()
	}
	if c.logs != nil {
		inv.RecentErrors = c.logs.RecentErrors()
	}
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	inv.SysBytes = int64(ms.Sys)
	return inv
}

// listSamples answers samples.
func (c *Client) listSamples(sc *agentv1.SamplesCommand) (*agentv1.Samples, error) {
	if c.samples == nil {
		return nil, errors.New("this agent keeps no samples")
	}
	if w := sc.GetWhich(); w != recent.Failed && w != recent.Slow {
		return nil, fmt.Errorf("samples: which %q: want %s or %s", w, recent.Failed, recent.Slow)
	}
	out := &agentv1.Samples{Invocations: c.samples.List(sc.GetService(), sc.GetWhich(), int(sc.GetLimit()))}
	if sc.GetService() != "" {
		out.SlowThresholdMs = c.samples.SlowThreshold(sc.GetService()).Milliseconds()
	}
	return out, nil
}

// logLines answers logs.
func (c *Client) logLines(lc *agentv1.LogsCommand) (*agentv1.LogLines, error) {
	if c.logs == nil {
		return nil, errors.New("this agent keeps no log lines")
	}
	var since time.Time
	if ms := lc.GetSinceUnixMs(); ms > 0 {
		since = time.UnixMilli(ms)
	}
	lines, truncated := c.logs.Lines(since, int(lc.GetLimit()))
	return &agentv1.LogLines{Lines: lines, Truncated: truncated}, nil
}

// listBackups answers list_backups. A damaged backup is listed without its
// packages (the answer has no field for its error) and logged.
func (c *Client) listBackups() (*agentv1.BackupList, error) {
	out := &agentv1.BackupList{}
	if c.backups == nil {
		return out, nil
	}
	out.Limit = int32(min(c.backups.BackupLimit(), math.MaxInt32))
	list, err := c.backups.Backups()
	if err != nil {
		return nil, err
	}
	for _, b := range list {
		if b.Err != nil {
			c.log.Warn("a backup is damaged", "backup", b.ID, "err", b.Err)
		}
		out.Backups = append(out.Backups, &agentv1.Backup{
			Id:                 b.ID,
			Revision:           b.Revision,
			ReplacedAtUnixMs:   b.ReplacedAt.UnixMilli(),
			Packages:           b.Packages,
			SizeBytes:          b.Size,
			ReplacedByRevision: b.ReplacedBy,
		})
	}
	return out, nil
}
