package bench

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/weft-dev/weft/controlplane/store/storetest"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	"github.com/weft-dev/weft/tests/testenv"
)

// BenchmarkReconnectAfterOutage stops the control plane for each outage of
// WEFT_BENCH_OUTAGES (default 7s,60s,150s) and starts it again on the same
// address: how long after it serves again its agent, which runs with
// --backoff-max 5s, is connected. The target is --backoff-max + 1 s,
// whatever the outage's length.
func BenchmarkReconnectAfterOutage(b *testing.B) {
	outages := "7s,60s,150s"
	if v := os.Getenv("WEFT_BENCH_OUTAGES"); v != "" {
		outages = v
	}
	cp := testenv.StartControlPlane(b, storetest.SQLite(b).DSN)
	testenv.StartAgent(b, cp, "edge-1", testenv.WithArgs("--backoff-max", "5s"))
	connected := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		list, err := cp.Fleet().ListAgents(ctx, &adminv1.ListAgentsRequest{})
		return err == nil && len(list.GetAgents()) == 1 && list.GetAgents()[0].GetConnected()
	}
	testenv.Await(b, time.Minute, "the agent connected", func() (bool, string) { return connected(), "" })
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, o := range strings.Split(outages, ",") {
			outage, err := time.ParseDuration(o)
			if err != nil {
				b.Fatalf("WEFT_BENCH_OUTAGES: %v", err)
			}
			cp.Stop(b)
			down := time.Now()
			testenv.Await(b, outage+time.Minute, "the outage to last "+o, func() (bool, string) {
				return time.Since(down) >= outage, time.Since(down).Round(time.Second).String()
			})
			cp.Start(b)
			back := time.Now()
			testenv.Await(b, 2*time.Minute, "the agent connected again", func() (bool, string) { return connected(), "" })
			took := time.Since(back)
			b.Logf("outage %v: connected %v after the control plane served again", outage, took.Round(time.Millisecond))
			b.ReportMetric(took.Seconds(), "s-after-"+o)
		}
	}
}
