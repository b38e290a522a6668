package config

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// MinWorkerMemoryLimit is the least memory cap a worker takes: below it a
// worker with a few packages cannot start.
const MinWorkerMemoryLimit = 64 << 20

// DefaultWorkers is the default of --workers: one worker per four CPUs,
// at least one. One worker contains a crash as well as several (the agent
// replaces it; connections that come meanwhile wait for the new one);
// more keep answering meanwhile but cost CPU on a small host: on two
// cores, two workers served a channel about 20% slower than one
// (BenchmarkChannelVsPlain).
func DefaultWorkers() int { return max(1, runtime.NumCPU()/4) }

// DefaultWorkerMemoryLimit is the default of --worker-memory-limit: the
// memory the agent may use (its cgroup's limit, else the host's), shared
// by the workers and the agent itself, and at least 256 MiB.
func DefaultWorkerMemoryLimit(workers int) int64 {
	total := hostMemory()
	if total <= 0 {
		return 1 << 30
	}
	return max(256<<20, total/int64(workers+1))
}

// hostMemory is the memory the agent may use: its cgroup's limit when it
// has one (v2, else v1), else the host's; 0 when none can be read.
func hostMemory() int64 {
	host := memTotal()
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err == nil && n > 0 && (host == 0 || n < host) {
			return n
		}
	}
	return host
}

// memTotal reads MemTotal from /proc/meminfo; 0 when it cannot.
func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// ParseBytes reads a size such as 512MiB, 2GiB, 1G or 1048576 (bytes).
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if n, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q: want a positive size such as 512MiB or 2GiB", s)
	}
	return n * mult, nil
}
