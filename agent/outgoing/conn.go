package outgoing

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/weft-dev/weft/agent/shared/outgoingconf"
)

// DefaultMaxBody is the largest response body Do reads unless
// WithMaxBody says otherwise.
const DefaultMaxBody = 16 << 20

// excerptLen is how much of an error response StatusError keeps.
const excerptLen = 512

// ErrBodyTooLarge is returned (wrapped) when a response body exceeds the
// connection's limit.
var ErrBodyTooLarge = errors.New("response body too large")

// Auth adds credentials to an outgoing request: a header, a query value, a
// signature. Security definitions implement it.
type Auth interface {
	Apply(ctx context.Context, req *http.Request) error
}

// Option configures a Conn beyond its Config.
type Option func(*options)

type options struct {
	auth       Auth
	clientCert *tls.Certificate
	maxBody    int64
}

// WithAuth makes the connection apply a to every request, after the
// configured headers.
func WithAuth(a Auth) Option { return func(o *options) { o.auth = a } }

// WithClientCert makes the connection present cert in TLS handshakes.
func WithClientCert(cert *tls.Certificate) Option {
	return func(o *options) { o.clientCert = cert }
}

// WithMaxBody sets the largest response body the connection reads;
// n <= 0 keeps DefaultMaxBody.
func WithMaxBody(n int64) Option {
	return func(o *options) {
		if n > 0 {
			o.maxBody = n
		}
	}
}

// Conn is one outgoing HTTP connection: a validated Config with its own
// client and pool. It is safe for concurrent use.
type Conn struct {
	cfg     Config // with defaults applied
	base    *url.URL
	tmpl    outgoingconf.Template
	client  *http.Client
	tr      *http.Transport
	auth    Auth
	maxBody int64
	// timedOut is the cause of a call cancelled by cfg.Timeout rather
	// than by the caller's context.
	timedOut error
}

// Response is a completed call's status, headers and body.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// CallError is a call that got no usable answer: it could not be sent, the
// remote did not answer, or the answer was too large.
type CallError struct {
	// Name is the connection's name.
	Name string
	// Method and URL say what was called; the URL has no query and no
	// credentials.
	Method, URL string
	// Err is why.
	Err error
}

// Error reads like: outgoing "crm": GET https://h/customers/42: dial tcp:
// connection refused.
func (e *CallError) Error() string {
	return fmt.Sprintf("outgoing %q: %s %s: %v", e.Name, e.Method, e.URL, e.Err)
}

// Unwrap returns the cause.
func (e *CallError) Unwrap() error { return e.Err }

// Timeout reports whether the call ran out of time: the connection's
// timeout or the caller's deadline.
func (e *CallError) Timeout() bool {
	var ne interface{ Timeout() bool }
	return errors.Is(e.Err, context.DeadlineExceeded) || (errors.As(e.Err, &ne) && ne.Timeout())
}

// StatusError is returned for a response with a non-2xx status.
type StatusError struct {
	// Name is the connection's name.
	Name string
	// Method and URL say what was called; the URL has no query and no
	// credentials.
	Method, URL string
	// Status is the HTTP status code.
	Status int
	// Excerpt is the start of the body (up to 512 bytes, valid UTF-8).
	Excerpt string
}

// Error reads like: outgoing "crm": GET https://h/customers/42: 404 Not Found: {"error":"..."}.
func (e *StatusError) Error() string {
	s := fmt.Sprintf("outgoing %q: %s %s: %s", e.Name, e.Method, e.URL, statusLine(e.Status))
	if e.Excerpt != "" {
		s += ": " + e.Excerpt
	}
	return s
}

