package bench

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
//	WEFT_BENCH_WORKER_PROFILE=/tmp/prof go test -run '^$' -bench ChannelVsPlainTLS -benchtime 1x ./tests/bench/
func BenchmarkChannelVsPlain(b *testing.B) {
	cp := testenv.StartControlPlane(b, storetest.SQLite(b).DSN)
	agent := testenv.StartAgent(b, cp, "bench-agent", agentOptions()...)
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

// BenchmarkChannelVsPlainTLS is BenchmarkChannelVsPlain over HTTPS: the
// agent serves the channel with --https only, the plain server with
// net/http's ListenAndServeTLS, both with a certificate of one test CA
// that the load generator trusts; each keeps its connections alive, so a
// round measures requests over established TLS connections:
//
//	go test -run '^$' -bench ChannelVsPlainTLS -benchtime 1x ./tests/bench/
func BenchmarkChannelVsPlainTLS(b *testing.B) {
	dir := b.TempDir()
	authority := testenv.NewCA(b, "bench CA")
	certs := authority.ServerCert(b, dir, "server", "bench")
	cp := testenv.StartControlPlane(b, storetest.SQLite(b).DSN)
	agent := testenv.StartAgent(b, cp, "bench-agent", append(agentOptions(), testenv.OnlyHTTPS(certs.Cert, certs.Key))...)
	if r := testenv.Ctl(b, cp, "deploy", "testdata/transform", "--wait"); r.ExitCode != 0 {
		b.Fatalf("deploy: %s", r)
	}
	if r := testenv.Ctl(b, cp, "channel", "create", "bench", "--path", "/bench", "--service", "bench.transform"); r.ExitCode != 0 {
		b.Fatalf("channel create: %s", r)
	}
	testenv.AwaitAgentsSynced(b, cp, cp.DesiredRevision(b), time.Minute, agent.ID)
	plain := startPlain(b, "--tls-cert", certs.Cert, "--tls-key", certs.Key)
	plain.url, plain.roots = strings.Replace(plain.url, "http://", "https://", 1), authority.Pool()
	c := alternate(b, plain, target{name: "weft", url: agent.URL("/bench"), pid: agent.PID(), roots: authority.Pool()})
	c.report(b, "plain", "weft")
}

// agentOptions are the benchmarked agent's options from the environment:
// WEFT_BENCH_WORKERS sets its number of worker processes, and
// WEFT_BENCH_WORKER_PROFILE a directory where each worker writes its CPU
// and allocation profiles (--worker-profile).
func agentOptions() []testenv.Option {
	var opts []testenv.Option
	if w := os.Getenv("WEFT_BENCH_WORKERS"); w != "" {
		opts = append(opts, testenv.WithArgs("--workers", w))
	}
	if dir := os.Getenv("WEFT_BENCH_WORKER_PROFILE"); dir != "" {
		opts = append(opts, testenv.WithArgs("--worker-profile", dir))
	}
	return opts
}

// startPlain builds and starts the plain server, with args.
func startPlain(b *testing.B, args ...string) target {
	bin := testenv.BuildCommand(b, "./tests/bench/plainserver", "bench-plainserver")
	addr := testenv.FreeAddr(b)
	return startServer(b, "plain", addr, bin, append([]string{"--listen", addr}, args...)...)
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
