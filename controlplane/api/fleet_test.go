package api

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// TestInventoryOut maps every field of an agent's inventory, packages and
// workers included, to the admin API's form.
func TestInventoryOut(t *testing.T) {
	started := time.UnixMilli(1_772_000_000_123)
	loaded := started.Add(time.Minute)
	workerStarted := started.Add(2 * time.Minute)
	in := &agentv1.Inventory{
		AppliedRevision: 7,
		Packages: []*agentv1.LoadedPackage{{
			Name: "hello", Version: 3, Sha256: "1a2b3c4d5e6f", Services: []string{"hello.greet", "hello.wave"},
			MemoryBytes: 4096, LoadedAtUnixMs: loaded.UnixMilli(),
		}},
		Goroutines:      42,
		HeapBytes:       1 << 20,
		BuildVersion:    "v1.2.3",
		Labels:          map[string]string{"site": "berlin"},
		StartedAtUnixMs: started.UnixMilli(),
		RecentErrors:    []string{"boom"},
		SysBytes:        8 << 20,
		Workers: []*agentv1.WorkerProcess{
			{
				Index: 1, Pid: 4242, StartedAtUnixMs: workerStarted.UnixMilli(), Restarts: 2, LastExit: "killed: out of memory",
				HeapBytes: 3 << 20, Goroutines: 17, MemoryLimitBytes: 256 << 20,
			},
			{Index: 2, Restarts: 1, LastExit: "exit status 2", MemoryLimitBytes: 256 << 20}, // being replaced
		},
	}
	want := &adminv1.AgentInventory{
		AppliedRevision: 7,
		Packages: []*adminv1.LoadedPackage{{
			Name: "hello", Version: 3, Sha256: "1a2b3c4d5e6f", Services: []string{"hello.greet", "hello.wave"},
			MemoryBytes: 4096, LoadedAt: timestamppb.New(loaded),
		}},
		Goroutines:   42,
		HeapBytes:    1 << 20,
		BuildVersion: "v1.2.3",
		Labels:       map[string]string{"site": "berlin"},
		StartedAt:    timestamppb.New(started),
		RecentErrors: []string{"boom"},
		SysBytes:     8 << 20,
		Workers: []*adminv1.AgentWorker{
			{
				Index: 1, Pid: 4242, StartedAt: timestamppb.New(workerStarted), Restarts: 2, LastExit: "killed: out of memory",
				HeapBytes: 3 << 20, Goroutines: 17, MemoryLimitBytes: 256 << 20,
			},
			{Index: 2, Restarts: 1, LastExit: "exit status 2", MemoryLimitBytes: 256 << 20},
		},
	}
	got := inventoryOut(in)
	if !proto.Equal(got, want) {
		t.Fatalf("inventoryOut =\n%v\nwant\n%v", got, want)
	}
	if got.GetWorkers()[1].GetStartedAt() != nil {
		t.Errorf("a worker being replaced has started_at %v, want none", got.GetWorkers()[1].GetStartedAt())
	}

	if got := inventoryOut(&agentv1.Inventory{AppliedRevision: 1}); got.GetStartedAt() != nil || len(got.GetWorkers()) != 0 {
		t.Errorf("inventoryOut of a bare inventory = %v, want no start time and no workers", got)
	}
}
