package controlclient

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weft-dev/weft/agent/engine"
	"github.com/weft-dev/weft/agent/observe"
	"github.com/weft-dev/weft/agent/recent"
	"github.com/weft-dev/weft/agent/state"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// streamingControlPlane serves the agent API for commands that the agent
// answers with more than one message: it reads the Commands stream apart
// from writing it, and hands back results and tail batches separately.
type streamingControlPlane struct {
	agentv1.UnimplementedAgentServiceServer
	opened  chan struct{}
	cmds    chan *agentv1.Command
	hangUp  chan struct{} // ends the current Commands stream
	results chan *agentv1.CommandResult
	tails   chan *agentv1.TailEvents
}

func newStreamingControlPlane(t *testing.T) (*streamingControlPlane, string) {
	t.Helper()
	cp := &streamingControlPlane{
		opened: make(chan struct{}, 10), cmds: make(chan *agentv1.Command), hangUp: make(chan struct{}),
		results: make(chan *agentv1.CommandResult, 100), tails: make(chan *agentv1.TailEvents, 100),
	}
	addr := serve(t, cp)
	return cp, addr
}

func (f *streamingControlPlane) Sync(stream agentv1.AgentService_SyncServer) error {
	if _, err := stream.Recv(); err != nil { // hello
		return err
	}
	<-stream.Context().Done()
	return stream.Context().Err()
}

func (f *streamingControlPlane) Commands(stream agentv1.AgentService_CommandsServer) error {
	if _, err := stream.Recv(); err != nil { // open
		return err
	}
	f.opened <- struct{}{}
	recvErr := make(chan error, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			switch {
			case m.GetResult() != nil:
				f.results <- m.GetResult()
			case m.GetTail() != nil:
				select {
				case f.tails <- m.GetTail():
				default: // a test that floods the tail reads only some
				}
			}
		}
	}()
	for {
		select {
		case cmd := <-f.cmds:
			if err := stream.Send(&agentv1.CommandsResponse{Command: cmd}); err != nil {
				return err
			}
		case <-f.hangUp:
			return status.Error(codes.Unavailable, "hanging up")
		case err := <-recvErr:
			return err
		case <-stream.Context().Done():
			return stream.Context().Err()
		}
	}
}

// ask sends cmd and returns its result.
func (f *streamingControlPlane) ask(t *testing.T, cmd *agentv1.Command) *agentv1.CommandResult {
	t.Helper()
	f.cmds <- cmd
	select {
	case r := <-f.results:
		if r.GetId() != cmd.GetId() {
			t.Fatalf("result for %q, want %q", r.GetId(), cmd.GetId())
		}
		return r
	case <-time.After(10 * time.Second):
		t.Fatalf("no result for %v", cmd)
		return nil
	}
}

