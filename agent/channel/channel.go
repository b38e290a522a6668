// Package channel serves an agent's HTTP channels: it routes a request by
// path template and method to a channel, reads and checks its JSON body,
// runs the channel's service and writes the service's output.
//
// Routing is deterministic: at the first path segment where two templates
// differ, a literal wins over a param, so /orders/latest beats
// /orders/{id}. A path that exists but not for the method gets 405 with an
// Allow header. Every response carries the invocation's CID in X-Weft-CID.
package channel

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weft-dev/weft/agent/connguard"
	"github.com/weft-dev/weft/agent/observe"
	"github.com/weft-dev/weft/agent/sdk"
	"github.com/weft-dev/weft/agent/security"
	"github.com/weft-dev/weft/agent/shared/format"
	"github.com/weft-dev/weft/agent/shared/route"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// CIDHeader is the response header holding the invocation's CID.
const CIDHeader = "X-Weft-CID"

// cidKey is CIDHeader as a key of http.Header.
var cidKey = http.CanonicalHeaderKey(CIDHeader)

// Outcome is the result of running a service.
type Outcome struct {
	CID         string
	Status      int    // HTTP status: 200 on success
	Output      []byte // the service's JSON output when Status is 2xx
	Error       string // what went wrong otherwise
	Header      http.Header
	ContentType string
	Duration    time.Duration
}

// Invoker runs the services of channels.
type Invoker interface {
	// Call runs service with input under timeout (0 means the service's
	// default) on the calling goroutine and returns the outcome; it never
	// panics. Input is JSON as the client sent it: the invoker refuses
	// malformed JSON as bad input (400), naming the byte.
	//
	// If the deadline passes before the service returns, Call has late
	// answer then (a 504), from a goroutine of its own, and returns false
	// once the service and late have returned: the caller must not answer
	// again.
	Call(ctx context.Context, service string, req sdk.Request, input []byte, timeout time.Duration, late Late) (Outcome, bool)
}

// Late answers a request whose service overran its deadline, at the
// deadline, while the service still holds the request's goroutine.
type Late interface {
	Answer(out Outcome)
}

// Router maps requests to channels. It is immutable: an agent builds a new
// one for each snapshot and swaps it in with the services.
type Router struct {
	routes    []route.Route
	verifiers map[string]security.Verifier // by security definition name
	gen       uint64                       // build order, for the rate limits (see limiters)
}

// NewRouter builds a router for channels; inactive channels are left out.
// verifiers holds the inbound security definitions by name; every active
// channel's security must be among them.
func NewRouter(channels []*adminv1.Channel, verifiers map[string]security.Verifier) (*Router, error) {
	var active []*adminv1.Channel
	for _, c := range channels {
		if !c.GetActive() {
			continue
		}
		if sec := c.GetSecurity(); sec != "" && verifiers[sec] == nil {
			return nil, fmt.Errorf("channel %s: security definition %q is not in the snapshot, or cannot verify inbound requests", c.GetName(), sec)
		}
		active = append(active, c)
	}
	routes, err := route.Build(active)
	if err != nil {
		return nil, err
	}
	return &Router{routes: routes, verifiers: verifiers, gen: routerGen.Add(1)}, nil
}

// Handler serves channels with the router and invoker that current returns
// at the time of each request.
type Handler struct {
	// Current returns the router and invoker of the state being served.
	Current func() (*Router, Invoker)
	// MaxBodyBytes is the body limit of a channel that sets none.
	MaxBodyBytes int64
	// NewCID returns a fresh correlation id.
	NewCID func() string
	// Log receives one line per failed request.
	Log *slog.Logger
	// Observer, when set, gets one event of every request that matched a
	// channel (see observe.KindChannel), whatever it was answered.
	Observer observe.Observer

	limits limiters
}

