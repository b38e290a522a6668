package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/weft-dev/weft/controlplane/store/storetest"
	"github.com/weft-dev/weft/tests/testenv"
)

// Load settings of BenchmarkChannelVsPlain.
const (
	loadWorkers  = 8
	loadWarmup   = time.Second
	loadDuration = 3 * time.Second
	loadRounds   = 5
	benchOrder   = `{"customer":"ada","item":"widget","quantity":120,"price":2.5}`
)

// BenchmarkChannelVsPlain measures requests per second and p99 latency of a
// JSON channel on one agent calling a small interpreted service, against a
// plain net/http server (./plainserver) doing the same decode, transform
// and encode. Both run as their own processes on this machine and take the
// same load from the same generator, in alternating rounds. The ratios
// reported are the medians of the rounds' ratios:
//
//	go test -run '^$' -bench ChannelVsPlain -benchtime 1x ./tests/bench/
func BenchmarkChannelVsPlain(b *testing.B) {
	cp := testenv.StartControlPlane(b, storetest.SQLite(b).DSN)
	agent := testenv.StartAgent(b, cp, "bench-agent")
	if r := testenv.Ctl(b, cp, "deploy", "testdata/transform", "--wait"); r.ExitCode != 0 {
		b.Fatalf("deploy: %s", r)
	}
	if r := testenv.Ctl(b, cp, "channel", "create", "bench", "--path", "/bench", "--service", "bench.transform"); r.ExitCode != 0 {
		b.Fatalf("channel create: %s", r)
	}
	testenv.AwaitAgentsSynced(b, cp, cp.DesiredRevision(b), 10*time.Second, agent.ID)
	plain := startPlain(b)

	targets := []struct{ name, url string }{
		{"plain", "http://" + plain + "/bench"},
		{"weft", agent.URL("/bench")},
	}
	results := map[string]*loadResult{}
	var rpsRatios, p99Ratios []float64
	for range b.N {
		for round := range loadRounds {
			this := map[string]*loadResult{}
			for i := range targets {
				tg := targets[(i+round)%len(targets)] // alternate who goes first
				res := runLoad(b, tg.url)
				this[tg.name] = res
				if results[tg.name] == nil {
					results[tg.name] = &loadResult{}
				}
				results[tg.name].add(res)
			}
			// A round's two runs are seconds apart, so a ratio per round
			// is less touched by whatever else the machine does.
			rpsRatios = append(rpsRatios, this["weft"].rps()/this["plain"].rps())
			p99Ratios = append(p99Ratios, float64(this["weft"].p99())/float64(this["plain"].p99()))
		}
	}
	p, w := results["plain"], results["weft"]
	b.ReportMetric(p.rps(), "plain-req/s")
	b.ReportMetric(w.rps(), "weft-req/s")
	b.ReportMetric(ms(p.p99()), "plain-p99-ms")
	b.ReportMetric(ms(w.p99()), "weft-p99-ms")
	b.ReportMetric(median(rpsRatios), "throughput-ratio")
	b.ReportMetric(median(p99Ratios), "p99-ratio")
	b.Logf("throughput ratios per round: %.3f; p99 ratios per round: %.3f", rpsRatios, p99Ratios)
}

// median returns the median of xs.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// startPlain builds and starts the plain server and returns its address.
func startPlain(b *testing.B) string {
	bin := testenv.BuildCommand(b, "./tests/bench/plainserver", "bench-plainserver")
	addr := testenv.FreeAddr(b)
	cmd := exec.Command(bin, "--listen", addr)
	logf, err := os.Create(filepath.Join(b.TempDir(), "plainserver.log"))
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
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			b.Fatalf("plain server at %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// loadResult sums rounds of load on one target.
type loadResult struct {
	requests  int
	took      time.Duration
	latencies []time.Duration
}

func (r *loadResult) add(o *loadResult) {
	r.requests += o.requests
	r.took += o.took
	r.latencies = append(r.latencies, o.latencies...)
}

func (r *loadResult) rps() float64 { return float64(r.requests) / r.took.Seconds() }

func (r *loadResult) p99() time.Duration {
	slices.Sort(r.latencies)
	return r.latencies[len(r.latencies)*99/100]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// runLoad sends POSTs of benchOrder to url from loadWorkers workers with
// keep-alive connections: a warmup, then loadDuration measured. Any answer
// but 200 fails the benchmark.
func runLoad(b *testing.B, url string) *loadResult {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: loadWorkers, MaxConnsPerHost: loadWorkers}}
	defer client.CloseIdleConnections()
	body := []byte(benchOrder)
	call := func() error {
		resp, err := client.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: status %d", url, resp.StatusCode)
		}
		return nil
	}
	load := func(d time.Duration, record bool) *loadResult {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		var (
			mu  sync.Mutex
			res = &loadResult{}
			wg  sync.WaitGroup
			bad error
		)
		start := time.Now()
		for range loadWorkers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var mine []time.Duration
				for ctx.Err() == nil {
					t0 := time.Now()
					if err := call(); err != nil {
						mu.Lock()
						bad = err
						mu.Unlock()
						return
					}
					mine = append(mine, time.Since(t0))
				}
				mu.Lock()
				res.latencies = append(res.latencies, mine...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		if bad != nil {
			b.Fatal(bad)
		}
		res.took = time.Since(start)
		res.requests = len(res.latencies)
		if !record {
			return nil
		}
		return res
	}
	load(loadWarmup, false)
	return load(loadDuration, true)
}
