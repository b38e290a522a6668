// Package handlersig holds the shape a function registered with
// sdk.Register must have. Agents check it before they serve a service
// (package agent/handler) and the control plane's door checks it when it
// evaluates a package, with the same Check, so that the door refuses
// exactly the handlers an agent would.
package handlersig

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/weft-dev/weft/agent/sdk"
)

var (
	contextType = reflect.TypeFor[*sdk.Context]()
	errorType   = reflect.TypeFor[error]()
)

// Check reports whether fn has the shape func(*sdk.Context, In) (Out,
// error), with In and Out structs, pointers to structs or maps with string
// keys; the error names the service name.
func Check(name string, fn any) error {
	if name == "" {
		return errors.New("service name is empty")
	}
	v := reflect.ValueOf(fn)
	if fn == nil || v.Kind() != reflect.Func || v.IsNil() {
		return fmt.Errorf("service %q: handler must be a func(*sdk.Context, In) (Out, error), got %T", name, fn)
	}
	t := v.Type()
	if t.NumIn() != 2 || t.NumOut() != 2 || t.IsVariadic() ||
		t.In(0) != contextType || t.Out(1) != errorType {
		return fmt.Errorf("service %q: handler must be a func(*sdk.Context, In) (Out, error), got %s", name, t)
	}
	if !DataType(t.In(1)) {
		return fmt.Errorf("service %q: input type %s must be a struct, a pointer to a struct or a map with string keys", name, t.In(1))
	}
	if !DataType(t.Out(0)) {
		return fmt.Errorf("service %q: output type %s must be a struct, a pointer to a struct or a map with string keys", name, t.Out(0))
	}
	return nil
}

// DataType reports whether t may be a handler's input or output: a struct,
// a pointer to a struct, or a map with string keys.
func DataType(t reflect.Type) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Kind() == reflect.Struct || t.Kind() == reflect.Map && t.Key().Kind() == reflect.String
}
