package engine

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/weft-dev/weft/agent/observe"
	"github.com/weft-dev/weft/agent/observe/observetest"
	"github.com/weft-dev/weft/agent/scheduler"
	"github.com/weft-dev/weft/agent/sdk"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// TestCallerMessageByOrigin checks the one rule of what an invocation's
// caller reads of a service's error: a channel's caller and a calling
// service read a plain error or a panic as a generic message with the
// CID; an operator (weftctl invoke, a job's run) reads it whole; an error
// the service gave a status reads the same everywhere; the observer (the
// failure samples) always gets the full text.
func TestCallerMessageByOrigin(t *testing.T) {
	sink := &observetest.Sink{}
	e := New(slog.New(slog.DiscardHandler), 5*time.Second)
	e.Observer = sink
	if _, errs := e.Apply(context.Background(), snap(1, []*adminv1.Package{boomPackage()})); len(errs) > 0 {
		t.Fatal(errs)
	}
	job := sdk.Request{Method: scheduler.JobMethod, Header: http.Header{scheduler.JobHeader: {"nightly"}}}
	origins := []struct {
		origin string
		req    sdk.Request
		full   bool // reads a plain error whole
	}{
		{observe.OriginChannel, sdk.Request{Channel: "boom"}, false},
		{observe.OriginService, sdk.Request{Method: "INVOKE"}, false},
		{observe.OriginInvoke, sdk.Request{Method: "INVOKE"}, true},
		{observe.OriginJob, job, true},
	}
	services := []struct {
		service, detail string
		status          int
		public          bool // written for the caller
	}{
		{"boom.error", "disk full", 500, false},
		{"boom.panic", "the service panicked: kaboom", 500, false},
		{"boom.refuse", "no such order", 422, true},
	}
	for _, o := range origins {
		for _, s := range services {
			t.Run(o.origin+"/"+s.service, func(t *testing.T) {
				req := o.req
				req.CID = "cid-" + o.origin
				out := e.invoke(context.Background(), e.cur.Load(), s.service, req, []byte(`{}`), 0, o.origin)
				want := s.detail
				if !o.full && !s.public {
					want = "the service failed; see the agent log, cid " + req.CID
				}
				if out.Status != s.status || out.Error != want {
					t.Fatalf("%d %q, want %d %q", out.Status, out.Error, s.status, want)
				}
				evs := sink.Take()
				if len(evs) != 1 || evs[0].Error != s.detail || evs[0].Origin != o.origin {
					t.Fatalf("events %+v, want one from %s with %q", evs, o.origin, s.detail)
				}
			})
		}
	}
}