// ServeHTTP routes, checks and runs one request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var start time.Time
	if h.Observer != nil {
		start = time.Now()
	}
	cid := h.NewCID()
	w.Header()[cidKey] = []string{cid} // Set would canonicalise the key every time
	router, inv := h.Current()
	if router == nil {
		writeError(w, format.JSON, cid, http.StatusServiceUnavailable, "this agent has no config yet; it is waiting for the control plane", nil)
		return
	}
	ch, params, allow, err := router.match(r.Method, r.URL.EscapedPath())
	switch {
	case err != nil:
		writeError(w, format.JSON, cid, http.StatusBadRequest, err.Error(), nil)
		return
	case ch == nil && len(allow) > 0:
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, format.JSON, cid, http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, strings.Join(allow, ", ")), nil)
		return
	case ch == nil:
		writeError(w, format.JSON, cid, http.StatusNotFound, fmt.Sprintf("no channel serves %s", r.URL.Path), nil)
		return
	}
	// The event stays on this stack: emit copies it for the observer.
	ev := observe.Event{Kind: observe.KindChannel, Name: ch.GetName(), Channel: ch.GetName(), CID: cid}
	if answered := h.serve(w, r, router, inv, ch, params, &ev, start); !answered {
		h.emit(&ev, start)
	}
}

// emit hands the observer, if any, the event of a request that started at
// start and has been answered.
func (h *Handler) emit(ev *observe.Event, start time.Time) {
	if h.Observer == nil {
		return
	}
	if ev.End.IsZero() { // answer dated it
		ev.End = time.Now()
	}
	ev.Duration = ev.End.Sub(start)
	ev.Failed = ev.Status >= 500
	observe.Emit(h.Observer, ev)
}

// serve checks and runs a request that matched channel ch, and records in
// ev what it read, invoked and answered. It returns true when the answer
// and its event were given at the service's deadline (see Late), else the
// caller emits ev.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, router *Router, inv Invoker, ch *adminv1.Channel, params map[string]string, ev *observe.Event, start time.Time) bool {
	cid := ev.CID
	f, _ := format.Parse(ch.GetDataFormat()) // checked by the control plane
	// refuse answers a request the channel itself refuses. A refused
	// authentication (see answerError) keeps its 401 on SOAP channels too.
	refuse := func(status int, err error, auth bool) {
		h.Log.Info("channel request refused", "cid", cid, "channel", ch.GetName(), "status", status, "err", err)
		answerError(w, f, cid, status, err, auth, ev)
	}
	if ok, wait := h.limits.allow(router, ch, r, time.Now); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter(wait)))
		refuse(http.StatusTooManyRequests, fmt.Errorf("too many requests from %s: channel %s takes %g a second; retry in %d s", clientAddress(r), ch.GetName(), ch.GetRateLimit(), retryAfter(wait)), false)
		return false
	}
	var who security.Principal
	if sec := ch.GetSecurity(); sec != "" {
		p, err := router.verifiers[sec].Verify(r)
		if err != nil {
			status := http.StatusUnauthorized
			var ae *security.AuthError
			if errors.As(err, &ae) {
				status = ae.Status
				if ae.Challenge != "" { // none for a client certificate
					w.Header().Set("WWW-Authenticate", ae.Challenge)
				}
			}
			refuse(status, err, status == http.StatusUnauthorized)
			return false
		}
		who = p
	}
	body, status, err := h.readBody(w, r, ch, f)
	ev.Input, ev.BytesIn = body, int64(len(body))
	if err != nil {
		refuse(status, err, false)
		return false
	}
	service, op, input, status, err := decode(f, r, body, ch, inv)
	if err != nil {
		refuse(status, err, false)
		return false
	}
	var query url.Values
	if r.URL.RawQuery != "" {
		query = r.URL.Query()
	}
	if len(params) > 0 || len(query) > 0 {
		if input, err = format.MergeParams(input, inputType(inv, service), params, query); err != nil {
			refuse(http.StatusBadRequest, err, false)
			return false
		}
	}
	req := sdk.Request{
		CID:        cid,
		Service:    service,
		Channel:    ch.GetName(),
		Method:     r.Method,
		PathParams: params,
		Query:      query,
		Header:     r.Header, // read only, says the SDK; the server never reuses it
		Principal: sdk.Principal{
			Security: who.Definition,
			Subject:  who.Subject,
			Claims:   who.Claims,
		},
	}
	ev.Service = service
	late := lates.Get().(*lateAnswer)
	*late = lateAnswer{h: h, w: w, f: f, op: op, ch: ch, inv: inv, ev: *ev, start: start}
	out, onTime := inv.Call(r.Context(), service, req, input, time.Duration(ch.GetTimeoutMs())*time.Millisecond, late)
	*late = lateAnswer{}
	lates.Put(late)
	if !onTime {
		return true
	}
	h.respond(w, f, op, ch, inv, out, ev)
	return false
}

