package supervisor

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
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

	"github.com/weft-dev/weft/agent/sdk"
	"github.com/weft-dev/weft/agent/shared/snapshot"
	"github.com/weft-dev/weft/agent/worker"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
	workerv1 "github.com/weft-dev/weft/proto/weft/worker/v1"
	"github.com/weft-dev/weft/tests/testenv"
)

func files(content string) []*adminv1.SourceFile {
	return []*adminv1.SourceFile{{Name: "x.go", Content: []byte(content)}}
}

// testPool returns a pool of the given workers, which runs no processes.
func testPool(ws ...*proc) *Pool {
	log := slog.New(slog.DiscardHandler)
	p := &Pool{cfg: Config{Log: log}, log: log, changed: make(chan struct{})}
	empty := map[string]time.Duration{}
	p.slow.Store(&empty)
	for i, w := range ws {
		p.slots = append(p.slots, &slot{index: i + 1, w: w})
	}
	return p
}

func TestWithFiles(t *testing.T) {
	heldFiles, ownFiles := files("package held"), files("package own")
	p := testPool()
	snap := &agentv1.Desired{
		Revision: 7, Nonce: "n", Hash: "h",
		Channels: []*adminv1.Channel{{Name: "c"}}, Security: []*adminv1.SecurityDefinition{{Name: "s"}},
		Outgoing: []*adminv1.OutgoingConnection{{Name: "o"}}, Jobs: []*adminv1.Job{{Name: "j"}},
		Packages: []*adminv1.Package{
			{Name: "held", Version: 2, Sha256: "sha-held", Services: []string{"held.a"}},    // left out: the pool serves it
			{Name: "own", Version: 1, Sha256: "sha-held-too", Sources: ownFiles},            // comes with its own
			{Name: "unknown", Version: 1, Sha256: "sha-unknown", Services: []string{"u.a"}}, // left out, not held
		},
	}
	orig := proto.Clone(snap)

	// Before anything is applied, the snapshot goes as it came.
	if got := p.withFiles(snap); !proto.Equal(got, orig) {
		t.Fatalf("withFiles with nothing applied = %v, want %v", got, orig)
	}

	p.applied.Store(&agentv1.Desired{Revision: 6, Packages: []*adminv1.Package{
		{Name: "held", Version: 1, Sha256: "sha-held", Sources: heldFiles},
		{Name: "other", Sha256: "sha-held-too", Sources: heldFiles},
	}})
	got := p.withFiles(snap)
	if !proto.Equal(snap, orig) {
		t.Fatal("withFiles changed the snapshot it was given")
	}
	if got.GetRevision() != 7 || got.GetNonce() != "n" || got.GetHash() != "h" || len(got.GetChannels()) != 1 ||
		len(got.GetSecurity()) != 1 || len(got.GetOutgoing()) != 1 || len(got.GetJobs()) != 1 {
		t.Fatalf("withFiles lost fields of the snapshot: %v", got)
	}
	pk := got.GetPackages()
	if len(pk) != 3 {
		t.Fatalf("withFiles returned %d packages, want 3", len(pk))
	}
	// The held package gets the applied one's files, and keeps the rest of
	// its own fields.
	if !proto.Equal(pk[0], &adminv1.Package{Name: "held", Version: 2, Sha256: "sha-held", Services: []string{"held.a"}, Sources: heldFiles}) {
		t.Fatalf("held package = %v, want its own fields with the applied files", pk[0])
	}
	if pk[1] != snap.GetPackages()[1] {
		t.Fatalf("a package with files = %v, want it as it came", pk[1])
	}
	if pk[2] != snap.GetPackages()[2] || len(pk[2].GetSources()) != 0 {
		t.Fatalf("an unknown package = %v, want it as it came, without files", pk[2])
	}
}

func TestAppliedOf(t *testing.T) {
	full := &agentv1.Desired{
		Revision: 3, Nonce: "secret-ish", Hash: "from the control plane",
		Channels: []*adminv1.Channel{{Name: "c"}}, Jobs: []*adminv1.Job{{Name: "j"}},
		Packages: []*adminv1.Package{{Name: "p", Version: 4, Sha256: "s", Services: []string{"p.a"}, Sources: files("package p")}},
	}
	got := appliedOf(full, "engine-hash")
	want := &agentv1.Desired{
		Revision: 3, Hash: "engine-hash",
		Channels: full.GetChannels(), Jobs: full.GetJobs(),
		Packages: []*adminv1.Package{{Name: "p", Version: 4, Sha256: "s", Services: []string{"p.a"}, Sources: files("package p")}},
	}
	if !proto.Equal(got, want) {
		t.Fatalf("appliedOf = %v, want %v", got, want)
	}
}

