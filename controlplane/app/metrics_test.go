package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc"

	"github.com/weft-dev/weft/controlplane/api"
	"github.com/weft-dev/weft/controlplane/dispatch"
	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/controlplane/store/storetest"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// scrape reads url and parses it as Prometheus' text format.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return families
}

// value is the value of the metric of family name carrying labels (as
// name=value pairs); it fails the test when there is none.
func value(t *testing.T, families map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	f := families[name]
	if f == nil {
		t.Fatalf("no metric %s", name)
	}
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for _, kv := range labels {
			k, v, _ := strings.Cut(kv, "=")
			match = match && have[k] == v
		}
		if !match {
			continue
		}
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue()
		case m.GetHistogram() != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	t.Fatalf("no metric %s%v", name, labels)
	return 0
}

func TestMetrics(t *testing.T) {
	ctx := context.Background()
	st := storetest.Open(t, storetest.SQLite(t))
	log := slog.New(slog.DiscardHandler)
	for _, id := range []string{"a1", "a2"} {
		if err := st.AgentHello(ctx, store.AgentHello{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.AgentApplied(ctx, "a1", 0, "h"); err != nil {
		t.Fatal(err)
	}
	if err := st.AgentGone(ctx, "a2", ""); err != nil {
		t.Fatal(err)
	}
	watch := dispatch.NewWatch(0)
	disp := dispatch.New(st, watch, log)
	met := newMetrics(st, disp.StatsBuckets, func() int64 { return 0 }, log)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sec := newSecureSetup(t, st, "a1")
	srv := grpc.NewServer(append(interceptors(met, sec.authz, nil, slog.New(slog.DiscardHandler)), sec.creds)...)
	api.New(st, watch, disp, api.Options{InvokeTimeout: time.Minute}, log).Register(srv)
	agentv1.RegisterAgentServiceServer(srv, disp)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { disp.Close(); srv.Stop() })
	conn := dial(t, lis, sec.admin)
	fleet := adminv1.NewFleetServiceClient(conn)
	if _, err := fleet.ListAgents(ctx, &adminv1.ListAgentsRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := fleet.GetAgent(ctx, &adminv1.GetAgentRequest{Id: "nobody"}); err == nil {
		t.Fatal("GetAgent of an unknown agent answered")
	}
	minute := time.Now().Truncate(time.Minute).UnixMilli()
	_, err = agentv1.NewAgentServiceClient(dial(t, lis, sec.agent)).ReportStats(ctx, &agentv1.ReportStatsRequest{AgentId: "a1", Buckets: []*agentv1.StatsBucket{
		{Kind: "service", Name: "p.svc", StartUnixMs: minute, Count: 1},
		{Kind: "job", Name: "sweep", StartUnixMs: minute, Count: 1},
	}})
	if err != nil {
		t.Fatal(err)
	}

	web := httptest.NewServer(met.handler())
	t.Cleanup(web.Close)
	families := scrape(t, web.URL)
	rev, err := st.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"weft_controlplane_revision", nil, float64(rev)},
		{"weft_controlplane_agents", []string{"state=connected"}, 1},
		{"weft_controlplane_agents", []string{"state=disconnected"}, 1},
		{"weft_controlplane_agent_applied_revision", []string{"agent=a1"}, 0},
		{"weft_controlplane_admin_requests_total", []string{"method=/weft.admin.v1.FleetService/ListAgents", "code=OK"}, 1},
		{"weft_controlplane_admin_requests_total", []string{"method=/weft.admin.v1.FleetService/GetAgent", "code=NotFound"}, 1},
		{"weft_controlplane_admin_request_duration_seconds", []string{"method=/weft.admin.v1.FleetService/ListAgents"}, 1},
		{"weft_controlplane_stats_buckets_total", nil, 2},
	}
	for _, tt := range tests {
		if got := value(t, families, tt.name, tt.labels...); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	for _, m := range families["weft_controlplane_admin_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "method" && strings.Contains(l.GetValue(), "AgentService") {
				t.Errorf("an agent call counted as an admin request: %s", l.GetValue())
			}
		}
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if families[name] == nil {
			t.Errorf("no %s: the Go and process collectors are missing", name)
		}
	}
}

// freeAddr is a loopback address nothing listens on (for now).
func freeAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	return lis.Addr().String()
}

func TestRunServesMetrics(t *testing.T) {
	t.Setenv("WEFT_SECRETS_KEY", "")
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, parse(t, t.TempDir(), "--metrics", addr), slog.New(slog.DiscardHandler)) }()

	url := "http://" + addr + "/metrics"
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case err := <-done:
			t.Fatalf("Run ended early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered: %v", url, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := value(t, scrape(t, url), "weft_controlplane_revision"); got != 0 {
		t.Errorf("revision %v, want 0 on a new database", got)
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	if resp, err := http.Get(url); err == nil {
		resp.Body.Close()
		t.Fatalf("%s still answers after the control plane stopped", url)
	}
}

func TestRunRefusesABusyMetricsAddress(t *testing.T) {
	t.Setenv("WEFT_SECRETS_KEY", "")
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = Run(ctx, parse(t, t.TempDir(), "--metrics", lis.Addr().String()), slog.New(slog.DiscardHandler))
	if want := "metrics: listen on " + lis.Addr().String(); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Run = %v, want an error containing %q", err, want)
	}
}

// fakePruner counts prunes and fails the first.
type fakePruner struct {
	mu    sync.Mutex
	calls int
	ran   chan struct{}
}

func (f *fakePruner) PruneStats(context.Context, time.Time) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.calls == 3 {
		close(f.ran)
	}
	if f.calls == 1 {
		return 0, fmt.Errorf("database is locked")
	}
	return 1, nil
}

func TestPruneStatsLoop(t *testing.T) {
	f := &fakePruner{ran: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- pruneStats(ctx, f, time.Millisecond, slog.New(slog.DiscardHandler)) }()
	select {
	case <-f.ran: // a failure did not stop the loop
	case <-time.After(10 * time.Second):
		t.Fatal("the loop never pruned three times")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("pruneStats = %v, want nil when the context ends", err)
	}
}
