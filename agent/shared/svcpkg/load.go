// Package svcpkg checks and loads service packages (the Go source deployed
// to agents) the one way the control plane's door and the agents share.
//
// Check judges a package without running any of it: its syntax, the
// imports the symbol tables allow (package agent/shared/symbols), the
// constructs the interpreter gets wrong, the uses the audit refuses, and a
// full type check; it also tells the services when the package's
// initialisation does nothing but register them. Load runs the package's
// initialisation in a Yaegi interpreter of its own, after the same checks,
// and returns what it registered: agents serve those services (package
// agent/runtime), and the control plane loads a package only in a confined
// child process (Validate), never in its own.
package svcpkg

import (
	"context"
	"errors"
	"fmt"
	"go/token"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing/fstest"
	"time"

	"github.com/traefik/yaegi/interp"

	"github.com/weft-dev/weft/agent/shared/symbols"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// DefaultLoadTimeout bounds how long the package's initialisation (its
// package variables and init functions) may run.
const DefaultLoadTimeout = 10 * time.Second

// importPath is the path a package is loaded under inside its interpreter.
// It shows in Yaegi's messages as "src/<importPath>/", which we strip.
const importPath = "weftsvc"

// Registration is one service a package's initialisation registered:
// the arguments of its sdk.Register call.
type Registration struct {
	Name string
	// Handler has the shape handlersig.Check requires.
	Handler any
	// Timeout and SlowAfter are the sdk.Timeout and sdk.SlowAfter options,
	// 0 when not given.
	Timeout, SlowAfter time.Duration
}

// Loaded is a package whose initialisation has run in an interpreter of
// its own, and the services it registered. The handlers run in that
// interpreter until Stop.
type Loaded struct {
	// Services are the registrations, by name.
	Services map[string]Registration

	interp  *interp.Interpreter
	stopped atomic.Bool
}

// ServiceNames returns the names of the services, sorted.
func (l *Loaded) ServiceNames() []string {
	names := make([]string, 0, len(l.Services))
	for n := range l.Services {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Stop stops the code running in the package's interpreter, which cannot
// be used after: every function value of the interpreter returns zero
// values at once, so whoever serves the handlers must stop serving them
// first. A call blocked inside compiled code (a time.Sleep, a channel
// receive in the standard library) ends only when that returns. Stop
// reports whether it stopped the interpreter: false when it was stopped
// already.
func (l *Loaded) Stop() bool {
	if !l.stopped.CompareAndSwap(false, true) {
		return false
	}
	// Yaegi stops an interpreter's running code only from EvalWithContext,
	// when its context is done: give it one that already is. The select in
	// EvalWithContext may see the (empty) eval finish first, so retry.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 10 {
		if _, err := l.interp.EvalWithContext(ctx, ""); errors.Is(err, context.Canceled) {
			break
		}
	}
	return true
}

// Option configures Load.
type Option func(*options)

type options struct {
	logger  *slog.Logger
	timeout time.Duration
}

// WithLogger sets the logger that gets what services print to standard
// output and standard error (one log line per printed line). The default
// discards it.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithLoadTimeout bounds the package's initialisation, DefaultLoadTimeout
// by default.
func WithLoadTimeout(d time.Duration) Option {
	return func(o *options) { o.timeout = d }
}

// Load checks src, interprets it in a new interpreter, runs its init
// functions and returns the services they registered. Problems with the
// code (syntax, disallowed imports, type errors, a panic or a runaway loop
// at init, bad handlers, no services) come back as a *LoadError listing
// each with its file:line:col. Load returns ctx's error if ctx ends first.
func Load(ctx context.Context, src *adminv1.PackageSource, opts ...Option) (*Loaded, error) {
	o := options{logger: slog.New(slog.DiscardHandler), timeout: DefaultLoadTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	files, regs, err := check(src)
	if err != nil {
		return nil, err
	}

	fsys := fstest.MapFS{}
	for _, f := range files {
		fsys["src/"+importPath+"/"+f.Name] = &fstest.MapFile{Data: f.Content}
	}
	out := newOutputs(o.logger.With("package", src.GetName()))
	i := interp.New(interp.Options{
		GoPath:               ".",
		SourcecodeFilesystem: fsys,
		// The interpreter puts fmt.Scan back, reading from Stdin, even
		// though the tables leave it out: give it nothing to read, never
		// the agent's own input.
		Stdin:  strings.NewReader(""),
		Stdout: out.stdout,
		Stderr: out.stderr,
	})
	reg := &registrar{positions: regs, services: map[string]Registration{}}
	for _, exports := range []interp.Exports{symbols.Symbols, varCopies(), reg.exports()} {
		if err := i.Use(exports); err != nil {
			return nil, fmt.Errorf("load %s: set up interpreter: %w", src.GetName(), err)
		}
	}

	if err := eval(ctx, i, o.timeout); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("load %s: %w", src.GetName(), ctx.Err())
		}
		return nil, loadError(err, out.panicAt(), o.timeout)
	}
	services, err := reg.seal()
	if err != nil {
		return nil, err
	}
	return &Loaded{Services: services, interp: i}, nil
}

// Validate loads src in an interpreter of its own, returns the names of
// its services, sorted, and stops the interpreter. Like Load, it runs the
// package's initialisation: the control plane calls it only in a child
// process made for it (see Check for what it learns without running code).
func Validate(ctx context.Context, src *adminv1.PackageSource, opts ...Option) ([]string, error) {
	l, err := Load(ctx, src, opts...)
	if err != nil {
		return nil, err
	}
	defer l.Stop()
	return l.ServiceNames(), nil
}

// eval imports the package, which runs its init functions, under recover
// and a timeout. On timeout, Yaegi stops the interpreter's code, except for
// a call blocked in compiled code, whose goroutine is left behind.
func eval(ctx context.Context, i *interp.Interpreter, timeout time.Duration) (err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			err = interp.Panic{Value: r}
		}
	}()
	_, err = i.EvalWithContext(ctx, `import _ "`+importPath+`"`)
	return err
}

// varCopies returns the standard library's package variables (io.EOF,
// time.Local, ...) as copies private to one interpreter, so that a service
// assigning to one cannot change it for the agent or other packages.
func varCopies() interp.Exports {
	vars := settableVars()
	exports := make(interp.Exports, len(vars))
	for _, v := range vars {
		m := exports[v.pkg]
		if m == nil {
			m = map[string]reflect.Value{}
			exports[v.pkg] = m
		}
		c := reflect.New(v.val.Type()).Elem()
		c.Set(v.val)
		m[v.name] = c
	}
	return exports
}

type symbolVar struct {
	pkg, name string
	val       reflect.Value
}

var settableVars = sync.OnceValue(func() []symbolVar {
	var vars []symbolVar
	for pkg, syms := range symbols.Symbols {
		for name, v := range syms {
			if v.CanSet() {
				vars = append(vars, symbolVar{pkg, name, v})
			}
		}
	}
	return vars
})

// positions maps each service name passed to sdk.Register as a string
// literal to the positions of those calls, in source order.
type positions map[string][]token.Position
