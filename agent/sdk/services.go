package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Services is what an agent offers a call beyond its request: the other
// services it runs, its cache, and goroutines it tracks. The agent sets it
// in Request; package sdktest sets one that runs registered handlers in
// the test process. Service code uses it through the Context methods.
type Services interface {
	// Invoke runs service with JSON input under ctx's deadline. A failure
	// the callee reports with a status comes back as an *Error.
	Invoke(ctx context.Context, service string, input []byte) ([]byte, error)
	// InvokeAsync starts service with JSON input and returns its CID at once.
	InvokeAsync(service string, input []byte) (string, error)
	// Go runs fn in a goroutine the agent tracks; fn's context ends when the
	// calling service's package is replaced or removed.
	Go(fn func(ctx context.Context)) error
	// Cache returns the agent's cache.
	Cache() *Cache
	// Outgoing returns the outgoing connection name, or an error saying it
	// does not exist or is inactive.
	Outgoing(name string) (OutgoingConn, error)
}

// Invoke runs another service, synchronously, within this call's deadline:
// input is encoded as JSON, and the service's JSON output is decoded into
// output (a pointer; nil to ignore it). When the other service fails with a
// status (400, 404, 504...), the error is an *Error with that status, so a
// handler may simply return it.
func (c *Context) Invoke(service string, input, output any) error {
	return c.InvokeTimeout(0, service, input, output)
}

// InvokeTimeout is Invoke with its own bound: the other service gets at
// most timeout, and never more than this call has left. 0 means no bound
// but this call's.
func (c *Context) InvokeTimeout(timeout time.Duration, service string, input, output any) error {
	svcs := c.req.Services
	if svcs == nil {
		return Errorf(http.StatusNotImplemented, "invoke %s: no other services are available here", service)
	}
	in, err := json.Marshal(input)
	if err != nil {
		return fmt.Errorf("invoke %s: encode input: %w", service, err)
	}
	ctx := c.ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	out, err := svcs.Invoke(ctx, service, in)
	if err != nil {
		return err
	}
	if output == nil {
		return nil
	}
	if err := json.Unmarshal(out, output); err != nil {
		return fmt.Errorf("invoke %s: decode output: %w", service, err)
	}
	return nil
}

// InvokeAsync starts another service with input and returns at once with
// the CID of that invocation; its outcome is logged by the agent.
func (c *Context) InvokeAsync(service string, input any) (string, error) {
	svcs := c.req.Services
	if svcs == nil {
		return "", Errorf(http.StatusNotImplemented, "invoke %s: no other services are available here", service)
	}
	in, err := json.Marshal(input)
	if err != nil {
		return "", fmt.Errorf("invoke %s: encode input: %w", service, err)
	}
	return svcs.InvokeAsync(service, in)
}

// Go runs fn in a goroutine the agent tracks. Services must not use the go
// statement: a goroutine the agent does not know of would outlive the
// package when a new version is deployed. fn's context ends when this
// service's package is replaced or removed; fn must return then. A panic
// in fn is logged, and the agent stays up.
func (c *Context) Go(fn func(ctx context.Context)) error {
	if c.req.Services == nil {
		return Errorf(http.StatusNotImplemented, "no tracked goroutines are available here")
	}
	return c.req.Services.Go(fn)
}

// Cache returns the agent's cache, shared by every service on the agent.
// It is nil where no agent runs the call and sdktest set none.
func (c *Context) Cache() *Cache {
	if c.req.Services == nil {
		return nil
	}
	return c.req.Services.Cache()
}

// Cache is an in-memory key-value cache, one per agent, whose entries may
// expire. Values are kept as they are given; store plain data (strings,
// numbers, byte slices, maps) rather than your own types, which another
// package version cannot read. It is safe for concurrent use.
type Cache struct {
	mu      sync.Mutex
	entries map[string]cacheEntry
	now     func() time.Time
}

type cacheEntry struct {
	value   any
	expires time.Time // zero for never
}

// NewCache returns an empty cache. now is the clock; nil means time.Now.
func NewCache(now func() time.Time) *Cache {
	if now == nil {
		now = time.Now
	}
	return &Cache{entries: make(map[string]cacheEntry), now: now}
}

// Get returns the value under key, and whether there is one that has not
// expired.
func (c *Cache) Get(key string) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	if !e.expires.IsZero() && !c.now().Before(e.expires) {
		delete(c.entries, key)
		return nil, false
	}
	return e.value, true
}

// Set stores value under key for ttl; a ttl of 0 or less keeps it until it
// is deleted or the agent restarts.
func (c *Cache) Set(key string, value any, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := cacheEntry{value: value}
	if ttl > 0 {
		e.expires = c.now().Add(ttl)
	}
	c.entries[key] = e
	if len(c.entries)%1024 == 0 {
		c.sweep()
	}
}

// Delete removes key.
func (c *Cache) Delete(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, key)
}

// Len returns how many entries the cache holds, expired ones included
// until they are next touched.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// sweep drops expired entries; called with mu held.
func (c *Cache) sweep() {
	now := c.now()
	for k, e := range c.entries {
		if !e.expires.IsZero() && !now.Before(e.expires) {
			delete(c.entries, k)
		}
	}
}
