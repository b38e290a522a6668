package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weft-dev/weft/agent/channel"
	"github.com/weft-dev/weft/agent/sdk"
	"github.com/weft-dev/weft/agent/shared/jobspec"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// t0 is where the fake clocks start.
var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// fakeClock moves only when a test advances it; its timers fire then.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	clk *fakeClock
	at  time.Time
	c   chan time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{clk: c, at: c.now.Add(d), c: make(chan time.Time, 1)}
	if d <= 0 {
		t.c <- c.now
		return t
	}
	c.timers = append(c.timers, t)
	return t
}

// Advance moves the clock by d and fires the timers due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.timers = slices.DeleteFunc(c.timers, func(t *fakeTimer) bool {
		if t.at.After(c.now) {
			return false
		}
		t.c <- c.now
		return true
	})
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	n := len(t.clk.timers)
	t.clk.timers = slices.DeleteFunc(t.clk.timers, func(x *fakeTimer) bool { return x == t })
	return len(t.clk.timers) < n
}

var _ Clock = (*fakeClock)(nil)

// call is one invocation a fakeInvoker saw.
type call struct {
	service, job, trigger, cid string
	scheduledAt                time.Time
	input                      string
	timeout                    time.Duration
	method                     string
}

// fakeInvoker records calls and answers with status (200 unless set); a
// service in hold waits until its channel is closed.
type fakeInvoker struct {
	mu     sync.Mutex
	calls  []call
	status map[string]int
	hold   map[string]chan struct{}
}

func newFakeInvoker() *fakeInvoker {
	return &fakeInvoker{status: map[string]int{}, hold: map[string]chan struct{}{}}
}

func (f *fakeInvoker) Invoke(ctx context.Context, service string, req sdk.Request, input []byte, timeout time.Duration) channel.Outcome {
	at, _ := time.Parse(time.RFC3339Nano, req.Header.Get(ScheduledAtHeader))
	f.mu.Lock()
	f.calls = append(f.calls, call{
		service: service, job: req.Header.Get(JobHeader), trigger: req.Header.Get(TriggerHeader), cid: req.CID,
		scheduledAt: at, input: string(input), timeout: timeout, method: req.Method,
	})
	status, hold := f.status[service], f.hold[service]
	f.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return channel.Outcome{CID: req.CID, Status: 503, Error: ctx.Err().Error()}
		}
	}
	if status == 0 {
		status = 200
	}
	out := channel.Outcome{CID: req.CID, Status: status}
	if status != 200 {
		out.Error = fmt.Sprintf("%s failed with %d", service, status)
	}
	return out
}

func (f *fakeInvoker) callsOf(job string) []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []call
	for _, c := range f.calls {
		if c.job == job {
			out = append(out, c)
		}
	}
	return out
}

var _ Invoker = (*fakeInvoker)(nil)

// fakeCP is an in-memory control plane shared by several agents: a lease
// per job, each firing granted at most once.
type fakeCP struct {
	clk *fakeClock
	ttl time.Duration

	mu          sync.Mutex
	down        bool            // every call fails
	cut         map[string]bool // agents whose calls fail, as if cut off by the network
	reportsDown bool            // Report fails
	leases      map[string]fakeLease
	granted     map[string]string // job@firing → agent
	claims      int
	reports     []*agentv1.JobRun
	reportCalls []time.Time // when Report was called, failed or not
}

type fakeLease struct {
	holder string
	until  time.Time
}

func newFakeCP(clk *fakeClock, ttl time.Duration) *fakeCP {
	return &fakeCP{clk: clk, ttl: ttl, leases: map[string]fakeLease{}, granted: map[string]string{}}
}

var errDown = errors.New("control plane unreachable")

func (cp *fakeCP) setDown(down bool) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	cp.down = down
}

// setCut cuts agent off from the control plane, or reconnects it.
func (cp *fakeCP) setCut(agent string, cut bool) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.cut == nil {
		cp.cut = map[string]bool{}
	}
	cp.cut[agent] = cut
}

func (cp *fakeCP) setReportsDown(down bool) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	cp.reportsDown = down
}

func (cp *fakeCP) holder(job string) string {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.leases[job].holder
}

func (cp *fakeCP) reported() []*agentv1.JobRun {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return slices.Clone(cp.reports)
}

func (cp *fakeCP) reportedOf(job string) []*agentv1.JobRun {
	var out []*agentv1.JobRun
	for _, r := range cp.reported() {
		if r.GetJob() == job {
			out = append(out, r)
		}
	}
	return out
}

// agent returns the Coordinator that agent id dials.
func (cp *fakeCP) agent(id string) Coordinator { return agentCP{cp: cp, id: id} }

type agentCP struct {
	cp *fakeCP
	id string
}

func (a agentCP) Claim(_ context.Context, job string, at time.Time, cid string) (Claim, error) {
	cp := a.cp
	cp.mu.Lock()
	defer cp.mu.Unlock()
	cp.claims++
	if cp.down || cp.cut[a.id] {
		return Claim{}, errDown
	}
	// As the store does: the lease first (a refusal for another agent's
	// lease says how long such a lease lasts), then the firing, which the
	// claim may find already granted after it took the lease.
	now := cp.clk.Now()
	l := cp.leases[job]
	if l.holder != "" && l.holder != a.id && now.Before(l.until) {
		return Claim{Holder: l.holder, TTL: cp.ttl, Reason: "lease held"}, nil
	}
	cp.leases[job] = fakeLease{holder: a.id, until: now.Add(cp.ttl)}
	key := fmt.Sprintf("%s@%d", job, at.UnixMilli())
	if got, ok := cp.granted[key]; ok {
		return Claim{Holder: a.id, Reason: "firing already granted to " + got}, nil
	}
	cp.granted[key] = a.id
	return Claim{Granted: true, Holder: a.id, TTL: cp.ttl}, nil
}

