package engine

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/weft-dev/weft/agent/observe"
	"github.com/weft-dev/weft/agent/sdk"
	"github.com/weft-dev/weft/agent/shared/snapshot"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
	"github.com/weft-dev/weft/tests/testenv"
)

func helloPackage(t *testing.T, greeting string) *adminv1.Package {
	t.Helper()
	src, err := os.ReadFile("../../deploy/examples/hello/hello.go")
	if err != nil {
		t.Fatal(err)
	}
	src = []byte(strings.Replace(string(src), `"Hello"`, `"`+greeting+`"`, 1))
	files := []*adminv1.SourceFile{{Name: "hello.go", Content: src}}
	return &adminv1.Package{Name: "hello", Version: 1, Sha256: snapshot.PackageHash(files), Services: []string{"hello.greet"}, Sources: files}
}

func snap(rev int64, pkgs []*adminv1.Package, chans ...*adminv1.Channel) *agentv1.Desired {
	s := &agentv1.Desired{Revision: rev, Packages: pkgs, Channels: chans}
	s.Hash = snapshot.Hash(s)
	return s
}

func greet(t *testing.T, e *Engine) string {
	t.Helper()
	out := e.Invoke(context.Background(), "hello.greet", sdk.Request{}, []byte(`{"name":"Ada"}`), 0)
	if out.Status != http.StatusOK {
		t.Fatalf("invoke = %d %s", out.Status, out.Error)
	}
	return string(out.Output)
}

func TestApplySwapsAndRefuses(t *testing.T) {
	e := New(slog.New(slog.DiscardHandler), 5*time.Second)
	if out := e.Invoke(context.Background(), "hello.greet", sdk.Request{}, nil, 0); out.Status != http.StatusServiceUnavailable {
		t.Fatalf("invoke before any snapshot = %d, want 503", out.Status)
	}
	ch := &adminv1.Channel{Name: "hello", Path: "/api/hello", Methods: []string{"POST"}, Service: "hello.greet", Active: proto.Bool(true)}
	v1 := helloPackage(t, "Hello")
	st, errs := e.Apply(context.Background(), snap(1, []*adminv1.Package{v1}, ch))
	if len(errs) > 0 {
		t.Fatalf("apply v1: %v", errs)
	}
	if st.Hash != snapshot.Hash(snap(1, []*adminv1.Package{v1}, ch)) {
		t.Fatal("state hash differs from the snapshot's")
	}
	if got := greet(t, e); !strings.Contains(got, "Hello, Ada!") {
		t.Fatalf("v1 output = %s", got)
	}

	// A package the agent holds may come without its files.
	held := &adminv1.Package{Name: v1.Name, Version: v1.Version, Sha256: v1.Sha256, Services: v1.Services}
	if _, errs := e.Apply(context.Background(), snap(2, []*adminv1.Package{held}, ch)); len(errs) > 0 {
		t.Fatalf("apply without files: %v", errs)
	}
	if e.Current().Revision() != 2 || len(e.Current().Snapshot.GetPackages()[0].GetSources()) != 1 {
		t.Fatal("the state after a file-less snapshot lost the package's files")
	}

	// Every kind of bad snapshot is refused, and v1 keeps serving.
	broken := helloPackage(t, "Hello")
	broken.Sources[0].Content = append(broken.Sources[0].Content, []byte("\nfunc broken() { undefinedThing() }\n")...)
	broken.Sha256 = snapshot.PackageHash(broken.Sources)
	tests := []struct {
		name string
		snap *agentv1.Desired
		want string
	}{
		{"compile error", snap(3, []*adminv1.Package{broken}, ch), "undefined: undefinedThing"},
		{"hash mismatch", snap(3, []*adminv1.Package{{Name: "hello", Sha256: "beef", Services: v1.Services, Sources: v1.Sources}}, ch), "files hash to"},
		{"files missing", snap(3, []*adminv1.Package{{Name: "other", Sha256: "beef"}}), "does not hold them"},
		{"channel without service", snap(3, []*adminv1.Package{held}, &adminv1.Channel{Name: "x", Path: "/x", Methods: []string{"POST"}, Service: "nope", Active: proto.Bool(true)}), `service "nope" is not in the snapshot`},
		{"colliding channels", snap(3, []*adminv1.Package{held}, ch, &adminv1.Channel{Name: "y", Path: "/api/hello", Methods: []string{"POST"}, Service: "hello.greet", Active: proto.Bool(true)}), "both take POST"},
		{"services differ", snap(3, []*adminv1.Package{{Name: "hello", Sha256: v1.Sha256, Services: []string{"hello.other"}}}), "registers services"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := e.Apply(context.Background(), tt.snap)
			if len(errs) == 0 {
				t.Fatal("Apply succeeded, want errors")
			}
			var msgs []string
			for _, err := range errs {
				msgs = append(msgs, err.GetMessage())
			}
			if all := strings.Join(msgs, "\n"); !strings.Contains(all, tt.want) {
				t.Fatalf("errors = %s, want one containing %q", all, tt.want)
			}
			if e.Current().Revision() != 2 {
				t.Fatalf("revision after a refused snapshot = %d, want 2", e.Current().Revision())
			}
			if got := greet(t, e); !strings.Contains(got, "Hello, Ada!") {
				t.Fatalf("output after a refused snapshot = %s", got)
			}
		})
	}

	// A new version swaps in.
	v2 := helloPackage(t, "Howdy")
	if _, errs := e.Apply(context.Background(), snap(4, []*adminv1.Package{v2}, ch)); len(errs) > 0 {
		t.Fatalf("apply v2: %v", errs)
	}
	if got := greet(t, e); !strings.Contains(got, "Howdy, Ada!") {
		t.Fatalf("v2 output = %s", got)
	}
	if got := e.HeldHashes(); len(got) != 1 || got[0] != v2.Sha256 {
		t.Fatalf("HeldHashes = %v, want [%s]", got, v2.Sha256)
	}
}

