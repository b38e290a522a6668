// Package supervisor runs an agent's services in worker processes and keeps
// them running: it starts the workers (see agent/worker), hands each the
// snapshot the agent serves, replaces one that ends, and speaks for all of
// them to the rest of the agent, as the engine the control client and the
// scheduler drive.
//
// The workers share the channels' listening socket, so a request crosses
// no process of the agent's but the worker that accepted it. A worker that
// dies (a stack overflow, a fatal runtime error, its memory cap) loses
// only the requests and invocations it had in flight; its slot gets a new
// worker at once, which loads the served snapshot before it takes
// requests.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weft-dev/weft/agent/channel"
	"github.com/weft-dev/weft/agent/engine"
	"github.com/weft-dev/weft/agent/observe"
	"github.com/weft-dev/weft/agent/sdk"
	"github.com/weft-dev/weft/agent/worker"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
	workerv1 "github.com/weft-dev/weft/proto/weft/worker/v1"
)

// Config is what a Pool needs.
type Config struct {
	// Workers is how many worker processes run.
	Workers int
	// Worker is what each worker is started with; the Pool sets Index.
	Worker worker.Config
	// Plain and TLS are the channels' listening sockets, which the
	// workers share: plain HTTP, and HTTPS with the certificate files of
	// Worker.TLSCert and TLSKey. Either may be nil, not both. Each must be
	// a *net.TCPListener or a *net.UnixListener.
	Plain, TLS net.Listener
	// Executable is the agent's binary, started as `Executable worker`;
	// empty for this process's own.
	Executable string
	// Log is the agent's log; the workers' records go to it too.
	Log *slog.Logger
	// Observer gets the events the workers send: every event when
	// Worker.Metrics is set, else only those for samples and tails (the
	// workers count their own statistics, see Stats).
	Observer observe.Observer
	// Exits gets one event of kind observe.KindWorker for each worker that
	// ends unasked.
	Exits observe.Observer
	// Stats gets the workers' statistics buckets, every second from each.
	Stats func([]*agentv1.StatsBucket)
	// Stderr gets what the workers write to their stderr, line by line:
	// the Go runtime's account of a crash, the race detector's reports.
	// Nil discards it.
	Stderr io.Writer
}

// Pool keeps an agent's worker processes running and speaks for them.
type Pool struct {
	cfg Config
	log *slog.Logger

	lisMu     sync.RWMutex // held to read while a worker starts; to write when closing
	lisFiles  []*os.File   // the listeners, dup'd for the workers, in the order worker.ListenersFD says
	lisClosed bool

	// applyMu orders Apply and the boot of a new worker: a worker either
	// boots with a snapshot, or is up in time for Apply to give it the
	// next one.
	applyMu sync.Mutex
	applied atomic.Pointer[agentv1.Desired] // served by every worker up; with files
	slow    atomic.Pointer[map[string]time.Duration]
	serving atomic.Bool // channels are answered: boot has ended
	tailing atomic.Bool

	mu      sync.Mutex
	slots   []*slot
	changed chan struct{} // closed when a worker comes up or goes
	next    atomic.Uint64 // round robin over the workers up
}

// slot is one place of a worker; its worker is replaced when it ends.
type slot struct {
	index    int
	w        *proc // the worker up, nil while one starts
	pid      int   // the worker's process, up or starting
	started  time.Time
	restarts int64
	lastExit string
}

