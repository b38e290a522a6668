package supervisor

import (
	"errors"
	"os"
	"os/exec"
	"slices"
	"testing"

	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// ended runs script in sh and returns how it ended.
func ended(t *testing.T, script string) *os.ProcessState {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	var exit *exec.ExitError
	if err := cmd.Run(); !errors.As(err, &exit) {
		t.Fatalf("sh -c %q = %v, want it to fail", script, err)
	}
	return cmd.ProcessState
}

func TestCauseAndReason(t *testing.T) {
	exit2 := ended(t, "exit 2") // how the Go runtime exits on a fatal error or a panic
	exit3 := ended(t, "exit 3")
	killed := ended(t, "kill -9 $$")
	tests := []struct {
		name   string
		output []string
		state  *os.ProcessState
		cause  string
		reason string
	}{
		{
			name: "stack overflow",
			output: []string{
				"runtime: goroutine stack exceeds 268435456-byte limit",
				"runtime: sp=0xc020160398 stack=[0xc020160000, 0xc040160000]",
				"fatal error: stack overflow",
				"",
				"runtime stack:",
				"runtime.throw({0x1234, 0xe})",
			},
			state: exit2, cause: "stack overflow", reason: "stack",
		},
		{
			name:   "out of memory",
			output: []string{"fatal error: runtime: out of memory", "", "runtime stack:"},
			state:  exit2, cause: "runtime: out of memory", reason: "memory",
		},
		{
			name:   "out of memory at its cap",
			output: []string{"runtime: out of memory: cannot allocate 4194304-byte block (536870912 in use)", "fatal error: out of memory"},
			state:  exit2, cause: "out of memory", reason: "memory",
		},
		{
			name:   "concurrent map writes",
			output: []string{"fatal error: concurrent map writes", "", "goroutine 7 [running]:"},
			state:  exit2, cause: "concurrent map writes", reason: "fatal",
		},
		{
			name:   "panic",
			output: []string{"panic: assignment to entry in nil map", "", "goroutine 1 [running]:", "main.main()"},
			state:  exit2, cause: "panic: assignment to entry in nil map", reason: "fatal",
		},
		{
			name:   "a fatal error outranks a panic before it",
			output: []string{"panic: first", "fatal error: panic while printing panic value"},
			state:  exit2, cause: "panic while printing panic value", reason: "fatal",
		},
		{
			name:  "killed",
			state: killed, cause: "killed by signal SIGKILL", reason: "signal",
		},
		{
			name:   "killed after writing",
			output: []string{"some line"},
			state:  killed, cause: "killed by signal SIGKILL", reason: "signal",
		},
		{
			name:  "exit status",
			state: exit3, cause: "exit status 3", reason: "exit",
		},
		{
			name:   "exit status with its last line",
			output: []string{"starting", "the socket to the agent (fd 4): bad file descriptor"},
			state:  exit3, cause: "exit status 3: the socket to the agent (fd 4): bad file descriptor", reason: "exit",
		},
		{
			name:  "not reaped",
			cause: "ended", reason: "exit",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &proc{output: tt.output, state: tt.state}
			if got := w.cause(); got != tt.cause {
				t.Fatalf("cause() = %q, want %q", got, tt.cause)
			}
			if got := reason(tt.cause); got != tt.reason {
				t.Fatalf("reason(%q) = %q, want %q", tt.cause, got, tt.reason)
			}
		})
	}
}

func TestMergePackages(t *testing.T) {
	pkg := func(sha string, loadedAt, memory int64) *agentv1.LoadedPackage {
		return &agentv1.LoadedPackage{Name: "p-" + sha, Sha256: sha, LoadedAtUnixMs: loadedAt, MemoryBytes: memory}
	}
	type row struct {
		sha              string
		loadedAt, memory int64
	}
	rows := func(ps []*agentv1.LoadedPackage) []row {
		var out []row
		for _, p := range ps {
			out = append(out, row{p.GetSha256(), p.GetLoadedAtUnixMs(), p.GetMemoryBytes()})
		}
		return out
	}

	if got := mergePackages(nil, nil); got != nil {
		t.Fatalf("merge of nothing = %v", got)
	}
	first := []*agentv1.LoadedPackage{pkg("a", 100, 10), pkg("b", 200, 50)}
	got := mergePackages(nil, first)
	// The second worker reloaded a (a runaway's interpreter) and measured b
	// bigger; the third loaded both earliest and smallest.
	got = mergePackages(got, []*agentv1.LoadedPackage{pkg("b", 180, 70), pkg("a", 150, 5)})
	got = mergePackages(got, []*agentv1.LoadedPackage{pkg("a", 50, 1), pkg("b", 50, 1)})
	want := []row{{"a", 150, 10}, {"b", 200, 70}}
	if !slices.Equal(rows(got), want) {
		t.Fatalf("merged %v, want %v", rows(got), want)
	}
	// A worker up with nothing loaded changes nothing.
	if got = mergePackages(got, nil); !slices.Equal(rows(got), want) {
		t.Fatalf("merged with none %v, want %v", rows(got), want)
	}
	// A package only a later worker holds shows too.
	got = mergePackages(got, []*agentv1.LoadedPackage{pkg("c", 300, 3)})
	if want := append(want, row{"c", 300, 3}); !slices.Equal(rows(got), want) {
		t.Fatalf("merged with a new package %v, want %v", rows(got), want)
	}
}
