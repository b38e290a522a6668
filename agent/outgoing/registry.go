package outgoing

import (
	"fmt"
	"sync"
)

// Registry holds the current set of connections by name. Set replaces the
// whole set at once, so a changed address takes effect with no restart. The
// zero value is an empty registry whose connections get no options.
type Registry struct {
	optsFor func(Config) []Option

	mu    sync.RWMutex
	conns map[string]*Conn
}

// NewRegistry returns an empty registry that builds each connection with
// the options optsFor returns for its config (its Auth, client
// certificate); optsFor may be nil.
func NewRegistry(optsFor func(Config) []Option) *Registry {
	return &Registry{optsFor: optsFor}
}

// Set replaces the registry's connections with ones built from cfgs. It
// builds them all first and refuses the whole set, changing nothing, when a
// config is invalid or two share a name. The replaced connections are
// closed; calls in flight on them finish.
func (r *Registry) Set(cfgs []Config) error {
	next := make(map[string]*Conn, len(cfgs))
	closeAll := func() {
		for _, c := range next {
			c.Close()
		}
	}
	for i, cfg := range cfgs {
		if _, dup := next[cfg.Name]; dup {
			closeAll()
			return fmt.Errorf("outgoing connections: #%d: name %q is used twice", i, cfg.Name)
		}
		var opts []Option
		if r.optsFor != nil {
			opts = r.optsFor(cfg)
		}
		c, err := New(cfg, opts...)
		if err != nil {
			closeAll()
			return fmt.Errorf("outgoing connections: #%d: %w", i, err)
		}
		next[cfg.Name] = c
	}
	r.mu.Lock()
	old := r.conns
	r.conns = next
	r.mu.Unlock()
	for _, c := range old {
		c.Close()
	}
	return nil
}

// Get returns the current connection named name.
func (r *Registry) Get(name string) (*Conn, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c, ok := r.conns[name]
	return c, ok
}

// Names returns the names of the current connections, in no order.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.conns))
	for n := range r.conns {
		names = append(names, n)
	}
	return names
}

// Close closes every current connection and empties the registry.
func (r *Registry) Close() {
	r.mu.Lock()
	old := r.conns
	r.conns = nil
	r.mu.Unlock()
	for _, c := range old {
		c.Close()
	}
}
