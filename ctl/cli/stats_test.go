package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// fakeStats answers every GetStats with resp, and records the requests.
type fakeStats struct {
	adminv1.UnimplementedStatsServiceServer

	mu       sync.Mutex
	resp     *adminv1.GetStatsResponse
	requests []*adminv1.GetStatsRequest
}

func (f *fakeStats) GetStats(_ context.Context, req *adminv1.GetStatsRequest) (*adminv1.GetStatsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, proto.Clone(req).(*adminv1.GetStatsRequest))
	return proto.Clone(f.resp).(*adminv1.GetStatsResponse), nil
}

// sent returns the requests the fake received.
func (f *fakeStats) sent() []*adminv1.GetStatsRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

// newStatsEnv serves f and returns the address.
func newStatsEnv(t *testing.T, f *fakeStats) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := grpc.NewServer()
	adminv1.RegisterStatsServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// runStats runs weftctl against addr with args, with the stats command
// in the tree even before weftctl registers it.
func runStats(addr string, args ...string) (stdout string, err error) {
	var out, errb bytes.Buffer
	a := &app{
		stdin:          strings.NewReader(""),
		stdout:         &out,
		stderr:         &errb,
		getenv:         func(k string) string { return map[string]string{"WEFT_ADDR": addr}[k] },
		now:            func() time.Time { return testNow },
		connectTimeout: defaultConnectTimeout,
	}
	defer a.close()
	root := a.newRoot()
	if c, _, err := root.Find([]string{"stats"}); err != nil || c == root {
		root.AddCommand(a.newStatsCmd())
	}
	root.SetArgs(append([]string{"--plaintext"}, args...))
	err = root.ExecuteContext(context.Background())
	return out.String(), err
}

// counts is a trend of the counts given.
func counts(ns ...int64) []*adminv1.StatsTotals {
	var out []*adminv1.StatsTotals
	for i, n := range ns {
		out = append(out, &adminv1.StatsTotals{From: timestamppb.New(testNow.Add(time.Duration(i-len(ns)) * 5 * time.Minute)), Count: n})
	}
	return out
}

// statsAnswer has a busy slow service, a quiet new fast one and one no
// longer called.
func statsAnswer() *adminv1.GetStatsResponse {
	return &adminv1.GetStatsResponse{
		From: timestamppb.New(testNow.Add(-time.Hour)), To: timestamppb.New(testNow), Resolution: "1m",
		Objects: []*adminv1.ObjectStats{
			{Kind: "service", Name: "old.svc", Totals: &adminv1.StatsTotals{}, Trend: counts(0, 0, 0, 0),
				Previous: &adminv1.StatsTotals{Count: 7, P99Us: 900}},
			{Kind: "service", Name: "orders.list",
				Totals: &adminv1.StatsTotals{Count: 50, MeanUs: 850, P50Us: 700, P90Us: 1500, P99Us: 2000, MaxUs: 3000, BytesIn: 500, BytesOut: 9000},
				Trend:  counts(5, 5, 5, 5), Previous: &adminv1.StatsTotals{}},
			{Kind: "service", Name: "orders.place",
				Totals: &adminv1.StatsTotals{Count: 1200, Errors: 12, MeanUs: 12_300, P50Us: 8500, P90Us: 40_000, P99Us: 120_000, MaxUs: 1_500_000},
				Trend:  counts(0, 100, 350, 700), Previous: &adminv1.StatsTotals{Count: 1000, Errors: 30, P99Us: 100_000}},
		},
	}
}

func TestStatsTable(t *testing.T) {
	f := &fakeStats{resp: statsAnswer()}
	out, err := runStats(newStatsEnv(t, f), "stats")
	if err != nil {
		t.Fatal(err)
	}
	want := `NAME          COUNT  ERRORS  ERR%  MEAN    P50    P99    MAX   TREND  CHANGE
old.svc       0      0       -     -       -      -      -     ▁▁▁▁   -100%
orders.list   50     0       0.0%  850µs   700µs  2ms    3ms   ████   new
orders.place  1200   12      1.0%  12.3ms  8.5ms  120ms  1.5s  ▁▂▅█   +20%, p99 +20%
`
	if out != want {
		t.Fatalf("table\n%s\nwant\n%s", out, want)
	}
	sent := f.sent()
	if len(sent) != 1 || sent[0].GetKind() != "service" || sent[0].GetName() != "" || sent[0].GetAgentId() != "" ||
		sent[0].GetSince().AsDuration() != time.Hour || sent[0].GetPeriods() != 12 {
		t.Fatalf("requests %v, want one for services over 1h in 12 periods", sent)
	}
}

