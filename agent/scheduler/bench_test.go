package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/weft-dev/weft/agent/channel"
	"github.com/weft-dev/weft/agent/sdk"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// delayInvoker records how late each call started after its firing.
type delayInvoker struct {
	mu     sync.Mutex
	delays []time.Duration
}

func (d *delayInvoker) Invoke(_ context.Context, _ string, req sdk.Request, _ []byte, _ time.Duration) channel.Outcome {
	now := time.Now()
	at, _ := time.Parse(time.RFC3339Nano, req.Header.Get(ScheduledAtHeader))
	d.mu.Lock()
	d.delays = append(d.delays, now.Sub(at))
	d.mu.Unlock()
	return channel.Outcome{CID: req.CID, Status: 200}
}

func (d *delayInvoker) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.delays)
}

func thousandJobs(start time.Time) []*adminv1.Job {
	jobs := make([]*adminv1.Job, 1000)
	for i := range jobs {
		jobs[i] = intervalJob(fmt.Sprintf("job-%04d", i), start, time.Second)
	}
	return jobs
}

// BenchmarkFiringDelay runs 1,000 jobs firing every second on the real
// clock; one iteration is one second of firings. It reports the delay from
// the scheduled time to the service call.
func BenchmarkFiringDelay(b *testing.B) {
	inv := &delayInvoker{}
	cp := newFakeCP(newFakeClock(), time.Minute)
	s := New(Config{AgentID: "bench", Invoker: inv, Coordinator: cp.agent("bench"), Log: slog.New(slog.DiscardHandler)})
	s.Set(thousandJobs(time.Now().Truncate(time.Second).Add(time.Second)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	b.ResetTimer()
	for i := range b.N {
		for inv.count() < (i+1)*1000 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	b.StopTimer()
	inv.mu.Lock()
	d := slices.Clone(inv.delays)
	inv.mu.Unlock()
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(d[len(d)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(d[0].Microseconds()), "min-µs")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkFiringCost measures the scheduler's own work per firing (heap,
// goroutine, run record, report) with a clock that jumps a second at a time.
func BenchmarkFiringCost(b *testing.B) {
	clk := newFakeClock()
	inv := &delayInvoker{}
	cp := newFakeCP(clk, time.Minute)
	s := New(Config{AgentID: "bench", Invoker: inv, Coordinator: cp.agent("bench"), Clock: clk, Log: slog.New(slog.DiscardHandler)})
	s.Set(thousandJobs(t0.Add(time.Second)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	b.ResetTimer()
	for i := range b.N {
		clk.Advance(time.Second)
		for inv.count() < (i+1)*1000 {
			time.Sleep(50 * time.Microsecond)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/firing")
}