// awaitNoTails polls until tail runs no tail.
func awaitNoTails(t *testing.T, tail *recent.Tail) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for tail.Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d tails still run", tail.Len())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRecentCommands(t *testing.T) {
	cp, addr := newStreamingControlPlane(t)
	logs := recent.NewLogs(slog.NewJSONHandler(io.Discard, nil))
	log := slog.New(logs)
	samples := recent.NewSamples(recent.SamplesConfig{SampleBytes: 64, SlowAfter: func(service string) time.Duration {
		if service == "hello.greet" {
			return 250 * time.Millisecond
		}
		return 0
	}})
	tail := recent.NewTail(64, log)
	dir, err := state.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	id := Identity{ID: "edge-1", Labels: map[string]string{"site": "berlin"}, BuildVersion: "1.2.3", StartedAt: testNow}
	c := New(addr, id, engine.New(log, 5*time.Second), dir, NewBackoff(10*time.Millisecond, 50*time.Millisecond, nil), log,
		WithSamples(samples), WithLogs(logs), WithTails(tail))
	log.Error("cannot keep the snapshot on disk", "err", "disk full")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	<-cp.opened

	t.Run("inventory", func(t *testing.T) {
		inv := cp.ask(t, &agentv1.Command{Id: "i1", Kind: &agentv1.Command_Inventory{Inventory: &agentv1.InventoryCommand{}}}).GetInventory()
		if inv.GetBuildVersion() != "1.2.3" || inv.GetLabels()["site"] != "berlin" || inv.GetStartedAtUnixMs() != testNow.UnixMilli() ||
			inv.GetSysBytes() <= 0 || inv.GetSysBytes() < inv.GetHeapBytes() {
			t.Fatalf("inventory %v", inv)
		}
		if errs := inv.GetRecentErrors(); len(errs) != 1 || !strings.Contains(errs[0], `"msg":"cannot keep the snapshot on disk"`) {
			t.Fatalf("recent errors %q", errs)
		}
	})

	for i, cid := range []string{"f1", "f2", "f3"} {
		samples.Observe(&observe.Event{
			Kind: observe.KindService, Origin: observe.OriginInvoke, Service: "hello.greet", CID: cid,
			Failed: true, Status: 500, Error: "boom", Duration: time.Duration(i) * time.Millisecond, End: testNow,
			Input: []byte(`{"name":"ann","password":"hunter2"}`),
		})
	}
	samples.Observe(&observe.Event{Kind: observe.KindService, Origin: observe.OriginJob, Service: "other", CID: "o1", Failed: true, End: testNow})

	t.Run("samples", func(t *testing.T) {
		tests := []struct {
			name          string
			cmd           *agentv1.SamplesCommand
			wantCIDs      []string
			wantThreshold int64
			wantErr       string
		}{
			{"one service, limited", &agentv1.SamplesCommand{Service: "hello.greet", Which: "failed", Limit: 2}, []string{"f3", "f2"}, 250, ""},
			{"every service", &agentv1.SamplesCommand{Which: "failed"}, []string{"o1", "f3", "f2", "f1"}, 0, ""},
			{"slow ones", &agentv1.SamplesCommand{Service: "other", Which: "slow"}, nil, 1000, ""},
			{"a bad which", &agentv1.SamplesCommand{Which: "odd"}, nil, 0, `samples: which "odd": want failed or slow`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := cp.ask(t, &agentv1.Command{Id: "s", Kind: &agentv1.Command_Samples{Samples: tt.cmd}})
				var got []string
				for _, inv := range r.GetSamples().GetInvocations() {
					got = append(got, inv.GetCid())
					if bytes.Contains(inv.GetRequestSample(), []byte("hunter2")) {
						t.Errorf("a secret shows: %s", inv.GetRequestSample())
					}
				}
				if r.GetError() != tt.wantErr || !slices.Equal(got, tt.wantCIDs) || r.GetSamples().GetSlowThresholdMs() != tt.wantThreshold {
					t.Fatalf("result %v; want %v, threshold %d, error %q", r, tt.wantCIDs, tt.wantThreshold, tt.wantErr)
				}
			})
		}
	})

	t.Run("logs", func(t *testing.T) {
		log.Info("first")
		log.Info("second")
		r := cp.ask(t, &agentv1.Command{Id: "l1", Kind: &agentv1.Command_Logs{Logs: &agentv1.LogsCommand{Limit: 2}}})
		lines := r.GetLogs().GetLines()
		if len(lines) != 2 || !strings.Contains(lines[0], `"msg":"first"`) || !strings.Contains(lines[1], `"msg":"second"`) || r.GetLogs().GetTruncated() {
			t.Fatalf("result %v", r)
		}
		later := time.Now().Add(time.Hour).UnixMilli()
		if r := cp.ask(t, &agentv1.Command{Id: "l2", Kind: &agentv1.Command_Logs{Logs: &agentv1.LogsCommand{SinceUnixMs: later}}}); len(r.GetLogs().GetLines()) != 0 || r.GetError() != "" {
			t.Fatalf("since an hour ahead: %v", r)
		}
	})

	t.Run("tail", func(t *testing.T) {
		start := &agentv1.TailCommand{TailId: "t1", Service: "hello.greet", Samples: true}
		if r := cp.ask(t, &agentv1.Command{Id: "t-start", Kind: &agentv1.Command_Tail{Tail: start}}); r.GetError() != "" || tail.Len() != 1 {
			t.Fatalf("start: %v, %d tails", r, tail.Len())
		}
		for _, svc := range []string{"other", "hello.greet"} {
			tail.Observe(&observe.Event{Kind: observe.KindService, Origin: observe.OriginInvoke, Service: svc, CID: "tail-" + svc, Status: 200,
				Input: []byte(`{"name":"ann","token":"hunter2"}`)})
		}
		select {
		case ev := <-cp.tails:
			invs := ev.GetInvocations()
			if ev.GetTailId() != "t1" || len(invs) != 1 || invs[0].GetCid() != "tail-hello.greet" || invs[0].GetKind() != "invoke" ||
				string(invs[0].GetRequestSample()) != `{"name":"ann","token":"`+recent.Redacted+`"}` {
				t.Fatalf("tail events %v", ev)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no tail events")
		}
		stop := &agentv1.TailCommand{TailId: "t1", Stop: true}
		if r := cp.ask(t, &agentv1.Command{Id: "t-stop", Kind: &agentv1.Command_Tail{Tail: stop}}); r.GetError() != "" || tail.Len() != 0 {
			t.Fatalf("stop: %v, %d tails", r, tail.Len())
		}
		if r := cp.ask(t, &agentv1.Command{Id: "t-bad", Kind: &agentv1.Command_Tail{Tail: &agentv1.TailCommand{}}}); r.GetError() != "tail: tail_id is empty" {
			t.Fatalf("no tail_id: %v", r)
		}
	})

	t.Run("results and tail batches share the stream", func(t *testing.T) {
		if r := cp.ask(t, &agentv1.Command{Id: "busy", Kind: &agentv1.Command_Tail{Tail: &agentv1.TailCommand{TailId: "busy", Samples: true}}}); r.GetError() != "" {
			t.Fatalf("start: %v", r)
		}
		stop := make(chan struct{})
		observed := make(chan struct{})
		go func() {
			defer close(observed)
			for {
				select {
				case <-stop:
					return
				default:
					tail.Observe(&observe.Event{Kind: observe.KindChannel, Service: "hello.greet", Channel: "greet", CID: "busy", Input: []byte(`{"a":1}`)})
				}
			}
		}()
		for range 20 {
			if r := cp.ask(t, &agentv1.Command{Id: "inv", Kind: &agentv1.Command_Inventory{Inventory: &agentv1.InventoryCommand{}}}); r.GetInventory() == nil {
				t.Fatalf("inventory: %v", r)
			}
		}
		close(stop)
		<-observed
		if r := cp.ask(t, &agentv1.Command{Id: "busy-stop", Kind: &agentv1.Command_Tail{Tail: &agentv1.TailCommand{TailId: "busy", Stop: true}}}); r.GetError() != "" {
			t.Fatalf("stop: %v", r)
		}
		batches := 0
		for len(cp.tails) > 0 {
			ev := <-cp.tails
			if ev.GetTailId() != "busy" {
				t.Fatalf("tail events %v", ev)
			}
			batches++
		}
		if batches == 0 {
			t.Fatal("no tail batch while the commands ran")
		}
		// The stream is read in order: a batch sent after the stop's answer
		// would be in before the next answer.
		time.Sleep(2 * recent.TailFlushEvery) // give a late batch the time to be sent, if there were one
		cp.ask(t, &agentv1.Command{Id: "after", Kind: &agentv1.Command_Inventory{Inventory: &agentv1.InventoryCommand{}}})
		if n := len(cp.tails); n != 0 {
			t.Fatalf("%d tail batches after the stop's answer", n)
		}
	})

	t.Run("tails end with their stream", func(t *testing.T) {
		for _, id := range []string{"t2", "t3"} {
			if r := cp.ask(t, &agentv1.Command{Id: id, Kind: &agentv1.Command_Tail{Tail: &agentv1.TailCommand{TailId: id}}}); r.GetError() != "" {
				t.Fatalf("start %s: %v", id, r)
			}
		}
		if tail.Len() != 2 {
			t.Fatalf("%d tails, want 2", tail.Len())
		}
		cp.hangUp <- struct{}{}
		awaitNoTails(t, tail)
		<-cp.opened // the agent reopens the stream, and answers on it
		if r := cp.ask(t, &agentv1.Command{Id: "t4", Kind: &agentv1.Command_Tail{Tail: &agentv1.TailCommand{TailId: "t4"}}}); r.GetError() != "" || tail.Len() != 1 {
			t.Fatalf("start t4 on the new stream: %v, %d tails", r, tail.Len())
		}
	})
}

func TestRecentCommandsWithoutRecent(t *testing.T) {
	c, _ := newTestClient(t, "unused", 0, nil)
	tests := []struct {
		name    string
		cmd     *agentv1.Command
		wantErr string
	}{
		{"samples", &agentv1.Command{Id: "s", Kind: &agentv1.Command_Samples{Samples: &agentv1.SamplesCommand{Which: "failed"}}}, "this agent keeps no samples"},
		{"logs", &agentv1.Command{Id: "l", Kind: &agentv1.Command_Logs{Logs: &agentv1.LogsCommand{}}}, "this agent keeps no log lines"},
		{"inventory", &agentv1.Command{Id: "i", Kind: &agentv1.Command_Inventory{Inventory: &agentv1.InventoryCommand{}}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := c.run(context.Background(), tt.cmd); r.GetError() != tt.wantErr {
				t.Fatalf("result %v, want error %q", r, tt.wantErr)
			}
		})
	}
}
