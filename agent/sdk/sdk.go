// Package sdk is what a Weft service imports.
//
// A service is a plain Go package. Each of its init functions registers one
// or more named services with Register; a service is a function that takes
// a *Context and a typed input and returns a typed output or an error:
//
//	package hello
//
//	import "github.com/weft-dev/weft/agent/sdk"
//
//	type GreetInput struct {
//		Name string `json:"name" weft:"required"`
//	}
//
//	type GreetOutput struct {
//		Greeting string `json:"greeting"`
//	}
//
//	func init() { sdk.Register("hello.greet", Greet) }
//
//	func Greet(ctx *sdk.Context, in GreetInput) (GreetOutput, error) {
//		return GreetOutput{Greeting: "Hello, " + in.Name + "!"}, nil
//	}
//
// Input and output travel as JSON. Input and output types are structs,
// pointers to structs or maps with string keys; struct fields use the usual
// `json` tags, and a field tagged `weft:"required"` must be present (and
// not null) in the input, or the caller gets a 400 naming the field. An
// unknown input field is ignored; a value of the wrong type is a 400.
//
// A handler reports a client error with Errorf (for example a 404); any
// other error is a 500, and so is a panic.
//
// Because a service is ordinary Go, it builds, vets and tests with the
// normal toolchain: package sdktest runs handlers in `go test` exactly as an
// agent would. On an agent, the package is interpreted (by Yaegi) and may
// import only the SDK and an allow-list of the standard library (no os, net,
// reflect, unsafe or syscall); talk to the outside world through the
// Context.
package sdk

import (
	"time"

	"github.com/weft-dev/weft/agent/sdk/internal/registry"
)

// Register makes handler available under the service name name (for
// example "hello.greet"). Call it from an init function.
//
// handler must be a function of the shape
//
//	func(ctx *sdk.Context, in In) (Out, error)
//
// where In and Out are structs, pointers to structs, or maps with string
// keys. A handler of another shape, an empty name, or a name registered
// twice is an error: the agent refuses to load the package and reports the
// service name. In `go test`, an empty or duplicate name panics at init and
// a bad shape fails the test that invokes it (see package sdktest).
//
// Options tune the service: Timeout sets its default deadline, SlowAfter
// how long an invocation may take before the agent keeps it as slow.
func Register(name string, handler any, opts ...Option) {
	registry.Add(name, handler, Options(opts).Timeout)
}

// Option tunes a service at registration.
type Option struct {
	// Timeout is the service's default deadline; 0 leaves the agent's
	// (30 s unless the agent says otherwise). A channel's timeout overrides
	// it.
	Timeout time.Duration
	// SlowAfter is how long an invocation may take before the agent keeps
	// it among the service's slow samples; 0 leaves the agent's (1 s unless
	// the agent's --slow-threshold says otherwise).
	SlowAfter time.Duration
}

// Timeout returns an Option setting the service's default deadline, for
// example sdk.Register("orders.sync", Sync, sdk.Timeout(2*time.Minute)).
func Timeout(d time.Duration) Option { return Option{Timeout: d} }

// SlowAfter returns an Option setting how long an invocation may take
// before the agent keeps it as a slow sample, for example
// sdk.Register("orders.sync", Sync, sdk.SlowAfter(5*time.Second)).
func SlowAfter(d time.Duration) Option { return Option{SlowAfter: d} }

// Options merges options: a later non-zero field wins.
func Options(opts []Option) Option {
	var o Option
	for _, x := range opts {
		if x.Timeout != 0 {
			o.Timeout = x.Timeout
		}
		if x.SlowAfter != 0 {
			o.SlowAfter = x.SlowAfter
		}
	}
	return o
}
