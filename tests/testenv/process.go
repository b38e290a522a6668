package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// logTailLines is how many lines of each process log a failed test shows.
const logTailLines = 80

// process is one long-running binary under test that can be stopped and
// started again with the same arguments. Its stderr and stdout go to one log
// file, appended across starts.
type process struct {
	t       testing.TB
	name    string // what the test log calls it, such as "weft-agent a1"
	bin     string
	args    []string
	env     []string
	logPath string
	// allowRaces keeps race reports in the log from failing the test.
	allowRaces bool

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{} // closed when cmd has been waited for
	err    error         // cmd.Wait's result, valid after done
	starts int
}

// start runs the binary. It does not wait for it to be ready.
func (p *process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && !isClosed(p.done) {
		return fmt.Errorf("start %s: already running as pid %d", p.name, p.cmd.Process.Pid)
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	p.starts++
	fmt.Fprintf(logf, "=== testenv: start #%d: %s %s\n", p.starts, p.bin, strings.Join(p.args, " "))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = p.env
	cmd.Stdout = logf
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done = cmd, done
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(logf, "=== testenv: pid %d exited: %v\n", cmd.Process.Pid, exitDesc(err))
		logf.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// pid returns the process id of the current (or last) run; 0 before any.
func (p *process) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// exited reports whether the current run has ended, and how.
func (p *process) exited() (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return true, nil
	}
	if !isClosed(p.done) {
		return false, nil
	}
	return true, p.err
}

// running reports whether the process is running.
func (p *process) running() bool {
	ended, _ := p.exited()
	return !ended
}

// stop sends SIGTERM and waits for the process to exit. It returns an error
// when the process does not exit in time (it is then killed) or exits with
// anything but status 0.
func (p *process) stop() error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil || isClosed(done) {
		return nil
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop %s: %w", p.name, err)
	}
	select {
	case <-done:
	case <-time.After(stopTimeout):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("stop %s: no exit %v after SIGTERM; killed", p.name, stopTimeout)
	}
	if _, err := p.exited(); err != nil {
		return fmt.Errorf("stop %s: unclean exit after SIGTERM: %s", p.name, exitDesc(err))
	}
	return nil
}

// kill sends SIGKILL and waits for the process to end.
func (p *process) kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil || isClosed(done) {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// tail returns the last n lines of the process log.
func (p *process) tail(n int) string {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(read log: %v)", err)
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = append([][]byte{[]byte(fmt.Sprintf("... (%d earlier lines in %s)", len(lines)-n, p.logPath))}, lines[len(lines)-n:]...)
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// cleanup stops the process at the end of the test, reports an unclean exit
// as a test error, and dumps the log tail when the test failed.
func (p *process) cleanup() {
	if err := p.stop(); err != nil {
		p.t.Error(err)
	}
	// A race in a worker ends no process the test sees: its report, in the
	// agent's log, fails the test.
	if !p.allowRaces && p.raceReports() != "" {
		p.t.Errorf("%s: the race detector reported races in its log", p.name)
	}
	if p.t.Failed() {
		p.dump()
	}
}

// dump writes the race reports and the tail of the process log to the test
// log. Race reports come in full: they are why the process exited 66, and
// they scroll out of any tail.
func (p *process) dump() {
	if races := p.raceReports(); races != "" {
		p.t.Logf("--- race reports of %s:\n%s\n--- end of race reports of %s", p.name, races, p.name)
	}
	p.t.Logf("--- log of %s (%s), last %d lines:\n%s\n--- end of log of %s", p.name, p.logPath, logTailLines, p.tail(logTailLines), p.name)
}

// raceReports returns the race detector's reports in the log, if any.
func (p *process) raceReports() string {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	const sep = "==================\n"
	var out []string
	for rest := string(data); ; {
		i := strings.Index(rest, sep+"WARNING: DATA RACE")
		if i < 0 {
			break
		}
		rest = rest[i:]
		end := strings.Index(rest[len(sep):], sep)
		if end < 0 {
			out = append(out, rest)
			break
		}
		out = append(out, rest[:len(sep)+end+len(sep)])
		rest = rest[len(sep)+end+len(sep):]
	}
	return strings.Join(out, "")
}

// exitDesc describes how a process ended.
func exitDesc(err error) string {
	if err == nil {
		return "exit status 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "killed by " + ws.Signal().String()
		}
	}
	return err.Error()
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// FreeAddr returns a 127.0.0.1 address with a port nobody listens on right
// now. Another process may take it before it is used; starters retry.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// ClosedAddr returns a 127.0.0.1 address where nothing listens, for testing
// what clients do when a server is unreachable.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	return FreeAddr(t)
}

// logMentionsAddrInUse reports whether a process failed because its port was
// taken between FreeAddr and its start.
func (p *process) logMentionsAddrInUse() bool {
	data, _ := os.ReadFile(p.logPath)
	return bytes.Contains(data, []byte("address already in use"))
}
