// Package connguard bounds how long the connections of an HTTP/1.1 server
// may take to send a request's headers and body, and how long they may sit
// idle, with one sweep over the connections every so often instead of
// net/http's deadlines (ReadHeaderTimeout, ReadTimeout, IdleTimeout), which
// cost a timer operation each, three or four times per request.
//
// A connection over its bound has its read deadline set in the past: the
// read under way fails with a timeout, as it would have with net/http's own
// deadline, so net/http closes a connection that stalls in its headers or
// idles, and a handler reading a slow body gets an error it can answer
// (408). A handler says when it has read its request's body, with BodyRead;
// from then on the request may take as long as it likes.
//
// Use it as:
//
//	g := connguard.New(connguard.Limits{Header: 10 * time.Second, Body: 30 * time.Second, Idle: 2 * time.Minute})
//	srv := &http.Server{Handler: h}
//	g.Watch(srv) // sets ConnState and ConnContext
//	go g.Run(ctx)
//	srv.Serve(g.Listener(lis)) // or tls.NewListener(g.Listener(lis), cfg)
package connguard

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Limits are the bounds a Guard keeps. A zero limit is no bound.
type Limits struct {
	// Header bounds a new connection from its accept to the end of its
	// first request's headers (the TLS handshake included), and a kept-alive
	// one from the first byte of a request to the end of its headers.
	Header time.Duration
	// Body bounds a request from the end of its headers until its handler
	// says it has read the body (BodyRead).
	Body time.Duration
	// Idle bounds a kept-alive connection between requests.
	Idle time.Duration
}

// Guard keeps Limits on the connections of the servers it watches.
type Guard struct {
	limits Limits
	start  time.Time    // the clock's origin: times are nanoseconds since, monotonic
	clock  func() int64 // the time since start; tests set their own

	mu    sync.Mutex
	conns map[*Conn]struct{}
}

// New returns a Guard keeping limits.
func New(limits Limits) *Guard {
	g := &Guard{limits: limits, start: time.Now(), conns: map[*Conn]struct{}{}}
	g.clock = func() int64 { return int64(time.Since(g.start)) }
	return g
}

// phases of a connection, as net/http's ConnState reports them, and the
// handler's BodyRead.
const (
	phaseNew    int32 = iota // accepted; no request read yet
	phaseIdle                // between requests
	phaseActive              // a request's headers are read; its body may not be
	phaseRead                // the handler has read the request's body
)

// Conn is a connection a Guard watches.
type Conn struct {
	net.Conn
	g     *Guard
	phase atomic.Int32
	since atomic.Int64 // when the phase began
	// first is when the first byte arrived after the connection went
	// idle, 0 before: a request's headers are on their way.
	first atomic.Int64
}

// Read reads from the connection, noting the first byte of a request that
// arrives on an idle connection.
func (c *Conn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && c.phase.Load() == phaseIdle && c.first.Load() == 0 {
		c.first.Store(c.g.now())
	}
	return n, err
}

// now is the guard's monotonic clock, never 0.
func (g *Guard) now() int64 { return g.clock() + 1 }

// Listener returns l whose accepted connections g watches. Wrap it in TLS,
// if any, after: the guard watches the raw connection.
func (g *Guard) Listener(l net.Listener) net.Listener { return &listener{Listener: l, g: g} }

type listener struct {
	net.Listener
	g *Guard
}

func (l *listener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := &Conn{Conn: nc, g: l.g}
	c.since.Store(l.g.now())
	l.g.mu.Lock()
	l.g.conns[c] = struct{}{}
	l.g.mu.Unlock()
	return c, nil
}

// Close forgets the connection and closes it.
func (c *Conn) Close() error {
	c.g.forget(c)
	return c.Conn.Close()
}

func (g *Guard) forget(c *Conn) {
	g.mu.Lock()
	delete(g.conns, c)
	g.mu.Unlock()
}

// connKey is the request context's key of its connection.
type connKey struct{}

// Watch makes g follow srv's connections: it sets srv.ConnState and
// srv.ConnContext, wrapping any that srv had.
func (g *Guard) Watch(srv *http.Server) {
	prevState, prevContext := srv.ConnState, srv.ConnContext
	srv.ConnState = func(nc net.Conn, state http.ConnState) {
		if c := guarded(nc); c != nil {
			c.g.follow(c, state)
		}
		if prevState != nil {
			prevState(nc, state)
		}
	}
	srv.ConnContext = func(ctx context.Context, nc net.Conn) context.Context {
		if prevContext != nil {
			ctx = prevContext(ctx, nc)
		}
		if c := guarded(nc); c != nil {
			ctx = context.WithValue(ctx, connKey{}, c)
		}
		return ctx
	}
}

// guarded returns the Conn under nc, or nil.
func guarded(nc net.Conn) *Conn {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	c, _ := nc.(*Conn)
	return c
}

// follow records c's new state.
func (g *Guard) follow(c *Conn, state http.ConnState) {
	switch state {
	case http.StateActive:
		c.enter(phaseActive)
	case http.StateIdle:
		c.enter(phaseIdle)
	case http.StateHijacked, http.StateClosed:
		g.forget(c)
	}
}

// enter starts phase p.
func (c *Conn) enter(p int32) {
	c.first.Store(0)
	c.since.Store(c.g.now())
	c.phase.Store(p)
}

// BodyRead says that the request of ctx (an *http.Request's context) has
// had its body read: its connection is not cut for being slow from now on,
// however long the request takes. A request not served through a Guard is
// not changed.
func BodyRead(ctx context.Context) {
	if c, ok := ctx.Value(connKey{}).(*Conn); ok && c.phase.Load() == phaseActive {
		c.phase.Store(phaseRead)
	}
}

// Run sweeps g's connections until ctx ends, often enough to cut each
// within about a quarter of its limit (at most a second) after it passed.
func (g *Guard) Run(ctx context.Context) {
	t := time.NewTicker(g.every())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			g.Sweep()
		}
	}
}

// every is how often Run sweeps.
func (g *Guard) every() time.Duration {
	d := time.Second
	for _, l := range []time.Duration{g.limits.Header, g.limits.Body, g.limits.Idle} {
		if l > 0 {
			d = min(d, l/4)
		}
	}
	return max(d, 10*time.Millisecond)
}

// Sweep cuts the reads of the connections over their limits now, and
// returns how many it cut.
func (g *Guard) Sweep() int {
	now := g.now()
	var over []*Conn
	g.mu.Lock()
	for c := range g.conns {
		if g.overdue(c, now) {
			over = append(over, c)
		}
	}
	g.mu.Unlock()
	for _, c := range over {
		// A deadline in the past fails the read under way and any after
		// it, until net/http sets another (it does so only when a request
		// has come, which the next sweep judges again).
		_ = c.Conn.SetReadDeadline(time.Unix(1, 0))
	}
	return len(over)
}

// overdue says whether c is over its limit at now.
func (g *Guard) overdue(c *Conn, now int64) bool {
	over := func(since int64, limit time.Duration) bool {
		return limit > 0 && since > 0 && time.Duration(now-since) > limit
	}
	switch c.phase.Load() {
	case phaseNew:
		return over(c.since.Load(), g.limits.Header)
	case phaseIdle:
		if first := c.first.Load(); first != 0 {
			return over(first, g.limits.Header)
		}
		return over(c.since.Load(), g.limits.Idle)
	case phaseActive:
		return over(c.since.Load(), g.limits.Body)
	}
	return false
}
