package engine

import (
	goruntime "runtime"
	"sort"
	"sync"
	"time"

	"github.com/weft-dev/weft/agent/runtime"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// loadInfo is what the engine learned when it loaded a package.
type loadInfo struct {
	at     time.Time
	memory int64 // heap kept after the load, an estimate
}

// measureMu serialises measured loads, so that one load's garbage does not
// count against another.
var measureMu sync.Mutex

// measureLoad runs load and estimates the heap it kept: the live heap after
// a collection, before and after. Requests served meanwhile add noise; a
// deploy is rare enough to afford the two collections.
func measureLoad(load func() (*runtime.Package, error)) (loadInfo, *runtime.Package, error) {
	measureMu.Lock()
	defer measureMu.Unlock()
	var before, after goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&before)
	p, err := load()
	if err != nil {
		return loadInfo{}, nil, err
	}
	goruntime.GC()
	goruntime.ReadMemStats(&after)
	return loadInfo{at: time.Now(), memory: max(0, int64(after.HeapAlloc)-int64(before.HeapAlloc))}, p, nil
}

// Inventory says what the engine runs now: its packages with their memory,
// and the process's goroutines and heap.
func (e *Engine) Inventory() *agentv1.Inventory {
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	inv := &agentv1.Inventory{Goroutines: int64(goruntime.NumGoroutine()), HeapBytes: int64(ms.HeapAlloc)}
	st := e.cur.Load()
	if st == nil {
		return inv
	}
	inv.AppliedRevision = st.Revision()
	for _, p := range st.Snapshot.GetPackages() {
		info := st.loads[p.GetSha256()]
		inv.Packages = append(inv.Packages, &agentv1.LoadedPackage{
			Name:           p.GetName(),
			Version:        p.GetVersion(),
			Sha256:         p.GetSha256(),
			Services:       p.GetServices(),
			MemoryBytes:    info.memory,
			LoadedAtUnixMs: info.at.UnixMilli(),
		})
	}
	sort.Slice(inv.Packages, func(i, j int) bool { return inv.Packages[i].GetName() < inv.Packages[j].GetName() })
	return inv
}
