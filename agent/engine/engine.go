// Package engine holds what an agent runs: the loaded packages, their
// services and the channel router, at one revision. Apply builds the next
// state beside the current one — each changed package in a new interpreter,
// unchanged ones reused — validates all of it, and swaps it in with one
// atomic store. Requests in flight finish on the state they started with;
// a refused snapshot leaves the current state serving untouched.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"reflect"
	"runtime/debug"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weft-dev/weft/agent/channel"
	"github.com/weft-dev/weft/agent/handler"
	"github.com/weft-dev/weft/agent/observe"
	"github.com/weft-dev/weft/agent/runtime"
	"github.com/weft-dev/weft/agent/scheduler"
	"github.com/weft-dev/weft/agent/sdk"
	"github.com/weft-dev/weft/agent/shared/snapshot"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// State is what an agent serves at one revision. It never changes once
// built.
type State struct {
	// Snapshot is the applied snapshot with every package's files.
	Snapshot *agentv1.Desired
	// Hash is the snapshot's content hash.
	Hash string

	packages map[string]*runtime.Package // by sha256
	loads    map[string]loadInfo         // by sha256
	services map[string]*handler.Service // by service name
	conns    *connections                // security definitions, outgoing connections
	router   *channel.Router
	inv      *stateInvoker // made once, not per request
	calls    atomic.Int64  // invocations running on this state
	// retired is set when a newer state replaced this one, before its
	// replaced interpreters wait for calls to end (see retire).
	retired atomic.Bool
}

// Revision returns the state's revision.
func (s *State) Revision() int64 { return s.Snapshot.GetRevision() }

// Engine runs an agent's services and channels.
type Engine struct {
	// MaxPackageBytes, when positive, refuses packages whose files are
	// larger in total: an edge host may have little memory to spare.
	MaxPackageBytes int64
	// Observer, when set, gets one event of every invocation (see
	// observe.KindService). Set it before the engine serves.
	Observer observe.Observer

	log            *slog.Logger
	serviceLog     *slog.Logger // base of the loggers services get
	defaultTimeout time.Duration

	cur     atomic.Pointer[State]
	applyMu sync.Mutex // one Apply at a time
	cache   *sdk.Cache // the agent's cache, shared by its services
	lives   lives      // goroutines of loaded packages
}

// New returns an engine that serves nothing until the first Apply. Calls
// whose channel sets no timeout get defaultTimeout.
func New(log *slog.Logger, defaultTimeout time.Duration) *Engine {
	return &Engine{log: log.With("component", "engine"), serviceLog: log.With("component", "service"), defaultTimeout: defaultTimeout, cache: sdk.NewCache(nil)}
}

// Current returns the state being served, or nil before the first Apply.
func (e *Engine) Current() *State { return e.cur.Load() }

// HeldHashes returns the sha256 of every package loaded now, so that the
// control plane can leave their files out of the next snapshot.
func (e *Engine) HeldHashes() []string {
	st := e.cur.Load()
	if st == nil {
		return nil
	}
	var out []string
	for _, p := range st.Snapshot.GetPackages() {
		out = append(out, p.GetSha256())
	}
	return out
}

// Apply loads, checks and swaps in snap. On success it returns the
// snapshot now served, with its hash; otherwise one error per object at
// fault, and the current state keeps serving. A package without files must
// be one the engine holds.
func (e *Engine) Apply(ctx context.Context, snap *agentv1.Desired) (*agentv1.Desired, []*agentv1.ObjectError) {
	p, errs := e.Prepare(ctx, snap)
	if len(errs) > 0 {
		return nil, errs
	}
	return p.Commit().Snapshot, nil
}

// Applied returns the snapshot served now, with its hash, or nil before the
// first Apply.
func (e *Engine) Applied() *agentv1.Desired {
	if st := e.cur.Load(); st != nil {
		return st.Snapshot
	}
	return nil
}

// Prepared is a state that Prepare built and checked, not yet served. Until
// its Commit or Abort, no other Prepare, Apply or runaway replacement runs
// on the engine: an agent with several workers prepares a snapshot on all
// of them before any serves it.
type Prepared struct {
	e              *Engine
	cur, next      *State
	loaded, reused int
	start          time.Time
	done           bool
}

