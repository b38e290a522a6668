package worker

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
)

// startProfiles makes the worker profile itself into dir, for an operator
// measuring what a request costs where it runs (the agent's own --pprof
// sees the agent process, which runs no service code): a CPU profile of
// the worker's whole life, worker-N-PID.cpu.pprof, and once stop is called
// its allocations, worker-N-PID.allocs.pprof. Read them with go tool pprof.
func startProfiles(dir string, index int) (stop func() error, err error) {
	base := filepath.Join(dir, fmt.Sprintf("worker-%d-%d", index, os.Getpid()))
	cpu, err := os.Create(base + ".cpu.pprof")
	if err != nil {
		return nil, fmt.Errorf("profile the worker: %w", err)
	}
	if err := pprof.StartCPUProfile(cpu); err != nil {
		cpu.Close()
		return nil, fmt.Errorf("profile the worker: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		errCPU := cpu.Close()
		allocs, err := os.Create(base + ".allocs.pprof")
		if err != nil {
			return fmt.Errorf("profile the worker's allocations: %w", err)
		}
		err = pprof.Lookup("allocs").WriteTo(allocs, 0)
		if cerr := allocs.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = errCPU
		}
		if err != nil {
			return fmt.Errorf("profile the worker: %w", err)
		}
		return nil
	}, nil
}
