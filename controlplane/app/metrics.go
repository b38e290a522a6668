package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/weft-dev/weft/controlplane/api"
	"github.com/weft-dev/weft/controlplane/auth"
	"github.com/weft-dev/weft/controlplane/store"
)

// adminPrefix starts the full method name of every admin API call; the
// agents' calls are not counted as admin requests.
const adminPrefix = "/weft.admin.v1."

// scrapeTimeout bounds the database reads of one scrape.
const scrapeTimeout = 5 * time.Second

// metricsStore is what the metrics read from the store at each scrape.
type metricsStore interface {
	Revision(ctx context.Context) (int64, error)
	ListAgents(ctx context.Context) ([]store.Agent, error)
}

// metrics is the control plane's own Prometheus registry: the revision
// and the agents (read from the database at each scrape, so every replica
// reports the whole fleet), the admin requests (fed by the gRPC
// interceptors), the statistics buckets this replica recorded, and the Go
// runtime and process.
type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	durations *prometheus.HistogramVec
}

// newMetrics registers the control plane's metrics. statsBuckets reads how
// many statistics buckets this replica recorded, evaluations how many
// packages it evaluated in a child process.
func newMetrics(st metricsStore, statsBuckets, evaluations func() int64, log *slog.Logger) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_controlplane_admin_requests_total",
			Help: "Admin API calls answered, by full gRPC method and status code.",
		}, []string{"method", "code"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "weft_controlplane_admin_request_duration_seconds",
			Help:    "How long admin API calls took, by full gRPC method; a stream counts until it ends.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9), // 1ms to about 65s
		}, []string{"method"}),
	}
	m.reg.MustRegister(
		m.requests,
		m.durations,
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "weft_controlplane_stats_buckets_total",
			Help: "Statistics buckets the agents reported to this replica and the store recorded.",
		}, func() float64 { return float64(statsBuckets()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "weft_controlplane_package_evaluations_total",
			Help: "Deployed packages this replica evaluated in a child process, because only running them tells their services; the others it checked without running any of their code.",
		}, func() float64 { return float64(evaluations()) }),
		&fleetCollector{store: st, log: log},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// unary counts and times the admin API's unary calls.
func (m *metrics) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	if !strings.HasPrefix(info.FullMethod, adminPrefix) {
		return next(ctx, req)
	}
	start := time.Now()
	resp, err := next(ctx, req)
	m.observe(info.FullMethod, start, err)
	return resp, err
}

// stream counts and times the admin API's streams.
func (m *metrics) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, next grpc.StreamHandler) error {
	if !strings.HasPrefix(info.FullMethod, adminPrefix) {
		return next(srv, ss)
	}
	start := time.Now()
	err := next(srv, ss)
	m.observe(info.FullMethod, start, err)
	return err
}

func (m *metrics) observe(method string, start time.Time, err error) {
	m.requests.WithLabelValues(method, status.Code(err).String()).Inc()
	m.durations.WithLabelValues(method).Observe(time.Since(start).Seconds())
}

// interceptors are the gRPC server's interceptors: the metrics' when m is
// not nil (first, so that refused calls count too, with the code the
// client gets), then the rule for a database that cannot be reached (which
// logs to log), then the refusal of unknown fields, then the naming of
// each request's caller as the author of its changes, and last, next to
// the handlers, the forwarding of calls for agents another replica holds
// (when fwd is not nil).
func interceptors(m *metrics, a *auth.Authorizer, fwd *api.Forwarder, log *slog.Logger) []grpc.ServerOption {
	dbUnary, dbStream := api.DatabaseErrors(log)
	authUnary, authStream := a.Interceptors()
	// Who calls is checked first: a caller with no right learns nothing of
	// the request's faults.
	unary := []grpc.UnaryServerInterceptor{authUnary, dbUnary, api.RejectUnknownFields, api.Authors}
	stream := []grpc.StreamServerInterceptor{authStream, dbStream}
	if fwd != nil {
		unary = append(unary, fwd.Unary)
	}
	if m != nil {
		unary = append([]grpc.UnaryServerInterceptor{m.unary}, unary...)
		stream = append([]grpc.StreamServerInterceptor{m.stream}, stream...)
	}
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(unary...), grpc.ChainStreamInterceptor(stream...)}
}

// handler serves the registry in Prometheus' formats.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// fleetCollector reads the revision and the agents from the store when
// scraped. A failed read leaves those metrics out of that scrape.
type fleetCollector struct {
	store metricsStore
	log   *slog.Logger
}

var (
	revisionDesc = prometheus.NewDesc("weft_controlplane_revision",
		"The current config revision.", nil, nil)
	agentsDesc = prometheus.NewDesc("weft_controlplane_agents",
		"Agents known, by whether one of the replicas holds their stream.", []string{"state"}, nil)
	appliedDesc = prometheus.NewDesc("weft_controlplane_agent_applied_revision",
		"The config revision each agent last applied.", []string{"agent"}, nil)
)

func (c *fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- revisionDesc
	ch <- agentsDesc
	ch <- appliedDesc
}

func (c *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	if rev, err := c.store.Revision(ctx); err != nil {
		c.log.Warn("metrics: cannot read the revision", "err", err)
	} else {
		ch <- prometheus.MustNewConstMetric(revisionDesc, prometheus.GaugeValue, float64(rev))
	}
	agents, err := c.store.ListAgents(ctx)
	if err != nil {
		c.log.Warn("metrics: cannot read the agents", "err", err)
		return
	}
	var connected, disconnected int
	for _, a := range agents {
		if a.Connected {
			connected++
		} else {
			disconnected++
		}
		ch <- prometheus.MustNewConstMetric(appliedDesc, prometheus.GaugeValue, float64(a.AppliedRevision), a.ID)
	}
	ch <- prometheus.MustNewConstMetric(agentsDesc, prometheus.GaugeValue, float64(connected), "connected")
	ch <- prometheus.MustNewConstMetric(agentsDesc, prometheus.GaugeValue, float64(disconnected), "disconnected")
}

// metricsServer serves /metrics on its own listener.
type metricsServer struct {
	lis net.Listener
	srv *http.Server
}

// listenMetrics opens addr for m's /metrics.
func listenMetrics(addr string, m *metrics) (*metricsServer, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.handler())
	return &metricsServer{lis: lis, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}, nil
}

// addr is the address served, "" for none.
func (s *metricsServer) addr() string {
	if s == nil {
		return ""
	}
	return s.lis.Addr().String()
}

// serve serves until shutdown.
func (s *metricsServer) serve() error {
	if err := s.srv.Serve(s.lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve metrics: %w", err)
	}
	return nil
}

// shutdown stops the server, waiting at most timeout for scrapes under way.
func (s *metricsServer) shutdown(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
	}
}

// statsPruneEvery is how often the control plane prunes old statistics.
// Every replica does; deleting what another replica deleted is a no-op.
const statsPruneEvery = 5 * time.Minute

// statsPruner is what pruneStats needs of the store.
type statsPruner interface {
	PruneStats(ctx context.Context, now time.Time) (int64, error)
}

// pruneStats deletes statistics past their retention now and every
// interval until ctx ends. A failure is logged and tried again next time.
func pruneStats(ctx context.Context, st statsPruner, interval time.Duration, log *slog.Logger) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := st.PruneStats(ctx, time.Now())
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			log.Warn("cannot prune old statistics; trying again later", "err", err, "in", interval)
		case n > 0:
			log.Debug("pruned old statistics", "rows", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
