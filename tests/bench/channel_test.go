package bench

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/weft-dev/weft/controlplane/store/storetest"
	"github.com/weft-dev/weft/tests/testenv"
)

// BenchmarkChannelVsPlain measures requests per second and p99 latency of a
// JSON channel on one agent calling a small interpreted service, against a
// plain net/http server (./plainserver) doing the same decode, transform
// and encode. Both run as their own processes on this machine and take the
// same load from the same generator, in alternating rounds. The ratios
// reported are the medians of the rounds' ratios. The agent runs its
// default number of workers; WEFT_BENCH_WORKERS sets another:
//
//	go test -run '^$' -bench ChannelVsPlain -benchtime 1x ./tests/bench/
//	WEFT_BENCH_WORKERS=2 go test -run '^$' -bench ChannelVsPlain -benchtime 1x ./tests/bench/
func BenchmarkChannelVsPlain(b *testing.B) {
	cp := testenv.StartControlPlane(b, storetest.SQLite(b).DSN)
	var opts []testenv.Option
	if w := os.Getenv("WEFT_BENCH_WORKERS"); w != "" {
		opts = append(opts, testenv.WithArgs("--workers", w))
	}
	agent := testenv.StartAgent(b, cp, "bench-agent", opts...)
	if r := testenv.Ctl(b, cp, "deploy", "testdata/transform", "--wait"); r.ExitCode != 0 {
		b.Fatalf("deploy: %s", r)
	}
	if r := testenv.Ctl(b, cp, "channel", "create", "bench", "--path", "/bench", "--service", "bench.transform"); r.ExitCode != 0 {
		b.Fatalf("channel create: %s", r)
	}
	testenv.AwaitAgentsSynced(b, cp, cp.DesiredRevision(b), time.Minute, agent.ID)
	plain := startPlain(b)
	c := alternate(b, plain, target{name: "weft", url: agent.URL("/bench"), pid: agent.PID()})
	c.report(b, "plain", "weft")
}

// startPlain builds and starts the plain server.
func startPlain(b *testing.B) target {
	bin := testenv.BuildCommand(b, "./tests/bench/plainserver", "bench-plainserver")
	addr := testenv.FreeAddr(b)
	return startServer(b, "plain", addr, bin, "--listen", addr)
}

// startServer starts bin with args as the target name serving /bench at
// addr, its output in a log file of the benchmark, and kills it when the
// benchmark ends.
func startServer(b *testing.B, name, addr, bin string, args ...string) target {
	cmd := exec.Command(bin, args...)
	logf, err := os.Create(filepath.Join(b.TempDir(), name+".log"))
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
	})
	awaitListening(b, addr, name)
	return target{name: name, url: "http://" + addr + "/bench", pid: cmd.Process.Pid}
}

// awaitListening waits until something accepts connections at addr.
func awaitListening(b *testing.B, addr, what string) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s at %s: %v", what, addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