// New returns a pool that runs nothing until Run.
func New(cfg Config) (*Pool, error) {
	if cfg.Workers < 1 {
		return nil, fmt.Errorf("--workers %d: at least one worker runs the services", cfg.Workers)
	}
	var files []*os.File
	for _, l := range []net.Listener{cfg.Plain, cfg.TLS} {
		if l == nil {
			continue
		}
		f, ok := l.(interface{ File() (*os.File, error) })
		if !ok {
			return nil, fmt.Errorf("the channels' listener %T cannot be shared with worker processes", l)
		}
		lf, err := f.File()
		if err != nil {
			return nil, fmt.Errorf("share the channels' listener: %w", err)
		}
		files = append(files, lf)
	}
	if len(files) == 0 {
		return nil, errors.New("no listener for the channels")
	}
	cfg.Worker.Plain = cfg.Plain != nil
	if cfg.TLS == nil {
		cfg.Worker.TLSCert, cfg.Worker.TLSKey = "", ""
	}
	if cfg.Executable == "" {
		// This process's own binary, even once an upgrade replaced the
		// file: a worker always speaks its agent's protocol.
		cfg.Executable = "/proc/self/exe"
	}
	p := &Pool{cfg: cfg, lisFiles: files, log: cfg.Log.With("component", "supervisor"), changed: make(chan struct{})}
	for i := range cfg.Workers {
		p.slots = append(p.slots, &slot{index: i + 1})
	}
	empty := map[string]time.Duration{}
	p.slow.Store(&empty)
	return p, nil
}

// Run keeps a worker in every slot until ctx ends, then stops them
// gracefully: each answers the requests it holds and sends what they
// reported, for at most the workers' shutdown timeout.
func (p *Pool) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, s := range p.slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.keep(ctx, s)
		}()
	}
	<-ctx.Done()
	// No new connections: the workers close their copies as they stop.
	for _, l := range []net.Listener{p.cfg.Plain, p.cfg.TLS} {
		if l != nil {
			l.Close()
		}
	}
	p.lisMu.Lock()
	for _, f := range p.lisFiles {
		f.Close()
	}
	p.lisClosed = true
	p.lisMu.Unlock()
	wg.Wait()
	return nil
}

// Serve makes the workers answer channel requests; until then connections
// wait in the listener's queue. The agent calls it once it has booted from
// the snapshot on disk, or found none.
func (p *Pool) Serve(ctx context.Context) {
	p.applyMu.Lock()
	defer p.applyMu.Unlock()
	p.serving.Store(true)
	ups, _ := p.up()
	for _, w := range ups {
		if _, err := w.api.Serve(ctx, &workerv1.ServeRequest{}); err != nil {
			p.log.Warn("a worker did not start serving; replacing it", "worker", w.index, "pid", w.pid, "err", err)
			w.kill()
		}
	}
}

// up returns the workers up now, and a channel closed when that changes.
func (p *Pool) up() ([]*proc, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*proc
	for _, s := range p.slots {
		if s.w != nil {
			out = append(out, s.w)
		}
	}
	return out, p.changed
}

// notify wakes whoever waits for a worker. Call it with p.mu held.
func (p *Pool) notify() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// pick returns a worker that is up, in turn, waiting for one until ctx
// ends.
func (p *Pool) pick(ctx context.Context) (*proc, error) {
	for {
		ups, changed := p.up()
		if len(ups) > 0 {
			return ups[p.next.Add(1)%uint64(len(ups))], nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no worker process is running: %w", ctx.Err())
		case <-changed:
		}
	}
}

// Applied returns the snapshot the workers serve, with its hash; nil for
// none.
func (p *Pool) Applied() *agentv1.Desired { return p.applied.Load() }

// HeldHashes returns the sha256 of every package served, so that the
// control plane can leave their files out of the next snapshot.
func (p *Pool) HeldHashes() []string {
	var out []string
	for _, pk := range p.applied.Load().GetPackages() {
		out = append(out, pk.GetSha256())
	}
	return out
}

// SlowAfter is the slow threshold service registered with (sdk.SlowAfter);
// 0 when it set none or is not deployed.
func (p *Pool) SlowAfter(service string) time.Duration { return (*p.slow.Load())[service] }

// noWorkerWait bounds how long Apply waits for a worker when none is up.
const noWorkerWait = time.Minute

