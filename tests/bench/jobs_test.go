package bench

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weft-dev/weft/controlplane/store/storetest"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	"github.com/weft-dev/weft/tests/testenv"
)

// BenchmarkJobFiringDelay runs 1,000 interval jobs, each firing every
// second on one agent, for benchJobWindow, and reports how late each run
// started against its scheduled time (started_at - scheduled_at, as the
// agent recorded and reported them): p50, p99 and max.
//
//	go test -run '^$' -bench JobFiringDelay -benchtime 1x ./tests/bench/
func BenchmarkJobFiringDelay(b *testing.B) {
	const jobs = 1000
	cp := testenv.StartControlPlane(b, storetest.SQLite(b).DSN)
	testenv.StartAgent(b, cp, "bench-jobs")
	if r := testenv.Ctl(b, cp, "deploy", "../../deploy/examples/hello", "--wait"); r.ExitCode != 0 {
		b.Fatalf("deploy: %s", r)
	}
	api := adminv1.NewJobServiceClient(cp.Conn())
	ctx := context.Background()
	// Every job starts on the same whole second, a little after they are
	// all created: 1,000 firings fall on each second.
	start := time.Now().Add(30 * time.Second).Truncate(time.Second)
	for i := range jobs {
		_, err := api.CreateJob(ctx, &adminv1.CreateJobRequest{Job: &adminv1.Job{
			Name: fmt.Sprintf("tick-%04d", i), Service: "hello.greet", Type: "interval",
			Interval: &adminv1.JobInterval{Seconds: 1}, StartAt: timestamppb.New(start),
			Payload: `{"name":"Ada"}`,
		}})
		if err != nil {
			b.Fatal(err)
		}
	}
	testenv.AwaitAgentsSynced(b, cp, cp.DesiredRevision(b), time.Minute, "bench-jobs")
	if wait := time.Until(start); wait > 0 {
		time.Sleep(wait)
	} else {
		b.Fatalf("creating %d jobs took past their start; raise the lead time", jobs)
	}

	var delays []time.Duration
	b.ResetTimer()
	for range b.N {
		time.Sleep(benchJobWindow)
	}
	b.StopTimer()
	end := time.Now().Add(-2 * time.Second) // runs after this may not be reported yet
	for i := range jobs {
		resp, err := api.ListJobRuns(ctx, &adminv1.ListJobRunsRequest{Name: fmt.Sprintf("tick-%04d", i), Limit: 1000})
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range resp.GetRuns() {
			at := r.GetScheduledAt().AsTime()
			if at.After(end) {
				continue
			}
			if r.GetOutcome() != "ok" {
				b.Fatalf("run %s of %s at %s: %s %s", r.GetCid(), r.GetJob(), at, r.GetOutcome(), r.GetError())
			}
			delays = append(delays, r.GetStartedAt().AsTime().Sub(at))
		}
	}
	want := jobs * int(end.Sub(start)/time.Second)
	if len(delays) < want {
		b.Fatalf("%d runs recorded, want at least %d (%d jobs over %s)", len(delays), want, jobs, end.Sub(start).Round(time.Second))
	}
	slices.Sort(delays)
	pct := func(p float64) float64 { return float64(delays[int(p*float64(len(delays)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1), "max-ms")
	b.ReportMetric(float64(len(delays)), "runs")
}

// benchJobWindow is how long one iteration lets the jobs fire.
const benchJobWindow = 10 * time.Second
