package sdk

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
)

// Context is what a handler gets about the call it serves: the request it
// came from, a logger, and setters for the response. It is safe for use by
// several goroutines.
type Context struct {
	ctx     context.Context
	req     Request
	logOnce sync.Once
	logger  *slog.Logger

	mu   sync.Mutex
	resp Response
}

// Request describes the call a Context serves. The agent fills it in from
// the channel the call came through; service code reads it through the
// Context methods.
type Request struct {
	CID        string            // correlation id of the call
	Service    string            // name of the service called
	Channel    string            // name of the channel the call came through
	Method     string            // HTTP method, when the channel is HTTP
	PathParams map[string]string // values of the channel path's {params}
	Query      url.Values        // URL query parameters
	Header     http.Header       // request headers
	Principal  Principal         // who the channel's security definition verified
	Logger     *slog.Logger      // base logger; nil discards log output
	Services   Services          // other services, cache, goroutines; nil for none
}

// Principal is who sent a request, as the channel's security definition
// verified it. It is empty when the channel has no security definition.
type Principal struct {
	// Security is the name of the security definition that verified it.
	Security string
	// Subject is the basic auth user name or the JWT "sub" claim; empty for
	// an API key.
	Subject string
	// Claims are the JWT's claims (numbers as json.Number); nil for other
	// kinds.
	Claims map[string]any
}

// Response is what a handler set on its Context for the response: status,
// headers and content type. Zero values mean "the channel's default".
type Response struct {
	Status      int
	Header      http.Header
	ContentType string
}

// NewContext returns a Context for one call. ctx carries the call's
// deadline and cancellation. Agents and tests call it; service code gets its
// Context as the handler's first argument.
func NewContext(ctx context.Context, req Request) *Context {
	if ctx == nil {
		ctx = context.Background()
	}
	return &Context{ctx: ctx, req: req}
}

// Context returns the context.Context of the call. It is done when the
// call's deadline passes or the caller goes away; pass it to anything that
// blocks, and stop work when it is done.
func (c *Context) Context() context.Context { return c.ctx }

// CID returns the correlation id of the call, which also tags its log lines.
func (c *Context) CID() string { return c.req.CID }

// Service returns the name of the service being called, e.g. "hello.greet".
func (c *Context) Service() string { return c.req.Service }

// Channel returns the name of the channel the call came through, or "" when
// the call did not come through a channel (a scheduler job, a test).
func (c *Context) Channel() string { return c.req.Channel }

// Method returns the HTTP method of the request, or "" for calls that did
// not come over HTTP.
func (c *Context) Method() string { return c.req.Method }

// PathParam returns the value of the channel path parameter name (for the
// path "/customers/{id}", PathParam("id")), or "" if there is none.
func (c *Context) PathParam(name string) string { return c.req.PathParams[name] }

// Query returns the URL query parameters of the request. Treat it as read
// only.
func (c *Context) Query() url.Values { return c.req.Query }

// Header returns the request headers. Treat them as read only; use
// SetHeader for response headers.
func (c *Context) Header() http.Header { return c.req.Header }

// Principal returns who sent the request, as the channel's security
// definition verified it; empty when the channel checks no credentials.
func (c *Context) Principal() Principal { return c.req.Principal }

// Logger returns a logger whose lines carry the call's cid and service.
func (c *Context) Logger() *slog.Logger {
	// Made on first use: most calls never log, and tagging a logger costs
	// more than a small call.
	c.logOnce.Do(func() {
		base := c.req.Logger
		if base == nil {
			base = slog.New(slog.DiscardHandler)
		}
		c.logger = base.With("cid", c.req.CID, "service", c.req.Service)
	})
	return c.logger
}

// SetStatus sets the HTTP status of a successful response (the default is
// 200). To fail a call, return an error from Errorf instead.
func (c *Context) SetStatus(status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resp.Status = status
}

// SetHeader sets the response header key to value, replacing any value it
// had.
func (c *Context) SetHeader(key, value string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.resp.Header == nil {
		c.resp.Header = http.Header{}
	}
	c.resp.Header.Set(key, value)
}

// SetContentType sets the content type of the response, overriding the
// channel's data format (for example "text/csv").
func (c *Context) SetContentType(contentType string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resp.ContentType = contentType
}

// Response returns a copy of what the handler set for the response. The
// agent reads it after the call.
func (c *Context) Response() Response {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.resp
	r.Header = r.Header.Clone()
	return r
}
