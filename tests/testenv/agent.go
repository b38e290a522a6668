package testenv

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// Agent is a running weft-agent.
type Agent struct {
	// ID is the agent's id.
	ID string
	// HTTPAddr is where it serves channels, host:port: over plain HTTP,
	// or over HTTPS when it was started with OnlyHTTPS.
	HTTPAddr string
	scheme   string
	// StateDir is its state directory, kept across restarts.
	StateDir string

	cp   *ControlPlane
	proc *process
}

// StartAgent starts an agent with id that dials cp, serves channels on a free
// port, and keeps its state in its own directory. It waits until the control
// plane lists the agent as connected with this process's pid, and stops the
// agent when the test ends.
func StartAgent(t testing.TB, cp *ControlPlane, id string, opts ...Option) *Agent {
	t.Helper()
	var cfg procConfig
	for _, o := range opts {
		o(&cfg)
	}
	bin := cfg.bin
	if bin == "" {
		bin = Binary(t, AgentBinary)
	}
	dir := t.TempDir()
	stateDir := filepath.Join(dir, "state")
	// The agent enrolls on its first start; later starts find their
	// certificate in the state directory and leave the token unused.
	enroll := []string{"--join", cp.JoinToken(t), "--ca-fingerprint", cp.CAFingerprint(t)}

	const attempts = 3
	for attempt := 1; ; attempt++ {
		httpAddr := FreeAddr(t)
		a := &Agent{ID: id, HTTPAddr: httpAddr, StateDir: stateDir, cp: cp, scheme: "http"}
		listen := []string{"--http", httpAddr}
		if cfg.tls != nil {
			a.scheme = "https"
			listen = []string{"--https", httpAddr, "--tls-cert", cfg.tls.cert, "--tls-key", cfg.tls.key}
		}
		a.proc = &process{
			t:    t,
			name: "weft-agent " + id,
			bin:  bin,
			args: append([]string{
				"--id", id,
				"--controlplane", cp.Addr,
				"--state-dir", stateDir,
			}, append(append(enroll, listen...), cfg.args...)...),
			env:        cleanEnv(cfg.env...),
			logPath:    filepath.Join(dir, fmt.Sprintf("agent-%s-%d.log", id, attempt)),
			allowRaces: cfg.allowRaces,
		}
		if err := a.proc.start(); err != nil {
			t.Fatal(err)
		}
		err := a.awaitConnected(t)
		if err == nil {
			t.Cleanup(a.proc.cleanup)
			return a
		}
		retry := attempt < attempts && !a.proc.running() && a.proc.logMentionsAddrInUse()
		a.proc.kill()
		if !retry {
			t.Fatalf("%v\n--- log of %s:\n%s", err, a.proc.name, a.proc.tail(logTailLines))
		}
	}
}

// awaitConnected polls the control plane until it lists the agent as
// connected with the pid of the running process.
func (a *Agent) awaitConnected(t testing.TB) error {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	pid := int64(a.proc.pid())
	last := "not listed"
	for {
		if ended, exitErr := a.proc.exited(); ended {
			return fmt.Errorf("%s exited before connecting: %s", a.proc.name, exitDesc(exitErr))
		}
		rec, err := a.cp.agentRecord(a.ID)
		switch {
		case err != nil:
			last = err.Error()
		case rec == nil:
			last = "not listed"
		case !rec.GetConnected():
			last = "listed, not connected"
		case rec.GetPid() != pid:
			last = fmt.Sprintf("connected with pid %d, want %d", rec.GetPid(), pid)
		default:
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not connected to %s after %v: %s", a.proc.name, a.cp.Addr, startTimeout, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// PID returns the agent's process id (of its last start).
func (a *Agent) PID() int { return a.proc.pid() }

// Running reports whether the agent process is running.
func (a *Agent) Running() bool { return a.proc.running() }

// URL returns the URL of path on the agent's channels.
func (a *Agent) URL(path string) string { return a.scheme + "://" + a.HTTPAddr + path }

// LogPath returns the path of the agent's log file.
func (a *Agent) LogPath() string { return a.proc.logPath }

// Stop sends SIGTERM and waits for a clean exit; anything else fails t.
func (a *Agent) Stop(t testing.TB) {
	t.Helper()
	start := time.Now()
	if err := a.proc.stop(); err != nil {
		t.Error(err)
	}
	t.Logf("stopped %s in %v", a.proc.name, time.Since(start).Round(time.Millisecond))
}

// Kill ends the agent with SIGKILL.
func (a *Agent) Kill() { a.proc.kill() }

// Start starts a stopped agent again with the same id, ports and state
// directory, and waits until the control plane lists it as connected.
func (a *Agent) Start(t testing.TB) {
	t.Helper()
	start := time.Now()
	if err := a.proc.start(); err != nil {
		t.Fatal(err)
	}
	if err := a.awaitConnected(t); err != nil {
		t.Fatal(err)
	}
	t.Logf("started %s (pid %d), connected in %v", a.proc.name, a.PID(), time.Since(start).Round(time.Millisecond))
}

// Record returns the control plane's record of the agent, failing the test
// when there is none.
func (a *Agent) Record(t testing.TB) *adminv1.Agent {
	t.Helper()
	rec := a.cp.Agent(t, a.ID)
	if rec == nil {
		t.Fatalf("the control plane does not list agent %s", a.ID)
	}
	return rec
}
