package bench

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/weft-dev/weft/controlplane/store/storetest"
	"github.com/weft-dev/weft/tests/testenv"
)

// BenchmarkChannelAgainstBase is BenchmarkChannelVsPlain with another
// agent binary in the plain server's place, such as one built from an
// earlier commit: both agents serve the same channel of one control plane
// and take load in turns, so that what a change does to throughput, p99 and
// CPU per request shows above the machine's drift:
//
//	git worktree add /tmp/base HEAD~1 && (cd /tmp/base && go build -o /tmp/base-agent ./agent)
//	WEFT_BENCH_BASE_AGENT=/tmp/base-agent go test -run '^$' -bench ChannelAgainstBase -benchtime 1x ./tests/bench/
//
// It is skipped unless WEFT_BENCH_BASE_AGENT names the binary.
func BenchmarkChannelAgainstBase(b *testing.B) {
	bin := os.Getenv("WEFT_BENCH_BASE_AGENT")
	if bin == "" {
		b.Skip("WEFT_BENCH_BASE_AGENT names no agent binary to compare with")
	}
	cp := testenv.StartControlPlane(b, storetest.SQLite(b).DSN)
	agent := testenv.StartAgent(b, cp, "this-agent")
	base := startBaseAgent(b, bin, cp)
	if r := testenv.Ctl(b, cp, "deploy", "testdata/transform", "--wait"); r.ExitCode != 0 {
		b.Fatalf("deploy: %s", r)
	}
	if r := testenv.Ctl(b, cp, "channel", "create", "bench", "--path", "/bench", "--service", "bench.transform"); r.ExitCode != 0 {
		b.Fatalf("channel create: %s", r)
	}
	testenv.AwaitAgentsSynced(b, cp, cp.DesiredRevision(b), time.Minute, agent.ID, "base-agent")
	c := alternate(b, base, target{name: "this", url: agent.URL("/bench"), pid: agent.PID()})
	c.report(b, "base", "this")
}

// startBaseAgent starts the agent binary bin as "base-agent" of cp, and
// stops it when the benchmark ends. It enrolls with a join token: a base
// older than agent enrollment cannot reach this control plane.
func startBaseAgent(b *testing.B, bin string, cp *testenv.ControlPlane) target {
	addr := testenv.FreeAddr(b)
	return startServer(b, "base", addr, bin, "--id", "base-agent", "--controlplane", cp.Addr, "--http", addr, "--state-dir", filepath.Join(b.TempDir(), "state"),
		"--join", cp.JoinToken(b), "--ca-fingerprint", cp.CAFingerprint(b))
}
