package bench

import (
	"context"
	"os"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/weft-dev/weft/controlplane/store/storetest"
	"github.com/weft-dev/weft/tests/testenv"
)

// BenchmarkWorkerReplace crashes the agent's only worker (a service that
// recurses without end) b.N times and reports how long the agent took to
// have a new worker serving, from the old one's end (the agent's log,
// since_end) and as a client sees it: from the crashing call's failure to
// the next answer of another channel, which waits for the new worker.
// The target is a replacement within 1 s.
//
//	go test -run '^$' -bench WorkerReplace -benchtime 10x ./tests/bench/
func BenchmarkWorkerReplace(b *testing.B) {
	cp := testenv.StartControlPlane(b, storetest.SQLite(b).DSN)
	agent := testenv.StartAgent(b, cp, "bench-workers", testenv.WithBinary(testenv.ShippedAgent(b)), testenv.WithArgs("--workers", "1"))
	// The crashing services are the end-to-end tests' (TestWorkerCrashes).
	for _, dir := range []string{"testdata/transform", "../e2e/testdata/crashers"} {
		if r := testenv.Ctl(b, cp, "deploy", dir, "--wait"); r.ExitCode != 0 {
			b.Fatalf("deploy %s: %s", dir, r)
		}
	}
	for _, args := range [][]string{
		{"crash", "--path", "/crash", "--service", "crash.recurse"},
		{"bench", "--path", "/bench", "--service", "bench.transform"},
	} {
		if r := testenv.Ctl(b, cp, append([]string{"channel", "create"}, args...)...); r.ExitCode != 0 {
			b.Fatalf("channel create: %s", r)
		}
	}
	testenv.AwaitAgentsSynced(b, cp, cp.DesiredRevision(b), time.Minute, agent.ID)
	var client []time.Duration
	for b.Loop() {
		if _, err := testenv.Post(context.Background(), agent.URL("/crash"), `{}`); err == nil {
			b.Fatal("the crashing call was answered; want its worker to end under it")
		}
		failed := time.Now()
		resp, err := testenv.Post(context.Background(), agent.URL("/bench"), benchOrder)
		if err != nil || resp.Status != 200 {
			b.Fatalf("the other channel after the crash: %v %v", resp, err)
		}
		client = append(client, time.Since(failed))
	}
	log, err := os.ReadFile(agent.LogPath())
	if err != nil {
		b.Fatal(err)
	}
	var agentSide []time.Duration
	for _, m := range regexp.MustCompile(`replaced the one that ended.* since_end=(\S+)`).FindAllSubmatch(log, -1) {
		d, err := time.ParseDuration(string(m[1]))
		if err != nil {
			b.Fatal(err)
		}
		agentSide = append(agentSide, d)
	}
	if len(agentSide) != len(client) {
		b.Fatalf("%d crashes, %d replacements in the agent's log", len(client), len(agentSide))
	}
	slices.Sort(client)
	slices.Sort(agentSide)
	b.ReportMetric(float64(agentSide[len(agentSide)/2].Milliseconds()), "replace-p50-ms")
	b.ReportMetric(float64(agentSide[len(agentSide)-1].Milliseconds()), "replace-max-ms")
	b.ReportMetric(float64(client[len(client)/2].Milliseconds()), "client-p50-ms")
	b.ReportMetric(float64(client[len(client)-1].Milliseconds()), "client-max-ms")
}