// respond answers with the outcome of the service a request invoked: its
// output in format f, or its error. inv, when it knows the service's
// output type, may name a SOAP answer's element (see format.ResponseName).
func (h *Handler) respond(w http.ResponseWriter, f format.Format, op format.Operation, ch *adminv1.Channel, inv Invoker, out Outcome, ev *observe.Event) {
	cid := ev.CID
	for k, vs := range out.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	if len(out.Header) > 0 {
		w.Header().Set(CIDHeader, cid) // a service cannot change it
	}
	if out.Status >= 300 || out.Status < 200 {
		h.Log.Info("channel request failed", "cid", cid, "channel", ch.GetName(), "service", ev.Service, "status", out.Status, "err", out.Error)
		writeError(w, f, cid, out.Status, out.Error, ev)
		return
	}
	var outType reflect.Type
	if f.IsSOAP() { // it may name the answer's element
		outType = outputType(inv, ev.Service)
	}
	output, ct, err := encode(f, op, outType, out.Output)
	if err != nil {
		h.Log.Warn("cannot encode a service's output", "cid", cid, "channel", ch.GetName(), "format", f, "err", err)
		// The encoder's words name the service's types: the caller gets
		// the generic message, the log (and the event) the detail.
		writeError(w, f, cid, http.StatusInternalServerError, ServiceFailed+", cid "+cid, ev)
		ev.Error = fmt.Sprintf("encode the output as %s: %v", f, err)
		return
	}
	if out.ContentType != "" {
		ct = out.ContentType // the service chose
	}
	setContentType(w.Header(), ct)
	answer(w, out.Status, output, ev)
}

// ServiceFailed is what a channel's caller is told of a failure whose
// detail only operators may read (in the agent's log and the failure
// samples), followed by the CID under which it is logged.
const ServiceFailed = "the service failed; see the agent log"

// lateAnswer answers a request at its service's deadline (see Late). It
// holds copies of what serve knows, so that serve's own event stays on
// its stack.
type lateAnswer struct {
	h     *Handler
	w     http.ResponseWriter
	f     format.Format
	op    format.Operation
	ch    *adminv1.Channel
	inv   Invoker
	ev    observe.Event
	start time.Time
}

var lates = sync.Pool{New: func() any { return new(lateAnswer) }}

// Answer writes the outcome and emits the request's event.
func (l *lateAnswer) Answer(out Outcome) {
	l.h.respond(&lateWriter{ResponseWriter: l.w}, l.f, l.op, l.ch, l.inv, out, &l.ev)
	l.h.emit(&l.ev, l.start)
}

// lateWriter is the ResponseWriter of an answer given while the request's
// goroutine is still held: it sends the whole answer at once, says how
// long it is and that the connection closes, and takes the connection from
// the server to close it, so that neither the client nor the server's
// shutdown waits for the goroutine to be let go.
type lateWriter struct {
	http.ResponseWriter
	status int
}

func (l *lateWriter) WriteHeader(status int) { l.status = status }

