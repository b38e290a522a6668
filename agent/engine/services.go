package engine

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"github.com/weft-dev/weft/agent/observe"
	"github.com/weft-dev/weft/agent/sdk"
)

// callServices is the sdk.Services of one invocation: it knows the state
// and the service it runs in, so that goroutines belong to that service's
// package.
type callServices struct {
	e       *Engine
	st      *State
	service string
}

var _ sdk.Services = (*callServices)(nil)

func (c *callServices) Invoke(ctx context.Context, service string, input []byte) ([]byte, error) {
	// A timeout of 0 leaves ctx's deadline, the caller's, in charge. The
	// origin says it is a service's call: the method alone is weftctl
	// invoke's too.
	out := c.e.invoke(ctx, c.e.cur.Load(), service, sdk.Request{Method: "INVOKE"}, input, 0, observe.OriginService)
	if out.Status < 200 || out.Status > 299 {
		return nil, &sdk.Error{Status: out.Status, Message: fmt.Sprintf("%s (cid %s): %s", service, out.CID, out.Error)}
	}
	return out.Output, nil
}

func (c *callServices) InvokeAsync(service string, input []byte) (string, error) {
	if st := c.e.cur.Load(); st == nil || st.services[service] == nil {
		return "", sdk.Errorf(http.StatusNotFound, "service %q is not deployed on this agent", service)
	}
	cid := NewCID()
	go func() {
		out := c.e.invoke(context.Background(), c.e.cur.Load(), service, sdk.Request{CID: cid, Method: "ASYNC"}, input, 0, observe.OriginService)
		if out.Status < 200 || out.Status > 299 {
			c.e.log.Warn("async invocation failed", "cid", cid, "service", service, "status", out.Status, "err", out.Error)
		}
	}()
	return cid, nil
}

func (c *callServices) Go(fn func(ctx context.Context)) error {
	sha := ""
	for s, p := range c.st.packages {
		if p.Services[c.service] != nil {
			sha = s
			break
		}
	}
	l := c.e.lifeOf(sha)
	if l == nil {
		return sdk.Errorf(http.StatusServiceUnavailable, "the package of %s is being replaced; no new goroutines", c.service)
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer func() {
			if v := recover(); v != nil {
				c.e.log.Error("a service goroutine panicked", "service", c.service, "panic", fmt.Sprint(v))
			}
		}()
		fn(l.ctx)
	}()
	return nil
}

func (c *callServices) Cache() *sdk.Cache { return c.e.cache }

func (c *callServices) Outgoing(name string) (sdk.OutgoingConn, error) {
	return c.st.conns.outgoingFor(name)
}

// life is the lifetime of one loaded package version: goroutines its
// services start with Go end with it.
type life struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// lives tracks the lifetimes of loaded packages by sha256.
type lives struct {
	mu sync.Mutex
	m  map[string]*life
}

// lifeOf returns the lifetime of the package with sha, nil when it is no
// longer served.
func (e *Engine) lifeOf(sha string) *life {
	st := e.cur.Load()
	if st == nil || st.packages[sha] == nil {
		return nil
	}
	e.lives.mu.Lock()
	defer e.lives.mu.Unlock()
	if e.lives.m == nil {
		e.lives.m = make(map[string]*life)
	}
	l := e.lives.m[sha]
	if l == nil {
		ctx, cancel := context.WithCancel(context.Background())
		l = &life{ctx: ctx, cancel: cancel}
		e.lives.m[sha] = l
	}
	return l
}

// endLives cancels the goroutines of every package st no longer holds,
// and returns their lifetimes by sha256.
func (e *Engine) endLives(st *State) map[string]*life {
	e.lives.mu.Lock()
	defer e.lives.mu.Unlock()
	ended := map[string]*life{}
	for sha, l := range e.lives.m {
		if st.packages[sha] == nil {
			l.cancel()
			delete(e.lives.m, sha)
			ended[sha] = l
			e.log.Info("stopping the goroutines of a replaced package", "sha256", sha)
		}
	}
	return ended
}
