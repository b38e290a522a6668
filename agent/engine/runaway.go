package engine

import (
	"context"
	"errors"
	"maps"
	"time"

	"github.com/weft-dev/weft/agent/runtime"
)

// reloadTimeout bounds loading a fresh interpreter for a runaway package.
const reloadTimeout = 30 * time.Second

// replaceRunaway gives the package of a service that overran its deadline
// a fresh interpreter, and closes the old one, which stops the runaway call.
// The interpreter cannot be stopped any other way: a function value has no
// context. Calls of the same package still running fail with 503 (504 when
// they too are past their deadline); other packages are untouched. ran is
// the package that ran the call: when it is no longer served (a deploy, or
// another overrun, replaced it already), there is nothing to do but close
// it. cid is the overrunning call's.
//
// The call has been answered already, at its deadline: the fresh
// interpreter is built while the runaway goroutines still hold the CPU,
// and after any Apply under way, and the answer must wait for neither.
func (e *Engine) replaceRunaway(service, cid string, ran *runtime.Package) {
	e.applyMu.Lock()
	defer e.applyMu.Unlock()
	cur := e.cur.Load()
	sha := ""
	for s, p := range cur.packages {
		if p == ran {
			sha = s
		}
	}
	log := e.log.With("service", service, "cid", cid)
	if sha == "" {
		if ran.Close() {
			log.Warn("closed the interpreter of a runaway call; its package was already replaced")
		}
		return
	}
	full, _ := e.held(cur, sha)
	src := sourceOf(full)
	ctx, cancel := context.WithTimeout(context.Background(), reloadTimeout)
	defer cancel()
	// Not measureLoad: runtime.GC, while goroutines spin, yields to every
	// one of them for each span it sweeps, which took seconds with four of
	// them on two cores. The package is the one loaded before: it keeps
	// about the memory measured then.
	fresh, err := runtime.Load(ctx, src)
	if err != nil {
		// It loaded before; keep serving the old interpreter rather than
		// nothing, and say so.
		log.Error("cannot load a fresh interpreter for a runaway package; the runaway call keeps running", "package", full.GetName(), "err", err)
		return
	}
	next := &State{
		Snapshot: cur.Snapshot,
		Hash:     cur.Hash,
		packages: maps.Clone(cur.packages),
		loads:    maps.Clone(cur.loads),
		services: maps.Clone(cur.services),
		conns:    cur.conns,
		router:   cur.router,
	}
	next.inv = &stateInvoker{e, next}
	next.packages[sha] = fresh
	next.loads[sha] = loadInfo{at: time.Now(), memory: cur.loads[sha].memory}
	for name, svc := range fresh.Services {
		next.services[name] = svc
	}
	e.cur.Store(next)
	ran.Close()
	log.Warn("replaced the interpreter of a package after a call overran its deadline", "package", full.GetName(), "version", full.GetVersion())
}

// replaceIfRunaway replaces the interpreter of a call that overran its
// deadline (see replaceRunaway), once its caller has been answered. err is
// what the call returned.
func (inv *invocation) replaceIfRunaway(err error) {
	if !errors.Is(err, runtime.ErrDeadline) {
		return
	}
	// Only the runtime says ErrDeadline (a service's own timeout
	// returned), and only for a call that is still running or was
	// stopped by another's replacement.
	if p := inv.st.packageOf(inv.service); p != nil {
		inv.e.replaceRunaway(inv.service, inv.cid, p)
	}
}

// packageOf returns the loaded package that holds service in st.
func (st *State) packageOf(service string) *runtime.Package {
	for _, p := range st.packages {
		if p.Services[service] != nil {
			return p
		}
	}
	return nil
}
