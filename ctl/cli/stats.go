package cli

import (
	"cmp"
	"context"
	"encoding/csv"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// outputCSV is the output format only stats knows: the global check
// accepts table, json and yaml, and stats' own pre-run takes csv off first.
const outputCSV = "csv"

// statsOrders are what --by sorts by, each largest first.
var statsOrders = map[string]func(t *adminv1.StatsTotals) float64{
	"count":      func(t *adminv1.StatsTotals) float64 { return float64(t.GetCount()) },
	"errors":     func(t *adminv1.StatsTotals) float64 { return float64(t.GetErrors()) },
	"error-rate": errorRate,
	"mean":       func(t *adminv1.StatsTotals) float64 { return float64(t.GetMeanUs()) },
	"p99":        func(t *adminv1.StatsTotals) float64 { return float64(t.GetP99Us()) },
}

// statsFlags are the flags of weftctl stats.
type statsFlags struct {
	kind, agent string
	since       time.Duration
	periods     int32
	top         int
	by          string
	csv         bool // -o csv, taken off --output before the global check
}

func (a *app) newStatsCmd() *cobra.Command {
	f := statsFlags{}
	cmd := &cobra.Command{
		Use:   "stats [NAME] [--kind service|channel|job|worker] [--agent ID] [--since 1h] [--top N --by count|errors|error-rate|mean|p99]",
		Short: "Show usage, errors and latencies of services, channels or jobs, or worker crashes",
		Long: `stats sums what the agents measured over the last --since (1h unless set),
per service (or channel, or job with --kind), across every agent or the one
--agent names: how many calls, how many failed, the mean, median, 99th
percentile and longest duration, a sparkline of the calls over --periods
parts of the stretch (TREND), and the change against the stretch of the
same length before (CHANGE: calls, then p99).

--kind worker counts the agents' worker processes that ended unasked (and
were replaced), per reason: memory (the Go runtime ran out of memory),
stack (stack overflow), fatal (another fatal runtime error), signal
(killed by a signal, the kernel's OOM killer's among them) or exit
(exited unasked). EXITS is how many ended; the UPTIME columns are how
long they had run.

Percentiles come from histograms and are at most 9% high. The control
plane reads per-minute figures up to --since 24h, hourly ones up to about
17 days, daily ones beyond.

--top N keeps the N first by --by, largest first: --by p99 shows the
slowest, --by count the most used. --by alone sorts without cutting.

-o json and -o yaml print the answer of the control plane; -o csv prints
one line per object with durations in microseconds, for spreadsheets.`,
		Example: `  weftctl stats
  weftctl stats orders.place --since 24h
  weftctl stats --kind channel --top 5 --by error-rate
  weftctl stats --top 10 --by p99 --since 7d
  weftctl stats --kind worker --since 24h
  weftctl stats --agent berlin-1 -o csv > stats.csv`,
		Args: func(cmd *cobra.Command, got []string) error {
			if len(got) > 1 {
				return fmt.Errorf("unexpected argument %q (usage: %s)", got[1], cmd.UseLine())
			}
			return nil
		},
		PersistentPreRunE: func(cmd *cobra.Command, argv []string) error {
			if strings.EqualFold(a.output, outputCSV) {
				f.csv, a.output = true, outputTable
			}
			if pre := cmd.Root().PersistentPreRunE; pre != nil {
				return pre(cmd, argv)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, argv []string) error {
			if err := f.check(); err != nil {
				return err
			}
			req := &adminv1.GetStatsRequest{Kind: f.kind, AgentId: f.agent, Since: durationpb.New(f.since), Periods: f.periods}
			if len(argv) == 1 {
				req.Name = argv[0]
			}
			resp, err := call(cmd.Context(), a, "get stats", func(ctx context.Context, c *conn) (*adminv1.GetStatsResponse, error) {
				return c.stats.GetStats(ctx, req)
			})
			if err != nil {
				return err
			}
			resp.Objects = f.pick(resp.GetObjects())
			switch {
			case f.csv:
				return a.printStatsCSV(resp)
			case a.json():
				return a.printJSON(resp)
			default:
				return a.printStatsTable(resp, f)
			}
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.kind, "kind", "service", "what to show: service, channel, job or worker (worker processes that ended unasked)")
	fl.StringVar(&f.agent, "agent", "", "what this agent measured only")
	f.since = time.Hour
	fl.Var((*daysDuration)(&f.since), "since", "the stretch of time up to now to sum, such as 90m, 24h or 7d; at most 400d")
	fl.Int32Var(&f.periods, "periods", 12, "how many parts the trend splits the stretch into, 1 to 120")
	fl.IntVar(&f.top, "top", 0, "keep the N first by --by (count unless set); 0 keeps all")
	fl.StringVar(&f.by, "by", "", "sort by count, errors, error-rate, mean or p99, largest first (default: by name)")
	return cmd
}

// check says which flag is wrong.
func (f *statsFlags) check() error {
	switch f.kind {
	case "service", "channel", "job", "worker":
	default:
		return fmt.Errorf("--kind %q: want service, channel, job or worker", f.kind)
	}
	if f.since <= 0 || f.since > 400*24*time.Hour {
		return fmt.Errorf("--since %s: want more than 0 and at most 400d", shortDuration(f.since))
	}
	if f.periods < 1 || f.periods > 120 {
		return fmt.Errorf("--periods %d: want 1 to 120", f.periods)
	}
	if f.top < 0 {
		return fmt.Errorf("--top %d: want 0 (all) or more", f.top)
	}
	if f.by != "" && statsOrders[f.by] == nil {
		return fmt.Errorf("--by %q: want count, errors, error-rate, mean or p99", f.by)
	}
	return nil
}

// pick sorts objects by --by, largest first (ties by name), and keeps the
// --top first. Without either they stay by name.
func (f *statsFlags) pick(objects []*adminv1.ObjectStats) []*adminv1.ObjectStats {
	by := f.by
	if by == "" && f.top > 0 {
		by = "count"
	}
	if key := statsOrders[by]; key != nil {
		slices.SortStableFunc(objects, func(x, y *adminv1.ObjectStats) int {
			return cmp.Or(cmp.Compare(key(y.GetTotals()), key(x.GetTotals())), cmp.Compare(x.GetName(), y.GetName()))
		})
	}
	if f.top > 0 && len(objects) > f.top {
		objects = objects[:f.top]
	}
	return objects
}

// daysDuration is a duration flag that also takes whole days, as 7d.
type daysDuration time.Duration

func (d *daysDuration) String() string { return shortDuration(time.Duration(*d)) }

func (d *daysDuration) Type() string { return "duration" }

func (d *daysDuration) Set(s string) error {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 32)
		if err != nil {
			return fmt.Errorf("%q: want a duration such as 90m, 24h or 7d", s)
		}
		*d = daysDuration(time.Duration(n) * 24 * time.Hour)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q: want a duration such as 90m, 24h or 7d", s)
	}
	*d = daysDuration(v)
	return nil
}

// shortDuration renders d without zero tails: 7d, 1h, 1h30m, 90s.
func shortDuration(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// printStatsTable writes one row per object.
func (a *app) printStatsTable(resp *adminv1.GetStatsResponse, f statsFlags) error {
	if f.kind == "worker" {
		return a.printWorkerStatsTable(resp, f)
	}
	if len(resp.GetObjects()) == 0 {
		_, err := fmt.Fprintf(a.stdout, "no %s was measured in the last %s\n", f.kind, shortDuration(f.since))
		return err
	}
	t := newTable(a.stdout, "NAME", "COUNT", "ERRORS", "ERR%", "MEAN", "P50", "P99", "MAX", "TREND", "CHANGE")
	for _, o := range resp.GetObjects() {
		tot := o.GetTotals()
		row := []string{o.GetName(), strconv.FormatInt(tot.GetCount(), 10), strconv.FormatInt(tot.GetErrors(), 10), "", "", "", "", ""}
		if tot.GetCount() > 0 {
			row[3] = fmt.Sprintf("%.1f%%", 100*errorRate(tot))
			row[4], row[5], row[6], row[7] = humanMicros(tot.GetMeanUs()), humanMicros(tot.GetP50Us()), humanMicros(tot.GetP99Us()), humanMicros(tot.GetMaxUs())
		}
		t.row(append(row, sparkline(o.GetTrend()), change(tot, o.GetPrevious()))...)
	}
	return t.flush()
}

// printWorkerStatsTable writes one row per reason worker processes ended
// for. Every such end is a failure, so the errors are left out; the
// durations are how long the workers had run.
func (a *app) printWorkerStatsTable(resp *adminv1.GetStatsResponse, f statsFlags) error {
	if len(resp.GetObjects()) == 0 {
		_, err := fmt.Fprintf(a.stdout, "no worker process ended unasked in the last %s\n", shortDuration(f.since))
		return err
	}
	t := newTable(a.stdout, "REASON", "EXITS", "MEAN UPTIME", "P50 UPTIME", "MAX UPTIME", "TREND", "CHANGE")
	for _, o := range resp.GetObjects() {
		tot := o.GetTotals()
		row := []string{o.GetName(), strconv.FormatInt(tot.GetCount(), 10), "", "", ""}
		if tot.GetCount() > 0 {
			row[2], row[3], row[4] = humanMicros(tot.GetMeanUs()), humanMicros(tot.GetP50Us()), humanMicros(tot.GetMaxUs())
		}
		// The change in exits alone: a p99 of how long workers ran says
		// little.
		before := &adminv1.StatsTotals{Count: o.GetPrevious().GetCount()}
		t.row(append(row, sparkline(o.GetTrend()), change(tot, before))...)
	}
	return t.flush()
}

// errorRate is the share of failed calls, 0 to 1.
func errorRate(t *adminv1.StatsTotals) float64 {
	if t.GetCount() == 0 {
		return 0
	}
	return float64(t.GetErrors()) / float64(t.GetCount())
}

// sparkLevels are the bars of a sparkline, lowest first.
var sparkLevels = []rune("▁▂▃▄▅▆▇█")

// sparkline draws the count of each period as a bar scaled to the largest:
// no calls is the lowest bar, any call at least the second.
func sparkline(trend []*adminv1.StatsTotals) string {
	var top int64
	for _, p := range trend {
		top = max(top, p.GetCount())
	}
	var b strings.Builder
	for _, p := range trend {
		level := 0
		if n := p.GetCount(); n > 0 {
			level = max(1, int(math.Round(float64(n)/float64(top)*float64(len(sparkLevels)-1))))
		}
		b.WriteRune(sparkLevels[level])
	}
	return b.String()
}

// change compares a stretch with the one before: the calls as +12%, -3%
// or new, then p99 when both stretches had calls.
func change(now, before *adminv1.StatsTotals) string {
	switch {
	case before.GetCount() == 0 && now.GetCount() == 0:
		return ""
	case before.GetCount() == 0:
		return "new"
	}
	out := percentChange(now.GetCount(), before.GetCount())
	if now.GetCount() > 0 && before.GetP99Us() > 0 {
		out += ", p99 " + percentChange(now.GetP99Us(), before.GetP99Us())
	}
	return out
}

// percentChange renders (now - before) / before as +12% or -3%.
func percentChange(now, before int64) string {
	return fmt.Sprintf("%+.0f%%", 100*float64(now-before)/float64(before))
}

// statsCSVHeader names the columns of -o csv.
var statsCSVHeader = []string{"kind", "name", "count", "errors", "error_rate", "mean_us", "p50_us", "p90_us", "p99_us", "max_us",
	"bytes_in", "bytes_out", "previous_count", "previous_errors", "previous_p99_us"}

// printStatsCSV writes one line per object, durations in microseconds.
func (a *app) printStatsCSV(resp *adminv1.GetStatsResponse) error {
	w := csv.NewWriter(a.stdout)
	if err := w.Write(statsCSVHeader); err != nil {
		return err
	}
	n := func(v int64) string { return strconv.FormatInt(v, 10) }
	for _, o := range resp.GetObjects() {
		t, p := o.GetTotals(), o.GetPrevious()
		err := w.Write([]string{o.GetKind(), o.GetName(), n(t.GetCount()), n(t.GetErrors()),
			strconv.FormatFloat(errorRate(t), 'f', 4, 64), n(t.GetMeanUs()), n(t.GetP50Us()), n(t.GetP90Us()), n(t.GetP99Us()), n(t.GetMaxUs()),
			n(t.GetBytesIn()), n(t.GetBytesOut()), n(p.GetCount()), n(p.GetErrors()), n(p.GetP99Us())})
		if err != nil {
			return err
		}
	}
	w.Flush()
	return w.Error()
}