func TestInvokeStatuses(t *testing.T) {
	e := New(slog.New(slog.DiscardHandler), 5*time.Second)
	if _, errs := e.Apply(context.Background(), snap(1, []*adminv1.Package{helloPackage(t, "Hello")})); len(errs) > 0 {
		t.Fatal(errs)
	}
	tests := []struct {
		name    string
		service string
		input   string
		status  int
		want    string
	}{
		{"ok", "hello.greet", `{"name":"Ada"}`, 200, ""},
		{"required field", "hello.greet", `{}`, 400, `"name" is required`},
		{"service error", "hello.greet", `{"name":"Ada","language":"xx"}`, 400, "unknown language"},
		{"unknown service", "nope", `{}`, 404, `service "nope" is not deployed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := e.Invoke(context.Background(), tt.service, sdk.Request{}, []byte(tt.input), 0)
			if out.Status != tt.status || !strings.Contains(out.Error, tt.want) || out.CID == "" {
				t.Fatalf("Invoke = %d %q (cid %q), want %d containing %q", out.Status, out.Error, out.CID, tt.status, tt.want)
			}
		})
	}
}

func TestInventory(t *testing.T) {
	e := New(slog.New(slog.DiscardHandler), 5*time.Second)
	if inv := e.Inventory(); inv.GetAppliedRevision() != 0 || len(inv.GetPackages()) != 0 || inv.GetGoroutines() == 0 {
		t.Fatalf("inventory before any snapshot = %v", inv)
	}
	v1 := helloPackage(t, "Hello")
	if _, errs := e.Apply(context.Background(), snap(3, []*adminv1.Package{v1})); len(errs) > 0 {
		t.Fatal(errs)
	}
	inv := e.Inventory()
	if inv.GetAppliedRevision() != 3 || len(inv.GetPackages()) != 1 {
		t.Fatalf("inventory = %v", inv)
	}
	p := inv.GetPackages()[0]
	if p.GetName() != "hello" || p.GetSha256() != v1.Sha256 || p.GetMemoryBytes() <= 0 || p.GetLoadedAtUnixMs() == 0 {
		t.Fatalf("loaded package = %v, want hello with its memory and load time", p)
	}
	// A package reused by the next snapshot keeps what its load measured.
	if _, errs := e.Apply(context.Background(), snap(4, []*adminv1.Package{v1})); len(errs) > 0 {
		t.Fatal(errs)
	}
	if q := e.Inventory().GetPackages()[0]; q.GetMemoryBytes() != p.GetMemoryBytes() || q.GetLoadedAtUnixMs() != p.GetLoadedAtUnixMs() {
		t.Fatalf("after a reuse = %v, want %v", q, p)
	}
}

// TestCallOnAReplacedState: a call that read the state just before a swap
// and starts after the replaced interpreter closed is served by the newer
// state, not answered "service is closed".
func TestCallOnAReplacedState(t *testing.T) {
	logs := &testenv.LogBuffer{}
	e := New(slog.New(slog.NewTextHandler(logs, nil)), 5*time.Second)
	if _, errs := e.Apply(context.Background(), snap(1, []*adminv1.Package{helloPackage(t, "Hello")})); len(errs) > 0 {
		t.Fatalf("apply v1: %v", errs)
	}
	old := e.Current()
	if _, errs := e.Apply(context.Background(), snap(2, []*adminv1.Package{helloPackage(t, "Howdy")})); len(errs) > 0 {
		t.Fatalf("apply v2: %v", errs)
	}
	testenv.Await(t, 30*time.Second, "the replaced interpreter closed", func() (bool, string) {
		return strings.Contains(logs.String(), "closed the interpreter of a replaced package"), logs.String()
	})
	out, _ := e.invokeWith(context.Background(), old, "hello.greet", sdk.Request{}, []byte(`{"name":"Ada"}`), 0, observe.OriginChannel, nil)
	if out.Status != http.StatusOK || !strings.Contains(string(out.Output), "Howdy, Ada!") {
		t.Fatalf("a call on the replaced state = %d %s %s; want the newer state's answer", out.Status, out.Error, out.Output)
	}
}
