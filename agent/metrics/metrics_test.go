package metrics

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weft-dev/weft/agent/channel"
	"github.com/weft-dev/weft/agent/engine"
	"github.com/weft-dev/weft/agent/observe"
	"github.com/weft-dev/weft/agent/scheduler"
	"github.com/weft-dev/weft/agent/sdk"
	"github.com/weft-dev/weft/agent/shared/jobspec"
	"github.com/weft-dev/weft/agent/shared/snapshot"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// helloSnapshot is revision rev of the example hello package, with a
// channel hello and a job greet.
func helloSnapshot(t *testing.T, rev int64) *agentv1.Desired {
	t.Helper()
	src, err := os.ReadFile("../../deploy/examples/hello/hello.go")
	if err != nil {
		t.Fatal(err)
	}
	files := []*adminv1.SourceFile{{Name: "hello.go", Content: src}}
	return &agentv1.Desired{
		Revision: rev,
		Packages: []*adminv1.Package{{Name: "hello", Version: 1, Sha256: snapshot.PackageHash(files), Services: []string{"hello.greet"}, Sources: files}},
		Channels: []*adminv1.Channel{{Name: "hello", Path: "/hello", Methods: []string{"POST"}, Service: "hello.greet", Active: proto.Bool(true)}},
		Jobs: []*adminv1.Job{{Name: "greet", Service: "hello.greet", Type: jobspec.TypeInterval, Interval: &adminv1.JobInterval{Hours: 1},
			StartAt: timestamppb.New(time.Now().Add(time.Hour)), Payload: `{"name":"Job"}`, Active: proto.Bool(true)}},
	}
}

// serve serves m on a free port until the test ends and returns its URL.
func serve(t *testing.T, m *Metrics) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "http://" + lis.Addr().String()
}

// scrape reads the metrics at url and parses them as Prometheus does.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics = %d %s", resp.StatusCode, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return families
}

// value is the value of the series of family name with labels (k=v,k=v),
// and whether there is one: a counter's or gauge's value, a histogram's
// count.
func value(families map[string]*dto.MetricFamily, name, labels string) (float64, bool) {
	for _, m := range families[name].GetMetric() {
		var got []string
		for _, l := range m.GetLabel() {
			got = append(got, l.GetName()+"="+l.GetValue())
		}
		if strings.Join(got, ",") != labels {
			continue
		}
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue(), true
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue(), true
		case m.GetHistogram() != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

func TestMetricsAfterRequests(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	eng := engine.New(log, 5*time.Second)
	m := New(func() int64 {
		if st := eng.Current(); st != nil {
			return st.Revision()
		}
		return 0
	})
	eng.Observer = m
	url := serve(t, m)
	if v, ok := value(scrape(t, url), "weft_agent_applied_revision", ""); !ok || v != 0 {
		t.Fatalf("applied revision before any snapshot = %g (%v), want 0", v, ok)
	}

	snap := helloSnapshot(t, 7)
	if _, errs := eng.Apply(context.Background(), snap); len(errs) > 0 {
		t.Fatal(errs)
	}
	h := &channel.Handler{Current: eng.Route, MaxBodyBytes: 1 << 20, NewCID: engine.NewCID, Log: log, Observer: m}
	for _, body := range []string{`{"name":"Ada"}`, `{"name":"Bo"}`, `{"name":"Cy"}`, `{}`} {
		w := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/hello", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(w, req)
	}
	eng.Invoke(context.Background(), "hello.greet", sdk.Request{Method: "INVOKE"}, []byte(`{"name":"Di"}`), 0)
	sched := scheduler.New(scheduler.Config{AgentID: "edge-1", Invoker: eng, Log: log, Observer: m})
	sched.Set(snap.GetJobs())
	if run, err := sched.RunNow(context.Background(), "greet"); err != nil || run.GetOutcome() != scheduler.OutcomeOK {
		t.Fatalf("run greet: %v, %v", run, err)
	}

	families := scrape(t, url)
	tests := []struct {
		name, labels string
		want         float64
	}{
		{"weft_agent_channel_requests_total", "channel=hello,status=200", 3},
		{"weft_agent_channel_requests_total", "channel=hello,status=400", 1},
		{"weft_agent_channel_request_duration_seconds", "channel=hello", 4},
		{"weft_agent_invocations_total", "origin=channel,service=hello.greet,status=200", 3},
		{"weft_agent_invocations_total", "origin=channel,service=hello.greet,status=400", 1},
		{"weft_agent_invocations_total", "origin=invoke,service=hello.greet,status=200", 1},
		{"weft_agent_invocations_total", "origin=job,service=hello.greet,status=200", 1},
		{"weft_agent_invocation_duration_seconds", "service=hello.greet", 6},
		{"weft_agent_job_runs_total", "job=greet,outcome=ok", 1},
		{"weft_agent_applied_revision", "", 7},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s{%s}", tt.name, tt.labels), func(t *testing.T) {
			if got, ok := value(families, tt.name, tt.labels); !ok || got != tt.want {
				t.Fatalf("= %g (found %v), want %g", got, ok, tt.want)
			}
		})
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if families[name] == nil {
			t.Errorf("no %s: the Go and process collectors are missing", name)
		}
	}
}

func TestMetricsJobOutcomes(t *testing.T) {
	m := New(func() int64 { return 0 })
	for _, e := range []observe.Event{
		{Kind: observe.KindJob, Name: "sync", Status: 200},
		{Kind: observe.KindJob, Name: "sync", Status: 504, Failed: true},
		{Kind: observe.KindJob, Name: "sync", Status: 500, Failed: true},
		{Kind: observe.KindJob, Name: "sync", Status: 422, Failed: true},
	} {
		m.Observe(&e)
	}
	families := scrape(t, serve(t, m))
	for labels, want := range map[string]float64{"job=sync,outcome=ok": 1, "job=sync,outcome=timeout": 1, "job=sync,outcome=error": 2} {
		if got, _ := value(families, "weft_agent_job_runs_total", labels); got != want {
			t.Errorf("job runs {%s} = %g, want %g", labels, got, want)
		}
	}
}

func TestMetricsObserveAllocatesNothing(t *testing.T) {
	m := New(func() int64 { return 0 })
	events := []*observe.Event{
		{Kind: observe.KindService, Origin: observe.OriginChannel, Name: "orders.get", Status: 200, Duration: time.Millisecond},
		{Kind: observe.KindChannel, Name: "orders", Status: 200, Duration: time.Millisecond},
		{Kind: observe.KindJob, Name: "sync", Status: 200},
	}
	for _, e := range events {
		m.Observe(e) // makes the series
	}
	if n := testing.AllocsPerRun(1000, func() {
		for _, e := range events {
			m.Observe(e)
		}
	}); n != 0 {
		t.Fatalf("Observe allocates %g times, want 0 once the series exist", n)
	}
}

func BenchmarkMetricsObserve(b *testing.B) {
	m := New(func() int64 { return 0 })
	svc := &observe.Event{Kind: observe.KindService, Origin: observe.OriginChannel, Name: "orders.get", Status: 200, Duration: time.Millisecond}
	req := &observe.Event{Kind: observe.KindChannel, Name: "orders", Status: 200, Duration: time.Millisecond}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Observe(svc)
			m.Observe(req)
		}
	})
}
