package supervisor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/weft-dev/weft/agent/observe"
	"github.com/weft-dev/weft/agent/worker"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
	workerv1 "github.com/weft-dev/weft/proto/weft/worker/v1"
)

// outputLines is how much of what a worker writes to stderr the agent
// keeps: the Go runtime's account of a crash starts with its cause.
const outputLines = 40

// proc is one running worker process.
type proc struct {
	index int
	pid   int
	cmd   *exec.Cmd
	conn  *grpc.ClientConn
	api   workerv1.WorkerServiceClient

	output []string      // the first lines it wrote to stderr
	ended  chan struct{} // closed once it has exited and output is whole
	// alive ends when the worker does: calls that wait for the worker to
	// be ready must not outlive it.
	alive context.Context
	died  context.CancelFunc
	state *os.ProcessState
	once  sync.Once
}

// start starts the worker of slot index. It is not up until boot.
func (p *Pool) start(index int) (*proc, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("a socket pair for a worker: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "worker"), os.NewFile(uintptr(fds[1]), "agent")
	defer theirs.Close()
	defer ours.Close()
	cfg := p.cfg.Worker
	cfg.Index = index
	cmd := exec.Command(p.cfg.Executable, cfg.Args()...)
	p.lisMu.RLock() // the listener stays open until the worker has it
	defer p.lisMu.RUnlock()
	if p.lisClosed {
		return nil, errors.New("the agent is stopping")
	}
	cmd.ExtraFiles = append([]*os.File{theirs}, p.lisFiles...) // see worker.AgentFD, ListenersFD
	cmd.Env = workerEnv()                                      // nothing of the agent's own: no secrets, no NOTIFY_SOCKET
	cmd.Dir = "/"
	// A group of its own: a terminal's Ctrl-C reaches the agent alone,
	// which stops its workers in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start a worker: %w", err)
	}
	w := &proc{index: index, pid: cmd.Process.Pid, cmd: cmd, ended: make(chan struct{})}
	w.alive, w.died = context.WithCancel(context.Background())
	go w.wait(stderr, p.cfg.Stderr)
	conn, err := net.FileConn(ours)
	if err != nil {
		w.kill()
		return nil, fmt.Errorf("the socket to a worker: %w", err)
	}
	dialed := false
	var mu sync.Mutex
	w.conn, err = grpc.NewClient("passthrough:///worker",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(worker.MaxMessage), grpc.MaxCallSendMsgSize(worker.MaxMessage)),
		grpc.WithContextDialer(func(context.Context, string) (net.Conn, error) {
			mu.Lock()
			defer mu.Unlock()
			if dialed {
				return nil, errors.New("the worker's socket was used and closed")
			}
			dialed = true
			return conn, nil
		}))
	if err != nil {
		conn.Close()
		w.kill()
		return nil, err
	}
	w.api = workerv1.NewWorkerServiceClient(w.conn)
	return w, nil
}

// workerEnv is a worker's environment: only what the Go runtime, time
// zones, name resolution and outgoing connections (proxies, CA files)
// read; nothing of the agent's own settings or secrets.
func workerEnv() []string {
	var env []string
	for _, k := range []string{
		"TZ", "TZDIR", "GOTRACEBACK", "GOMAXPROCS", "GODEBUG",
		"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
		"SSL_CERT_FILE", "SSL_CERT_DIR", "RES_OPTIONS", "LOCALDOMAIN", "HOSTALIASES",
	} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// wait keeps the first lines of the worker's stderr and copies every line
// to out (when not nil), then reaps it.
func (w *proc) wait(stderr io.Reader, out io.Writer) {
	s := bufio.NewScanner(stderr)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		if len(w.output) < outputLines {
			w.output = append(w.output, s.Text())
		}
		if out != nil {
			_, _ = io.WriteString(out, s.Text()+"\n")
		}
	}
	if out == nil {
		out = io.Discard
	}
	_, _ = io.Copy(out, stderr) // past a line too long to scan
	_ = w.cmd.Wait()
	w.state = w.cmd.ProcessState
	close(w.ended)
	w.died()
}

