package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/weft-dev/weft/agent/observe"
	"github.com/weft-dev/weft/agent/shared/snapshot"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
	workerv1 "github.com/weft-dev/weft/proto/weft/worker/v1"
)

// helloPackage is the example hello package, greeting with greeting, plus
// extra source appended to hello.go.
func helloPackage(t *testing.T, greeting, extra string) *adminv1.Package {
	t.Helper()
	src, err := os.ReadFile("../../deploy/examples/hello/hello.go")
	if err != nil {
		t.Fatal(err)
	}
	src = []byte(strings.Replace(string(src), `"Hello"`, `"`+greeting+`"`, 1) + extra)
	files := []*adminv1.SourceFile{{Name: "hello.go", Content: src}}
	return &adminv1.Package{Name: "hello", Version: 1, Sha256: snapshot.PackageHash(files), Services: []string{"hello.greet"}, Sources: files}
}

var helloChannel = &adminv1.Channel{Name: "hello", Path: "/api/hello", Methods: []string{"POST"}, Service: "hello.greet", Active: proto.Bool(true)}

func snapOf(rev int64, pkg *adminv1.Package) *agentv1.Desired {
	s := &agentv1.Desired{Revision: rev, Packages: []*adminv1.Package{pkg}, Channels: []*adminv1.Channel{helloChannel}}
	s.Hash = snapshot.Hash(s)
	return s
}

// socketPair returns the two ends of a unix socket pair, as the agent
// makes for each worker.
func socketPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int, name string) net.Conn {
		f := os.NewFile(uintptr(fd), name)
		defer f.Close() // FileConn dups it
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	return conn(fds[0], "worker"), conn(fds[1], "agent")
}