// State returns the state Commit would serve.
func (p *Prepared) State() *State { return p.next }

// Prepare loads and checks snap beside the current state, as Apply does,
// and holds the result for Commit or Abort. On errors nothing is held.
func (e *Engine) Prepare(ctx context.Context, snap *agentv1.Desired) (*Prepared, []*agentv1.ObjectError) {
	e.applyMu.Lock()
	cur := e.cur.Load()
	start := time.Now()
	next := &State{
		Snapshot: &agentv1.Desired{Revision: snap.GetRevision(), Channels: snap.GetChannels(), Security: snap.GetSecurity(), Outgoing: snap.GetOutgoing(), Jobs: snap.GetJobs()},
		packages: make(map[string]*runtime.Package),
		loads:    make(map[string]loadInfo),
		services: make(map[string]*handler.Service),
	}
	var errs []*agentv1.ObjectError
	fail := func(kind, name, format string, args ...any) {
		errs = append(errs, &agentv1.ObjectError{Kind: kind, Name: name, Message: fmt.Sprintf(format, args...)})
	}
	loaded, reused := 0, 0
	owner := map[string]string{} // service -> package
	for _, p := range snap.GetPackages() {
		full, rt := e.held(cur, p.GetSha256())
		if len(p.GetSources()) > 0 {
			full = p
			if got := snapshot.PackageHash(p.GetSources()); got != p.GetSha256() {
				fail("package", p.GetName(), "files hash to %s, the snapshot says %s", got, p.GetSha256())
				continue
			}
		} else if full == nil {
			fail("package", p.GetName(), "the snapshot leaves out its files (sha256 %s) and this agent does not hold them", p.GetSha256())
			continue
		}
		if size := filesSize(full.GetSources()); e.MaxPackageBytes > 0 && size > e.MaxPackageBytes {
			fail("package", p.GetName(), "%d bytes of source; this agent takes at most %d (its --max-package-bytes)", size, e.MaxPackageBytes)
			continue
		}
		if rt == nil {
			src := sourceOf(full)
			var err error
			var info loadInfo
			info, rt, err = measureLoad(func() (*runtime.Package, error) { return runtime.Load(ctx, src) })
			if err != nil {
				fail("package", p.GetName(), "%v", err)
				continue
			}
			loaded++
			next.loads[p.GetSha256()] = info
		} else {
			reused++
			next.loads[p.GetSha256()] = cur.loads[p.GetSha256()]
		}
		if got, want := rt.ServiceNames(), sorted(p.GetServices()); !slices.Equal(got, want) {
			fail("package", p.GetName(), "registers services %v here, the control plane found %v", got, want)
			if cur == nil || cur.packages[p.GetSha256()] != rt {
				rt.Close() // loaded here and never served
			}
			continue
		}
		for name, svc := range rt.Services {
			if other, dup := owner[name]; dup {
				fail("package", p.GetName(), "service %q is also registered by package %q", name, other)
				continue
			}
			owner[name] = p.GetName()
			next.services[name] = svc
		}
		next.packages[p.GetSha256()] = rt
		next.Snapshot.Packages = append(next.Snapshot.Packages, &adminv1.Package{
			Name: p.GetName(), Version: p.GetVersion(), Sha256: p.GetSha256(), Services: p.GetServices(), Sources: full.GetSources(),
		})
	}
	var prevConns *connections
	if cur != nil {
		prevConns = cur.conns
	}
	next.conns = buildConnections(prevConns, snap, e.log, fail)
	for _, c := range snap.GetChannels() {
		if !c.GetActive() {
			continue
		}
		for _, svc := range channelServices(c) {
			if next.services[svc] == nil {
				fail("channel", c.GetName(), "service %q is not in the snapshot", svc)
			}
		}
		if sec := c.GetSecurity(); sec != "" && next.conns.verifiers[sec] == nil {
			fail("channel", c.GetName(), "security definition %q is not in the snapshot, or cannot verify inbound requests", sec)
		}
	}
	if len(errs) == 0 { // a router of channels already at fault would repeat their errors
		router, err := channel.NewRouter(snap.GetChannels(), next.conns.verifiers)
		if err != nil {
			fail("channel", "", "%v", err)
		}
		next.router = router
	}
	if len(errs) > 0 {
		next.conns.closeReplaced(prevConns)
		closeLoaded(cur, next)
		e.applyMu.Unlock()
		return nil, errs
	}
	next.Hash = snapshot.Hash(next.Snapshot)
	next.Snapshot.Hash = next.Hash
	next.inv = &stateInvoker{e, next}
	return &Prepared{e: e, cur: cur, next: next, loaded: loaded, reused: reused, start: start}, nil
}