func TestStatsWorkers(t *testing.T) {
	f := &fakeStats{resp: &adminv1.GetStatsResponse{
		From: timestamppb.New(testNow.Add(-time.Hour)), To: timestamppb.New(testNow), Resolution: "1m",
		Objects: []*adminv1.ObjectStats{
			{Kind: "worker", Name: "memory",
				Totals: &adminv1.StatsTotals{Count: 3, Errors: 3, MeanUs: 90_000_000, P50Us: 61_000_000, P99Us: 185_000_000, MaxUs: 185_000_000},
				Trend:  counts(0, 1, 0, 2), Previous: &adminv1.StatsTotals{Count: 2, Errors: 2, P99Us: 10_000_000}},
			{Kind: "worker", Name: "stack",
				Totals: &adminv1.StatsTotals{Count: 1, Errors: 1, MeanUs: 1_500_000, P50Us: 1_500_000, P99Us: 1_500_000, MaxUs: 1_500_000},
				Trend:  counts(0, 0, 0, 1), Previous: &adminv1.StatsTotals{}},
		},
	}}
	addr := newStatsEnv(t, f)
	out, err := runStats(addr, "stats", "--kind", "worker")
	if err != nil {
		t.Fatal(err)
	}
	// Every worker exit is a failure: no errors column; the change is in
	// exits alone.
	want := `REASON  EXITS  MEAN UPTIME  P50 UPTIME  MAX UPTIME  TREND  CHANGE
memory  3      1m30s        1m1s        3m5s        ▁▅▁█   +50%
stack   1      1.5s         1.5s        1.5s        ▁▁▁█   new
`
	if out != want {
		t.Fatalf("table\n%s\nwant\n%s", out, want)
	}
	if sent := f.sent(); len(sent) != 1 || sent[0].GetKind() != "worker" {
		t.Fatalf("requests %v, want one for kind worker", sent)
	}

	f.resp = &adminv1.GetStatsResponse{}
	out, err = runStats(addr, "stats", "--kind", "worker", "--since", "90m")
	if err != nil {
		t.Fatal(err)
	}
	if want := "no worker process ended unasked in the last 1h30m\n"; out != want {
		t.Fatalf("with no exits: %q, want %q", out, want)
	}
}

func TestStatsRequest(t *testing.T) {
	f := &fakeStats{resp: &adminv1.GetStatsResponse{}}
	out, err := runStats(newStatsEnv(t, f), "stats", "orders.place", "--kind", "channel", "--agent", "berlin-1", "--since", "7d", "--periods", "7")
	if err != nil {
		t.Fatal(err)
	}
	if out != "no channel was measured in the last 7d\n" {
		t.Errorf("output %q, want the empty answer said", out)
	}
	want := &adminv1.GetStatsRequest{Kind: "channel", Name: "orders.place", AgentId: "berlin-1", Periods: 7}
	sent := f.sent()
	if len(sent) != 1 || sent[0].GetSince().AsDuration() != 7*24*time.Hour {
		t.Fatalf("requests %v, want one over 7 days", sent)
	}
	sent[0].Since = nil
	if !proto.Equal(sent[0], want) {
		t.Fatalf("request %v, want %v", sent[0], want)
	}
}