// dial returns a client of the worker on conn, as the supervisor makes.
func dial(t *testing.T, conn net.Conn) workerv1.WorkerServiceClient {
	t.Helper()
	var mu sync.Mutex
	used := false
	cc, err := grpc.NewClient("passthrough:///worker",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(context.Context, string) (net.Conn, error) {
			mu.Lock()
			defer mu.Unlock()
			if used {
				return nil, errors.New("the socket pair was used")
			}
			used = true
			return conn, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return workerv1.NewWorkerServiceClient(cc)
}

// stream collects what an Events stream delivers.
type stream struct {
	mu     sync.Mutex
	events []*workerv1.Event
	logs   []*workerv1.LogRecord
	stats  []*agentv1.StatsBucket
	ended  chan error // the Recv error that ended it
}

func readEvents(t *testing.T, api workerv1.WorkerServiceClient) *stream {
	t.Helper()
	es, err := api.Events(context.Background(), &workerv1.EventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	s := &stream{ended: make(chan error, 1)}
	go func() {
		for {
			b, err := es.Recv()
			if err != nil {
				s.ended <- err
				return
			}
			s.mu.Lock()
			s.events = append(s.events, b.GetEvents()...)
			s.logs = append(s.logs, b.GetLogs()...)
			s.stats = append(s.stats, b.GetStats()...)
			s.mu.Unlock()
		}
	}()
	return s
}

// count sums the counts of the buckets of kind and name received.
func (s *stream) count(kind, name string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, b := range s.stats {
		if b.GetKind() == kind && b.GetName() == name {
			n += b.GetCount()
		}
	}
	return n
}

func (s *stream) event(cid, kind string) *workerv1.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.events {
		if e.GetCid() == cid && e.GetKind() == kind {
			return e
		}
	}
	return nil
}

func (s *stream) record(msg string) *workerv1.LogRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.logs {
		if r.GetMessage() == msg {
			return r
		}
	}
	return nil
}

// post calls the hello channel with name and returns its status and body.
func post(t *testing.T, addr net.Addr, name string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Post("http://"+addr.String()+"/api/hello", "application/json", strings.NewReader(`{"name":"`+name+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func wantGreeting(t *testing.T, addr net.Addr, name, greeting string) {
	t.Helper()
	code, body := post(t, addr, name)
	if want := greeting + ", " + name + "!"; code != http.StatusOK || !strings.Contains(body, want) {
		t.Fatalf("POST /api/hello = %d %s, want 200 with %q", code, body, want)
	}
}

func wantCode(t *testing.T, err error, code codes.Code) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("err = %v, want %s", err, code)
	}
}

func TestRunServesTheAgent(t *testing.T) {
	prev := debug.SetGCPercent(100) // Run sets it for the process
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	workerEnd, agentEnd := socketPair(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	cfg := Config{
		Index: 1, InvokeTimeout: 20 * time.Second, MaxBodyBytes: 1 << 20, HTTPReadTimeout: 20 * time.Second,
		ShutdownTimeout: 20 * time.Second, GCPercent: 100, SlowThreshold: time.Minute, LogLevel: slog.LevelInfo, Stats: true,
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- Run(ctx, cfg, Listeners{Plain: lis}, workerEnd) }()
	var once sync.Once
	var runErr error
	stopped := func() error { // Run's result, once it returned
		once.Do(func() {
			cancel()
			select {
			case runErr = <-ran:
			case <-time.After(30 * time.Second):
				runErr = errors.New("Run did not return within 30s of its context's end")
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = stopped() })

	api := dial(t, agentEnd)
	rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Minute) // bounds every call below
	defer rcancel()
	events := readEvents(t, api)

	// Load v1 and serve it.
	v1 := snapOf(1, helloPackage(t, "Hello", ""))
	prep, err := api.Prepare(rctx, &workerv1.PrepareRequest{Desired: v1})
	if err != nil || len(prep.GetErrors()) > 0 {
		t.Fatalf("Prepare v1 = %v, %v", prep.GetErrors(), err)
	}
	if prep.GetHash() != v1.GetHash() {
		t.Fatalf("Prepare hash = %s, want the snapshot's %s", prep.GetHash(), v1.GetHash())
	}
	if _, err := api.Commit(rctx, &workerv1.CommitRequest{}); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	_, err = api.Commit(rctx, &workerv1.CommitRequest{})
	wantCode(t, err, codes.FailedPrecondition)
	for range 2 { // a second Serve changes nothing
		if _, err := api.Serve(rctx, &workerv1.ServeRequest{}); err != nil {
			t.Fatalf("Serve: %v", err)
		}
	}
	wantGreeting(t, lis.Addr(), "Ada", "Hello")

	inv, err := api.Invoke(rctx, &workerv1.InvokeRequest{Service: "hello.greet", Input: []byte(`{"name":"Bob"}`), Cid: "cid-bob"})
	if err != nil {
		t.Fatal(err)
	}
	if inv.GetStatus() != http.StatusOK || inv.GetCid() != "cid-bob" || !bytes.Contains(inv.GetOutput(), []byte("Hello, Bob!")) || inv.GetDurationNs() <= 0 {
		t.Fatalf("Invoke = %v", inv)
	}

	// Statistics come every second; events of fast successful calls do not
	// come at all while nobody tails and the agent has no metrics.
	poll(t, "statistics of the request and the invocation", func() bool {
		return events.count(observe.KindChannel, "hello") >= 1 && events.count(observe.KindService, "hello.greet") >= 2
	})
	if n := events.count(observe.KindService, "hello.greet"); n != 2 {
		t.Fatalf("counted %d invocations, want 2", n)
	}
	events.mu.Lock()
	sent := len(events.events)
	events.mu.Unlock()
	if sent != 0 {
		t.Fatalf("the worker sent %d events of fast successful calls, with no tail and no metrics", sent)
	}
	// The worker's log goes to the agent, attrs and all.
	poll(t, "the engine's log record", func() bool { return events.record("applied snapshot") != nil })
	if r := events.record("applied snapshot"); !hasAttr(r, "component", "engine") || !hasAttr(r, "revision", "1") {
		t.Fatalf("record %v lacks component=engine, revision=1", r)
	}

	// A tail gets every invocation, with its bodies.
	if _, err := api.SetTailing(rctx, &workerv1.SetTailingRequest{Tailing: true}); err != nil {
		t.Fatal(err)
	}
	input := []byte(`{"name":"Cy"}`)
	if _, err := api.Invoke(rctx, &workerv1.InvokeRequest{Service: "hello.greet", Input: input, Cid: "cid-cy"}); err != nil {
		t.Fatal(err)
	}
	poll(t, "the tailed invocation's event", func() bool { return events.event("cid-cy", observe.KindService) != nil })
	if e := events.event("cid-cy", observe.KindService); e.GetOrigin() != observe.OriginInvoke || !bytes.Equal(e.GetInput(), input) ||
		!bytes.Contains(e.GetOutput(), []byte("Hello, Cy!")) || e.GetStatus() != 200 || e.GetFailed() {
		t.Fatalf("tailed event = %v", e)
	}
	if _, err := api.SetTailing(rctx, &workerv1.SetTailingRequest{Tailing: false}); err != nil {
		t.Fatal(err)
	}

	// A broken package is refused and v1 keeps serving.
	broken := snapOf(2, helloPackage(t, "Hello", "\nfunc broken() { undefinedThing() }\n"))
	prep, err = api.Prepare(rctx, &workerv1.PrepareRequest{Desired: broken})
	if err != nil {
		t.Fatal(err)
	}
	if errs := prep.GetErrors(); len(errs) == 0 || !strings.Contains(errs[0].GetMessage(), "undefinedThing") {
		t.Fatalf("Prepare of a broken package = %v, want an error naming undefinedThing", errs)
	}
	_, err = api.Commit(rctx, &workerv1.CommitRequest{})
	wantCode(t, err, codes.FailedPrecondition) // nothing was held
	wantGreeting(t, lis.Addr(), "Ada", "Hello")

	// An aborted snapshot is never served, and frees the worker for the
	// next.
	v2 := snapOf(3, helloPackage(t, "Howdy", ""))
	if prep, err = api.Prepare(rctx, &workerv1.PrepareRequest{Desired: v2}); err != nil || len(prep.GetErrors()) > 0 {
		t.Fatalf("Prepare v2 = %v, %v", prep.GetErrors(), err)
	}
	_, err = api.Prepare(rctx, &workerv1.PrepareRequest{Desired: v2})
	wantCode(t, err, codes.FailedPrecondition)
	if _, err := api.Abort(rctx, &workerv1.AbortRequest{}); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	if _, err := api.Abort(rctx, &workerv1.AbortRequest{}); err != nil {
		t.Fatalf("Abort with nothing prepared: %v", err)
	}
	wantGreeting(t, lis.Addr(), "Ada", "Hello")
	if prep, err = api.Prepare(rctx, &workerv1.PrepareRequest{Desired: v2}); err != nil || len(prep.GetErrors()) > 0 {
		t.Fatalf("Prepare v2 after Abort = %v, %v", prep.GetErrors(), err)
	}
	if _, err := api.Commit(rctx, &workerv1.CommitRequest{}); err != nil {
		t.Fatalf("Commit v2: %v", err)
	}
	wantGreeting(t, lis.Addr(), "Ada", "Howdy")

	invResp, err := api.Inventory(rctx, &workerv1.InventoryRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if pk := invResp.GetInventory().GetPackages(); invResp.GetInventory().GetAppliedRevision() != 3 || len(pk) != 1 || pk[0].GetSha256() != v2.GetPackages()[0].GetSha256() {
		t.Fatalf("Inventory = %v, want revision 3 with v2's package", invResp.GetInventory())
	}
	ping, err := api.Ping(rctx, &workerv1.PingRequest{Connection: "nope"})
	if err != nil || ping.GetError() == "" {
		t.Fatalf("Ping of an unknown connection = %v, %v; want an error in the response", ping, err)
	}

	// The end: Run returns, the Events stream ends cleanly, and the
	// channels are no longer answered.
	if err := stopped(); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	select {
	case err := <-events.ended:
		if !errors.Is(err, io.EOF) {
			t.Fatalf("Events ended with %v, want io.EOF", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the Events stream did not end after Run returned")
	}
	if c, err := net.DialTimeout("tcp", lis.Addr().String(), 5*time.Second); err == nil {
		c.Close()
		t.Fatal("the channels' listener still accepts after Run returned")
	}
}

func TestRunEndsWhenTheAgentHangsUp(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	workerEnd, agentEnd := socketPair(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cfg := Config{Index: 1, InvokeTimeout: time.Second, MaxBodyBytes: 1 << 20, HTTPReadTimeout: time.Second, ShutdownTimeout: 10 * time.Second, GCPercent: 100, SlowThreshold: time.Second}
	ran := make(chan error, 1)
	go func() { ran <- Run(ctx, cfg, Listeners{Plain: lis}, workerEnd) }()

	api := dial(t, agentEnd)
	rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer rcancel()
	if _, err := api.Inventory(rctx, &workerv1.InventoryRequest{}); err != nil {
		t.Fatalf("Inventory: %v", err)
	}
	agentEnd.Close() // the agent is gone
	select {
	case err := <-ran:
		if err != nil {
			t.Fatalf("Run = %v, want nil when the agent hangs up", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after the agent hung up")
	}
}

func hasAttr(r *workerv1.LogRecord, k, v string) bool {
	for _, a := range r.GetAttrs() {
		if a.GetKey() == k && a.GetValue() == v {
			return true
		}
	}
	return false
}

func TestRunWritesProfiles(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	dir := t.TempDir()
	cfg := Config{Index: 2, InvokeTimeout: time.Second, MaxBodyBytes: 1 << 20, HTTPReadTimeout: time.Second, ShutdownTimeout: 10 * time.Second, GCPercent: 100, SlowThreshold: time.Second, ProfileDir: dir}

	t.Run("a directory that is not there", func(t *testing.T) {
		workerEnd, agentEnd := socketPair(t)
		t.Cleanup(func() { workerEnd.Close(); agentEnd.Close() })
		bad := cfg
		bad.ProfileDir = filepath.Join(dir, "missing")
		if err := Run(context.Background(), bad, Listeners{}, workerEnd); err == nil || !strings.Contains(err.Error(), "profile the worker") {
			t.Fatalf("Run = %v, want an error about the profile", err)
		}
	})

	workerEnd, agentEnd := socketPair(t)
	ran := make(chan error, 1)
	go func() { ran <- Run(context.Background(), cfg, Listeners{}, workerEnd) }()
	api := dial(t, agentEnd)
	rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer rcancel()
	if _, err := api.Inventory(rctx, &workerv1.InventoryRequest{}); err != nil {
		t.Fatalf("Inventory: %v", err)
	}
	agentEnd.Close()
	select {
	case err := <-ran:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after the agent hung up")
	}
	base := filepath.Join(dir, fmt.Sprintf("worker-2-%d", os.Getpid()))
	for _, name := range []string{base + ".cpu.pprof", base + ".allocs.pprof"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b { // pprof's format is gzipped
			t.Fatalf("%s holds %d bytes, not a profile", name, len(b))
		}
	}
}
