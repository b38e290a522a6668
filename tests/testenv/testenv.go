// Package testenv runs the real Weft binaries for end-to-end tests: it builds
// weft-controlplane, weft-agent and weftctl once per test process, starts them
// on free ports with their logs in t.TempDir(), waits for them with polling
// helpers, and stops them when the test ends. When a test fails, the tail of
// every process log is written to the test log.
//
// A test package that uses testenv should call Main from its TestMain, so the
// built binaries are removed when the package's tests end.
package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Names of the built binaries.
const (
	ControlPlaneBinary = "weft-controlplane"
	AgentBinary        = "weft-agent"
	CtlBinary          = "weftctl"
	grpcurlBinary      = "grpcurl"
)

// Timeouts for waiting on processes. They are generous on purpose: they bound
// a hang, they do not measure speed.
const (
	startTimeout = 60 * time.Second
	stopTimeout  = 20 * time.Second
	ctlTimeout   = 60 * time.Second
	buildTimeout = 10 * time.Minute
)

// builds holds what was built in this test process, once each.
var builds struct {
	dirOnce sync.Once
	dir     string
	dirErr  error

	weftOnce sync.Once
	weftErr  error

	shippedOnce sync.Once
	shippedErr  error

	grpcurlOnce sync.Once
	grpcurlErr  error
}

// Main runs the tests of a package and then removes the binaries testenv
// built. Call it from TestMain: func TestMain(m *testing.M) { testenv.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	if builds.dir != "" {
		_ = os.RemoveAll(builds.dir)
	}
	os.Exit(code)
}

// ModuleRoot returns the directory of the Weft module's go.mod.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

var rootOnce = sync.OnceValues(func() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find module root: go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("find module root: not inside a Go module")
	}
	return filepath.Dir(gomod), nil
})

func moduleRoot() (string, error) { return rootOnce() }

// binDir returns the temporary directory the binaries are built into.
func binDir() (string, error) {
	builds.dirOnce.Do(func() {
		builds.dir, builds.dirErr = os.MkdirTemp("", "weft-testenv-bin-")
		if builds.dirErr != nil {
			builds.dirErr = fmt.Errorf("make binary dir: %w", builds.dirErr)
		}
	})
	return builds.dir, builds.dirErr
}

// BinDir builds the three Weft binaries, once per test process, and returns
// the directory that holds them. They are built with -race when the test
// binary is.
func BinDir(t testing.TB) string {
	t.Helper()
	dir, err := binDir()
	if err != nil {
		t.Fatal(err)
	}
	builds.weftOnce.Do(func() {
		builds.weftErr = goBuild(dir, raceEnabled, map[string]string{
			ControlPlaneBinary: "./controlplane",
			AgentBinary:        "./agent",
			CtlBinary:          "./ctl",
		})
	})
	if builds.weftErr != nil {
		t.Fatal(builds.weftErr)
	}
	return dir
}

// goBuild builds each package into dir under its binary name, in one go
// command so that packages are loaded and linked in parallel.
func goBuild(dir string, race bool, pkgs map[string]string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	// go build -o DIR/ names each binary after its package directory; build
	// into a scratch directory and rename.
	scratch, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	defer os.RemoveAll(scratch)

	args := []string{"build"}
	if race {
		args = append(args, "-race")
	}
	args = append(args, "-o", scratch+string(filepath.Separator))
	var names []string
	for name, pkg := range pkgs {
		args = append(args, pkg)
		names = append(names, name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	for _, name := range names {
		built := filepath.Join(scratch, filepath.Base(pkgs[name]))
		if err := os.Rename(built, filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("build %s: %w", name, err)
		}
	}
	return nil
}

// Binary returns the path of one of the Weft binaries, building them first.
func Binary(t testing.TB, name string) string {
	t.Helper()
	return filepath.Join(BinDir(t), name)
}

// BuildCommand builds the main package pkg (a path relative to the module
// root, such as ./tests/bench/plainserver) into the binary directory under
// name, with -race when the test binary has it, and returns its path.
func BuildCommand(t testing.TB, pkg, name string) string {
	t.Helper()
	dir, err := binDir()
	if err != nil {
		t.Fatal(err)
	}
	if err := goBuild(dir, raceEnabled, map[string]string{name: pkg}); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, name)
}

// ShippedAgent builds the agent as it ships, without -race even when the
// test binary has it, once per test process, and returns its path: for
// the tests of what a service does to a worker process's memory and
// stack, which the race runtime's own allocator and shadow memory change.
func ShippedAgent(t testing.TB) string {
	t.Helper()
	dir, err := binDir()
	if err != nil {
		t.Fatal(err)
	}
	builds.shippedOnce.Do(func() {
		builds.shippedErr = goBuild(dir, false, map[string]string{shippedAgentBinary: "./agent"})
	})
	if builds.shippedErr != nil {
		t.Fatal(builds.shippedErr)
	}
	return filepath.Join(dir, shippedAgentBinary)
}

// shippedAgentBinary is ShippedAgent's file name.
const shippedAgentBinary = "weft-agent-shipped"

// GrpcurlBinary builds grpcurl at the version go.mod pins, once per test
// process, and returns its path.
func GrpcurlBinary(t testing.TB) string {
	t.Helper()
	dir, err := binDir()
	if err != nil {
		t.Fatal(err)
	}
	builds.grpcurlOnce.Do(func() {
		builds.grpcurlErr = goBuild(dir, false, map[string]string{
			grpcurlBinary: "github.com/fullstorydev/grpcurl/cmd/grpcurl",
		})
	})
	if builds.grpcurlErr != nil {
		t.Fatal(builds.grpcurlErr)
	}
	return filepath.Join(dir, grpcurlBinary)
}

// cleanEnv returns the environment without WEFT_ variables, so that a
// developer's shell settings never leak into a test. For race-enabled
// binaries it also drops the race runtime's one-second pause at exit, which
// would otherwise add a second to every weftctl call and every stop.
func cleanEnv(extra ...string) []string {
	var env []string
	gorace := "atexit_sleep_ms=0"
	for _, kv := range os.Environ() {
		switch {
		case strings.HasPrefix(kv, "WEFT_"):
			continue
		case strings.HasPrefix(kv, "GORACE="):
			gorace = strings.TrimPrefix(kv, "GORACE=")
			if !strings.Contains(gorace, "atexit_sleep_ms") {
				gorace += " atexit_sleep_ms=0"
			}
			continue
		}
		env = append(env, kv)
	}
	if raceEnabled {
		env = append(env, "GORACE="+strings.TrimSpace(gorace))
	}
	return append(env, extra...)
}
