package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/weft-dev/weft/tests/testenv"
)

// Load settings of the channel benchmarks: loadWorkers keep-alive clients
// from one generator send benchOrder; each target is warmed up, then the
// targets take turns in slices of loadSlice, loadRounds times. Short slices
// taken in turn see the same machine: its speed drifts over seconds.
const (
	loadWorkers = 8
	loadWarmup  = 2 * time.Second
	loadSlice   = 500 * time.Millisecond
	loadRounds  = 30
	benchOrder  = `{"customer":"ada","item":"widget","quantity":120,"price":2.5}`
)

// target is a server under load: its URL, and its process id for the CPU
// it spends (0 when unknown).
type target struct {
	name  string
	url   string
	pid   int
	roots *x509.CertPool // the CAs an https url's server is trusted by
}

// comparison is what alternate measured: each target's totals, and per
// round the ratios of the second target against the first.
type comparison struct {
	totals    map[string]*loadResult
	rpsRatios []float64
	p99Ratios []float64
}

// alternate loads the two targets in turns (the first of each round
// alternating) and compares the second, "new", with the first, "base".
func alternate(b *testing.B, base, next target) comparison {
	loaders := map[string]*loader{base.name: newLoader(base), next.name: newLoader(next)}
	for _, l := range loaders {
		defer l.client.CloseIdleConnections()
		l.run(b, loadWarmup)
	}
	c := comparison{totals: map[string]*loadResult{base.name: {}, next.name: {}}}
	order := []string{base.name, next.name}
	for round := range loadRounds {
		this := map[string]*loadResult{}
		for i := range order {
			name := order[(i+round)%len(order)]
			this[name] = loaders[name].run(b, loadSlice)
			c.totals[name].add(this[name])
		}
		c.rpsRatios = append(c.rpsRatios, this[next.name].rps()/this[base.name].rps())
		c.p99Ratios = append(c.p99Ratios, float64(this[next.name].p99())/float64(this[base.name].p99()))
	}
	return c
}

// report reports what c measured of base and next, named by prefix.
func (c comparison) report(b *testing.B, base, next string) {
	for _, name := range []string{base, next} {
		r := c.totals[name]
		b.ReportMetric(r.rps(), name+"-req/s")
		b.ReportMetric(ms(r.p99()), name+"-p99-ms")
		if r.cpu > 0 {
			b.ReportMetric(float64(r.cpu.Microseconds())/float64(r.requests), name+"-cpu-µs/req")
		}
	}
	b.ReportMetric(median(c.rpsRatios), "throughput-ratio")
	b.ReportMetric(median(c.p99Ratios), "p99-ratio")
	b.Logf("%s against %s, per round: throughput %.2f; p99 %.2f", next, base, c.rpsRatios, c.p99Ratios)
}

// median returns the median of xs.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// loadResult sums slices of load on one target.
type loadResult struct {
	requests  int
	took      time.Duration
	cpu       time.Duration // the target's process, when known
	latencies []time.Duration
}

func (r *loadResult) add(o *loadResult) {
	r.requests += o.requests
	r.took += o.took
	r.cpu += o.cpu
	r.latencies = append(r.latencies, o.latencies...)
}

func (r *loadResult) rps() float64 { return float64(r.requests) / r.took.Seconds() }

func (r *loadResult) p99() time.Duration {
	slices.Sort(r.latencies)
	return r.latencies[len(r.latencies)*99/100]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// loader sends load to one target over connections it keeps between runs.
type loader struct {
	target
	client *http.Client
}

func newLoader(t target) *loader {
	tr := &http.Transport{MaxIdleConnsPerHost: loadWorkers, MaxConnsPerHost: loadWorkers}
	if t.roots != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: t.roots}
	}
	return &loader{target: t, client: &http.Client{Transport: tr}}
}

// run sends POSTs of benchOrder from loadWorkers workers for d. Any answer
// but 200 fails the benchmark.
func (l *loader) run(b *testing.B, d time.Duration) *loadResult {
	body := []byte(benchOrder)
	call := func() error {
		resp, err := l.client.Post(l.url, "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: status %d", l.url, resp.StatusCode)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var (
		mu  sync.Mutex
		res = &loadResult{}
		wg  sync.WaitGroup
		bad error
	)
	cpu0 := processCPU(b, l.pid)
	start := time.Now()
	for range loadWorkers {
		wg.Go(func() {
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
		})
	}
	wg.Wait()
	if bad != nil {
		b.Fatal(bad)
	}
	res.took = time.Since(start)
	res.cpu = processCPU(b, l.pid) - cpu0
	res.requests = len(res.latencies)
	return res
}

// processCPU returns the CPU time process pid and its children (an
// agent's workers) have used; 0 when pid is 0.
func processCPU(b *testing.B, pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	return testenv.CPUTime(b, pid)
}
