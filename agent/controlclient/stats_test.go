package controlclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/weft-dev/weft/agent/observe"
	"github.com/weft-dev/weft/agent/stats"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// statsServer is a control plane that records the statistics it is sent,
// or refuses them while it is down.
type statsServer struct {
	agentv1.UnimplementedAgentServiceServer

	mu       sync.Mutex
	down     bool
	lose     bool     // record, then answer as if the answer were lost
	received []string // "agent kind/name@minute count" of each bucket recorded
	calls    int      // ReportStats calls, recorded or not
	numbered []string // "epoch/seq" of each bucket received, recorded or not
}

func (s *statsServer) ReportStats(_ context.Context, req *agentv1.ReportStatsRequest) (*agentv1.ReportStatsResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	for _, b := range req.GetBuckets() {
		s.numbered = append(s.numbered, fmt.Sprintf("%s/%d", req.GetEpoch(), b.GetSeq()))
	}
	if s.lose {
		s.lose = false
		return nil, status.Error(codes.DeadlineExceeded, "the answer was lost")
	}
	if s.down {
		return nil, status.Error(codes.Unavailable, "control plane down")
	}
	for _, b := range req.GetBuckets() {
		s.received = append(s.received, describe(req.GetAgentId(), b))
	}
	return &agentv1.ReportStatsResponse{}, nil
}

func (s *statsServer) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// take returns the buckets recorded since it was last called, sorted.
func (s *statsServer) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	got := s.received
	s.received = nil
	slices.Sort(got)
	return got
}

// statsMinute0 is the minute the tests' events start in.
var statsMinute0 = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

func describe(agent string, b *agentv1.StatsBucket) string {
	m := (b.GetStartUnixMs() - statsMinute0.UnixMilli()) / time.Minute.Milliseconds()
	return fmt.Sprintf("%s %s/%s@%d %d", agent, b.GetKind(), b.GetName(), m, b.GetCount())
}

// minute returns a time m minutes and a few seconds after statsMinute0.
func minute(m int) time.Time { return statsMinute0.Add(time.Duration(m)*time.Minute + 5*time.Second) }

// startStatsServer serves s on a free port of 127.0.0.1 and returns a
// client connected to it as Run connects: only its connection, no session.
func startStatsServer(t *testing.T, s *statsServer) *Client {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	agentv1.RegisterAgentServiceServer(srv, s)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	c, _ := newTestClient(t, lis.Addr().String(), 0, nil)
	c.api.Store(agentv1.NewAgentServiceClient(conn))
	return c
}

// observeService counts one call of service name, ended at end.
func observeService(r *stats.Recorder, name string, end time.Time) {
	r.Observe(&observe.Event{Kind: observe.KindService, Origin: observe.OriginInvoke, Name: name, Service: name, Status: 200, Duration: time.Millisecond, End: end})
}

func TestReporterKeepsAndResends(t *testing.T) {
	srv := &statsServer{}
	c := startStatsServer(t, srv)
	now := minute(0)
	rec := stats.NewRecorder()
	rep := stats.NewReporter(rec, c.StatsSender(), slog.New(slog.DiscardHandler), stats.WithReportClock(func() time.Time { return now }))
	ctx := context.Background()

	observeService(rec, "a", minute(0))
	observeService(rec, "a", minute(0))
	srv.setDown(true)
	now = minute(1)
	rep.Report(ctx)
	if rep.Pending() != 1 {
		t.Fatalf("after a failed report %d buckets wait, want 1", rep.Pending())
	}
	observeService(rec, "b", minute(1))
	srv.setDown(false)
	now = minute(2)
	rep.Report(ctx)
	if got, want := srv.take(), []string{"edge-1 service/a@0 2", "edge-1 service/b@1 1"}; !slices.Equal(got, want) {
		t.Fatalf("recorded %q, want %q", got, want)
	}
	if rep.Pending() != 0 {
		t.Fatalf("%d buckets wait after a good report", rep.Pending())
	}
	rep.Report(ctx)
	if got := srv.take(); len(got) != 0 {
		t.Fatalf("a report with nothing new sent %q", got)
	}
}

