// Package handler turns a function registered with sdk.Register into a
// service that takes and returns JSON. It checks the function's shape once,
// then for each call decodes and validates the input, calls the function
// under recover and encodes the output. The agent and package sdktest both
// use it, so a service behaves the same in `go test` as on an agent.
package handler

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/weft-dev/weft/agent/sdk"
	"github.com/weft-dev/weft/agent/shared/handlersig"
)

// Service is a checked handler, ready to be invoked. It is immutable and
// safe for concurrent use.
type Service struct {
	// Timeout is the service's default deadline, from its registration; 0
	// for the agent's.
	Timeout time.Duration
	// SlowAfter is how long an invocation may take before it counts as
	// slow, from its registration; 0 for the agent's threshold.
	SlowAfter time.Duration

	name     string
	fn       reflect.Value
	in, out  reflect.Type
	required []*field // the input's required fields, nil if none
	closed   atomic.Bool

	// Yaegi fills caches of reflect types during a function's first calls
	// without locking, which races when a fresh package gets concurrent
	// calls. So the first call runs alone: later calls wait for it to
	// return, but at most firstCallWait.
	firstStarted atomic.Bool
	firstDone    chan struct{}
}

// firstCallWait bounds how long a call waits for a service's first call.
const firstCallWait = 250 * time.Millisecond

// ErrClosed is returned (wrapped) by Invoke on a closed Service.
var ErrClosed = errors.New("service is closed")

// New checks that fn has the shape func(*sdk.Context, In) (Out, error),
// with In and Out structs, pointers to structs or maps with string keys
// (handlersig.Check), and returns it as the service name.
func New(name string, fn any) (*Service, error) {
	if err := handlersig.Check(name, fn); err != nil {
		return nil, err
	}
	v := reflect.ValueOf(fn)
	t := v.Type()
	return &Service{
		firstDone: make(chan struct{}),
		name:      name,
		fn:        v,
		in:        t.In(1),
		out:       t.Out(0),
		required:  requiredFields(t.In(1), map[reflect.Type]bool{}),
	}, nil
}

// Name returns the service name.
func (s *Service) Name() string { return s.name }

// InputType returns the type of the handler's input (its second argument).
func (s *Service) InputType() reflect.Type { return s.in }

// OutputType returns the type of the handler's output (its first result).
func (s *Service) OutputType() reflect.Type { return s.out }

// Close makes later calls of s fail with ErrClosed, and calls running now
// return ErrClosed instead of their output. The runtime closes the services
// of a package it retires, because the interpreter it stops would make them
// return zero values.
func (s *Service) Close() { s.closed.Store(true) }

// Invoke decodes input (JSON; empty means {}), checks its required fields,
// calls the handler with c and returns its output as JSON. A nil c gets an
// empty Context.
//
// Errors are an *InputError (bad input: 400), a *HandlerError (the handler
// returned an error: its *sdk.Error status, else 500), a *PanicError (500)
// or an *OutputError (the output does not encode: 500), or ErrClosed
// (503). Status maps any of them to its HTTP status.
func (s *Service) Invoke(c *sdk.Context, input []byte) (output []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			output, err = nil, &PanicError{Service: s.name, Value: panicValue(r), Stack: debug.Stack()}
		}
	}()
	if s.closed.Load() {
		return nil, fmt.Errorf("%s: %w", s.name, ErrClosed)
	}
	if c == nil {
		c = sdk.NewContext(nil, sdk.Request{Service: s.name})
	}
	in, err := s.decode(input)
	if err != nil {
		return nil, &InputError{Service: s.name, Err: err}
	}
	if first := s.waitFirst(); first {
		defer close(s.firstDone)
	}
	res := s.fn.Call([]reflect.Value{reflect.ValueOf(c), in})
	if s.closed.Load() {
		return nil, fmt.Errorf("%s: %w", s.name, ErrClosed)
	}
	if e := res[1]; !e.IsNil() {
		return nil, &HandlerError{Service: s.name, Err: e.Interface().(error)}
	}
	output, err = json.Marshal(res[0].Interface())
	if err != nil {
		return nil, &OutputError{Service: s.name, Err: err}
	}
	return output, nil
}

// waitFirst reports whether this is the service's first call, which the
// caller must end by closing s.firstDone; otherwise it waits (a bounded
// time) for the first call to return.
func (s *Service) waitFirst() bool {
	select {
	case <-s.firstDone:
		return false
	default:
	}
	if s.firstStarted.CompareAndSwap(false, true) {
		return true
	}
	t := time.NewTimer(firstCallWait)
	defer t.Stop()
	select {
	case <-s.firstDone:
	case <-t.C:
	}
	return false
}

// decode returns the input as a value of the handler's input type.
func (s *Service) decode(input []byte) (reflect.Value, error) {
	// Errors name bytes of the input as sent, leading spaces counted.
	lead := len(input) - len(bytes.TrimLeftFunc(input, unicode.IsSpace))
	input = bytes.TrimSpace(input)
	if len(input) == 0 {
		input = []byte("{}")
	}
	ptr := reflect.New(s.in)
	if err := json.Unmarshal(input, ptr.Interface()); err != nil {
		return reflect.Value{}, decodeError(err, lead)
	}
	if s.required != nil {
		if err := checkRequired(input, s.required, ""); err != nil {
			return reflect.Value{}, err
		}
	}
	return ptr.Elem(), nil
}

// decodeError rewords encoding/json's errors in terms of the input's
// fields; a syntax error's byte is counted after lead bytes trimmed off.
func decodeError(err error, lead int) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return fmt.Errorf("input must be a JSON object, not %s", te.Value)
		}
		return fmt.Errorf("field %q: cannot use a JSON %s as %s", te.Field, te.Value, typeName(te.Type))
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("malformed JSON at byte %d: %v", se.Offset+int64(lead), err)
	}
	return err
}

// typeName names a Go type in JSON terms for error messages.
func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Pointer:
		return typeName(t.Elem())
	}
	return t.String()
}

// panicValue unwraps the reflect.Value that a panic in interpreted code
// arrives as.
func panicValue(r any) any {
	if v, ok := r.(reflect.Value); ok {
		if !v.IsValid() || !v.CanInterface() {
			return fmt.Sprint(r)
		}
		return v.Interface()
	}
	return r
}
