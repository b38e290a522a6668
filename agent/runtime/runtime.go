// Package runtime serves the services of packages loaded into Yaegi
// interpreters: it loads a package with package svcpkg (the checks and the
// loading the control plane's door applies too) and invokes its services.
//
// Each loaded package version gets its own interpreter, which sees a
// curated symbol table (package agent/shared/symbols): the service SDK and
// an allow-list of the standard library. Yaegi is not a sandbox; the
// allow-list keeps well-meaning code away from the host, not hostile code.
// Every Eval and every call runs under recover, and with a deadline.
package runtime

import (
	"context"
	"sort"
	"sync/atomic"

	"github.com/weft-dev/weft/agent/handler"
	"github.com/weft-dev/weft/agent/shared/svcpkg"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// Package is a loaded deployment package: one interpreter and the services
// its init functions registered. It is immutable once loaded: do not modify
// Services. It is safe for concurrent use.
type Package struct {
	// Name is Source.Name.
	Name string
	// Services maps each registered service name to its handler.
	Services map[string]*handler.Service

	loaded *svcpkg.Loaded
	closed atomic.Bool
}

// ServiceNames returns the names of the package's services, sorted.
func (p *Package) ServiceNames() []string {
	names := make([]string, 0, len(p.Services))
	for n := range p.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Close retires the package. Calls still running in its interpreter (such
// as one that overran its deadline) stop executing, and they and any later
// calls fail with handler.ErrClosed (with ErrDeadline, from Invoke and
// InvokeHere, when they are past their deadline). A call blocked inside
// compiled code (a time.Sleep, a channel receive in the standard library)
// ends only when that returns. An agent closes a package it has replaced,
// once the calls it lets finish have drained; the interpreter cannot be
// reused after. Close reports whether it closed the package: false when it
// was closed already.
func (p *Package) Close() bool {
	if !p.closed.CompareAndSwap(false, true) {
		return false
	}
	// Stopping the interpreter leaves every function value of it returning
	// zero values at once, which is why the services are closed first.
	for _, s := range p.Services {
		s.Close()
	}
	p.loaded.Stop()
	return true
}

// Load checks src, interprets it in a new interpreter, runs its init
// functions and returns the services they registered, ready to invoke
// (see svcpkg.Load, which makes the checks and reports what is wrong with
// the code as a *svcpkg.LoadError). Load returns ctx's error if ctx ends
// first.
func Load(ctx context.Context, src *adminv1.PackageSource, opts ...svcpkg.Option) (*Package, error) {
	l, err := svcpkg.Load(ctx, src, opts...)
	if err != nil {
		return nil, err
	}
	services := make(map[string]*handler.Service, len(l.Services))
	for name, r := range l.Services {
		// svcpkg checked the handler's shape, which is all New refuses.
		s, err := handler.New(name, r.Handler)
		if err != nil {
			l.Stop()
			return nil, &svcpkg.LoadError{Problems: []svcpkg.Problem{{Message: err.Error()}}}
		}
		s.Timeout, s.SlowAfter = r.Timeout, r.SlowAfter
		services[name] = s
	}
	return &Package{Name: src.Name, Services: services, loaded: l}, nil
}