// Commit serves the prepared state and returns it.
func (p *Prepared) Commit() *State {
	if p.done {
		panic("engine: Prepared committed or aborted twice")
	}
	p.done = true
	e, next := p.e, p.next
	defer e.applyMu.Unlock()
	e.cur.Store(next)
	var prevConns *connections
	if p.cur != nil {
		prevConns = p.cur.conns
	}
	prevConns.closeReplaced(next.conns)
	ended := e.endLives(next)
	if p.cur != nil {
		if replaced := replacedPackages(p.cur, next); len(replaced) > 0 {
			go e.retire(p.cur, replaced, ended)
		}
	}
	e.log.Info("applied snapshot", "revision", next.Revision(), "packages", len(next.packages), "loaded", p.loaded, "reused", p.reused,
		"services", len(next.services), "channels", len(next.Snapshot.GetChannels()), "took", time.Since(p.start).Round(time.Microsecond))
	return next
}

// Abort drops the prepared state; the current one keeps serving.
func (p *Prepared) Abort() {
	if p.done {
		return
	}
	p.done = true
	defer p.e.applyMu.Unlock()
	var prevConns *connections
	if p.cur != nil {
		prevConns = p.cur.conns
	}
	p.next.conns.closeReplaced(prevConns)
	closeLoaded(p.cur, p.next)
}

// replacedPackages returns the interpreters of old that next does not
// serve.
func replacedPackages(old, next *State) map[string]*runtime.Package {
	out := map[string]*runtime.Package{}
	for sha, rt := range old.packages {
		if next.packages[sha] != rt {
			out[sha] = rt
		}
	}
	return out
}

// retireEvery is how often retire looks whether a replaced state's calls
// have ended.
const retireEvery = 50 * time.Millisecond

// retireGrace is how long the goroutines of a replaced package have, once
// told to stop, before its interpreter is closed under them.
const retireGrace = 5 * time.Second

// retire closes the interpreters a Commit replaced once the calls that
// started on the old state have ended and the packages' goroutines have
// returned, or had retireGrace to: a goroutine that ignores its context
// (see sdk.Context.Go) is stopped by the close. A call held in compiled
// code past its deadline holds them open until it returns.
func (e *Engine) retire(old *State, replaced map[string]*runtime.Package, lives map[string]*life) {
	// retired first, calls after; invokeWith counts its call first and
	// reads retired after: a call that began on old is waited for, one
	// that comes later moves to the newer state (the two atomics order
	// so that one side sees the other).
	old.retired.Store(true)
	t := time.NewTicker(retireEvery)
	defer t.Stop()
	for old.calls.Load() > 0 {
		<-t.C
	}
	grace, cancel := context.WithTimeout(context.Background(), retireGrace) // one grace for all
	defer cancel()
	for sha, rt := range replaced {
		if l := lives[sha]; l != nil {
			done := make(chan struct{})
			go func() { l.wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-grace.Done():
				e.log.Warn("a goroutine of a replaced package did not return when told to; closing its interpreter", "sha256", sha)
			}
		}
		if rt.Close() {
			e.log.Info("closed the interpreter of a replaced package", "sha256", sha)
		}
	}
}

// closeLoaded closes the interpreters next loaded that cur does not hold:
// a refused or aborted state is never served.
func closeLoaded(cur, next *State) {
	for sha, rt := range next.packages {
		if cur == nil || cur.packages[sha] != rt {
			rt.Close()
		}
	}
}

// channelServices returns the services a channel calls: its own, when set,
// and those its SOAP actions route to.
func channelServices(c *adminv1.Channel) []string {
	var out []string
	if c.GetService() != "" {
		out = append(out, c.GetService())
	}
	for _, svc := range c.GetSoapActions() {
		out = append(out, svc)
	}
	return out
}

