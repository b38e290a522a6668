// Package runtime loads service packages (Go source) into Yaegi
// interpreters and invokes their services.
//
// Each loaded package version gets its own interpreter, which sees a
// curated symbol table (package symbols): the service SDK and an allow-list
// of the standard library. Yaegi is not a sandbox; the allow-list keeps
// well-meaning code away from the host, not hostile code. Every Eval and
// every call runs under recover, and with a deadline.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"go/token"
	"log/slog"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing/fstest"
	"time"

	"github.com/traefik/yaegi/interp"

	"github.com/weft-dev/weft/agent/handler"
	"github.com/weft-dev/weft/agent/runtime/symbols"
)

// DefaultLoadTimeout bounds how long the package's initialisation (its
// package variables and init functions) may run.
const DefaultLoadTimeout = 10 * time.Second

// importPath is the path a package is loaded under inside its interpreter.
// It shows in Yaegi's messages as "src/<importPath>/", which we strip.
const importPath = "weftsvc"

// Source is the source of one deployment package: the Go files of one
// package directory.
type Source struct {
	Name  string // the deployment package's name, for messages
	Files []File
}

// File is one Go source file of a Source. Files named *_test.go are
// ignored.
type File struct {
	Name    string // base name, such as hello.go
	Content []byte
}

// Package is a loaded deployment package: one interpreter and the services
// its init functions registered. It is immutable once loaded: do not modify
// Services. It is safe for concurrent use.
type Package struct {
	// Name is Source.Name.
	Name string
	// Services maps each registered service name to its handler.
	Services map[string]*handler.Service

	interp *interp.Interpreter
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
	for _, s := range p.Services {
		s.Close()
	}
	// Yaegi stops an interpreter's running code only from EvalWithContext,
	// when its context is done: give it one that already is. The select in
	// EvalWithContext may see the (empty) eval finish first, so retry. The
	// stop also leaves every function value of the interpreter returning
	// zero values at once, which is why the services are closed first.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 10 {
		if _, err := p.interp.EvalWithContext(ctx, ""); errors.Is(err, context.Canceled) {
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
func Load(ctx context.Context, src Source, opts ...Option) (*Package, error) {
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
	out := newOutputs(o.logger.With("package", src.Name))
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
	reg := &registrar{positions: regs, services: map[string]*handler.Service{}}
	for _, exports := range []interp.Exports{symbols.Symbols, varCopies(), reg.exports()} {
		if err := i.Use(exports); err != nil {
			return nil, fmt.Errorf("load %s: set up interpreter: %w", src.Name, err)
		}
	}

	if err := eval(ctx, i, o.timeout); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("load %s: %w", src.Name, ctx.Err())
		}
		return nil, loadError(err, out.panicAt(), o.timeout)
	}
	services, err := reg.seal()
	if err != nil {
		return nil, err
	}
	return &Package{Name: src.Name, Services: services, interp: i}, nil
}

// Validate loads src in an interpreter of its own, returns the names of
// its services, sorted, and closes the interpreter. Like Load, it runs the
// package's initialisation: the control plane calls it only in a child
// process made for it (see Check for what it learns without running code).
func Validate(ctx context.Context, src Source, opts ...Option) ([]string, error) {
	p, err := Load(ctx, src, opts...)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	return p.ServiceNames(), nil
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
