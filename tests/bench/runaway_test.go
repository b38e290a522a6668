package bench

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weft-dev/weft/controlplane/store/storetest"
	"github.com/weft-dev/weft/tests/testenv"
)

// runawayDeadline is the timeout of the runaway benchmark's spinning
// channels.
const runawayDeadline = 2 * time.Second

// BenchmarkRunaways sends n calls at once to a service that never returns
// (an empty `for {}`, or a loop doing work), more calls than the machine
// has cores, through a channel with a 2 s timeout, while two clients keep
// calling a small service of another package through another channel. It
// reports how late each 504 came against its deadline (its arrival minus
// the request's start plus 2 s: max and median), the other channel's p99
// and worst latency meanwhile and, for comparison, in the second before,
// with no runaways; and the agent's CPU use in the second after the last
// 504 (in % of one core: the runaways spin on until their interpreter is
// replaced, which closing the old one ends) and in the second after that
// (idle once they stopped). The target is every 504 within its deadline +
// 250 ms.
//
//	go test -run '^$' -bench Runaways -benchtime 1x ./tests/bench/
func BenchmarkRunaways(b *testing.B) {
	cp := testenv.StartControlPlane(b, storetest.SQLite(b).DSN)
	agent := testenv.StartAgent(b, cp, "bench-runaways")
	// The runaway services are the end-to-end tests' (TestRunaways).
	for _, dir := range []string{"testdata/transform", "../e2e/testdata/runaway"} {
		if r := testenv.Ctl(b, cp, "deploy", dir, "--wait"); r.ExitCode != 0 {
			b.Fatalf("deploy %s: %s", dir, r)
		}
	}
	for _, args := range [][]string{
		{"runaway-empty", "--path", "/runaway/empty", "--service", "runaway.empty", "--timeout", runawayDeadline.String()},
		{"runaway-work", "--path", "/runaway/work", "--service", "runaway.work", "--timeout", runawayDeadline.String()},
		{"bench", "--path", "/bench", "--service", "bench.transform"},
	} {
		if r := testenv.Ctl(b, cp, append([]string{"channel", "create"}, args...)...); r.ExitCode != 0 {
			b.Fatalf("channel create: %s", r)
		}
	}
	testenv.AwaitAgentsSynced(b, cp, cp.DesiredRevision(b), time.Minute, agent.ID)
	other := newLoader(target{name: "other", url: agent.URL("/bench"), pid: agent.PID()})
	defer other.client.CloseIdleConnections()
	other.run(b, loadWarmup)

	for _, loop := range []string{"empty", "work"} {
		for _, n := range []int{4, 8} {
			b.Run(fmt.Sprintf("%s/%d", loop, n), func(b *testing.B) {
				var r runawayResult
				for range b.N {
					awaitIdle(b, agent.PID())
					quiet := callAlong(other)
					time.Sleep(time.Second)
					r.quiet = append(r.quiet, quiet.stop(b)...)
					r.add(runaways(b, agent.URL("/runaway/"+loop), n, other))
					r.cpuNext = append(r.cpuNext, cpuShare(b, agent.PID(), 0, time.Second))
					r.cpuAfter = append(r.cpuAfter, cpuShare(b, agent.PID(), 0, time.Second))
				}
				r.report(b)
			})
		}
	}
}

// runawayResult is what runaways measured, summed over rounds.
type runawayResult struct {
	late     []time.Duration // each 504's arrival after its deadline
	other    []time.Duration // the other channel's latencies meanwhile
	quiet    []time.Duration // and in a second with no runaways
	cpuNext  []float64       // the agent's CPU in the second after each round's last 504, % of one core
	cpuAfter []float64       // and in the second after that
}

func (r *runawayResult) add(o runawayResult) {
	r.late = append(r.late, o.late...)
	r.other = append(r.other, o.other...)
}

