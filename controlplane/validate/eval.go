package validate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/weft-dev/weft/agent/shared/svcpkg"
	"github.com/weft-dev/weft/controlplane/confine"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// ChildCommand is the hidden subcommand of weft-controlplane that
// evaluates one package: "weft-controlplane check-package" runs ChildMain.
const ChildCommand = "check-package"

// Defaults of the limits of one package's evaluation.
const (
	DefaultEvalCPU     = 10 * time.Second
	DefaultEvalMemory  = 512 << 20
	DefaultEvalTimeout = 20 * time.Second
)

const (
	// maxAnswerBytes bounds what the parent reads of a child's answer.
	maxAnswerBytes = 256 << 10
	// maxStderrBytes bounds what the parent keeps of a child's standard
	// error, which only the Go runtime writes to (on a crash).
	maxStderrBytes = 16 << 10
	// killGrace is how long past its time limit the parent lets a child
	// run: the child stops the package's initialisation at the limit and
	// answers by itself, unless something it cannot stop holds it.
	killGrace = 2 * time.Second
	// maxEvaluations is how many children run at once: each may take its
	// memory limit, and deploys of packages that need one are rare.
	maxEvaluations = 2
)

// EvalLimits are what the evaluation of one package may take.
type EvalLimits struct {
	CPU     time.Duration // CPU time, in whole seconds
	Memory  int64         // bytes of heap and stacks
	Timeout time.Duration // wall clock
}

// Evaluator evaluates, each in a child process of its own, the packages
// whose services only running them tells (see svcpkg.Check): it runs
// their initialisation where nothing of the control plane can be reached
// and nothing can outlive the check. The child has no environment, a
// fresh working directory that is removed after, hard CPU-time and memory
// limits it sets on itself before it reads the package, and a system call
// filter that leaves it no way to open a file, start a program or open a
// socket (see package confine). The parent kills it at its wall-clock
// limit, always reaps it, and reads a bounded answer. It is safe for
// concurrent use.
type Evaluator struct {
	command []string
	limits  EvalLimits
	log     *slog.Logger
	slots   chan struct{}
	started atomic.Int64
}

// NewEvaluator returns an evaluator that starts command (a program and its
// first arguments, which must make it run ChildMain; see SelfCommand)
// with limits.
func NewEvaluator(command []string, limits EvalLimits, log *slog.Logger) *Evaluator {
	return &Evaluator{
		command: command, limits: limits,
		log:   log.With("component", "evaluator"),
		slots: make(chan struct{}, maxEvaluations),
	}
}

// SelfCommand is the command that runs ChildMain in a copy of this
// process's program. On Linux it is /proc/self/exe, which names the
// running program even once its file is replaced by an upgrade.
func SelfCommand() ([]string, error) {
	exe := "/proc/self/exe"
	if _, err := os.Stat(exe); err != nil {
		if exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("find the program to evaluate packages with: %w", err)
		}
	}
	return []string{exe, ChildCommand}, nil
}

// Evaluations is how many children the evaluator has started.
func (e *Evaluator) Evaluations() int64 { return e.started.Load() }

// childInput is what the parent writes to a child's standard input.
type childInput struct {
	Name  string                `json:"name"`
	Files []*adminv1.SourceFile `json:"files"`
}

// childAnswer is what a child writes to its standard output.
type childAnswer struct {
	Services []string         `json:"services,omitempty"`
	Problems []svcpkg.Problem `json:"problems,omitempty"`
	// Error is a failure of the evaluation itself, not of the package.
	Error string `json:"error,omitempty"`
	// Unsealed says why the child could not install its system call
	// filter, if it could not.
	Unsealed string `json:"unsealed,omitempty"`
}