func (a agentCP) Renew(_ context.Context, jobs []string) ([]string, time.Duration, error) {
	cp := a.cp
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.down || cp.cut[a.id] {
		return nil, 0, errDown
	}
	now := cp.clk.Now()
	var held []string
	for _, job := range jobs {
		if l := cp.leases[job]; l.holder == a.id {
			cp.leases[job] = fakeLease{holder: a.id, until: now.Add(cp.ttl)}
			held = append(held, job)
		}
	}
	return held, cp.ttl, nil
}

func (a agentCP) Report(_ context.Context, runs []*agentv1.JobRun) error {
	cp := a.cp
	cp.mu.Lock()
	defer cp.mu.Unlock()
	cp.reportCalls = append(cp.reportCalls, cp.clk.Now())
	if cp.down || cp.reportsDown || cp.cut[a.id] {
		return errDown
	}
	cp.reports = append(cp.reports, runs...)
	return nil
}

// logSink keeps log records for tests to look at.
type logSink struct {
	mu      sync.Mutex
	records []slog.Record
}

func (l *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (l *logSink) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, r.Clone())
	return nil
}
func (l *logSink) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logSink) WithGroup(string) slog.Handler      { return l }

// find returns the attributes of the records at level whose message
// contains msg.
func (l *logSink) find(level slog.Level, msg string) []map[string]slog.Value {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]slog.Value
	for _, r := range l.records {
		if r.Level != level || !strings.Contains(r.Message, msg) {
			continue
		}
		attrs := map[string]slog.Value{}
		r.Attrs(func(a slog.Attr) bool {
			attrs[a.Key] = a.Value
			return true
		})
		out = append(out, attrs)
	}
	return out
}

// outcome is how one firing was dealt with on one agent.
type outcome struct {
	agent, job, result string
	at                 time.Time
}

// outcomes collects the afterFiring calls of one or more schedulers.
type outcomes struct {
	mu   sync.Mutex
	list []outcome
}

func (o *outcomes) hook(agent string) func(string, time.Time, string) {
	return func(job string, at time.Time, result string) {
		o.mu.Lock()
		defer o.mu.Unlock()
		o.list = append(o.list, outcome{agent: agent, job: job, at: at, result: result})
	}
}

func (o *outcomes) all() []outcome {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.list)
}

func (o *outcomes) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.list)
}

// waitFor polls cond until it holds, failing the test after a long while.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// advanceUntil advances clk by step until cond holds, giving the
// scheduler's goroutines time to react between steps.
func advanceUntil(t *testing.T, clk *fakeClock, step time.Duration, what string, cond func() bool) {
	t.Helper()
	for i := 0; !cond(); i++ {
		if i == 2000 {
			t.Fatalf("gave up advancing the clock waiting for %s", what)
		}
		clk.Advance(step)
		time.Sleep(2 * time.Millisecond)
	}
}

// agent is one scheduler under test with its fakes.
type agent struct {
	id   string
	s    *Scheduler
	inv  *fakeInvoker
	logs *logSink
	stop func() // ends Run and waits for it
}

type agentOpts struct {
	id       string
	labels   map[string]string
	cp       *fakeCP // nil: a fresh one with a 4s TTL
	stateDir string
	outcomes *outcomes
}

// newAgent builds a scheduler on clk; it does not start it.
func newAgent(t *testing.T, clk *fakeClock, o agentOpts) *agent {
	t.Helper()
	if o.id == "" {
		o.id = "agent-1"
	}
	if o.cp == nil {
		o.cp = newFakeCP(clk, 4*time.Second)
	}
	a := &agent{id: o.id, inv: newFakeInvoker(), logs: &logSink{}}
	var n int
	var mu sync.Mutex
	a.s = New(Config{
		AgentID:     o.id,
		Labels:      o.labels,
		Invoker:     a.inv,
		Coordinator: o.cp.agent(o.id),
		Clock:       clk,
		Log:         slog.New(a.logs),
		StateDir:    o.stateDir,
		NewCID: func() string {
			mu.Lock()
			defer mu.Unlock()
			n++
			return fmt.Sprintf("%s-cid-%d", o.id, n)
		},
	})
	if o.outcomes != nil {
		a.s.afterFiring = o.outcomes.hook(o.id)
	}
	return a
}

// start runs the scheduler until the test ends or stop is called.
func (a *agent) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.s.Run(ctx) }()
	var once sync.Once
	a.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run of %s: %v", a.id, err)
			}
		})
	}
	t.Cleanup(a.stop)
}

// intervalJob returns an active job named name firing every period from
// start.
func intervalJob(name string, start time.Time, period time.Duration) *adminv1.Job {
	return &adminv1.Job{
		Name:     name,
		Service:  name + ".svc",
		Type:     jobspec.TypeInterval,
		StartAt:  timestamppb.New(start),
		Interval: jobspec.IntervalOf(period),
		Active:   proto.Bool(true),
	}
}