func (r *runawayResult) report(b *testing.B) {
	slices.Sort(r.late)
	b.ReportMetric(ms(r.late[len(r.late)-1]), "late-max-ms")
	b.ReportMetric(ms(r.late[len(r.late)/2]), "late-p50-ms")
	for _, s := range []struct {
		name string
		lat  []time.Duration
	}{{"other", r.other}, {"quiet", r.quiet}} {
		if len(s.lat) == 0 {
			continue
		}
		slices.Sort(s.lat)
		b.ReportMetric(ms(s.lat[len(s.lat)*99/100]), s.name+"-p99-ms")
		b.ReportMetric(ms(s.lat[len(s.lat)-1]), s.name+"-max-ms")
		b.ReportMetric(float64(len(s.lat)), s.name+"-calls")
	}
	b.ReportMetric(slices.Max(r.cpuNext), "cpu-next-s-%")
	b.ReportMetric(slices.Max(r.cpuAfter), "cpu-after-%")
	b.Logf("504s after their deadline: %v", r.late)
}

// runaways sends n calls to url at once, each on a connection of its own
// (a 504 given at the deadline closes its connection), and measures when
// each answer came, while other is called along. Any answer but 504, or
// any of other's but 200, fails the benchmark.
func runaways(b *testing.B, url string, n int, other *loader) runawayResult {
	var (
		r     runawayResult
		mu    sync.Mutex
		bad   error
		spins sync.WaitGroup
	)
	along := callAlong(other)
	for range n {
		spins.Go(func() {
			client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{DisableKeepAlives: true}}
			t0 := time.Now()
			resp, err := client.Post(url, "application/json", bytes.NewReader([]byte(`{}`)))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				bad = err
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusGatewayTimeout {
				bad = fmt.Errorf("%s: status %d, want 504", url, resp.StatusCode)
				return
			}
			r.late = append(r.late, time.Since(t0)-runawayDeadline)
		})
	}
	spins.Wait()
	r.other = along.stop(b)
	if bad != nil {
		b.Fatal(bad)
	}
	return r
}

// along is two clients calling the other channel, one call after another,
// until stopped.
type along struct {
	stopped atomic.Bool
	wg      sync.WaitGroup
	mu      sync.Mutex
	lat     []time.Duration
	bad     error
}

func callAlong(l *loader) *along {
	a := &along{}
	for range 2 {
		a.wg.Go(func() {
			for !a.stopped.Load() {
				t0 := time.Now()
				resp, err := l.client.Post(l.url, "application/json", bytes.NewReader([]byte(benchOrder)))
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("%s: status %d", l.url, resp.StatusCode)
					}
				}
				took := time.Since(t0)
				a.mu.Lock()
				a.lat = append(a.lat, took)
				if err != nil {
					a.bad = err
				}
				a.mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	return a
}

// stop stops the calls and returns their latencies; a call that failed
// fails the benchmark.
func (a *along) stop(b *testing.B) []time.Duration {
	a.stopped.Store(true)
	a.wg.Wait()
	if a.bad != nil {
		b.Fatal(a.bad)
	}
	return a.lat
}

// cpuShare waits for after, then returns the CPU time process pid uses in
// window, in % of one core (at 1% resolution for 1 s: /proc counts ticks
// of 10 ms).
func cpuShare(b *testing.B, pid int, after, window time.Duration) float64 {
	time.Sleep(after)
	c0 := processCPU(b, pid)
	time.Sleep(window)
	return 100 * float64(processCPU(b, pid)-c0) / float64(window)
}

// awaitIdle waits until process pid uses less than a tenth of a core over
// half a second, so that a round does not meet the last one's runaways.
func awaitIdle(b *testing.B, pid int) {
	deadline := time.Now().Add(time.Minute)
	for cpuShare(b, pid, 0, 500*time.Millisecond) >= 10 {
		if time.Now().After(deadline) {
			b.Fatalf("the agent (pid %d) is still busy a minute after the last round", pid)
		}
	}
}