// helloPackage is the example hello package greeting with greeting, with
// pad bytes of comment appended.
func helloPackage(t *testing.T, greeting string, pad int) *adminv1.Package {
	t.Helper()
	src, err := os.ReadFile("../../deploy/examples/hello/hello.go")
	if err != nil {
		t.Fatal(err)
	}
	src = []byte(strings.Replace(string(src), `"Hello"`, `"`+greeting+`"`, 1) + "\n// " + strings.Repeat("x", pad) + "\n")
	fs := []*adminv1.SourceFile{{Name: "hello.go", Content: src}}
	return &adminv1.Package{Name: "hello", Version: 1, Sha256: snapshot.PackageHash(fs), Services: []string{"hello.greet"}, Sources: fs}
}

func snapOf(rev int64, pkg *adminv1.Package) *agentv1.Desired {
	s := &agentv1.Desired{Revision: rev, Nonce: "nonce", Packages: []*adminv1.Package{pkg}}
	s.Hash = snapshot.Hash(s)
	return s
}

// inProcessWorker runs worker.Run in this process on a socket pair, and
// returns it as the pool's proc; it stops with the test.
func inProcessWorker(t *testing.T, index int, maxPackageBytes int64) *proc {
	t.Helper()
	w, _ := stoppableWorker(t, index, maxPackageBytes)
	return w
}