// New validates cfg and builds a connection with its own client and pool.
func New(cfg Config, opts ...Option) (*Conn, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{maxBody: DefaultMaxBody}
	for _, opt := range opts {
		opt(&o)
	}
	cfg = cfg.WithDefaults()
	base, _ := outgoingconf.ParseAddress(cfg.Address)       // validated above
	tmpl, _ := outgoingconf.ParseTemplate(cfg.PathTemplate) // validated above

	tlsCfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: cfg.InsecureSkipVerify, //nolint:gosec // explicit per-connection opt-out
	}
	if len(cfg.CABundlePEM) > 0 {
		pool, err := outgoingconf.ParseCABundle(cfg.CABundlePEM)
		if err != nil {
			return nil, fmt.Errorf("outgoing %q: CABundlePEM: %w", cfg.Name, err)
		}
		tlsCfg.RootCAs = pool
	}
	if o.clientCert != nil {
		tlsCfg.Certificates = []tls.Certificate{*o.clientCert}
	}

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	tr.MaxConnsPerHost = cfg.PoolSize
	tr.MaxIdleConnsPerHost = cfg.PoolSize
	tr.MaxIdleConns = cfg.PoolSize
	// Deadlines come from the call's context; Client.Timeout would also cut
	// a body read the caller is still entitled to finish.
	// A redirect to another origin is not followed: the connection's
	// credentials (its security definition's headers, its client
	// certificate) go only to the address it names. The service gets the
	// redirect as the answer.
	client := &http.Client{Transport: tr, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if !sameOrigin(req.URL, base) {
			return http.ErrUseLastResponse
		}
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		return nil
	}}

	return &Conn{
		cfg:      cfg,
		base:     base,
		tmpl:     tmpl,
		client:   client,
		tr:       tr,
		auth:     o.auth,
		maxBody:  o.maxBody,
		timedOut: fmt.Errorf("timed out after %s: %w", cfg.Timeout, context.DeadlineExceeded),
	}, nil
}

// Config returns the connection's configuration with defaults applied.
func (c *Conn) Config() Config { return c.cfg }

// Name returns the connection's name.
func (c *Conn) Name() string { return c.cfg.Name }

// Close closes the connection's idle network connections. Calls in flight
// finish; the Conn stays usable, but a replaced Conn should be dropped.
func (c *Conn) Close() { c.tr.CloseIdleConnections() }

// Do calls the connection: it fills the path template from params, adds
// query, sends body with the format's headers, the configured headers and
// the Auth, and reads the response. The call ends at ctx's deadline or the
// connection's Timeout, whichever comes first. A non-2xx status returns the
// Response together with a *StatusError; a body over the limit returns the
// Response with no Body together with ErrBodyTooLarge (wrapped).
func (c *Conn) Do(ctx context.Context, params map[string]string, query url.Values, body []byte) (*Response, error) {
	u, err := c.url(params, query)
	if err != nil {
		return nil, err
	}
	return c.do(ctx, c.cfg.Method, u, body, c.maxBody)
}

// JSON calls a json-format connection: it marshals in as the body when in
// is not nil, and unmarshals the response body into out when out is not nil
// and the body is not empty.
func (c *Conn) JSON(ctx context.Context, params map[string]string, in any, out any) error {
	if c.cfg.Format != outgoingconf.FormatJSON {
		return fmt.Errorf("outgoing %q: JSON call on a %s connection", c.cfg.Name, c.cfg.Format)
	}
	var body []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("outgoing %q: encode request: %w", c.cfg.Name, err)
		}
		body = b
	}
	resp, err := c.Do(ctx, params, nil, body)
	if err != nil {
		return err
	}
	if out == nil || len(bytes.TrimSpace(resp.Body)) == 0 {
		return nil
	}
	if err := json.Unmarshal(resp.Body, out); err != nil {
		return fmt.Errorf("outgoing %q: decode response: %w", c.cfg.Name, err)
	}
	return nil
}

// Ping sends a HEAD to the connection's address (a GET when the server
// answers 405) with the configured headers and Auth, and reports the status
// and the time to the response headers. Any HTTP answer counts as reachable:
// err is only for a call that got no answer.
func (c *Conn) Ping(ctx context.Context) (status int, latency time.Duration, err error) {
	u := *c.base
	for _, method := range []string{http.MethodHead, http.MethodGet} {
		start := time.Now()
		var resp *Response
		resp, err = c.do(ctx, method, &u, nil, 64<<10)
		latency = time.Since(start)
		var se *StatusError
		switch {
		case errors.As(err, &se):
			status, err = se.Status, nil
		case errors.Is(err, ErrBodyTooLarge):
			status, err = resp.Status, nil // answered; the body is not the point
		case err != nil:
			return 0, latency, err
		default:
			status = resp.Status
		}
		if status != http.StatusMethodNotAllowed {
			break
		}
	}
	return status, latency, err
}