func (l *lateWriter) Write(b []byte) (int, error) {
	h := l.ResponseWriter.Header()
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Connection", "close")
	l.ResponseWriter.WriteHeader(l.status)
	n, err := l.ResponseWriter.Write(b)
	if err != nil {
		return n, err
	}
	rc := http.NewResponseController(l.ResponseWriter)
	if err := rc.Flush(); err != nil {
		return n, err
	}
	if conn, _, err := rc.Hijack(); err == nil { // not on HTTP/2
		go closeGently(conn)
	}
	return n, nil
}

// closeGently closes conn after the client has read what was sent: it
// closes the sending side, then reads until the client closes or a second
// passes, so that a close with unread input does not reset the answer away.
func closeGently(conn net.Conn) {
	defer conn.Close()
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	_, _ = io.Copy(io.Discard, conn)
}

// answer writes status and body, and records them in ev unless it is nil,
// with the time of the answer as the request's end. It dates the answer
// itself, unless the service did (see dateHeader).
func answer(w http.ResponseWriter, status int, body []byte, ev *observe.Event) {
	now := time.Now()
	if h := w.Header(); h[dateKey] == nil {
		h[dateKey] = dateHeader(now)
	}
	w.WriteHeader(status)
	n, _ := w.Write(body)
	if ev != nil {
		ev.Status, ev.Output, ev.BytesOut, ev.End = status, body, int64(n), now
	}
}

// The keys of the headers every answer has, as http.Header holds them.
const (
	dateKey        = "Date"
	contentTypeKey = "Content-Type"
)

// jsonContentType is the Content-Type of a JSON answer. Like the values
// dateHeader returns, it is shared by every answer and never modified:
// net/http copies a handler's header when it writes it, and replaces a
// value it sets, never writing into it.
var jsonContentType = []string{"application/json"}

// setContentType sets h's Content-Type to ct.
func setContentType(h http.Header, ct string) {
	if ct == jsonContentType[0] {
		h[contentTypeKey] = jsonContentType
		return
	}
	h[contentTypeKey] = []string{ct}
}

// date is the Date header of the answers given in one second.
type date struct {
	unix  int64
	value []string
}

var lastDate atomic.Pointer[date]

// dateHeader returns the value of the Date header of an answer given at
// now, formatted once a second rather than by net/http for every answer
// (about a microsecond each on a small VM). The value is shared: never
// modify it.
func dateHeader(now time.Time) []string {
	sec := now.Unix()
	if d := lastDate.Load(); d != nil && d.unix == sec {
		return d.value
	}
	d := &date{unix: sec, value: []string{now.UTC().Format(http.TimeFormat)}}
	lastDate.Store(d)
	return d.value
}

// readBody reads and checks the request body: its size and content type. It returns the status to answer with when it refuses, and
// the body, when it was read, even then.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request, ch *adminv1.Channel, f format.Format) ([]byte, int, error) {
	limit := ch.GetMaxBodyBytes()
	if limit <= 0 {
		limit = h.MaxBodyBytes
	}
	if r.ContentLength > limit {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("request body is %d bytes; channel %s takes at most %d", r.ContentLength, ch.GetName(), limit)
	}
	body, err := readAll(w, r, limit)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("request body is over %d bytes, the limit of channel %s", limit, ch.GetName())
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			// The connection's read bound (the agent's --http-read-timeout,
			// kept by its connguard.Guard) passed: the rest of the body will not be read, so the
			// connection cannot carry another request.
			w.Header().Set("Connection", "close")
			return nil, http.StatusRequestTimeout, errors.New("request body not received within the agent's read timeout")
		}
		return nil, http.StatusBadRequest, fmt.Errorf("read request body: %v", err)
	}
	connguard.BodyRead(r.Context()) // the service may take its time from here
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, 0, nil // a request without a body needs no Content-Type
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return body, http.StatusUnsupportedMediaType, fmt.Errorf("the request has a body but no Content-Type: channel %s takes %s", ch.GetName(), f.Takes())
	}
	if f != format.JSON {
		return body, 0, nil // the decoder checks the type and its charset
	}
	if ct != "application/json" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !(mt == "application/json" || strings.HasSuffix(mt, "+json")) {
			return body, http.StatusUnsupportedMediaType, fmt.Errorf("content type %q: channel %s takes application/json", ct, ch.GetName())
		}
	}
	// Its syntax is the invoker's to check (see Invoker): decoding checks
	// it anyway, and a second pass over the body costs per request.
	return body, 0, nil
}