// Eval evaluates src in a child process and returns the names of its
// services, sorted, or what is wrong with it: the problems the runtime
// found (a *svcpkg.LoadError), or which of its limits the evaluation
// exceeded. It returns ctx's error if ctx ends first; the child is killed
// then too.
func (e *Evaluator) Eval(ctx context.Context, src *adminv1.PackageSource) ([]string, error) {
	select {
	case e.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-e.slots }()
	e.started.Add(1)
	log := e.log.With("package", src.Name)

	input, err := json.Marshal(childInput{Name: src.Name, Files: src.Files})
	if err != nil {
		return nil, e.internal(log, "encode the package", err)
	}
	dir, err := os.MkdirTemp("", "weft-check-")
	if err != nil {
		return nil, e.internal(log, "make the child's working directory", err)
	}
	defer os.RemoveAll(dir)

	runCtx, cancel := context.WithTimeout(ctx, e.limits.Timeout+killGrace)
	defer cancel()
	args := append(slices.Clone(e.command[1:]),
		"-cpu", e.limits.CPU.String(), "-memory", fmt.Sprint(e.limits.Memory), "-timeout", e.limits.Timeout.String())
	cmd := exec.CommandContext(runCtx, e.command[0], args...)
	cmd.Env = []string{} // not nil, which would pass on the control plane's
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(input)
	stdout := &capped{max: maxAnswerBytes}
	stderr := &capped{max: maxStderrBytes}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	confine.Command(cmd)
	// Past the kill, do not wait long for the pipes: nothing else holds
	// them, but Wait must return.
	cmd.WaitDelay = time.Second

	start := time.Now()
	runErr := cmd.Run()
	took := time.Since(start)
	if cmd.ProcessState == nil {
		return nil, e.internal(log, "start the child", runErr)
	}
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	log = log.With("took", took.Round(time.Millisecond), "cpu", cpu.Round(time.Millisecond), "exit", cmd.ProcessState.String())
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case runCtx.Err() != nil:
		log.Info("package evaluation killed at its time limit")
		return nil, fmt.Errorf("the package's evaluation exceeded its %s time limit: an init function or package variable may block or loop forever", seconds(e.limits.Timeout))
	case killed(cmd.ProcessState) && cpu >= cpuLimit(e.limits.CPU)/2:
		// The kernel kills at the hard limit; the CPU time reported is
		// sampled, and may fall short of it.
		log.Info("package evaluation killed at its CPU time limit")
		return nil, fmt.Errorf("the package's evaluation exceeded its %s CPU time limit: an init function or package variable may loop forever", seconds(cpuLimit(e.limits.CPU)))
	case outOfMemory(stderr.String()):
		log.Info("package evaluation ran out of memory")
		return nil, fmt.Errorf("the package's evaluation exceeded its %d MiB memory limit", e.limits.Memory>>20)
	case stdout.over:
		log.Info("package evaluation answered too much")
		return nil, fmt.Errorf("the package's evaluation answered more than %d KiB", maxAnswerBytes>>10)
	case !cmd.ProcessState.Success():
		if line := fatalLine(stderr.String()); line != "" {
			log.Info("package evaluation crashed", "fatal", line)
			return nil, fmt.Errorf("the package's evaluation crashed: %s", line)
		}
		return nil, e.internal(log, "evaluate", fmt.Errorf("%v; stderr: %s", runErr, clip(stderr.String(), 512)))
	}

	var ans childAnswer
	if err := json.Unmarshal(stdout.Bytes(), &ans); err != nil {
		return nil, e.internal(log, "read the child's answer", err)
	}
	if ans.Unsealed != "" {
		log.Warn("the evaluating child could not install its system call filter; only its other limits held", "why", ans.Unsealed)
	}
	log.Debug("package evaluated", "services", len(ans.Services), "problems", len(ans.Problems))
	switch {
	case len(ans.Problems) > 0:
		for i := range ans.Problems {
			ans.Problems[i].Message = clip(ans.Problems[i].Message, maxMessageBytes)
		}
		return nil, &svcpkg.LoadError{Problems: ans.Problems}
	case ans.Error != "":
		return nil, e.internal(log, "evaluate", errors.New(ans.Error))
	case len(ans.Services) == 0:
		return nil, e.internal(log, "evaluate", errors.New("the child answered no services and no problems"))
	}
	slices.Sort(ans.Services)
	return ans.Services, nil
}

// internal logs a failure of the evaluation machinery and returns what the
// deployer is told, which says no more than that.
func (e *Evaluator) internal(log *slog.Logger, op string, err error) error {
	log.Error("package evaluation failed", "op", op, "err", err)
	return errors.New("the package could not be evaluated; the control plane's log says why")
}

// outOfMemory reports whether a child's standard error says the Go runtime
// could not get memory. A race-detector build, whose heap must sit at
// fixed addresses, says it as address space collisions, or its own
// allocator says it.
func outOfMemory(stderr string) bool {
	for _, s := range []string{
		"fatal error: out of memory",
		"fatal error: runtime: out of memory",
		"fatal error: runtime: cannot allocate memory",
		"fatal error: too many address space collisions for -race mode",
		"ThreadSanitizer: internal allocator is out of memory",
	} {
		if strings.Contains(stderr, s) {
			return true
		}
	}
	return false
}

// fatalLine is the Go runtime's "fatal error: ..." line in a child's
// standard error, clipped, or "".
func fatalLine(stderr string) string {
	for _, line := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(line, "fatal error: ") {
			return clip(line, 200)
		}
	}
	return ""
}

// killed reports whether the process was killed by SIGKILL (which the
// kernel sends at the CPU-time limit) or SIGXCPU.
func killed(ps *os.ProcessState) bool {
	ws, ok := ps.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && (ws.Signal() == syscall.SIGKILL || ws.Signal() == syscall.SIGXCPU)
}

// cpuLimit is the CPU time the kernel enforces for d: whole seconds.
func cpuLimit(d time.Duration) time.Duration {
	return (d + time.Second - 1).Truncate(time.Second)
}

// seconds formats d as "2 s" or "0.5 s".
func seconds(d time.Duration) string { return fmt.Sprintf("%g s", d.Seconds()) }

// clip cuts s to at most n bytes, on a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := strings.ToValidUTF8(s[:n], "")
	return cut + "… (clipped)"
}

// capped keeps the first max bytes written to it and drops the rest,
// noting that it did: a child cannot make the parent hold more. (It has
// no ReadFrom, which io.Copy would use instead of Write.)
type capped struct {
	buf  bytes.Buffer
	max  int
	over bool
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); len(p) > room {
		c.over = true
		c.buf.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return c.buf.Write(p)
}

func (c *capped) Bytes() []byte  { return c.buf.Bytes() }
func (c *capped) String() string { return c.buf.String() }
