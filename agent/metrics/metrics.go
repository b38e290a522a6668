// Package metrics keeps an agent's Prometheus metrics: counters and
// latency histograms of its invocations, channel requests and job runs,
// fed as an observer of their events, with the revision it serves and the
// Go runtime's and process's own metrics, on a registry of its own.
//
// Label values are the names of services, channels and jobs (from the
// config), origins, job outcomes and HTTP statuses: all few, so the number
// of series stays bounded.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/weft-dev/weft/agent/observe"
	"github.com/weft-dev/weft/agent/scheduler"
)

// durationBuckets are the bounds of the latency histograms, in seconds:
// from half a millisecond, for the quick services, to half a minute, the
// default deadline.
var durationBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// Metrics is an agent's Prometheus metrics. It is an observe.Observer;
// counting an event allocates nothing once its series exist.
type Metrics struct {
	reg         *prometheus.Registry
	invocations *prometheus.CounterVec   // service, origin, status
	invDuration *prometheus.HistogramVec // service
	requests    *prometheus.CounterVec   // channel, status
	reqDuration *prometheus.HistogramVec // channel
	jobRuns     *prometheus.CounterVec   // job, outcome
	workerExits *prometheus.CounterVec   // reason

	// The series of each kind of event met so far, so that an event finds
	// its own with one lookup and without building label values.
	mu     sync.RWMutex
	series map[seriesKey]series
}

var _ observe.Observer = (*Metrics)(nil)

// seriesKey names the series of one kind of event: of an object and, by
// kind, an origin and status (invocations), a status (requests) or an
// outcome (job runs).
type seriesKey struct {
	kind, name, origin, outcome string
	status                      int
}

// series are what an event counts in: a counter and, but for job runs, a
// latency histogram.
type series struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// New returns the metrics; revision reads the revision the agent serves
// (0 for none) at each scrape.
func New(revision func() int64) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		invocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_agent_invocations_total",
			Help: "Service invocations by service, origin (channel, invoke, job, service) and HTTP status.",
		}, []string{"service", "origin", "status"}),
		invDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "weft_agent_invocation_duration_seconds",
			Help:    "How long service invocations took, by service.",
			Buckets: durationBuckets,
		}, []string{"service"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_agent_channel_requests_total",
			Help: "Channel requests by channel and the HTTP status answered.",
		}, []string{"channel", "status"}),
		reqDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "weft_agent_channel_request_duration_seconds",
			Help:    "How long channel requests took to answer, by channel.",
			Buckets: durationBuckets,
		}, []string{"channel"}),
		jobRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_agent_job_runs_total",
			Help: "Job runs by job and outcome (ok, error, timeout).",
		}, []string{"job", "outcome"}),
		workerExits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_agent_worker_exits_total",
			Help: "Worker processes that ended unasked and were replaced, by reason (memory, stack, fatal, signal, exit).",
		}, []string{"reason"}),
		series: make(map[seriesKey]series),
	}
	m.reg.MustRegister(
		m.invocations, m.invDuration, m.requests, m.reqDuration, m.jobRuns, m.workerExits,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "weft_agent_applied_revision",
			Help: "The revision of the snapshot the agent serves; 0 before the first.",
		}, func() float64 { return float64(revision()) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Observe counts e.
func (m *Metrics) Observe(e *observe.Event) {
	k := seriesKey{kind: e.Kind, name: e.Name}
	switch e.Kind {
	case observe.KindService:
		k.origin, k.status = e.Origin, e.Status
	case observe.KindChannel:
		k.status = e.Status
	case observe.KindJob:
		k.outcome = outcomeOf(e)
	case observe.KindWorker:
		m.workerExits.WithLabelValues(e.Name).Inc()
		return
	default:
		return
	}
	s := m.seriesOf(k)
	s.count.Inc()
	if s.duration != nil {
		s.duration.Observe(e.Duration.Seconds())
	}
}

// outcomeOf is a job run's outcome, as the scheduler reports it.
func outcomeOf(e *observe.Event) string {
	switch {
	case !e.Failed:
		return scheduler.OutcomeOK
	case e.Status == http.StatusGatewayTimeout:
		return scheduler.OutcomeTimeout
	}
	return scheduler.OutcomeError
}

// seriesOf returns the series of k, making them the first time.
func (m *Metrics) seriesOf(k seriesKey) series {
	m.mu.RLock()
	s, ok := m.series[k]
	m.mu.RUnlock()
	if ok {
		return s
	}
	switch k.kind {
	case observe.KindService:
		s = series{m.invocations.WithLabelValues(k.name, k.origin, strconv.Itoa(k.status)), m.invDuration.WithLabelValues(k.name)}
	case observe.KindChannel:
		s = series{m.requests.WithLabelValues(k.name, strconv.Itoa(k.status)), m.reqDuration.WithLabelValues(k.name)}
	default:
		s = series{count: m.jobRuns.WithLabelValues(k.name, k.outcome)}
	}
	m.mu.Lock()
	m.series[k] = s
	m.mu.Unlock()
	return s
}

// Handler serves the metrics in Prometheus's text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Serve serves the metrics at /metrics on lis until ctx ends.
func (m *Metrics) Serve(ctx context.Context, lis net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	stop := context.AfterFunc(ctx, func() { _ = srv.Close() })
	defer stop()
	if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve metrics on %s: %w", lis.Addr(), err)
	}
	return nil
}
