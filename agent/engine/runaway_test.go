package engine

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/weft-dev/weft/agent/channel"
	"github.com/weft-dev/weft/agent/sdk"
	"github.com/weft-dev/weft/agent/shared/snapshot"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

const loopySrc = `package loopy

import (
	"time"

	"github.com/weft-dev/weft/agent/sdk"
)

type In struct{}

func init() {
	sdk.Register("loopy.spin", func(ctx *sdk.Context, in In) (In, error) {
		n := 0
		for {
			n++
		}
	})
	sdk.Register("loopy.ok", func(ctx *sdk.Context, in In) (In, error) { return in, nil })
	sdk.Register("loopy.sleep", func(ctx *sdk.Context, in In) (In, error) {
		time.Sleep(time.Second) // compiled code: closing the interpreter does not end it
		return in, nil
	})
}
`

// loopyEngine is an engine serving the loopy package and chans.
func loopyEngine(t *testing.T, chans ...*adminv1.Channel) *Engine {
	t.Helper()
	e := New(slog.New(slog.DiscardHandler), 5*time.Second)
	files := []*adminv1.SourceFile{{Name: "loopy.go", Content: []byte(loopySrc)}}
	pkg := &adminv1.Package{Name: "loopy", Version: 1, Sha256: snapshot.PackageHash(files), Services: []string{"loopy.ok", "loopy.sleep", "loopy.spin"}, Sources: files}
	if _, errs := e.Apply(context.Background(), snap(1, []*adminv1.Package{pkg}, chans...)); len(errs) > 0 {
		t.Fatal(errs)
	}
	return e
}

func TestRunawayIsReplaced(t *testing.T) {
	e := loopyEngine(t, spinChannel())
	baseline := goruntime.NumGoroutine()
	first := e.Current().packageOf("loopy.spin")

	out := e.Invoke(context.Background(), "loopy.spin", sdk.Request{}, nil, 200*time.Millisecond)
	if out.Status != 504 {
		t.Fatalf("spin = %d %s, want 504", out.Status, out.Error)
	}
	// The replacement keeps the state's connections: ping and ctx.Outgoing
	// still work (they once met a nil set and panicked).
	if _, _, _, err := e.Ping(context.Background(), "nope"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("ping after the replacement = %v, want an error saying the connection does not exist", err)
	}
	if e.Current().conns == nil {
		t.Fatal("the replacement state lost its connections")
	}
	// The 504 comes at the deadline; the package gets a fresh interpreter
	// just after, and the runaway goroutine stops once the old one is
	// closed.
	await(t, func() bool { return e.Current().packageOf("loopy.spin") != first })
	if out := e.Invoke(context.Background(), "loopy.ok", sdk.Request{}, nil, 0); out.Status != 200 {
		t.Fatalf("ok right after the replacement = %d %s", out.Status, out.Error)
	}
	await(t, func() bool { return goruntime.NumGoroutine() <= baseline })

	if out := e.Invoke(context.Background(), "loopy.ok", sdk.Request{}, nil, 0); out.Status != 200 {
		t.Fatalf("ok after the replacement = %d %s", out.Status, out.Error)
	}
	if out := e.Invoke(context.Background(), "loopy.spin", sdk.Request{}, nil, 100*time.Millisecond); out.Status != 504 {
		t.Fatalf("spin on the fresh interpreter = %d %s, want 504 again (not closed)", out.Status, out.Error)
	}
	if e.Current().Revision() != 1 {
		t.Fatalf("revision after a replacement = %d, want 1", e.Current().Revision())
	}
}

// TestRunawayOnChannel overruns through a channel: the 504 comes at the
// deadline and the package is replaced, even for a call stuck in compiled
// code.
func TestRunawayOnChannel(t *testing.T) {
	e := loopyEngine(t,
		&adminv1.Channel{Name: "spin", Path: "/spin", Methods: []string{"POST"}, Service: "loopy.spin", Active: proto.Bool(true), TimeoutMs: 100},
		&adminv1.Channel{Name: "sleep", Path: "/sleep", Methods: []string{"POST"}, Service: "loopy.sleep", Active: proto.Bool(true), TimeoutMs: 100},
		&adminv1.Channel{Name: "ok", Path: "/ok", Methods: []string{"POST"}, Service: "loopy.ok", Active: proto.Bool(true)},
	)
	srv := httptest.NewServer(&channel.Handler{Current: e.Route, MaxBodyBytes: 1 << 20, NewCID: NewCID, Log: slog.New(slog.DiscardHandler)})
	defer srv.Close()
	post := func(path string) (int, string, bool) {
		t.Helper()
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b), resp.Close
	}

	for _, path := range []string{"/spin", "/sleep"} {
		before := e.Current().packageOf("loopy.spin")
		// The call runs on the request's goroutine; the answer given at
		// the deadline, while the call still runs, closes the connection.
		if status, body, closed := post(path); status != http.StatusGatewayTimeout || !strings.Contains(body, "deadline of 100ms") || !closed {
			t.Fatalf("%s = %d %s (connection closed: %v), want 504 naming the deadline, given at the deadline", path, status, body, closed)
		}
		await(t, func() bool { return e.Current().packageOf("loopy.spin") != before })
		if status, body, closed := post("/ok"); status != http.StatusOK || closed {
			t.Fatalf("ok after %s = %d %s (connection closed: %v)", path, status, body, closed)
		}
	}
}

