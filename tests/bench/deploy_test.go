// Package bench holds Weft's end-to-end benchmarks: real binaries, real
// agents, measured from the user's side. They run only with -bench:
//
//	go test -run '^$' -bench DeployWait -benchtime 20x ./tests/bench/
//
// See README.md in this directory for every benchmark and the figures last
// measured.
package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weft-dev/weft/controlplane/store/storetest"
	"github.com/weft-dev/weft/tests/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// BenchmarkDeployWaitTenAgents times `weftctl deploy --wait` of the example
// service to ten local agents: from the command's start until every agent
// has ACKed the new version. Each iteration deploys a new version.
func BenchmarkDeployWaitTenAgents(b *testing.B) {
	cp := testenv.StartControlPlane(b, storetest.SQLite(b).DSN)
	for i := range 10 {
		testenv.StartAgent(b, cp, fmt.Sprintf("bench-%02d", i))
	}
	src, err := os.ReadFile("../../deploy/examples/hello/hello.go")
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	var took []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		// Each iteration is a new version: a different comment is enough.
		v := append(slices.Clone(src), fmt.Sprintf("\n// bench iteration %d\n", i)...)
		if err := os.WriteFile(filepath.Join(dir, "hello.go"), v, 0o644); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		r := testenv.Ctl(b, cp, "deploy", dir, "--wait", "--wait-timeout", "60s")
		took = append(took, time.Since(start))
		if r.ExitCode != 0 || !strings.Contains(r.Stdout, "10 agents") {
			b.Fatalf("deploy --wait: %s", r)
		}
	}
	b.StopTimer()
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(took[len(took)-1].Microseconds())/1000, "max-ms")
}