// Apply has every worker up load snap, and serves it once all of them
// could: a snapshot is served by all workers or by none. It waits for a
// worker when none is up (one is being replaced), up to noWorkerWait.
func (p *Pool) Apply(ctx context.Context, snap *agentv1.Desired) (*agentv1.Desired, []*agentv1.ObjectError) {
	full := p.withFiles(snap)
	ctx, cancel := context.WithTimeout(ctx, noWorkerWait)
	defer cancel()
	for {
		p.applyMu.Lock()
		ws, changed := p.up()
		if len(ws) > 0 {
			defer p.applyMu.Unlock()
			// Once begun, the workers load it to the end whatever becomes
			// of the caller, so that none is left holding a prepared
			// snapshot; a worker that takes longer than a new worker's
			// boot may is replaced.
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bootTimeout)
			defer cancel()
			return p.applyOn(actx, ws, full)
		}
		p.applyMu.Unlock()
		select {
		case <-ctx.Done():
			return nil, []*agentv1.ObjectError{{Kind: "agent", Message: "no worker process came up to load the snapshot (see the agent's log): " + ctx.Err().Error()}}
		case <-changed:
		}
	}
}

// applyOn prepares full on ws and commits it on all of them, or on none.
// Call it with p.applyMu held.
func (p *Pool) applyOn(ctx context.Context, ws []*proc, full *agentv1.Desired) (*agentv1.Desired, []*agentv1.ObjectError) {
	type result struct {
		resp *workerv1.PrepareResponse
		err  error
	}
	results := make([]result, len(ws))
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := w.api.Prepare(ctx, &workerv1.PrepareRequest{Desired: full})
			results[i] = result{resp, err}
		}()
	}
	wg.Wait()
	var refused []*agentv1.ObjectError
	var prepared []*proc
	var hash string
	var slow map[string]int64
	var lost []string
	for i, r := range results {
		switch {
		case r.err != nil:
			// The worker ended while loading, or cannot be reached: it is
			// replaced, and boots with whatever is served then.
			ws[i].kill()
			lost = append(lost, fmt.Sprintf("worker %d: %s", ws[i].index, ws[i].endOr(r.err)))
		case len(r.resp.GetErrors()) > 0:
			if refused == nil {
				refused = r.resp.GetErrors()
			}
		default:
			prepared = append(prepared, ws[i])
			if hash == "" {
				hash, slow = r.resp.GetHash(), r.resp.GetSlowAfterMs()
			} else if r.resp.GetHash() != hash {
				refused = []*agentv1.ObjectError{{Kind: "agent", Message: fmt.Sprintf("the workers disagree on the snapshot's hash (%s, %s)", hash, r.resp.GetHash())}}
			}
		}
	}
	if refused == nil && len(prepared) == 0 {
		refused = []*agentv1.ObjectError{{Kind: "agent", Message: fmt.Sprintf("every worker process ended while loading the snapshot (%v); the previous one is served", lost)}}
	}
	if refused != nil {
		for _, w := range prepared {
			if _, err := w.api.Abort(context.WithoutCancel(ctx), &workerv1.AbortRequest{}); err != nil {
				p.log.Warn("a worker did not drop a refused snapshot; it is being replaced", "worker", w.index, "err", err)
				w.kill()
			}
		}
		return nil, refused
	}
	for _, l := range lost {
		p.log.Warn("a worker ended while loading a snapshot; it is replaced and loads the snapshot served", "detail", l)
	}
	for _, w := range prepared {
		if _, err := w.api.Commit(context.WithoutCancel(ctx), &workerv1.CommitRequest{}); err != nil {
			// Its replacement boots with the snapshot stored below.
			p.log.Warn("a worker did not serve a prepared snapshot; it is being replaced", "worker", w.index, "err", err)
			w.kill()
		}
	}
	applied := appliedOf(full, hash)
	p.applied.Store(applied)
	m := make(map[string]time.Duration, len(slow))
	for k, v := range slow {
		m[k] = time.Duration(v) * time.Millisecond
	}
	p.slow.Store(&m)
	return applied, nil
}

// appliedOf is the snapshot an engine serves of full, which withFiles
// made: the fields it keeps (no nonce), every package with its files, and
// hash.
func appliedOf(full *agentv1.Desired, hash string) *agentv1.Desired {
	return &agentv1.Desired{Revision: full.GetRevision(), Hash: hash, Packages: full.GetPackages(),
		Channels: full.GetChannels(), Security: full.GetSecurity(), Outgoing: full.GetOutgoing(), Jobs: full.GetJobs()}
}