// TestRunawayAnsweredWhileBusy overruns while the engine is busy applying
// (as with a deploy loading a large package, or the replacement of a
// runaway whose load the spinning calls slow down): the 504 still comes
// at the deadline, through a channel and through Invoke, and the
// interpreter is replaced once the engine is free.
func TestRunawayAnsweredWhileBusy(t *testing.T) {
	e := loopyEngine(t, &adminv1.Channel{Name: "spin", Path: "/spin", Methods: []string{"POST"}, Service: "loopy.spin", Active: proto.Bool(true), TimeoutMs: 100})
	srv := httptest.NewServer(&channel.Handler{Current: e.Route, MaxBodyBytes: 1 << 20, NewCID: NewCID, Log: slog.New(slog.DiscardHandler)})
	defer srv.Close()
	first := e.Current().packageOf("loopy.spin")

	e.applyMu.Lock() // what Apply holds
	held := true
	defer func() {
		if held {
			e.applyMu.Unlock()
		}
	}()
	answers := make(chan string, 2)
	go func() {
		resp, err := http.Post(srv.URL+"/spin", "application/json", strings.NewReader(`{}`))
		if err != nil {
			answers <- err.Error()
			return
		}
		resp.Body.Close()
		answers <- "channel " + resp.Status
	}()
	go func() {
		out := e.Invoke(context.Background(), "loopy.spin", sdk.Request{}, nil, 100*time.Millisecond)
		answers <- "invoke " + http.StatusText(out.Status)
	}()
	for range 2 {
		select {
		case got := <-answers:
			if !strings.HasSuffix(got, http.StatusText(http.StatusGatewayTimeout)) {
				t.Fatalf("runaway answered %q, want 504", got)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("no 504 while the engine was busy: the answer waits for the replacement")
		}
	}
	if e.Current().packageOf("loopy.spin") != first {
		t.Fatal("replaced while the engine was held")
	}
	e.applyMu.Unlock()
	held = false
	await(t, func() bool { return e.Current().packageOf("loopy.spin") != first })
}

func spinChannel() *adminv1.Channel {
	return &adminv1.Channel{Name: "spin", Path: "/spin", Methods: []string{"POST"}, Service: "loopy.spin", Active: proto.Bool(true)}
}

func TestServiceDefaultTimeout(t *testing.T) {
	const src = `package slow

import (
	"time"

	"github.com/weft-dev/weft/agent/sdk"
)

type In struct{}

func init() {
	sdk.Register("slow.wait", func(ctx *sdk.Context, in In) (In, error) {
		<-ctx.Context().Done()
		return in, ctx.Context().Err()
	}, sdk.Timeout(150*time.Millisecond))
}
`
	e := New(slog.New(slog.DiscardHandler), time.Hour)
	files := []*adminv1.SourceFile{{Name: "slow.go", Content: []byte(src)}}
	pkg := &adminv1.Package{Name: "slow", Version: 1, Sha256: snapshot.PackageHash(files), Services: []string{"slow.wait"}, Sources: files}
	if _, errs := e.Apply(context.Background(), snap(1, []*adminv1.Package{pkg})); len(errs) > 0 {
		t.Fatal(errs)
	}
	// No channel timeout: the service's own 150 ms applies, not the agent's hour.
	out := e.Invoke(context.Background(), "slow.wait", sdk.Request{}, nil, 0)
	if out.Status != 504 || !strings.Contains(out.Error, "150ms") {
		t.Fatalf("invoke = %d %q, want 504 naming the service's 150ms deadline", out.Status, out.Error)
	}
}

// lateOutcome is a channel.Late that keeps the outcome it is given.
type lateOutcome chan channel.Outcome

func (l lateOutcome) Answer(out channel.Outcome) { l <- out }

// TestRunawayOfGoneClient overruns a channel call whose client went away
// before the deadline: the call still runs, so its interpreter is still
// replaced, which is what ends it.
func TestRunawayOfGoneClient(t *testing.T) {
	e := loopyEngine(t, spinChannel())
	first := e.Current().packageOf("loopy.spin")
	ctx, cancel := context.WithCancel(context.Background())
	late := make(lateOutcome, 1)
	go func() {
		time.Sleep(20 * time.Millisecond)
		cancel() // the client is gone; the spin goes on
	}()
	_, router := e.Route()
	returned := make(chan bool, 1)
	go func() {
		_, onTime := router.Call(ctx, "loopy.spin", sdk.Request{Channel: "spin"}, nil, 200*time.Millisecond, late)
		returned <- onTime
	}()
	select {
	case got := <-late:
		if got.Status != http.StatusGatewayTimeout {
			t.Errorf("late answer %d %s, want 504", got.Status, got.Error)
		}
	case <-time.After(time.Minute):
		t.Fatal("no answer at the deadline")
	}
	await(t, func() bool { return e.Current().packageOf("loopy.spin") != first })
	if onTime := <-returned; onTime { // the replacement ended the spin
		t.Error("Call says it answered in time")
	}
}
