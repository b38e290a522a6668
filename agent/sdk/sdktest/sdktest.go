// Package sdktest runs a service package's handlers in `go test`, with no
// agent: it invokes the services the package registered with sdk.Register,
// decoding, validating and encoding JSON exactly as an agent does.
//
//	func TestGreet(t *testing.T) {
//		r := sdktest.Invoke(t, "hello.greet", `{"name":"World"}`)
//		if r.Err != nil || string(r.Output) != `{"greeting":"Hello, World!"}` {
//			t.Fatalf("got %d %s %v", r.Status, r.Output, r.Err)
//		}
//	}
package sdktest

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/weft-dev/weft/agent/handler"
	"github.com/weft-dev/weft/agent/sdk"
	"github.com/weft-dev/weft/agent/sdk/internal/registry"
)

// Result is the outcome of one invocation.
type Result struct {
	// Status is the HTTP status an agent would answer with: the one the
	// handler set (200 if none) on success, else the error's status (400
	// for bad input, an sdk.Error's status, 500 otherwise).
	Status int
	// Output is the JSON output; nil when Err is not nil.
	Output []byte
	// Err is the error from the handler, the input or a panic; see package
	// handler for its types.
	Err error
	// Response is what the handler set on its Context.
	Response sdk.Response
}

// Invoke calls the registered service name with the JSON input, as an
// agent would. The call's Context has t's context and a logger writing to
// the test output. Invoke fails the test if no service name is registered
// or its handler has the wrong shape.
func Invoke(t testing.TB, name, input string) Result {
	t.Helper()
	return InvokeRequest(t, name, sdk.Request{}, input)
}

// InvokeRequest is Invoke with the request the Context describes (path
// parameters, query, headers...). Empty CID, Service and Logger are filled
// in.
func InvokeRequest(t testing.TB, name string, req sdk.Request, input string) Result {
	t.Helper()
	svc := service(t, name)
	if req.CID == "" {
		req.CID = "test"
	}
	if req.Service == "" {
		req.Service = name
	}
	if req.Logger == nil {
		req.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	if req.Services == nil {
		req.Services = newServices(t)
	}
	ctx := t.Context()
	if svc.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, svc.Timeout)
		defer cancel()
	}
	c := sdk.NewContext(ctx, req)
	out, err := svc.Invoke(c, []byte(input))
	r := Result{Output: out, Err: err, Response: c.Response(), Status: handler.Status(err)}
	if err == nil && r.Response.Status != 0 {
		r.Status = r.Response.Status
	}
	return r
}

// Call invokes the registered service name with in encoded as JSON and
// decodes its output into an Out. It fails the test if in does not encode
// or the output does not decode; the handler's error is returned.
func Call[Out, In any](t testing.TB, name string, in In) (Out, error) {
	t.Helper()
	var out Out
	input, err := json.Marshal(in)
	if err != nil {
		t.Fatalf("sdktest: encode input of %s: %v", name, err)
	}
	r := Invoke(t, name, string(input))
	if r.Err != nil {
		return out, r.Err
	}
	if err := json.Unmarshal(r.Output, &out); err != nil {
		t.Fatalf("sdktest: decode output of %s: %v", name, err)
	}
	return out, nil
}

// Services returns the names of the services registered in the test
// binary, sorted.
func Services() []string { return registry.Names() }

// service returns the registered service name, checked as an agent checks
// it.
func service(t testing.TB, name string) *handler.Service {
	t.Helper()
	fn, ok := registry.Lookup(name)
	if !ok {
		t.Fatalf("sdktest: no service %q registered (have %q)", name, registry.Names())
	}
	svc, err := handler.New(name, fn)
	if err != nil {
		t.Fatalf("sdktest: %v", err)
	}
	svc.Timeout = registry.Timeout(name)
	return svc
}
