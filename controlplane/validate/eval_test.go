package validate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// The test binary is its own child: started with ChildCommand it runs
// ChildMain, as weft-controlplane does; probeCommand and hangCommand are
// children that misbehave on purpose.
const (
	probeCommand = "probe-child"
	hangCommand  = "hang-child"
)

func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case ChildCommand:
			os.Exit(ChildMain(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
		case probeCommand:
			// Answer with what the child sees around it.
			wd, _ := os.Getwd()
			_ = json.NewEncoder(os.Stdout).Encode(childAnswer{Services: append(os.Environ(), "cwd="+wd)})
			os.Exit(0)
		case hangCommand:
			time.Sleep(time.Hour)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

// testEvaluator returns an evaluator whose children are this test binary
// run as sub (ChildCommand, or a probe), with lim.
func testEvaluator(t *testing.T, sub string, lim EvalLimits) *Evaluator {
	t.Helper()
	self, err := SelfCommand()
	if err != nil {
		t.Fatal(err)
	}
	self[1] = sub
	return NewEvaluator(self, lim, discard)
}

var discard = slog.New(slog.DiscardHandler)

var testLimits = EvalLimits{CPU: time.Second, Memory: 256 << 20, Timeout: 30 * time.Second}

const evalHeader = "package svc\n\nimport \"github.com/weft-dev/weft/agent/sdk\"\n\n"

const evalHandler = "\nfunc h(ctx *sdk.Context, in map[string]any) (map[string]any, error) { return in, nil }\n"

// TestPackageEvaluation holds where the door runs a package's code: a
// package whose source tells its services starts no child; one that
// registers in a loop is evaluated in one; without an evaluator, that one
// is refused.
func TestPackageEvaluation(t *testing.T) {
	ev := testEvaluator(t, ChildCommand, testLimits)
	static := []*adminv1.SourceFile{{Name: "svc.go", Content: []byte(evalHeader + "func init() { sdk.Register(\"svc.a\", h) }\n" + evalHandler)}}
	dynamic := []*adminv1.SourceFile{{Name: "svc.go", Content: []byte(evalHeader + "func init() {\n\tfor _, n := range []string{\"b\", \"a\"} {\n\t\tsdk.Register(\"svc.\"+n, h)\n\t}\n}\n" + evalHandler)}}

	p, err := Package(context.Background(), "", static, ev)
	if err != nil || !slices.Equal(p.Services, []string{"svc.a"}) {
		t.Fatalf("static: %+v, %v", p.Services, err)
	}
	if n := ev.Evaluations(); n != 0 {
		t.Fatalf("static: %d children started, want none", n)
	}
	p, err = Package(context.Background(), "", dynamic, ev)
	if err != nil || !slices.Equal(p.Services, []string{"svc.a", "svc.b"}) {
		t.Fatalf("dynamic: %+v, %v", p.Services, err)
	}
	if n := ev.Evaluations(); n != 1 {
		t.Fatalf("dynamic: %d children started, want 1", n)
	}
	noChildren(t)
	if _, err := Package(context.Background(), "", dynamic, nil); err == nil ||
		!strings.Contains(err.Error(), "only running the package tells its services (svc.go:6: an init function runs more than sdk.Register calls)") {
		t.Fatalf("dynamic without an evaluator: %v", err)
	}
}

// TestEval runs packages that misbehave in init in real children: each
// is refused with what it exceeded or what the runtime says, clipped, and
// no child is left. (That a child can open no file is package confine's
// test: the door refuses every route to one the allow-list had.)
func TestEval(t *testing.T) {
	tests := []struct {
		name string
		lim  EvalLimits
		code string   // after evalHeader
		want []string // one of them in the error
	}{
		{"spin", testLimits, "var n int\n\nfunc init() {\n\tsdk.Register(\"x\", h)\n\tfor {\n\t\tn++\n\t}\n}\n" + evalHandler,
			[]string{"the package's evaluation exceeded its 1 s CPU time limit"}},
		{"allocate 1 GB", testLimits, "var sink []byte\n\nfunc init() {\n\tsdk.Register(\"x\", h)\n\tsink = make([]byte, 1<<30)\n}\n" + evalHandler,
			[]string{"the package's evaluation exceeded its 256 MiB memory limit"}},
		{"allocate in small pieces", EvalLimits{CPU: 20 * time.Second, Memory: 256 << 20, Timeout: time.Minute},
			"var sink [][]byte\n\nfunc init() {\n\tsdk.Register(\"x\", h)\n\tfor {\n\t\tsink = append(sink, make([]byte, 1<<20))\n\t}\n}\n" + evalHandler,
			[]string{"the package's evaluation exceeded its 256 MiB memory limit"}},
		{"recurse without end", EvalLimits{CPU: 20 * time.Second, Memory: 256 << 20, Timeout: time.Minute},
			"func down(n int) int { return down(n+1) + 1 }\n\nfunc init() {\n\tsdk.Register(\"x\", h)\n\t_ = down(0)\n}\n" + evalHandler,
			// The memory may run out before the stack's bound, as in a
			// race-detector build, whose stacks take more.
			[]string{"the package's evaluation crashed: fatal error: stack overflow", "the package's evaluation exceeded its 256 MiB memory limit"}},
		{"sleep", EvalLimits{CPU: 10 * time.Second, Memory: 256 << 20, Timeout: time.Second},
			"import \"time\"\n\nfunc init() {\n\tsdk.Register(\"x\", h)\n\ttime.Sleep(time.Hour)\n}\n" + evalHandler,
			[]string{"initialisation did not finish within 1s"}},
		{"panic with a long message", testLimits, "import \"strings\"\n\nfunc init() {\n\tsdk.Register(\"x\", h)\n\tpanic(strings.Repeat(\"x\", 1<<20))\n}\n" + evalHandler,
			[]string{"svc.go:8:2: panic during initialisation: xxxx"}},
		{"answer too much", testLimits, "import \"fmt\"\n\nfunc init() {\n\tfor i := 0; i < 5000; i++ {\n\t\tsdk.Register(fmt.Sprintf(\"svc.%0100d\", i), h)\n\t}\n}\n" + evalHandler,
			[]string{"the package's evaluation answered more than 256 KiB"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := testEvaluator(t, ChildCommand, tt.lim)
			src := &adminv1.PackageSource{Name: "svc", Files: []*adminv1.SourceFile{{Name: "svc.go", Content: []byte(evalHeader + tt.code)}}}
			start := time.Now()
			services, err := ev.Eval(context.Background(), src)
			t.Logf("answered in %v: %.300v", time.Since(start).Round(time.Millisecond), err)
			if err == nil || !slices.ContainsFunc(tt.want, func(w string) bool { return strings.Contains(err.Error(), w) }) {
				t.Fatalf("Eval = %q, %v; want an error with one of %q", services, err, tt.want)
			}
			if len(err.Error()) > 2*maxMessageBytes {
				t.Errorf("the error is %d bytes long", len(err.Error()))
			}
			noChildren(t)
		})
	}
}

// TestEvalChild holds what the child is given and how it ends: no
// environment, a working directory of its own that is gone afterwards,
// and a kill at the time limit when it does not answer.
func TestEvalChild(t *testing.T) {
	t.Setenv("WEFT_TEST_SECRET", "in-the-parent-only")
	src := &adminv1.PackageSource{Name: "svc", Files: []*adminv1.SourceFile{{Name: "svc.go", Content: []byte("package svc\n")}}}

	seen, err := testEvaluator(t, probeCommand, testLimits).Eval(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	parentWD, _ := os.Getwd()
	if len(seen) != 1 || !strings.HasPrefix(seen[0], "cwd=") {
		t.Fatalf("the child sees %q; want no environment, only its working directory", seen)
	}
	wd := strings.TrimPrefix(seen[0], "cwd=")
	if wd == parentWD || wd == "" {
		t.Errorf("the child works in %q, the parent's directory", wd)
	}
	if _, err := os.Stat(wd); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the child's working directory %s is left: %v", wd, err)
	}

	lim := EvalLimits{CPU: 10 * time.Second, Memory: 256 << 20, Timeout: 500 * time.Millisecond}
	start := time.Now()
	_, err = testEvaluator(t, hangCommand, lim).Eval(context.Background(), src)
	if err == nil || !strings.Contains(err.Error(), "the package's evaluation exceeded its 0.5 s time limit") {
		t.Fatalf("a child that hangs: %v", err)
	}
	if took := time.Since(start); took > lim.Timeout+killGrace+10*time.Second {
		t.Errorf("a child that hangs was killed after %v", took)
	}
	noChildren(t)

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Cancel once the child runs, so that it is a live child the
		// cancellation must end.
		for deadline := time.Now().Add(time.Minute); len(children()) == 0 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	if _, err := testEvaluator(t, hangCommand, EvalLimits{CPU: 10 * time.Second, Memory: 256 << 20, Timeout: time.Minute}).Eval(ctx, src); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled evaluation: %v", err)
	}
	noChildren(t)
}

// noChildren fails the test when this process has a child, running or not
// yet reaped.
func noChildren(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, c := range children() {
		t.Errorf("a child is left: %s", c)
	}
}

// children lists this process's children, running or not yet reaped, as
// "pid N, state S".
func children() []string {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	me := strconv.Itoa(os.Getpid())
	var out []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(fields) > 1 && fields[1] == me {
			out = append(out, "pid "+e.Name()+", state "+fields[0])
		}
	}
	return out
}

// TestEvalTimeZone loads a time zone in init, as the allow-list lets a
// service do: the sealed child cannot open the system's time zone
// database, and uses the copy the program embeds (time/tzdata, which
// agent/shared/jobspec imports).
func TestEvalTimeZone(t *testing.T) {
	src := &adminv1.PackageSource{Name: "svc", Files: []*adminv1.SourceFile{{Name: "svc.go", Content: []byte(evalHeader +
		"import \"time\"\n\nvar berlin *time.Location\n\nfunc init() {\n\tl, err := time.LoadLocation(\"Europe/Berlin\")\n\tif err != nil {\n\t\tpanic(err)\n\t}\n\tberlin = l\n\tsdk.Register(\"x\", h)\n}\n" + evalHandler)}}}
	services, err := testEvaluator(t, ChildCommand, testLimits).Eval(context.Background(), src)
	if err != nil || !slices.Equal(services, []string{"x"}) {
		t.Fatalf("Eval = %q, %v", services, err)
	}
}
