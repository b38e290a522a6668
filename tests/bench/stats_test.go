package bench

import (
	"time"

	"testing"

	"github.com/weft-dev/weft/controlplane/store/storetest"
	"github.com/weft-dev/weft/tests/testenv"
)

// BenchmarkChannelStats measures what measuring costs: the same JSON
// channel as BenchmarkChannelVsPlain on two agents of one control plane,
// one with statistics and Prometheus metrics on (reported every second),
// one with them off (--stats=false, no --metrics), taking the same load in
// alternating rounds. The ratio reported is the median of the rounds'
// throughput ratios, on over off; the target is at least 0.95.
//
//	go test -run '^$' -bench ChannelStats -benchtime 1x ./tests/bench/
func BenchmarkChannelStats(b *testing.B) {
	cp := testenv.StartControlPlane(b, storetest.SQLite(b).DSN)
	on := testenv.StartAgent(b, cp, "stats-on", testenv.WithArgs("--stats-interval", "1s", "--metrics", testenv.FreeAddr(b)))
	off := testenv.StartAgent(b, cp, "stats-off", testenv.WithArgs("--stats=false"))
	if r := testenv.Ctl(b, cp, "deploy", "testdata/transform", "--wait"); r.ExitCode != 0 {
		b.Fatalf("deploy: %s", r)
	}
	if r := testenv.Ctl(b, cp, "channel", "create", "bench", "--path", "/bench", "--service", "bench.transform"); r.ExitCode != 0 {
		b.Fatalf("channel create: %s", r)
	}
	testenv.AwaitAgentsSynced(b, cp, cp.DesiredRevision(b), 10*time.Second, on.ID, off.ID)

	targets := []struct {
		name string
		url  string
	}{{"off", off.URL("/bench")}, {"on", on.URL("/bench")}}
	results := map[string]*loadResult{}
	var ratios, p99Ratios []float64
	for range b.N {
		for round := range loadRounds {
			this := map[string]*loadResult{}
			for i := range targets {
				tg := targets[(i+round)%len(targets)]
				res := runLoad(b, tg.url)
				this[tg.name] = res
				if results[tg.name] == nil {
					results[tg.name] = &loadResult{}
				}
				results[tg.name].add(res)
			}
			ratios = append(ratios, this["on"].rps()/this["off"].rps())
			p99Ratios = append(p99Ratios, float64(this["on"].p99())/float64(this["off"].p99()))
		}
	}
	b.ReportMetric(results["off"].rps(), "off-req/s")
	b.ReportMetric(results["on"].rps(), "on-req/s")
	b.ReportMetric(median(ratios), "throughput-ratio")
	b.ReportMetric(median(p99Ratios), "p99-ratio")
	b.Logf("throughput ratios per round (on/off): %.3f; p99 ratios: %.3f", ratios, p99Ratios)
}
