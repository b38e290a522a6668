// Package scheduler runs an agent's jobs: one-time, interval and cron
// firings of a service, computed from each job's start so that every agent
// agrees on the instants. A job placed on one agent runs each firing only
// after the control plane grants it, and keeps running on its lease while
// the control plane is away; runs are queued and reported in batches.
package scheduler

import (
	"container/heap"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/weft-dev/weft/agent/channel"
	"github.com/weft-dev/weft/agent/observe"
	"github.com/weft-dev/weft/agent/sdk"
	"github.com/weft-dev/weft/agent/shared/jobspec"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// Invoker runs services; *engine.Engine is one.
type Invoker interface {
	Invoke(ctx context.Context, service string, req sdk.Request, input []byte, timeout time.Duration) channel.Outcome
}

// Claim is the control plane's answer to a claim of one firing.
type Claim struct {
	Granted bool
	Holder  string // the lease holder after the claim
	// TTL is how long a lease lasts from the request: the one granted, or,
	// on a refusal, the longest the lease that blocked it can still last
	// unless its holder renews it. Zero when the control plane does not say.
	TTL    time.Duration
	Reason string // why the claim was refused
}

// Coordinator is the control plane as the scheduler sees it.
type Coordinator interface {
	// Claim asks to run the firing scheduledAt of a job placed on one agent.
	Claim(ctx context.Context, job string, scheduledAt time.Time, cid string) (Claim, error)
	// Renew extends the leases of jobs; held are the ones still held.
	Renew(ctx context.Context, jobs []string) (held []string, ttl time.Duration, err error)
	// Report records runs; sending a run again updates it.
	Report(ctx context.Context, runs []*agentv1.JobRun) error
}

// Config is what a Scheduler needs.
type Config struct {
	AgentID     string            // names this agent in errors; the Coordinator speaks for it
	Labels      map[string]string // the agent's labels; a job runs here when they carry all of its agent_labels
	Invoker     Invoker
	Coordinator Coordinator
	Clock       Clock // nil: the real clock
	Log         *slog.Logger
	StateDir    string        // where jobs.json records the firings run, for run_missed; "" keeps no record
	NewCID      func() string // nil: random ids
	// Observer, when set, gets one event of every run that invoked the
	// job's service (see observe.KindJob); a skipped firing ran nothing
	// and has none (its run report says it was skipped).
	Observer observe.Observer
}

// Triggers of a run, as JobRun.trigger spells them.
const (
	TriggerSchedule = "schedule"
	TriggerManual   = "manual"
	TriggerRecovery = "recovery"
)

// Outcomes of a run, as JobRun.outcome spells them.
const (
	OutcomeOK      = "ok"
	OutcomeError   = "error"
	OutcomeTimeout = "timeout"
	OutcomeSkipped = "skipped"
)

const (
	claimTimeout = 2 * time.Second  // a claim slower than this counts as the control plane being away
	maxWait      = time.Minute      // the loop looks at the wall clock at least this often
	clockSlack   = time.Millisecond // how late the loop may arm its timer before it looks again
)

// Scheduler runs the jobs of the newest snapshot on this agent.
type Scheduler struct {
	agentID string
	labels  map[string]string
	inv     Invoker
	coord   Coordinator
	clock   Clock
	log     *slog.Logger
	newCID  func() string
	obs     observe.Observer // nil: none

	mu       sync.Mutex
	known    map[string]*adminv1.Job // every job of the snapshot, for RunNow
	jobs     map[string]*entry       // the active jobs that run here
	queue    entryHeap               // jobs with a next firing, earliest first
	pending  []firing                // firings to start at once (recovery)
	running  map[string]string       // job → cid of its run in progress
	leases   map[string]time.Time    // job → until when this agent may run it offline
	ttl      time.Duration           // the newest lease TTL
	setOnce  bool                    // Set has been called
	started  bool                    // Run has been called
	runs     sync.WaitGroup          // runs in progress
	wake     chan struct{}           // the job set changed
	leaseNew chan struct{}           // a lease was granted
	record   *record
	reports  *reports

	// afterFiring, when set (by tests), is called when a firing has been
	// dealt with: result is ran, skipped, refused, missed or canceled.
	afterFiring func(job string, at time.Time, result string)
}

type entry struct {
	job   *adminv1.Job
	sched jobspec.Schedule
	next  time.Time
	idx   int // in queue; -1 when the job has no firing left
}

type firing struct {
	job     *adminv1.Job
	sched   jobspec.Schedule // job's, to tell when its next firing comes
	at      time.Time
	trigger string
}

// New returns a scheduler with no jobs; Set gives it some, Run starts it.
func New(cfg Config) *Scheduler {
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.NewCID == nil {
		cfg.NewCID = randomCID
	}
	log := cfg.Log.With("component", "scheduler")
	var reportTo Coordinator = cfg.Coordinator // nil: runs are not reported
	if cfg.Coordinator == nil {
		cfg.Coordinator = noCoordinator{}
	}
	s := &Scheduler{
		agentID:  cfg.AgentID,
		labels:   maps.Clone(cfg.Labels),
		inv:      cfg.Invoker,
		coord:    cfg.Coordinator,
		clock:    cfg.Clock,
		log:      log,
		newCID:   cfg.NewCID,
		obs:      cfg.Observer,
		known:    map[string]*adminv1.Job{},
		jobs:     map[string]*entry{},
		running:  map[string]string{},
		leases:   map[string]time.Time{},
		wake:     make(chan struct{}, 1),
		leaseNew: make(chan struct{}, 1),
		record:   loadRecord(cfg.StateDir, log),
		reports:  newReports(reportTo, cfg.Clock, log, newSpool(cfg.StateDir, log)),
	}
	return s
}

// Set replaces the jobs with those of the newest applied snapshot. Jobs
// that are paused or whose agent_labels this agent does not carry are left
// out. An unchanged job keeps its next firing; a new or changed one is
// scheduled from now; firings before now are not replayed, except the
// newest missed one of a run_missed job on the first Set after a start.
func (s *Scheduler) Set(jobs []*adminv1.Job) {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	first := !s.setOnce
	s.setOnce = true
	s.known = make(map[string]*adminv1.Job, len(jobs))
	next := make(map[string]*entry, len(jobs))
	for _, j := range jobs {
		s.known[j.GetName()] = j
		if !j.GetActive() || !s.targets(j) {
			continue
		}
		if old := s.jobs[j.GetName()]; old != nil && proto.Equal(old.job, j) {
			next[j.GetName()] = old
			continue
		}
		sched, err := jobspec.SpecOf(j).Schedule()
		if err != nil { // the control plane validates jobs; this is a bug there
			s.log.Error("job left out: bad schedule", "job", j.GetName(), "err", err)
			continue
		}
		e := &entry{job: j, sched: sched, idx: -1}
		e.next, _ = sched.Next(now)
		next[j.GetName()] = e
		if first {
			s.queueMissed(e, now)
		}
	}
	s.replace(next)
	s.record.keepOnly(next)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// targets reports whether this agent carries every agent_labels pair of j.
func (s *Scheduler) targets(j *adminv1.Job) bool {
	for k, v := range j.GetAgentLabels() {
		if got, ok := s.labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// replace makes next the job set, rebuilding the queue. Caller holds mu.
func (s *Scheduler) replace(next map[string]*entry) {
	for name := range s.leases {
		if e := next[name]; e == nil || e.job.GetPlacement() != jobspec.PlacementOne {
			delete(s.leases, name)
		}
	}
	s.jobs = next
	s.queue = s.queue[:0]
	for _, e := range next {
		e.idx = -1
		if !e.next.IsZero() {
			e.idx = len(s.queue)
			s.queue = append(s.queue, e)
		}
	}
	heap.Init(&s.queue)
}

// queueMissed queues the newest firing of a run_missed job that this agent
// missed while it was down. Caller holds mu.
func (s *Scheduler) queueMissed(e *entry, now time.Time) {
	if !e.job.GetRunMissed() {
		return
	}
	last, ok := s.record.last(e.job.GetName())
	if !ok {
		return
	}
	if at, ok := newest(e.sched, last, now); ok {
		s.log.Info("running a firing missed while the agent was down", "job", e.job.GetName(), "scheduled_at", at)
		s.pending = append(s.pending, firing{job: e.job, sched: e.sched, at: at, trigger: TriggerRecovery})
	}
}

// Run fires the jobs until ctx ends, then waits for the runs in progress,
// reports what it can and returns nil.
func (s *Scheduler) Run(ctx context.Context) error {
	s.mu.Lock()
	started := s.started
	s.started = true
	s.mu.Unlock()
	if started {
		return fmt.Errorf("scheduler: Run called twice")
	}

	var wg sync.WaitGroup
	for _, part := range []func(context.Context){s.reports.run, s.renewLoop, s.record.run(s.clock)} {
		wg.Go(func() { part(ctx) })
	}
	s.loop(ctx)
	s.runs.Wait() // only the loop starts runs, and it has returned
	wg.Wait()
	s.record.save()
	s.reports.finalFlush()
	return nil
}

// loop waits for the earliest firing and starts the firings that are due.
func (s *Scheduler) loop(ctx context.Context) {
	for {
		wait, asOf := s.startDue(ctx)
		t := s.clock.NewTimer(wait)
		if s.clock.Now().Sub(asOf) > clockSlack {
			// The clock moved while the timer was armed, which would make it
			// late by as much: look again.
			t.Stop()
			continue
		}
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.wake:
			t.Stop()
		case <-t.C():
		}
	}
}

// startDue starts every due firing and returns how long to wait for the
// next one, as of when.
func (s *Scheduler) startDue(ctx context.Context) (wait time.Duration, asOf time.Time) {
	now := s.clock.Now()
	s.mu.Lock()
	due := s.pending
	s.pending = nil
	for len(s.queue) > 0 && !s.queue[0].next.After(now) {
		e := s.queue[0]
		due = append(due, firing{job: e.job, sched: e.sched, at: e.next, trigger: TriggerSchedule})
		s.advance(e, now)
	}
	wait = maxWait
	if len(s.queue) > 0 {
		wait = min(wait, s.queue[0].next.Sub(now))
	}
	s.mu.Unlock()
	for _, f := range due {
		s.start(ctx, f)
	}
	return wait, now
}

// advance moves e past its firing e.next. When the loop is late by more
// than one period, it skips to the first firing after now. Caller holds mu.
func (s *Scheduler) advance(e *entry, now time.Time) {
	fired := e.next
	next, ok := e.sched.Next(fired)
	if ok && !next.After(now) {
		skipped := countIn(e.sched, fired, now)
		next, ok = e.sched.Next(now)
		s.log.Warn("scheduler late: skipped firings", "job", e.job.GetName(), "skipped", skipped, "from", fired, "to", now)
	}
	if !ok {
		heap.Remove(&s.queue, e.idx)
		e.next = time.Time{}
		return
	}
	e.next = next
	heap.Fix(&s.queue, e.idx)
}

// countIn counts the firings in (after, upTo], up to 1,000, for a log line:
// the caller holds the lock, and a suspended host may have missed many.
func countIn(sched jobspec.Schedule, after, upTo time.Time) int {
	n := 0
	for t, ok := sched.Next(after); ok && !t.After(upTo) && n < 1000; t, ok = sched.Next(t) {
		n++
	}
	return n
}

// start runs firing f on a goroutine of its own.
func (s *Scheduler) start(ctx context.Context, f firing) {
	s.runs.Go(func() { s.fire(ctx, f) })
}

// RunNow runs job name at once, even when it is paused, and returns its
// run. It fails when this agent does not run the job.
func (s *Scheduler) RunNow(ctx context.Context, name string) (*agentv1.JobRun, error) {
	s.mu.Lock()
	j := s.known[name]
	s.mu.Unlock()
	switch {
	case j == nil:
		return nil, fmt.Errorf("job %q: not known to agent %q", name, s.agentID)
	case !s.targets(j):
		return nil, fmt.Errorf("job %q: not run by agent %q: it targets agents labelled %s", name, s.agentID, formatLabels(j.GetAgentLabels()))
	}
	cid := s.newCID()
	now := s.clock.Now()
	if prev, ok := s.begin(name, cid); !ok {
		run := s.skipped(j, cid, TriggerManual, now, prev)
		s.reports.add(run)
		return run, nil
	}
	defer s.end(name, cid)
	run := s.invoke(ctx, j, cid, TriggerManual, now)
	s.reports.add(run)
	return run, nil
}

func formatLabels(labels map[string]string) string {
	pairs := make([]string, 0, len(labels))
	for k, v := range labels {
		pairs = append(pairs, k+"="+v)
	}
	sort.Strings(pairs)
	return strings.Join(pairs, ",")
}

// begin marks job as running under cid, unless a run is in progress: then
// it returns that run's cid and false.
func (s *Scheduler) begin(job, cid string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev, busy := s.running[job]; busy {
		return prev, false
	}
	s.running[job] = cid
	return "", true
}

func (s *Scheduler) end(job, cid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running[job] == cid {
		delete(s.running, job)
	}
}

const cidAlphabet = "abcdefghijklmnopqrstuvwxyz234567"

// randomCID returns 16 characters of 80 random bits.
func randomCID() string {
	var b [16]byte
	x, y := rand.Uint64(), rand.Uint64()
	for i := range b {
		if i == 12 {
			x = y
		}
		b[i] = cidAlphabet[x&31]
		x >>= 5
	}
	return string(b[:])
}

// entryHeap orders jobs by next firing.
type entryHeap []*entry

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return h[i].next.Before(h[j].next) }
func (h entryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *entryHeap) Push(x any) {
	e := x.(*entry)
	e.idx = len(*h)
	*h = append(*h, e)
}
func (h *entryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.idx = -1
	return e
}