// kill ends the worker at once.
func (w *proc) kill() { _ = w.cmd.Process.Kill() }

// endOr says why the worker ended, waiting a moment for it, or err when it
// still runs.
func (w *proc) endOr(err error) string {
	select {
	case <-w.ended:
		return w.cause()
	case <-time.After(time.Second):
		return err.Error()
	}
}

// cause says why an ended worker ended: the Go runtime's "fatal error"
// line when it wrote one, else its signal or exit status.
func (w *proc) cause() string {
	for _, l := range w.output {
		if c, ok := strings.CutPrefix(l, "fatal error: "); ok {
			return c
		}
	}
	for _, l := range w.output {
		if strings.HasPrefix(l, "panic: ") {
			return l
		}
	}
	if w.state == nil {
		return "ended"
	}
	if ws, ok := w.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "killed by signal " + unix.SignalName(ws.Signal())
	}
	if len(w.output) > 0 {
		return fmt.Sprintf("exit status %d: %s", w.state.ExitCode(), w.output[len(w.output)-1])
	}
	return fmt.Sprintf("exit status %d", w.state.ExitCode())
}

// reason sorts a cause into a few classes, for metrics and statistics.
func reason(cause string) string {
	switch {
	case strings.Contains(cause, "out of memory"):
		return "memory"
	case strings.Contains(cause, "stack overflow"), strings.Contains(cause, "stack exceeds"):
		return "stack"
	case strings.HasPrefix(cause, "killed by"):
		return "signal"
	case strings.HasPrefix(cause, "exit status"), cause == "ended":
		return "exit"
	}
	return "fatal"
}

