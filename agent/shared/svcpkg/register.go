package svcpkg

import (
	"fmt"
	"go/token"
	"path"
	"reflect"
	"sync"

	"github.com/traefik/yaegi/interp"

	"github.com/weft-dev/weft/agent/sdk"
	"github.com/weft-dev/weft/agent/shared/handlersig"
	"github.com/weft-dev/weft/agent/shared/symbols"
)

// registrar records the sdk.Register calls of one load. It replaces
// sdk.Register in that load's interpreter.
type registrar struct {
	positions positions

	mu       sync.Mutex
	sealed   bool
	calls    map[string]int
	services map[string]Registration
	problems []Problem
}

// exports returns the symbols that make sdk.Register record into r.
func (r *registrar) exports() interp.Exports {
	key := symbols.SDKPath + "/" + path.Base(symbols.SDKPath)
	return interp.Exports{key: {"Register": reflect.ValueOf(r.register)}}
}

func (r *registrar) register(name string, fn any, opts ...sdk.Option) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sealed {
		panic(fmt.Sprintf("sdk.Register(%q) called after the package was loaded; call it from an init function", name))
	}
	if r.calls == nil {
		r.calls = map[string]int{}
	}
	// The k-th call for a name is most likely the k-th literal call site.
	var pos token.Position
	if ps := r.positions[name]; len(ps) > 0 {
		pos = ps[min(r.calls[name], len(ps)-1)]
	}
	r.calls[name]++
	if r.calls[name] > 1 {
		r.problems = append(r.problems, problemAt(pos, fmt.Sprintf("service %q registered twice", name)))
		return
	}
	if err := handlersig.Check(name, fn); err != nil {
		r.problems = append(r.problems, problemAt(pos, err.Error()))
		return
	}
	o := sdk.Options(opts)
	if o.Timeout < 0 {
		r.problems = append(r.problems, problemAt(pos, fmt.Sprintf("service %q: sdk.Timeout(%s) must not be negative", name, o.Timeout)))
		return
	}
	if o.SlowAfter < 0 {
		r.problems = append(r.problems, problemAt(pos, fmt.Sprintf("service %q: sdk.SlowAfter(%s) must not be negative", name, o.SlowAfter)))
		return
	}
	r.services[name] = Registration{Name: name, Handler: fn, Timeout: o.Timeout, SlowAfter: o.SlowAfter}
}

// seal ends registration and returns the services, or the problems found.
func (r *registrar) seal() (map[string]Registration, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sealed = true
	if len(r.problems) > 0 {
		return nil, &LoadError{Problems: r.problems}
	}
	if len(r.services) == 0 {
		return nil, &LoadError{Problems: []Problem{{Message: "package registers no services: call sdk.Register from an init function"}}}
	}
	return r.services, nil
}