func TestStatsTopBy(t *testing.T) {
	addr := newStatsEnv(t, &fakeStats{resp: statsAnswer()})
	tests := []struct {
		name string
		args []string
		want []string // names, in order
	}{
		{"by name", nil, []string{"old.svc", "orders.list", "orders.place"}},
		{"slowest", []string{"--top", "1", "--by", "p99"}, []string{"orders.place"}},
		{"most used", []string{"--top", "2"}, []string{"orders.place", "orders.list"}},
		{"by mean, all", []string{"--by", "mean"}, []string{"orders.place", "orders.list", "old.svc"}},
		{"by error rate, ties by name", []string{"--by", "error-rate"}, []string{"orders.place", "old.svc", "orders.list"}},
		{"by errors", []string{"--by", "errors", "--top", "1"}, []string{"orders.place"}},
		{"top past the end", []string{"--top", "10", "--by", "count"}, []string{"orders.place", "orders.list", "old.svc"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runStats(addr, append([]string{"stats"}, tt.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
				got = append(got, strings.Fields(line)[0])
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("rows %v, want %v\n%s", got, tt.want, out)
			}
		})
	}
}

func TestStatsCSV(t *testing.T) {
	addr := newStatsEnv(t, &fakeStats{resp: statsAnswer()})
	want := `kind,name,count,errors,error_rate,mean_us,p50_us,p90_us,p99_us,max_us,bytes_in,bytes_out,previous_count,previous_errors,previous_p99_us
service,orders.place,1200,12,0.0100,12300,8500,40000,120000,1500000,0,0,1000,30,100000
service,orders.list,50,0,0.0000,850,700,1500,2000,3000,500,9000,0,0,0
`
	for _, args := range [][]string{
		{"stats", "-o", "csv", "--top", "2"},
		{"stats", "--output", "CSV", "--top", "2"},
	} {
		out, err := runStats(addr, args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if out != want {
			t.Fatalf("%v:\n%s\nwant\n%s", args, out, want)
		}
	}
}

func TestStatsJSON(t *testing.T) {
	addr := newStatsEnv(t, &fakeStats{resp: statsAnswer()})
	out, err := runStats(addr, "stats", "-o", "json", "--top", "1", "--by", "p99")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Resolution string `json:"resolution"`
		Objects    []struct {
			Name   string `json:"name"`
			Totals struct {
				Count string `json:"count"`
				P99Us string `json:"p99_us"`
			} `json:"totals"`
			Trend []json.RawMessage `json:"trend"`
		} `json:"objects"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if got.Resolution != "1m" || len(got.Objects) != 1 || got.Objects[0].Name != "orders.place" ||
		got.Objects[0].Totals.Count != "1200" || got.Objects[0].Totals.P99Us != "120000" || len(got.Objects[0].Trend) != 4 {
		t.Fatalf("JSON %+v, want the answer with orders.place alone\n%s", got, out)
	}
}

func TestStatsRefusesBadFlags(t *testing.T) {
	f := &fakeStats{resp: statsAnswer()}
	addr := newStatsEnv(t, f)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--kind", "package"}, `--kind "package": want service, channel, job or worker`},
		{[]string{"--since", "0s"}, "--since 0s: want more than 0 and at most 400d"},
		{[]string{"--since", "401d"}, "--since 401d: want more than 0 and at most 400d"},
		{[]string{"--since", "soon"}, `invalid argument "soon" for "--since" flag: "soon": want a duration such as 90m, 24h or 7d`},
		{[]string{"--periods", "0"}, "--periods 0: want 1 to 120"},
		{[]string{"--periods", "121"}, "--periods 121: want 1 to 120"},
		{[]string{"--top", "-1"}, "--top -1: want 0 (all) or more"},
		{[]string{"--by", "speed"}, `--by "speed": want count, errors, error-rate, mean or p99`},
		{[]string{"-o", "xml"}, `--output "xml": want table, json or yaml`},
		{[]string{"a", "b"}, `unexpected argument "b"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, err := runStats(addr, append([]string{"stats"}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	if sent := f.sent(); len(sent) != 0 {
		t.Fatalf("bad flags sent %d requests, want none", len(sent))
	}
}

func TestSparkline(t *testing.T) {
	tests := []struct {
		name   string
		counts []int64
		want   string
	}{
		{"rising", []int64{0, 1, 2, 3, 4, 5, 6, 7}, "▁▂▃▄▅▆▇█"},
		{"none", []int64{0, 0, 0}, "▁▁▁"},
		{"a call is never the lowest bar", []int64{1, 1000}, "▂█"},
		{"flat", []int64{9, 9}, "██"},
		{"no periods", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sparkline(counts(tt.counts...)); got != tt.want {
				t.Fatalf("sparkline(%v) = %q, want %q", tt.counts, got, tt.want)
			}
		})
	}
}

func TestChange(t *testing.T) {
	tests := []struct {
		name        string
		now, before *adminv1.StatsTotals
		want        string
	}{
		{"more and slower", &adminv1.StatsTotals{Count: 112, P99Us: 150}, &adminv1.StatsTotals{Count: 100, P99Us: 100}, "+12%, p99 +50%"},
		{"fewer", &adminv1.StatsTotals{Count: 97, P99Us: 100}, &adminv1.StatsTotals{Count: 100, P99Us: 100}, "-3%, p99 +0%"},
		{"new", &adminv1.StatsTotals{Count: 5}, &adminv1.StatsTotals{}, "new"},
		{"gone", &adminv1.StatsTotals{}, &adminv1.StatsTotals{Count: 5, P99Us: 10}, "-100%"},
		{"nothing either time", &adminv1.StatsTotals{}, &adminv1.StatsTotals{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := change(tt.now, tt.before); got != tt.want {
				t.Fatalf("change = %q, want %q", got, tt.want)
			}
		})
	}
}