// keep runs a worker in s until ctx ends, replacing each that ends: at
// once when it had come up (a service crashed it), after a pause growing
// from 50 ms to 5 s while new workers fail to come up.
func (p *Pool) keep(ctx context.Context, s *slot) {
	var delay time.Duration // grows while workers fail to come up
	var ended time.Time     // when the slot's last worker ended
	for ctx.Err() == nil {
		started := time.Now()
		up := false
		w, err := p.start(s.index)
		if err != nil {
			p.log.Error("cannot start a worker process", "worker", s.index, "err", err)
		} else {
			up = p.run(ctx, s, w, started, ended)
			ended = time.Now()
		}
		if ctx.Err() != nil {
			return
		}
		if up {
			delay = 0
			continue
		}
		delay = min(max(2*delay, 50*time.Millisecond), 5*time.Second)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// run boots w in s, keeps it until it ends or ctx does, and reports an end
// that nobody asked for. It returns whether w came up.
func (p *Pool) run(ctx context.Context, s *slot, w *proc, started, replaces time.Time) bool {
	defer w.conn.Close()
	p.mu.Lock()
	s.pid, s.started = w.pid, started
	p.mu.Unlock()
	events := make(chan struct{})
	go func() {
		defer close(events)
		p.events(w)
	}()
	bootErr := p.boot(ctx, s, w)
	if bootErr == nil {
		if replaces.IsZero() {
			p.log.Debug("a worker process is up", "worker", s.index, "pid", w.pid, "took", time.Since(started).Round(time.Microsecond))
		} else {
			// The replacement's figure: from the end of one worker to the
			// next serving in its place.
			p.log.Info("a worker process replaced the one that ended", "worker", s.index, "pid", w.pid, "took", time.Since(started).Round(time.Microsecond),
				"since_end", time.Since(replaces).Round(time.Microsecond))
		}
		select {
		case <-w.ended:
		case <-ctx.Done():
		}
	} else {
		w.kill()
	}
	p.mu.Lock()
	s.w = nil
	p.notify()
	p.mu.Unlock()
	if ctx.Err() != nil {
		p.stop(w)
		<-events
		return bootErr == nil
	}
	<-w.ended
	<-events
	cause := w.cause()
	if bootErr != nil {
		cause += " (it did not come up: " + bootErr.Error() + ")"
	}
	p.mu.Lock()
	s.restarts++
	s.lastExit = cause
	s.pid = 0
	p.mu.Unlock()
	p.log.Error("a worker process ended; starting another", "worker", s.index, "pid", w.pid, "cause", cause,
		"lived", time.Since(started).Round(time.Millisecond), "output", strings.Join(w.output[:min(len(w.output), 12)], "\n"))
	if p.cfg.Exits != nil {
		observe.Emit(p.cfg.Exits, &observe.Event{Kind: observe.KindWorker, Name: reason(cause), Failed: true, Error: cause, End: time.Now(), Duration: time.Since(started)})
	}
	return bootErr == nil
}

// boot gives a started worker the served snapshot, starts it serving when
// the pool does, and puts it up.
func (p *Pool) boot(ctx context.Context, s *slot, w *proc) error {
	p.applyMu.Lock()
	defer p.applyMu.Unlock()
	bctx, cancel := context.WithTimeout(ctx, bootTimeout)
	defer cancel()
	stop := context.AfterFunc(w.alive, cancel)
	defer stop()
	if snap := p.applied.Load(); snap != nil {
		resp, err := w.api.Prepare(bctx, &workerv1.PrepareRequest{Desired: snap})
		if err != nil {
			return fmt.Errorf("load the served snapshot: %w", err)
		}
		if errs := resp.GetErrors(); len(errs) > 0 {
			return fmt.Errorf("cannot load the served snapshot: %s %q: %s", errs[0].GetKind(), errs[0].GetName(), errs[0].GetMessage())
		}
		if _, err := w.api.Commit(bctx, &workerv1.CommitRequest{}); err != nil {
			return fmt.Errorf("serve the snapshot: %w", err)
		}
	}
	tailing := p.tailing.Load()
	if _, err := w.api.SetTailing(bctx, &workerv1.SetTailingRequest{Tailing: tailing}); err != nil {
		return fmt.Errorf("reach the worker: %w", err)
	}
	if p.serving.Load() {
		if _, err := w.api.Serve(bctx, &workerv1.ServeRequest{}); err != nil {
			return fmt.Errorf("serve channels: %w", err)
		}
	}
	p.mu.Lock()
	s.w = w
	p.notify()
	p.mu.Unlock()
	if p.tailing.Load() != tailing {
		// A tail started or ended while the worker booted; SetTailing
		// did not know it yet.
		p.tellTailing(w)
	}
	return nil
}

// bootTimeout bounds a new worker's boot: loading every package of the
// served snapshot, which the other workers loaded already.
const bootTimeout = 5 * time.Minute

// stop ends w gracefully: SIGTERM, then SIGKILL after the workers'
// shutdown timeout and a second.
func (p *Pool) stop(w *proc) {
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.ended:
	case <-time.After(p.cfg.Worker.ShutdownTimeout + worker.DrainTimeout + time.Second):
		p.log.Warn("a worker did not stop in time; killing it", "worker", w.index, "pid", w.pid)
		w.kill()
		<-w.ended
	}
}

// events hands w's events to the observer and its records to the log,
// until w ends.
func (p *Pool) events(w *proc) {
	stream, err := w.api.Events(context.Background(), &workerv1.EventsRequest{})
	if err != nil {
		return
	}
	log := p.cfg.Log.With("worker", w.index)
	for {
		b, err := stream.Recv()
		if err != nil {
			select {
			case <-w.ended:
			default:
				if errors.Is(err, io.EOF) {
					// The worker ended the stream itself, having sent what
					// it held: it is stopping, and its exit is seen when
					// it comes. Killing it now would cut its last steps.
					return
				}
				// Its events, logs and statistics would be lost from
				// now on: replace it.
				p.log.Error("lost the stream of a worker's events; replacing the worker", "worker", w.index, "pid", w.pid, "err", err)
				w.kill()
			}
			return
		}
		if n := b.GetDropped(); n > 0 {
			p.log.Warn("a worker dropped events and log records the agent read too slowly", "worker", w.index, "dropped", n)
		}
		for _, r := range b.GetLogs() {
			attrs := make([]slog.Attr, 0, len(r.GetAttrs()))
			for _, a := range r.GetAttrs() {
				attrs = append(attrs, slog.String(a.GetKey(), a.GetValue()))
			}
			log.LogAttrs(context.Background(), slog.Level(r.GetLevel()), r.GetMessage(), attrs...)
		}
		if p.cfg.Stats != nil && len(b.GetStats()) > 0 {
			p.cfg.Stats(b.GetStats())
		}
		if p.cfg.Observer == nil {
			continue
		}
		for _, e := range b.GetEvents() {
			observe.Emit(p.cfg.Observer, &observe.Event{
				Kind: e.GetKind(), Origin: e.GetOrigin(), Name: e.GetName(), Service: e.GetService(), Channel: e.GetChannel(), Job: e.GetJob(),
				CID: e.GetCid(), Status: int(e.GetStatus()), Failed: e.GetFailed(), Error: e.GetError(), Stack: e.GetStack(),
				Duration: time.Duration(e.GetDurationNs()), End: time.Unix(0, e.GetEndUnixNs()), BytesIn: e.GetBytesIn(), BytesOut: e.GetBytesOut(),
				Input: e.GetInput(), Output: e.GetOutput(),
			})
		}
	}
}

// Inventory says what the workers run: the packages (see mergePackages),
// each worker, and the goroutines and heap of the agent and its workers
// together.
func (p *Pool) Inventory() *agentv1.Inventory {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	inv := &agentv1.Inventory{Goroutines: int64(runtime.NumGoroutine()), HeapBytes: int64(ms.HeapAlloc), SysBytes: int64(ms.Sys), AppliedRevision: p.applied.Load().GetRevision()}
	p.mu.Lock()
	type entry struct {
		w  *proc
		wp *agentv1.WorkerProcess
	}
	var entries []entry
	for _, s := range p.slots {
		wp := &agentv1.WorkerProcess{Index: int32(s.index), Pid: int64(s.pid), Restarts: s.restarts, LastExit: s.lastExit, MemoryLimitBytes: p.cfg.Worker.MemoryLimit}
		if !s.started.IsZero() && s.pid != 0 {
			wp.StartedAtUnixMs = s.started.UnixMilli()
		}
		entries = append(entries, entry{s.w, wp})
		inv.Workers = append(inv.Workers, wp)
	}
	p.mu.Unlock()
	for _, e := range entries {
		if e.w == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := e.w.api.Inventory(ctx, &workerv1.InventoryRequest{})
		cancel()
		if err != nil {
			continue
		}
		wi := resp.GetInventory()
		e.wp.HeapBytes, e.wp.Goroutines = wi.GetHeapBytes(), wi.GetGoroutines()
		inv.Goroutines += wi.GetGoroutines()
		inv.HeapBytes += wi.GetHeapBytes()
		inv.SysBytes += wi.GetSysBytes()
		inv.Packages = mergePackages(inv.Packages, wi.GetPackages())
	}
	slices.SortFunc(inv.Packages, func(a, b *agentv1.LoadedPackage) int { return strings.Compare(a.GetName(), b.GetName()) })
	return inv
}

// mergePackages adds a worker's loaded packages to those of the workers
// before it. Each worker loads every package, so a package shows once,
// loaded when its newest load was (a runaway's package is loaded again
// on the worker it ran on), with the most memory any worker measured; one
// that only a later worker holds (a snapshot being committed) shows too.
func mergePackages(into, more []*agentv1.LoadedPackage) []*agentv1.LoadedPackage {
	for _, m := range more {
		i := slices.IndexFunc(into, func(p *agentv1.LoadedPackage) bool { return p.GetSha256() == m.GetSha256() })
		if i < 0 {
			into = append(into, m)
			continue
		}
		p := into[i]
		p.LoadedAtUnixMs = max(p.GetLoadedAtUnixMs(), m.GetLoadedAtUnixMs())
		p.MemoryBytes = max(p.GetMemoryBytes(), m.GetMemoryBytes())
	}
	return into
}
