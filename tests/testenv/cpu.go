package testenv

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// CPUTime returns the CPU time (user and system) process pid and the
// processes it started (an agent's workers) use now, from Linux's /proc,
// at the resolution of its clock ticks (10 ms). A child that ended no
// longer counts.
func CPUTime(t testing.TB, pid int) time.Duration {
	t.Helper()
	total := cpuTime(t, pid, true)
	for _, c := range children(pid) {
		total += cpuTime(t, c, false)
	}
	return total
}

// children returns the processes pid started that still run.
func children(pid int) []int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, field := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(field); err == nil {
				out = append(out, c)
				out = append(out, children(c)...)
			}
		}
	}
	return out
}

// cpuTime is one process's CPU time; a process that is gone counts 0
// unless must.
func cpuTime(t testing.TB, pid int, must bool) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil && !must {
		return 0
	}
	if err != nil {
		t.Fatalf("CPU time of process %d: %v", pid, err)
	}
	// utime and stime are the 14th and 15th fields, the 12th and 13th
	// after the command (in parentheses, and it may hold spaces); in
	// clock ticks, 100 a second on Linux.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("CPU time of process %d: %q", pid, b)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// AwaitIdle waits until process pid's CPU time grows by less than 50 ms
// over a second, which a goroutine left spinning in it never allows (even
// on a loaded machine it gets far more), and fails the test when timeout
// passes first. what names the process in the failure. It returns how
// long the wait took.
func AwaitIdle(t testing.TB, pid int, timeout time.Duration, what string) time.Duration {
	t.Helper()
	type reading struct {
		at  time.Time
		cpu time.Duration
	}
	start := time.Now()
	var seen []reading
	Await(t, timeout, what+" stops using CPU", func() (bool, string) {
		now, cpu := time.Now(), CPUTime(t, pid)
		seen = append(seen, reading{now, cpu})
		i := len(seen) - 1 // the newest reading at least a second old
		for i > 0 && now.Sub(seen[i].at) < time.Second {
			i--
		}
		if now.Sub(seen[i].at) < time.Second {
			return false, "less than a second measured"
		}
		grew := cpu - seen[i].cpu
		return grew < 50*time.Millisecond, fmt.Sprintf("%v of CPU in the last %v", grew, now.Sub(seen[i].at).Round(time.Millisecond))
	})
	return time.Since(start)
}
