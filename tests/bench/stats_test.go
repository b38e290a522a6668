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
	testenv.AwaitAgentsSynced(b, cp, cp.DesiredRevision(b), time.Minute, on.ID, off.ID)

	c := alternate(b, target{name: "off", url: off.URL("/bench"), pid: off.PID()}, target{name: "on", url: on.URL("/bench"), pid: on.PID()})
	c.report(b, "off", "on")
}