// withFiles returns snap with the files of every package it leaves out
// that the pool serves: a worker that starts later holds none.
func (p *Pool) withFiles(snap *agentv1.Desired) *agentv1.Desired {
	cur := p.applied.Load()
	held := map[string]*adminv1.Package{}
	for _, pk := range cur.GetPackages() {
		held[pk.GetSha256()] = pk
	}
	out := &agentv1.Desired{Revision: snap.GetRevision(), Nonce: snap.GetNonce(), Hash: snap.GetHash(), Channels: snap.GetChannels(), Security: snap.GetSecurity(), Outgoing: snap.GetOutgoing(), Jobs: snap.GetJobs()}
	for _, pk := range snap.GetPackages() {
		if h := held[pk.GetSha256()]; len(pk.GetSources()) == 0 && h != nil {
			pk = &adminv1.Package{Name: pk.GetName(), Version: pk.GetVersion(), Sha256: pk.GetSha256(), Services: pk.GetServices(), Sources: h.GetSources()}
		}
		out.Packages = append(out.Packages, pk)
	}
	return out
}

// Invoke runs service on a worker (weftctl invoke, job runs). A worker
// that ends during the call fails it with 503.
func (p *Pool) Invoke(ctx context.Context, service string, req sdk.Request, input []byte, timeout time.Duration) channel.Outcome {
	if req.CID == "" {
		req.CID = engine.NewCID()
	}
	w, err := p.pick(ctx)
	if err != nil {
		return channel.Outcome{CID: req.CID, Status: 503, Error: err.Error()}
	}
	resp, err := w.api.Invoke(ctx, &workerv1.InvokeRequest{
		Service: service, Input: input, TimeoutMs: timeout.Milliseconds(), Cid: req.CID, Method: req.Method, Header: worker.HeaderValues(req.Header),
	})
	if err != nil {
		if ctx.Err() != nil {
			return channel.Outcome{CID: req.CID, Status: 504, Error: "the call was cancelled: " + ctx.Err().Error()}
		}
		return channel.Outcome{CID: req.CID, Status: 503, Error: fmt.Sprintf("the worker process running the call ended (%s); see the agent log", w.endOr(err))}
	}
	return channel.Outcome{
		CID: resp.GetCid(), Status: int(resp.GetStatus()), Output: resp.GetOutput(), Error: resp.GetError(),
		Header: worker.HeaderOf(resp.GetHeader()), ContentType: resp.GetContentType(), Duration: time.Duration(resp.GetDurationNs()),
	}
}

// Ping calls an outgoing connection's address from a worker.
func (p *Pool) Ping(ctx context.Context, connection string) (string, int, time.Duration, error) {
	w, err := p.pick(ctx)
	if err != nil {
		return "", 0, 0, err
	}
	resp, err := w.api.Ping(ctx, &workerv1.PingRequest{Connection: connection})
	if err != nil {
		return "", 0, 0, fmt.Errorf("the worker process ended during the ping: %s", w.endOr(err))
	}
	if resp.GetError() != "" {
		err = errors.New(resp.GetError())
	}
	return resp.GetAddress(), int(resp.GetStatus()), time.Duration(resp.GetLatencyNs()), err
}

// SetTailing tells the workers whether a live tail runs, so that their
// events carry request and response bodies only while one does. It does
// not wait for them.
func (p *Pool) SetTailing(on bool) {
	if p.tailing.Swap(on) == on {
		return
	}
	ups, _ := p.up()
	for _, w := range ups {
		go p.tellTailing(w)
	}
}

// tellTailing tells w whether a tail runs now.
func (p *Pool) tellTailing(w *proc) {
	ctx, cancel := context.WithTimeout(w.alive, 5*time.Second)
	defer cancel()
	if _, err := w.api.SetTailing(ctx, &workerv1.SetTailingRequest{Tailing: p.tailing.Load()}); err != nil {
		p.log.Debug("a worker missed a change of tails", "worker", w.index, "err", err)
	}
}