// held finds a loaded package by sha256 in st.
func (e *Engine) held(st *State, sha string) (*adminv1.Package, *runtime.Package) {
	if st == nil {
		return nil, nil
	}
	for _, p := range st.Snapshot.GetPackages() {
		if p.GetSha256() == sha {
			return p, st.packages[sha]
		}
	}
	return nil, nil
}

// Route returns the router and invoker of the current state, for the
// channel handler.
func (e *Engine) Route() (*channel.Router, channel.Invoker) {
	st := e.cur.Load()
	if st == nil {
		return nil, e
	}
	// The invoker runs the services of the state the router belongs to, so
	// a request routed and checked under one revision never runs the next
	// one's service.
	return st.router, st.inv
}

// stateInvoker runs the services of one state.
type stateInvoker struct {
	e  *Engine
	st *State
}

// Call runs a channel's service on the calling goroutine (see
// channel.Invoker).
func (s *stateInvoker) Call(ctx context.Context, service string, req sdk.Request, input []byte, timeout time.Duration, late channel.Late) (channel.Outcome, bool) {
	return s.e.invokeWith(ctx, s.st, service, req, input, timeout, observe.OriginChannel, late)
}

func (s *stateInvoker) InputType(service string) reflect.Type { return inputType(s.st, service) }

func (s *stateInvoker) OutputType(service string) reflect.Type { return outputType(s.st, service) }

var _ channel.OutputTyper = (*stateInvoker)(nil)

var _ channel.Invoker = (*Engine)(nil)

// Invoke runs service on the current state with input, under timeout (0
// means the agent's default). It never panics: a failure of any kind comes
// back as an Outcome with its status.
//
// The invocation's origin, for its event, is read from req: a channel's
// when req.Channel is set, a job's when req is the scheduler's (method
// scheduler.JobMethod with a job header), else weftctl invoke's. A
// service's own calls (ctx.Invoke) come through callServices instead.
func (e *Engine) Invoke(ctx context.Context, service string, req sdk.Request, input []byte, timeout time.Duration) channel.Outcome {
	return e.invoke(ctx, e.cur.Load(), service, req, input, timeout, originOf(req))
}

// Call is stateInvoker.Call on the current state, for a channel handler
// that finds no state yet.
func (e *Engine) Call(ctx context.Context, service string, req sdk.Request, input []byte, timeout time.Duration, late channel.Late) (channel.Outcome, bool) {
	return e.invokeWith(ctx, e.cur.Load(), service, req, input, timeout, observe.OriginChannel, late)
}

// originOf is the origin of a request that comes from outside the engine.
func originOf(req sdk.Request) string {
	switch {
	case req.Channel != "":
		return observe.OriginChannel
	case req.Method == scheduler.JobMethod && len(req.Header[scheduler.JobHeader]) > 0:
		return observe.OriginJob
	}
	return observe.OriginInvoke
}

// invoke runs service of state st (nil before the first Apply) and hands
// its event, from origin, to the observer. The call runs on a worker: see
// runtime.Invoke.
func (e *Engine) invoke(ctx context.Context, st *State, service string, req sdk.Request, input []byte, timeout time.Duration, origin string) channel.Outcome {
	out, _ := e.invokeWith(ctx, st, service, req, input, timeout, origin, nil)
	return out
}