func TestReporterDropsTheOldestBeyondItsBound(t *testing.T) {
	srv := &statsServer{down: true}
	c := startStatsServer(t, srv)
	now := minute(0)
	rec := stats.NewRecorder()
	rep := stats.NewReporter(rec, c.StatsSender(), slog.New(slog.DiscardHandler),
		stats.WithReportClock(func() time.Time { return now }), stats.WithMaxPending(2))
	ctx := context.Background()
	for m, names := range [][]string{{"a"}, {"b"}, {"c"}} {
		for _, name := range names {
			observeService(rec, name, minute(m))
		}
		now = minute(m + 1)
		rep.Report(ctx)
	}
	if rep.Pending() != 2 {
		t.Fatalf("%d buckets wait, want the bound, 2", rep.Pending())
	}
	srv.setDown(false)
	rep.Report(ctx)
	if got, want := srv.take(), []string{"edge-1 service/b@1 1", "edge-1 service/c@2 1"}; !slices.Equal(got, want) {
		t.Fatalf("recorded %q, want %q: the oldest, a, dropped", got, want)
	}
}

func TestReporterDrainsWhenItStops(t *testing.T) {
	tests := []struct {
		name    string
		down    bool
		want    []string
		pending int
	}{
		{"control plane up", false, []string{"edge-1 service/a@0 1", "edge-1 service/b@1 1"}, 0},
		{"control plane down", true, nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &statsServer{down: tt.down}
			c := startStatsServer(t, srv)
			rec := stats.NewRecorder()
			rep := stats.NewReporter(rec, c.StatsSender(), slog.New(slog.DiscardHandler),
				stats.WithInterval(time.Hour), stats.WithDrainTimeout(time.Second))
			observeService(rec, "a", minute(0))
			observeService(rec, "b", minute(1)) // the minute in progress
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- rep.Run(ctx) }()
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Run: %v", err)
			}
			if got := srv.take(); !slices.Equal(got, tt.want) {
				t.Fatalf("recorded %q, want %q", got, tt.want)
			}
			if rep.Pending() != tt.pending {
				t.Fatalf("%d buckets left, want %d", rep.Pending(), tt.pending)
			}
			srv.mu.Lock()
			calls := srv.calls
			srv.mu.Unlock()
			if calls != 1 {
				t.Fatalf("the drain called ReportStats %d times, want once", calls)
			}
		})
	}
}

func TestStatsSenderBeforeConnecting(t *testing.T) {
	c, _ := newTestClient(t, "127.0.0.1:1", 0, nil)
	err := c.StatsSender().Send(context.Background(), "e", []*agentv1.StatsBucket{{Kind: "service", Name: "a", Count: 1}})
	if !errors.Is(err, errNotConnected) {
		t.Fatalf("Send before Run connected: %v, want %v", err, errNotConnected)
	}
}

// A report whose answer is lost is sent again with the same epoch and
// numbers, which is how the control plane counts it once.
func TestReporterResendsWithTheSameNumbers(t *testing.T) {
	srv := &statsServer{lose: true}
	c := startStatsServer(t, srv)
	now := minute(0)
	rec := stats.NewRecorder()
	rep := stats.NewReporter(rec, c.StatsSender(), slog.New(slog.DiscardHandler), stats.WithReportClock(func() time.Time { return now }))
	observeService(rec, "a", minute(0))
	observeService(rec, "b", minute(0))
	ctx := context.Background()
	rep.Report(ctx) // lost
	rep.Report(ctx) // sent again
	observeService(rec, "c", minute(0))
	rep.Report(ctx) // a new one
	srv.mu.Lock()
	got := slices.Clone(srv.numbered)
	srv.mu.Unlock()
	if len(got) != 5 || got[0] != got[2] || got[1] != got[3] || got[4] == got[0] || got[4] == got[1] {
		t.Fatalf("epoch/seq of the buckets sent: %q; want the two resent with the numbers they had, then a new one", got)
	}
	epoch, _, _ := strings.Cut(got[0], "/")
	if epoch == "" || !strings.HasPrefix(got[4], epoch+"/") {
		t.Fatalf("epochs %q; want one, not empty", got)
	}
}