// readAll reads r's body, of at most limit bytes. A body that announced
// its size (at most limit, as the caller checked) is read into one buffer
// of that size, and needs no other bound: net/http's server ends it there.
// One of unknown size, chunked, is read under http.MaxBytesReader.
func readAll(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength <= 0 {
		return io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	}
	body := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(r.Body, body); err != nil {
		return nil, err
	}
	return body, nil
}

// match finds the channel for method and escaped path. When the path exists
// but not for the method, it returns the methods that are allowed.
func (rt *Router) match(method, escaped string) (*adminv1.Channel, map[string]string, []string, error) {
	path := strings.TrimPrefix(escaped, "/")
	var allow []string
	for _, r := range rt.routes {
		params, ok, err := r.Match(path)
		if err != nil {
			return nil, nil, nil, err
		}
		if !ok {
			continue
		}
		for _, m := range r.Channel.GetMethods() {
			if m == method {
				return r.Channel, params, nil, nil
			}
			if !slices.Contains(allow, m) {
				allow = append(allow, m)
			}
		}
	}
	sort.Strings(allow)
	return nil, nil, allow, nil
}

// errorBody is the JSON body of every error response.
type errorBody struct {
	Error string `json:"error"`
	CID   string `json:"cid"`
}

// writeError answers an error of status with msg in the channel's format:
// a JSON {"error", "cid"}, an XML <error>, or a SOAP Fault of the channel's
// version with the status SOAP gives it. It records the answer and msg in
// ev unless ev is nil.
func writeError(w http.ResponseWriter, f format.Format, cid string, status int, msg string, ev *observe.Event) {
	if f.IsSOAP() {
		answerError(w, f, cid, status, errors.New(msg), false, ev)
		return
	}
	if status == 0 {
		status = http.StatusInternalServerError
	}
	var body []byte
	if f == format.XML {
		body = format.XMLError(status, msg, cid)
		w.Header().Set("Content-Type", f.ContentType())
	} else {
		body, _ = json.Marshal(errorBody{Error: msg, CID: cid})
		body = append(body, '\n') // as json.Encoder ends it
		setContentType(w.Header(), "application/json")
	}
	answer(w, status, body, ev)
	if ev != nil {
		ev.Error = msg
	}
}

// answerError answers err, an error of status, in the channel's format.
// On a SOAP channel it is a Fault sent with the status the SOAP binding
// gives it (see format.Fault: 500, or 400 for a SOAP 1.2 Sender fault),
// as SOAP 1.1 (§6.2, WS-I Basic Profile R1126) and SOAP 1.2 (Part 2
// §7.5.2.2) require of every Fault: a body too large, a wrong media type or
// a rate limit too (429's Retry-After header stays). Only auth, a refused
// authentication, keeps its own status: HTTP's 401 with its challenge,
// which clients answer with credentials. The status the error has on other
// formats stays in the Fault's detail, and is what ev records, so that
// statistics count a request alike whatever its format.
func answerError(w http.ResponseWriter, f format.Format, cid string, status int, err error, auth bool, ev *observe.Event) {
	if !f.IsSOAP() {
		writeError(w, f, cid, status, err.Error(), ev)
		return
	}
	if status == 0 {
		status = http.StatusInternalServerError
	}
	body, ct, sent := format.Fault(f, status, err, cid)
	if auth {
		sent = status
	}
	w.Header().Set("Content-Type", ct)
	answer(w, sent, body, ev)
	if ev != nil {
		ev.Status, ev.Error = status, err.Error()
	}
}

