package confine

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Self sets l on the calling process as hard limits (the memory as
// RLIMIT_AS, counted from the address space the process has now), which it
// cannot raise again without privileges, and forbids core dumps and
// writing to files (pipes, such as standard output, are not files).
func Self(l Limits) error {
	cpu := uint64((l.CPU + time.Second - 1) / time.Second)
	if cpu == 0 || l.Memory <= 0 {
		return fmt.Errorf("limits %+v: want a CPU time of 1s or more and a positive memory", l)
	}
	reserved, err := addressSpace()
	if err != nil {
		return err
	}
	for _, r := range []struct {
		name     string
		resource int
		max      uint64
	}{
		// At the soft limit the kernel sends SIGXCPU, which the Go
		// runtime ignores; at the hard one, SIGKILL. Equal, they kill.
		{"RLIMIT_CPU", unix.RLIMIT_CPU, cpu},
		{"RLIMIT_AS", unix.RLIMIT_AS, uint64(reserved + l.Memory)},
		{"RLIMIT_CORE", unix.RLIMIT_CORE, 0},
		{"RLIMIT_FSIZE", unix.RLIMIT_FSIZE, 0},
	} {
		if err := unix.Setrlimit(r.resource, &unix.Rlimit{Cur: r.max, Max: r.max}); err != nil {
			return fmt.Errorf("set %s to %d: %w", r.name, r.max, err)
		}
	}
	return nil
}

// addressSpace is the address space the process has (VmSize), in bytes.
func addressSpace() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("read the address space: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmSize:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("read the address space: VmSize %q: %w", v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("read the address space: no VmSize in /proc/self/status")
}

// Seal installs a system call filter on every thread of the process: from
// then on the calls that open files (by path or by handle), run programs,
// create sockets, set up io_uring (which opens files on its own) or reach
// into another process fail with EACCES, and so do system calls of another
// architecture's ABI. The process keeps the files it has open: it still
// reads its standard input and writes its standard output. Seal cannot be
// undone.
func Seal() error {
	if len(deniedCalls) == 0 {
		return fmt.Errorf("no system call filter for %s", runtime.GOARCH)
	}
	const (
		load = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq  = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jge  = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
		ret  = unix.BPF_RET | unix.BPF_K
		deny = unix.SECCOMP_RET_ERRNO | uint32(unix.EACCES)
		// x32 system calls come with the x86-64 architecture and this
		// bit in their number (a no-op test elsewhere).
		x32 = 0x40000000
	)
	n := len(deniedCalls)
	prog := []unix.SockFilter{
		{Code: load, K: 4}, // seccomp_data.arch
		{Code: jeq, Jt: 1, K: auditArch},
		{Code: ret, K: deny},
		{Code: load, K: 0}, // seccomp_data.nr
		{Code: jge, Jt: uint8(n + 1), K: x32},
	}
	for i, nr := range deniedCalls {
		prog = append(prog, unix.SockFilter{Code: jeq, Jt: uint8(n - i), K: nr})
	}
	prog = append(prog, unix.SockFilter{Code: ret, K: unix.SECCOMP_RET_ALLOW}, unix.SockFilter{Code: ret, K: deny})
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}

	// no_new_privs is per thread, and so must be the two calls: the
	// filter's TSYNC flag then gives both to every thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set no_new_privs: %w", err)
	}
	if _, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC,
		uintptr(unsafe.Pointer(&fprog))); errno != 0 {
		return fmt.Errorf("install the system call filter: %w", errno)
	}
	runtime.KeepAlive(prog)
	return nil
}

// Command makes cmd, which must come from exec.CommandContext, start in a
// process group of its own, killed when the process that started it dies,
// and makes cancelling it kill the whole group.
func Command(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error {
		// The group's leader is not reaped yet, so the group id is
		// still its own.
		if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return err
		}
		return nil
	}
}