// invokeWith is invoke; with late set, the call runs on the calling
// goroutine (see runtime.InvokeHere), and when it overruns, late answers
// at the deadline and invokeWith returns false.
func (e *Engine) invokeWith(ctx context.Context, st *State, service string, req sdk.Request, input []byte, timeout time.Duration, origin string, late channel.Late) (channel.Outcome, bool) {
	if req.CID == "" {
		req.CID = NewCID()
	}
	if st == nil {
		return channel.Outcome{CID: req.CID, Status: http.StatusServiceUnavailable, Error: "this agent has no config yet"}, true
	}
	st.calls.Add(1)
	if st.retired.Load() {
		// Replaced between the caller's read and this call: its
		// interpreters may be closing. The newer state serves it.
		st.calls.Add(-1)
		return e.invokeWith(ctx, e.cur.Load(), service, req, input, timeout, origin, late)
	}
	defer st.calls.Add(-1)
	svc := st.services[service]
	if svc == nil {
		// A name no deployed service has is the caller's mistake, not a
		// service to measure: counting it would make a series of any name.
		return channel.Outcome{CID: req.CID, Status: http.StatusNotFound, Error: fmt.Sprintf("service %q is not deployed on this agent", service)}, true
	}
	if timeout <= 0 {
		timeout = svc.Timeout // the service's own default
	}
	if timeout <= 0 {
		timeout = e.defaultTimeout
	}
	inv := &invocation{e: e, st: st, service: service, origin: origin, cid: req.CID, channel: req.Channel, input: input, timeout: timeout, late: late}
	if origin == observe.OriginJob {
		inv.job = req.Header.Get(scheduler.JobHeader)
	}
	inv.start = time.Now()
	inv.call.Init(ctx, inv.start, timeout)
	defer func() { inv.call.CancelAt(inv.end) }()
	req.Service = service
	if req.Services == nil {
		inv.services = callServices{e: e, st: st, service: service}
		req.Services = &inv.services
	}
	if req.Logger == nil {
		req.Logger = e.serviceLog
	}
	inv.c = sdk.NewContext(&inv.call, req)
	if late == nil {
		output, err := runtime.Invoke(&inv.call, svc, inv.c, input)
		out := inv.settle(output, err)
		if errors.Is(err, runtime.ErrDeadline) {
			// The caller has its answer; the runaway goes on until this
			// replaces its interpreter, which may take a while.
			go inv.replaceIfRunaway(err)
		}
		return out, true
	}
	output, err := runtime.InvokeHere(&inv.call, svc, inv.c, input, inv)
	if errors.Is(err, runtime.ErrAnsweredLate) {
		return channel.Outcome{}, false
	}
	return inv.settle(output, err), true
}

// invocation is one call of a deployed service, from its start to its
// outcome. Its context and the sdk.Services it gives the service live in
// it, one allocation for the three.
type invocation struct {
	e                 *Engine
	st                *State
	service, origin   string
	cid, channel, job string // of the request
	input             []byte
	timeout           time.Duration
	call              runtime.Call
	services          callServices // the request's, unless the caller gave its own
	c                 *sdk.Context
	start, end        time.Time
	late              channel.Late // answers a call run here that overran
}

// Late answers an overrunning call at its deadline (see runtime.Late),
// then replaces its interpreter, which stops it. It runs on a goroutine of
// its own, where a panic would end the agent.
func (inv *invocation) Late(err error) {
	defer func() {
		if r := recover(); r != nil {
			inv.e.log.Error("answering a call that overran its deadline panicked", "cid", inv.cid, "service", inv.service, "panic", r, "stack", string(debug.Stack()))
		}
	}()
	inv.late.Answer(inv.settle(nil, err))
	inv.replaceIfRunaway(err)
}

// settle turns what the service returned into the outcome and hands the
// event to the observer. A call that overran is answered before its
// interpreter is replaced (see replaceIfRunaway), so that the answer keeps
// its deadline; a request right after it may still meet the old
// interpreter.
func (inv *invocation) settle(output []byte, err error) channel.Outcome {
	end := time.Now()
	inv.end = end
	out := channel.Outcome{CID: inv.cid, Duration: end.Sub(inv.start)}
	resp := inv.c.Response()
	out.Header, out.ContentType = resp.Header, resp.ContentType
	out.Status = http.StatusOK
	var detail string // what went wrong, in full: for the log and the observer
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && errors.Is(inv.call.Err(), context.DeadlineExceeded) {
			// The service returned its context's error at the deadline,
			// before the deadline's own error: the same overrun.
			err = fmt.Errorf("%w: %w", runtime.ErrDeadline, err)
		}
		detail = message(err, inv.timeout)
		out.Status, out.Error = handler.Status(err), callerMessage(err, detail, inv.cid, inv.origin)
		if out.Status >= 500 {
			inv.e.log.Warn("invocation failed", "cid", inv.cid, "service", inv.service, "status", out.Status, "err", err, "took", out.Duration)
		}
	} else {
		if resp.Status != 0 {
			out.Status = resp.Status
		}
		out.Output = output
	}
	if inv.e.Observer != nil {
		inv.observe(out, end, err, detail)
	}
	return out
}