// stoppableWorker is inProcessWorker, and a function that stops the worker
// as SIGTERM stops a worker process, returning once its Run has.
func stoppableWorker(t *testing.T, index int, maxPackageBytes int64) (*proc, func()) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	fileConn := func(fd int) net.Conn {
		f := os.NewFile(uintptr(fd), "pair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	workerEnd, agentEnd := fileConn(fds[0]), fileConn(fds[1])
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := worker.Config{
		Index: index, InvokeTimeout: 20 * time.Second, MaxBodyBytes: 1 << 20, MaxPackageBytes: maxPackageBytes,
		HTTPReadTimeout: 20 * time.Second, ShutdownTimeout: 20 * time.Second, GCPercent: 100, SlowThreshold: time.Minute, LogLevel: slog.LevelInfo,
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- worker.Run(ctx, cfg, worker.Listeners{Plain: lis}, workerEnd) }()
	var mu sync.Mutex
	used := false
	cc, err := grpc.NewClient("passthrough:///worker",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(context.Context, string) (net.Conn, error) {
			mu.Lock()
			defer mu.Unlock()
			if used {
				return nil, errors.New("used")
			}
			used = true
			return agentEnd, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	w := &proc{index: index, conn: cc, api: workerv1.NewWorkerServiceClient(cc), ended: make(chan struct{})}
	w.alive, w.died = context.WithCancel(context.Background())
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-ran:
				if err != nil {
					t.Errorf("worker %d: Run = %v", index, err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("worker %d did not stop", index)
			}
		})
	}
	t.Cleanup(func() {
		stop()
		cc.Close()
		lis.Close()
		w.died()
	})
	return w, stop
}

// greets checks that w answers hello.greet with greeting.
func greets(t *testing.T, w *proc, greeting string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := w.api.Invoke(ctx, &workerv1.InvokeRequest{Service: "hello.greet", Input: []byte(`{"name":"Ada"}`)})
	if err != nil {
		t.Fatalf("worker %d: %v", w.index, err)
	}
	if want := greeting + ", Ada!"; resp.GetStatus() != http.StatusOK || !bytes.Contains(resp.GetOutput(), []byte(want)) {
		t.Fatalf("worker %d answered %d %s %s, want %q", w.index, resp.GetStatus(), resp.GetOutput(), resp.GetError(), want)
	}
}

func TestApplyIsAllOrNothing(t *testing.T) {
	prev := debug.SetGCPercent(100) // worker.Run sets it for the process
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	v1 := helloPackage(t, "Hello", 0)
	size := int64(len(v1.GetSources()[0].GetContent()))
	w1 := inProcessWorker(t, 1, 0)
	w2 := inProcessWorker(t, 2, size+50) // takes v1, not v2 below
	p := testPool(w1, w2)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	s1 := snapOf(1, v1)
	applied, errs := p.Apply(ctx, s1)
	if len(errs) > 0 {
		t.Fatalf("Apply v1: %v", errs)
	}
	if applied.GetHash() != s1.GetHash() || applied.GetNonce() != "" || len(applied.GetPackages()[0].GetSources()) != 1 || p.Applied() != applied {
		t.Fatalf("applied %v, want v1 with its hash and files and no nonce", applied)
	}
	greets(t, w1, "Hello")
	greets(t, w2, "Hello")

	// One worker refuses: none serves it, and the other drops what it
	// prepared.
	_, errs = p.Apply(ctx, snapOf(2, helloPackage(t, "Howdy", 200)))
	if len(errs) == 0 || !strings.Contains(errs[0].GetMessage(), "--max-package-bytes") {
		t.Fatalf("Apply of a package too big for worker 2 = %v, want its refusal", errs)
	}
	if p.Applied() != applied {
		t.Fatalf("applied after a refusal = %v, want v1", p.Applied())
	}
	for _, w := range []*proc{w1, w2} {
		greets(t, w, "Hello")
		if _, err := w.api.Commit(ctx, &workerv1.CommitRequest{}); status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("worker %d: Commit after a refused Apply = %v, want FailedPrecondition: it still holds the refused snapshot", w.index, err)
		}
	}

	// A worker that holds nothing (a replacement) gets the files of a
	// package the snapshot leaves out from the one served.
	w3 := inProcessWorker(t, 3, 0)
	p.mu.Lock()
	p.slots = append(p.slots, &slot{index: 3, w: w3})
	p.mu.Unlock()
	held := &adminv1.Package{Name: v1.GetName(), Version: v1.GetVersion(), Sha256: v1.GetSha256(), Services: v1.GetServices()}
	applied, errs = p.Apply(ctx, snapOf(3, held))
	if len(errs) > 0 {
		t.Fatalf("Apply of a file-less snapshot: %v", errs)
	}
	if applied.GetRevision() != 3 || len(applied.GetPackages()[0].GetSources()) != 1 {
		t.Fatalf("applied %v, want revision 3 with the package's files", applied)
	}
	for _, w := range []*proc{w1, w2, w3} {
		greets(t, w, "Hello")
		inv, err := w.api.Inventory(ctx, &workerv1.InventoryRequest{})
		if err != nil || inv.GetInventory().GetAppliedRevision() != 3 {
			t.Fatalf("worker %d serves revision %d (%v), want 3", w.index, inv.GetInventory().GetAppliedRevision(), err)
		}
	}
	for range 3 {
		if out := p.Invoke(ctx, "hello.greet", sdk.Request{}, []byte(`{"name":"Ada"}`), 0); out.Status != http.StatusOK || out.CID == "" {
			t.Fatalf("Pool.Invoke = %d %s (cid %q)", out.Status, out.Error, out.CID)
		}
	}
}

func TestEventsEndQuietlyWhenTheWorkerStops(t *testing.T) {
	prev := debug.SetGCPercent(100) // worker.Run sets it for the process
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	// The proc has no process: were the pool to kill it, the test would
	// panic.
	w, stop := stoppableWorker(t, 1, 0)
	var logs syncBuffer
	p := testPool(w)
	p.log = slog.New(slog.NewTextHandler(&logs, nil))
	p.cfg.Log = p.log
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.events(w)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := w.api.Prepare(ctx, &workerv1.PrepareRequest{Desired: snapOf(1, helloPackage(t, "Hello", 0))}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.api.Commit(ctx, &workerv1.CommitRequest{}); err != nil {
		t.Fatal(err)
	}
	// The worker's log line comes over the stream: it is up.
	testenv.Await(t, time.Minute, "the worker's log line, over its stream", func() (bool, string) {
		return strings.Contains(logs.String(), "applied snapshot"), logs.String()
	})
	stop()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the pool still reads the events of a worker that stopped")
	}
	if strings.Contains(logs.String(), "lost the stream") {
		t.Fatalf("a worker stopping took its stream as lost:\n%s", logs.String())
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a reader at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
