package worker

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// mappedBytes returns the process's mapped memory (VmSize), which the
// kernel's RLIMIT_AS bounds.
func mappedBytes() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("read the worker's mapped memory: %w", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmSize:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("read the worker's mapped memory: VmSize %q", v)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("read the worker's mapped memory: no VmSize in /proc/self/status")
}