// url builds the request URL from the address, template, params and query.
func (c *Conn) url(params map[string]string, query url.Values) (*url.URL, error) {
	u := *c.base
	path := strings.TrimSuffix(u.Path, "/")
	raw := strings.TrimSuffix(u.EscapedPath(), "/")
	for _, s := range c.tmpl {
		v := s.Literal
		if s.Param != "" {
			var ok bool
			v, ok = params[s.Param]
			if !ok {
				return nil, fmt.Errorf("outgoing %q: path param %q is missing", c.cfg.Name, s.Param)
			}
			if v == "" {
				return nil, fmt.Errorf("outgoing %q: path param %q is empty", c.cfg.Name, s.Param)
			}
		}
		path += "/" + v
		raw += "/" + url.PathEscape(v)
	}
	if c.tmpl == nil && path == "" {
		path, raw = u.Path, u.EscapedPath()
	}
	u.Path, u.RawPath = path, raw
	if len(query) > 0 {
		u.RawQuery = query.Encode()
	}
	return &u, nil
}

// do sends one request and reads up to limit bytes of the answer.
func (c *Conn) do(ctx context.Context, method string, u *url.URL, body []byte, limit int64) (*Response, error) {
	shown := displayURL(u)
	fail := func(err error) error {
		return &CallError{Name: c.cfg.Name, Method: method, URL: shown, Err: err}
	}
	ctx, cancel := context.WithTimeoutCause(ctx, c.cfg.Timeout, c.timedOut)
	defer cancel()

	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, fail(unwrapURLError(err))
	}
	c.setHeaders(req, body != nil)
	if c.auth != nil {
		if err := c.auth.Apply(ctx, req); err != nil {
			return nil, fail(fmt.Errorf("auth: %w", err))
		}
	}

	timedOut := func(err error) error {
		// net/http usually reports the context's cause itself.
		if errors.Is(context.Cause(ctx), c.timedOut) && !errors.Is(err, c.timedOut) {
			return fail(fmt.Errorf("%w: %w", c.timedOut, err))
		}
		return fail(err)
	}
	hr, err := c.client.Do(req)
	if err != nil {
		return nil, timedOut(unwrapURLError(err))
	}
	defer hr.Body.Close()
	data, err := io.ReadAll(io.LimitReader(hr.Body, limit+1))
	if err != nil {
		return nil, timedOut(fmt.Errorf("read body: %w", err))
	}
	resp := &Response{Status: hr.StatusCode, Header: hr.Header, Body: data}
	if int64(len(data)) > limit {
		resp.Body = nil
		return resp, fail(fmt.Errorf("%w: over %d bytes", ErrBodyTooLarge, limit))
	}
	if hr.StatusCode < 200 || hr.StatusCode > 299 {
		return resp, &StatusError{
			Name:   c.cfg.Name,
			Method: method,
			URL:    shown,
			Status: hr.StatusCode,
			// A remote may quote the credential it refused ("invalid
			// API key: ..."); the excerpt goes to logs and samples.
			Excerpt: excerpt(hideCredentials(data, c.credentials(req.Header))),
		}
	}
	return resp, nil
}

