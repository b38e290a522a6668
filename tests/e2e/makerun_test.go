package e2e

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weft-dev/weft/tests/testenv"
)

// TestMakeRun runs scripts/run.sh, what make run starts, on a fresh
// directory and a home of its own: with no step by hand it makes the CA,
// enrolls its agent and writes the admin token, the curl it prints
// answers, and weftctl works from the context it saved with no flag or
// variable. A second run on the same directory serves again from what
// the first left.
func TestMakeRun(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "setsid"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("make run needs %s, and CI runs this: %v", tool, err)
			}
			t.Skipf("make run needs %s: %v", tool, err)
		}
	}
	root := testenv.ModuleRoot(t)
	bin := testenv.BinDir(t)
	runDir := filepath.Join(t.TempDir(), "run")
	home := t.TempDir()
	cpAddr, httpAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	env := []string{"HOME=" + home, "XDG_CONFIG_HOME=", "WEFT_RUN_DIR=" + runDir, "WEFT_RUN_ADDR=" + cpAddr,
		"WEFT_RUN_HTTP=" + httpAddr, "WEFT_RUN_BIN=" + bin}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WEFT_") && !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "XDG_CONFIG_HOME=") {
			env = append(env, kv)
		}
	}

	for _, round := range []string{"first run", "second run"} {
		t.Run(round, func(t *testing.T) {
			out := startRun(t, root, env)
			var printed string
			testenv.Await(t, 2*time.Minute, "run.sh to say Weft is running", func() (bool, string) {
				printed = out.text()
				return strings.Contains(printed, "Press Ctrl-C to stop."), printed
			})
			curl := regexp.MustCompile(`(?m)^\s*(curl -s .*)$`).FindStringSubmatch(printed)
			if curl == nil {
				t.Fatalf("run.sh printed no curl:\n%s", printed)
			}
			got, err := exec.Command("bash", "-c", curl[1]).CombinedOutput()
			if err != nil || !strings.Contains(string(got), `"greeting":"Hello, Ada!"`) {
				t.Fatalf("$ %s\n%s (%v); want the greeting", curl[1], got, err)
			}
			// weftctl with no flag and no variable: the context run.sh saved.
			ctl := exec.Command(filepath.Join(bin, testenv.CtlBinary), "agent", "list")
			ctl.Env = append([]string{"HOME=" + home}, cleanOf(env)...)
			if got, err := ctl.CombinedOutput(); err != nil || !strings.Contains(string(got), "in-sync") {
				t.Fatalf("weftctl agent list from the saved context: %v\n%s", err, got)
			}
		})
	}
	for _, f := range []string{"weft-ca.pem", "weft-admin.token", "agent-state/identity/agent.crt"} {
		if _, err := os.Stat(filepath.Join(runDir, f)); err != nil {
			t.Errorf("make run left no %s: %v", f, err)
		}
	}
}

// cleanOf is env without the variables run.sh takes, so that weftctl
// finds the control plane through its saved context alone.
func cleanOf(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "WEFT_") && !strings.HasPrefix(kv, "HOME=") {
			out = append(out, kv)
		}
	}
	return out
}

// runOutput is what run.sh printed so far.
type runOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *runOutput) text() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// startRun starts scripts/run.sh in root with env and stops it with
// SIGINT, as Ctrl-C would, when the test ends.
func startRun(t *testing.T, root string, env []string) *runOutput {
	t.Helper()
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "run.sh"))
	cmd.Dir, cmd.Env = root, env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := &runOutput{}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		r := bufio.NewReader(pipe)
		for {
			line, err := r.ReadString('\n')
			out.mu.Lock()
			out.buf.WriteString(line)
			out.mu.Unlock()
			if err != nil {
				_, _ = io.Copy(io.Discard, r)
				return
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { <-copied; done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(45 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
			t.Errorf("run.sh did not stop within 45s of SIGINT")
		}
		if t.Failed() {
			t.Logf("run.sh printed:\n%s", out.text())
		}
	})
	return out
}
