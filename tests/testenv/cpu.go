package testenv

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// CPUTime returns the CPU time (user and system) process pid has used,
// from Linux's /proc, at the resolution of its clock ticks (10 ms).
func CPUTime(t testing.TB, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
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