// setHeaders sets the format's headers, then the configured ones.
func (c *Conn) setHeaders(req *http.Request, hasBody bool) {
	var ctype, accept string
	switch c.cfg.Format {
	case outgoingconf.FormatJSON:
		ctype, accept = "application/json", "application/json"
	case outgoingconf.FormatXML:
		ctype, accept = "application/xml; charset=utf-8", "application/xml, text/xml"
	case outgoingconf.FormatSOAP11:
		ctype, accept = "text/xml; charset=utf-8", "text/xml"
		req.Header.Set("SOAPAction", `"`+c.cfg.SOAPAction+`"`)
	case outgoingconf.FormatSOAP12:
		ctype, accept = "application/soap+xml; charset=utf-8", "application/soap+xml"
		if c.cfg.SOAPAction != "" {
			ctype += `; action="` + c.cfg.SOAPAction + `"`
		}
	}
	if hasBody {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Accept", accept)
	for k, v := range c.cfg.Headers {
		if http.CanonicalHeaderKey(k) == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
}

// redacted replaces a credential the connection sent in an error's
// excerpt.
const redacted = "••••••••"

// minCredential is the shortest credential hidden in an excerpt: a
// shorter one would blot out ordinary text.
const minCredential = 4

// credentials returns what the connection's Auth set on a request with
// header h: the values of the headers neither the format nor the
// configuration set, and of each of those that reads "SCHEME VALUE" its
// value too, and of a Basic one its password.
func (c *Conn) credentials(h http.Header) []string {
	if c.auth == nil {
		return nil
	}
	var out []string
	for name, vals := range h {
		switch name {
		case "Content-Type", "Accept", "Soapaction":
			continue
		}
		for _, v := range vals {
			if configured, ok := c.configuredHeader(name); ok && configured == v {
				continue
			}
			out = append(out, v)
			scheme, cred, ok := strings.Cut(v, " ")
			if !ok {
				continue
			}
			out = append(out, cred)
			if !strings.EqualFold(scheme, "Basic") {
				continue
			}
			if raw, err := base64.StdEncoding.DecodeString(cred); err == nil {
				if _, pass, ok := strings.Cut(string(raw), ":"); ok {
					out = append(out, pass)
				}
			}
		}
	}
	return out
}

// configuredHeader returns the value the configuration gives header name.
func (c *Conn) configuredHeader(name string) (string, bool) {
	for k, v := range c.cfg.Headers {
		if http.CanonicalHeaderKey(k) == name {
			return v, true
		}
	}
	return "", false
}

// hideCredentials returns b with each of creds replaced, longest first
// (a Basic header before the password it holds); b itself when there is
// none to replace.
func hideCredentials(b []byte, creds []string) []byte {
	slices.SortFunc(creds, func(x, y string) int { return len(y) - len(x) })
	for _, cred := range creds {
		if len(cred) >= minCredential && bytes.Contains(b, []byte(cred)) {
			b = bytes.ReplaceAll(b, []byte(cred), []byte(redacted))
		}
	}
	return b
}

// displayURL renders u for messages: no credentials, no query (API keys
// often travel there).
func displayURL(u *url.URL) string {
	v := *u
	v.User = nil
	v.RawQuery = ""
	v.ForceQuery = false
	v.Fragment, v.RawFragment = "", ""
	return v.String()
}

// unwrapURLError drops net/http's *url.Error, whose message repeats the
// URL with its query; callers add the URL back without it.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// excerpt returns the start of b, at most excerptLen bytes of valid UTF-8.
func excerpt(b []byte) string {
	if len(b) > excerptLen {
		b = b[:excerptLen]
		// Drop a rune cut in half at the end.
		for i := 0; i < utf8.UTFMax && len(b) > 0; i++ {
			r, size := utf8.DecodeLastRune(b)
			if r != utf8.RuneError || size != 1 {
				break
			}
			b = b[:len(b)-1]
		}
	}
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	for len(s) > excerptLen { // replacement runes can grow the string
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return strings.TrimSpace(s)
}

func statusLine(code int) string {
	if t := http.StatusText(code); t != "" {
		return fmt.Sprintf("%d %s", code, t)
	}
	return fmt.Sprintf("%d", code)
}

// maxRedirects bounds the redirects a call follows, as net/http does.
const maxRedirects = 10

// sameOrigin reports whether u has a's scheme, host and port.
func sameOrigin(u, a *url.URL) bool {
	return strings.EqualFold(u.Scheme, a.Scheme) && strings.EqualFold(u.Host, a.Host)
}