// InputTyper is an Invoker that knows a service's input type, so that XML
// text can become the numbers and booleans the service takes.
type InputTyper interface {
	InputType(service string) reflect.Type
}

// inputType is service's input type when inv knows it, else nil.
func inputType(inv Invoker, service string) reflect.Type {
	if it, ok := inv.(InputTyper); ok {
		return it.InputType(service)
	}
	return nil
}

// OutputTyper is an Invoker that knows a service's output type, so that
// the type can name its SOAP answer's element (see format.ResponseName).
type OutputTyper interface {
	OutputType(service string) reflect.Type
}

// outputType is service's output type when inv knows it, else nil.
func outputType(inv Invoker, service string) reflect.Type {
	if ot, ok := inv.(OutputTyper); ok {
		return ot.OutputType(service)
	}
	return nil
}

// decode turns a request body in format f into the service's JSON input,
// and picks the service: the channel's, or for SOAP the one its
// soap_actions route the operation to. The operation is SOAPAction, the
// action parameter or the Body's first element. A body in a media type or
// encoding the channel does not take is a 415, any other error a 400.
func decode(f format.Format, r *http.Request, body []byte, ch *adminv1.Channel, inv Invoker) (service string, op format.Operation, input []byte, status int, err error) {
	service = ch.GetService()
	if f == format.JSON {
		if body == nil {
			body = []byte("{}")
		}
		return service, op, body, 0, nil
	}
	ct := r.Header.Get("Content-Type")
	if !f.IsSOAP() {
		in, err := format.DecodeXML(body, ct, inputType(inv, service))
		if err != nil {
			return "", op, nil, decodeStatus(err), err
		}
		return service, op, in, 0, nil
	}
	hint := func(op string) reflect.Type {
		service = soapService(ch, op)
		return inputType(inv, service)
	}
	op, in, err := format.DecodeSOAP(body, f, ct, r.Header.Get("SOAPAction"), hint)
	if err != nil {
		return "", op, nil, decodeStatus(err), err
	}
	if service == "" {
		return "", op, nil, http.StatusBadRequest, fmt.Errorf("channel %s has no service for SOAP operation %q; it routes %s", ch.GetName(), op.Name, strings.Join(slices.Sorted(maps.Keys(ch.GetSoapActions())), ", "))
	}
	return service, op, in, 0, nil
}

// decodeStatus is the status of a decoding error: 415 for a media type or
// encoding the channel does not take, else 400.
func decodeStatus(err error) int {
	var me *format.MediaError
	if errors.As(err, &me) {
		return http.StatusUnsupportedMediaType
	}
	return http.StatusBadRequest
}

// soapService is the service a SOAP channel routes op to: the soap_actions
// entry for op, else for its last segment after '/', '#' or ':' (so a
// SOAPAction URI matches its operation name), else the channel's service.
func soapService(ch *adminv1.Channel, op string) string {
	actions := ch.GetSoapActions()
	if svc, ok := actions[op]; ok {
		return svc
	}
	if i := strings.LastIndexAny(op, "/#:"); i >= 0 {
		if svc, ok := actions[op[i+1:]]; ok {
			return svc
		}
	}
	return ch.GetService()
}

// encode turns a service's JSON output into the body of format f; out,
// the service's output type when known, may name a SOAP answer's element.
func encode(f format.Format, op format.Operation, out reflect.Type, output []byte) ([]byte, string, error) {
	switch {
	case f.IsSOAP():
		return format.EncodeSOAP(f, op.Response(format.ResponseName(out)), output)
	case f == format.XML:
		b, err := format.EncodeXML(output, "response")
		return b, f.ContentType(), err
	default:
		return output, "application/json", nil
	}
}
