package channel

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/weft-dev/weft/agent/observe"
	"github.com/weft-dev/weft/agent/observe/observetest"
	"github.com/weft-dev/weft/agent/sdk"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// outcomes is an Invoker that answers each service with its outcome, and
// any other with its input.
type outcomes map[string]Outcome

func (o outcomes) Call(_ context.Context, service string, req sdk.Request, input []byte, _ time.Duration, _ Late) (Outcome, bool) {
	if out, ok := o[service]; ok {
		out.CID = req.CID
		return out, true
	}
	return Outcome{CID: req.CID, Status: http.StatusOK, Output: input}, true
}

func TestHandlerEvents(t *testing.T) {
	router, err := NewRouter([]*adminv1.Channel{
		ch("echo", "/echo", "echo", "POST"),
		ch("broken", "/broken", "broken", "POST"),
		ch("picky", "/picky", "picky", "POST"),
		{Name: "small", Path: "/small", Service: "echo", Methods: []string{"POST"}, Active: proto.Bool(true), MaxBodyBytes: 4},
		{Name: "xml", Path: "/xml", Service: "garbled", Methods: []string{"POST"}, Active: proto.Bool(true), DataFormat: "xml"},
		{Name: "locked", Path: "/locked", Service: "echo", Methods: []string{"POST"}, Active: proto.Bool(true), Security: "key"},
		{Name: "limited", Path: "/limited", Service: "echo", Methods: []string{"POST"}, Active: proto.Bool(true), RateLimit: 0.001, RateBurst: 1},
	}, testVerifiers(t))
	if err != nil {
		t.Fatal(err)
	}
	inv := outcomes{
		"broken":  {Status: http.StatusBadGateway, Error: "the partner is down"},
		"picky":   {Status: http.StatusUnprocessableEntity, Error: "no such order"},
		"garbled": {Status: http.StatusOK, Output: []byte(`not json`)},
	}
	sink := &observetest.Sink{}
	h := newTestHandler(router, inv)
	h.Observer = sink

	tests := []struct {
		name        string
		path        string
		method      string
		contentType string
		body        string
		status      int
		service     string // the service invoked, if any
		failed      bool
		err         string // in the event's error
		none        bool   // no channel matched: no event
	}{
		{name: "ok", path: "/echo", body: `{"a":1}`, status: 200, service: "echo"},
		{name: "service failed", path: "/broken", body: `{}`, status: 502, service: "broken", failed: true, err: "the partner is down"},
		{name: "service said 4xx", path: "/picky", body: `{}`, status: 422, service: "picky", err: "no such order"},
		{name: "wrong content type", path: "/echo", contentType: "text/plain", body: `{}`, status: 415, err: "takes application/json"},
		{name: "too large", path: "/small", body: `{"a":1}`, status: 413, err: "at most 4"},
		{name: "no credentials", path: "/locked", body: `{}`, status: 401, err: "API key"},
		{name: "first within the rate", path: "/limited", body: `{}`, status: 200, service: "echo"},
		{name: "over the rate", path: "/limited", body: `{}`, status: 429, err: "too many requests"},
		{name: "output cannot be encoded", path: "/xml", contentType: "application/xml", body: `<request/>`, status: 500, service: "garbled", failed: true, err: "encode the output as xml"},
		{name: "no channel", path: "/nope", body: `{}`, status: 404, none: true},
		{name: "method not allowed", path: "/echo", method: http.MethodGet, status: 405, none: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			r := httptest.NewRequest(method, tt.path, strings.NewReader(tt.body))
			ct := tt.contentType
			if ct == "" {
				ct = "application/json"
			}
			r.Header.Set("Content-Type", ct)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Fatalf("status %d (%s), want %d", w.Code, w.Body, tt.status)
			}
			got := sink.Take()
			if tt.none {
				if len(got) != 0 {
					t.Fatalf("events %+v, want none", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("%d events, want 1", len(got))
			}
			e := got[0]
			name := strings.TrimPrefix(tt.path, "/")
			checks := []struct {
				what      string
				got, want any
			}{
				{"kind", e.Kind, observe.KindChannel},
				{"name", e.Name, name},
				{"channel", e.Channel, name},
				{"service", e.Service, tt.service},
				{"cid", e.CID, "cid-test"},
				{"status", e.Status, tt.status},
				{"failed", e.Failed, tt.failed},
				{"bytes out", e.BytesOut, int64(w.Body.Len())},
				{"output", string(e.Output), w.Body.String()},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
				}
			}
			if tt.status != http.StatusRequestEntityTooLarge && tt.status != http.StatusUnauthorized && tt.status != http.StatusTooManyRequests {
				// The body was read.
				if e.BytesIn != int64(len(tt.body)) || string(e.Input) != tt.body {
					t.Errorf("in: %d bytes %q, want %d %q", e.BytesIn, e.Input, len(tt.body), tt.body)
				}
			} else if e.BytesIn != 0 {
				t.Errorf("in: %d bytes of a body refused unread", e.BytesIn)
			}
			if !strings.Contains(e.Error, tt.err) || (tt.err == "") != (e.Error == "") {
				t.Errorf("error %q, want one containing %q", e.Error, tt.err)
			}
			if e.Duration <= 0 || e.End.IsZero() {
				t.Errorf("duration %s, end %s: want both set", e.Duration, e.End)
			}
		})
	}
}

// TestHandlerObservesWithoutAllocating checks that an observer costs a
// request no allocation: the event handed over comes from a pool.
func TestHandlerObservesWithoutAllocating(t *testing.T) {
	router, err := NewRouter([]*adminv1.Channel{ch("echo", "/echo", "echo", "POST")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := newTestHandler(router, outcomes{})
	w := &discardWriter{header: http.Header{}}
	r := httptest.NewRequest(http.MethodPost, "/echo", strings.NewReader(""))
	serve := func() {
		clear(w.header)
		h.ServeHTTP(w, r)
	}
	without := testing.AllocsPerRun(200, serve)
	h.Observer = observe.Observers{}
	with := testing.AllocsPerRun(200, serve)
	if with > without {
		t.Fatalf("a request allocates %g times with an observer, %g without", with, without)
	}
	if w.status != http.StatusOK {
		t.Fatalf("status %d, want 200", w.status)
	}
}

// discardWriter is a ResponseWriter that keeps only the status.
type discardWriter struct {
	header http.Header
	status int
}

func (d *discardWriter) Header() http.Header         { return d.header }
func (d *discardWriter) WriteHeader(status int)      { d.status = status }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