// observe hands the observer the event of the invocation, with detail,
// the full text of its error, which operators read in the failure samples
// whatever the caller was told. An invocation failed when its status is
// 500 or more: a service error with no status of its own, a panic, a
// missed deadline. A 4xx (bad input, an error the service gave a 4xx
// status) is the caller's and is counted only by its status.
func (inv *invocation) observe(out channel.Outcome, end time.Time, err error, detail string) {
	ev := observe.Event{
		Kind:     observe.KindService,
		Origin:   inv.origin,
		Name:     inv.service,
		Service:  inv.service,
		Channel:  inv.channel,
		Job:      inv.job,
		CID:      out.CID,
		Status:   out.Status,
		Failed:   out.Status >= 500,
		Error:    detail,
		Duration: out.Duration,
		End:      end,
		BytesIn:  int64(len(inv.input)),
		BytesOut: int64(len(out.Output)),
		Input:    inv.input,
		Output:   out.Output,
	}
	if err != nil {
		var pe *handler.PanicError // on the heap, hence only here
		if errors.As(err, &pe) {
			ev.Stack = string(pe.Stack)
		}
	}
	observe.Emit(inv.e.Observer, &ev)
}

// SlowAfter is the slow threshold service registered with (sdk.SlowAfter);
// 0 when it set none or is not deployed.
func (e *Engine) SlowAfter(service string) time.Duration {
	if st := e.cur.Load(); st != nil {
		if svc := st.services[service]; svc != nil {
			return svc.SlowAfter
		}
	}
	return 0
}

// NewCID returns a fresh correlation id: 16 characters of 80 random bits,
// unique in practice. It is an id, not a secret, so it comes from the fast
// per-thread generator rather than crypto/rand.
func NewCID() string {
	var b [16]byte
	x := rand.Uint64() // 12 characters of 5 bits
	for i := range 12 {
		b[i] = cidAlphabet[x&31]
		x >>= 5
	}
	x = rand.Uint64() // and 4 more
	for i := 12; i < 16; i++ {
		b[i] = cidAlphabet[x&31]
		x >>= 5
	}
	return string(b[:])
}

// cidAlphabet is base32's alphabet, lower case.
const cidAlphabet = "abcdefghijklmnopqrstuvwxyz234567"

// sourceOf returns what the runtime loads of a package.
func sourceOf(p *adminv1.Package) *adminv1.PackageSource {
	return &adminv1.PackageSource{Name: p.GetName(), Files: p.GetSources()}
}

func filesSize(files []*adminv1.SourceFile) int64 {
	var n int64
	for _, f := range files {
		n += int64(len(f.GetContent()))
	}
	return n
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

var _ channel.InputTyper = (*Engine)(nil)

// InputType returns the input type of service in the current state, nil
// when it is not deployed.
func (e *Engine) InputType(service string) reflect.Type { return inputType(e.cur.Load(), service) }

// inputType is the input type of service in st, nil when it has none.
func inputType(st *State, service string) reflect.Type {
	if st == nil || st.services[service] == nil {
		return nil
	}
	return st.services[service].InputType()
}

var _ channel.OutputTyper = (*Engine)(nil)

// OutputType returns the output type of service in the current state, nil
// when it is not deployed.
func (e *Engine) OutputType(service string) reflect.Type { return outputType(e.cur.Load(), service) }

// outputType is the output type of service in st, nil when it has none.
func outputType(st *State, service string) reflect.Type {
	if st == nil || st.services[service] == nil {
		return nil
	}
	return st.services[service].OutputType()
}

// SlowAfter returns the slow threshold of each service of the state that
// registered one (sdk.SlowAfter).
func (s *State) SlowAfter() map[string]time.Duration {
	out := make(map[string]time.Duration)
	for name, svc := range s.services {
		if svc.SlowAfter > 0 {
			out[name] = svc.SlowAfter
		}
	}
	return out
}
