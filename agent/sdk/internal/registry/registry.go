// Package registry holds the default service registry that sdk.Register
// records into when a service package runs as ordinary Go (go test). It is
// internal so that service authors see only sdk.Register.
package registry

import (
	"fmt"
	"sort"
	"sync"
	"time"
)

var (
	mu       sync.Mutex
	handlers = map[string]any{}
	timeouts = map[string]time.Duration{}
)

// Add records handler under name. It panics on an empty or duplicate name,
// as http.ServeMux does, so that the mistake stops the test binary at init.
func Add(name string, handler any, timeout time.Duration) {
	mu.Lock()
	defer mu.Unlock()
	if name == "" {
		panic("sdk.Register: empty service name")
	}
	if _, dup := handlers[name]; dup {
		panic(fmt.Sprintf("sdk.Register: service %q registered twice", name))
	}
	handlers[name] = handler
	timeouts[name] = timeout
}

// Timeout returns the default deadline name was registered with; 0 for
// none.
func Timeout(name string) time.Duration {
	mu.Lock()
	defer mu.Unlock()
	return timeouts[name]
}

// Lookup returns the handler registered under name.
func Lookup(name string) (handler any, ok bool) {
	mu.Lock()
	defer mu.Unlock()
	handler, ok = handlers[name]
	return handler, ok
}

// Names returns the registered service names, sorted.
func Names() []string {
	mu.Lock()
	defer mu.Unlock()
	names := make([]string, 0, len(handlers))
	for n := range handlers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
