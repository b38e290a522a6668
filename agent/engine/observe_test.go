package engine

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/weft-dev/weft/agent/channel"
	"github.com/weft-dev/weft/agent/observe"
	"github.com/weft-dev/weft/agent/observe/observetest"
	"github.com/weft-dev/weft/agent/scheduler"
	"github.com/weft-dev/weft/agent/sdk"
	"github.com/weft-dev/weft/agent/shared/snapshot"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

const boomSrc = `package boom

import (
	"errors"

	"github.com/weft-dev/weft/agent/sdk"
)

type In struct {
	Say string ` + "`json:\"say\"`" + `
}

type Out struct {
	Said string ` + "`json:\"said\"`" + `
}

func init() {
	sdk.Register("boom.ok", func(ctx *sdk.Context, in In) (Out, error) { return Out{Said: in.Say}, nil })
	sdk.Register("boom.panic", func(ctx *sdk.Context, in In) (Out, error) { panic("kaboom") })
	sdk.Register("boom.error", func(ctx *sdk.Context, in In) (Out, error) { return Out{}, errors.New("disk full") })
	sdk.Register("boom.refuse", func(ctx *sdk.Context, in In) (Out, error) { return Out{}, sdk.Errorf(422, "no such order") })
}
`

func boomPackage() *adminv1.Package {
	files := []*adminv1.SourceFile{{Name: "boom.go", Content: []byte(boomSrc)}}
	return &adminv1.Package{Name: "boom", Version: 1, Sha256: snapshot.PackageHash(files),
		Services: []string{"boom.error", "boom.ok", "boom.panic", "boom.refuse"}, Sources: files}
}

func TestInvokeEvents(t *testing.T) {
	sink := &observetest.Sink{}
	e := New(slog.New(slog.DiscardHandler), 5*time.Second)
	e.Observer = sink

	// Before any config there is no service to measure: no event.
	if out := e.Invoke(context.Background(), "boom.ok", sdk.Request{Method: "INVOKE"}, nil, 0); out.Status != 503 {
		t.Fatalf("an invocation before any config answered %d, want 503", out.Status)
	}
	if got := sink.Take(); len(got) != 0 {
		t.Fatalf("events before any config: %+v, want none", got)
	}
	ch := &adminv1.Channel{Name: "say", Path: "/say", Methods: []string{"POST"}, Service: "boom.ok", Active: proto.Bool(true)}
	if _, errs := e.Apply(context.Background(), snap(1, []*adminv1.Package{boomPackage(), chainPackage(1, "")}, ch)); len(errs) > 0 {
		t.Fatal(errs)
	}

	job := sdk.Request{Method: scheduler.JobMethod, Header: http.Header{scheduler.JobHeader: {"nightly"}}}
	tests := []struct {
		name    string
		service string
		req     sdk.Request
		input   string
		want    observe.Event // the fields compared; Kind, Name and Service always
		stack   bool
	}{
		{"ok", "boom.ok", sdk.Request{Method: "INVOKE"}, `{"say":"hi"}`, observe.Event{Origin: observe.OriginInvoke, Status: 200, Output: []byte(`{"said":"hi"}`)}, false},
		{"job", "boom.ok", job, `{}`, observe.Event{Origin: observe.OriginJob, Job: "nightly", Status: 200, Output: []byte(`{"said":""}`)}, false},
		{"a JOB method without a job is weftctl's", "boom.ok", sdk.Request{Method: scheduler.JobMethod}, `{}`, observe.Event{Origin: observe.OriginInvoke, Status: 200, Output: []byte(`{"said":""}`)}, false},
		{"panic", "boom.panic", sdk.Request{}, `{}`, observe.Event{Origin: observe.OriginInvoke, Status: 500, Failed: true, Error: "the service panicked: kaboom"}, true},
		{"error", "boom.error", sdk.Request{}, `{}`, observe.Event{Origin: observe.OriginInvoke, Status: 500, Failed: true, Error: "disk full"}, false},
		{"a 4xx is the caller's", "boom.refuse", sdk.Request{}, `{}`, observe.Event{Origin: observe.OriginInvoke, Status: 422, Error: "no such order"}, false},
		{"bad input", "boom.ok", sdk.Request{}, `{"say":`, observe.Event{Origin: observe.OriginInvoke, Status: 400, Error: "unexpected end"}, false},
	}
	// A name no deployed service has makes no event: any name would be a
	// series of its own.
	if out := e.Invoke(context.Background(), "boom.gone", sdk.Request{}, []byte(`{}`), 0); out.Status != 404 {
		t.Fatalf("an undeployed service answered %d, want 404", out.Status)
	}
	if got := sink.Take(); len(got) != 0 {
		t.Fatalf("events of an undeployed service: %+v, want none", got)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := e.Invoke(context.Background(), tt.service, tt.req, []byte(tt.input), 0)
			got := sink.Take()
			if len(got) != 1 {
				t.Fatalf("%d events, want 1", len(got))
			}
			ev := got[0]
			checks := []struct {
				what      string
				got, want any
			}{
				{"kind", ev.Kind, observe.KindService},
				{"name", ev.Name, tt.service},
				{"service", ev.Service, tt.service},
				{"origin", ev.Origin, tt.want.Origin},
				{"job", ev.Job, tt.want.Job},
				{"cid", ev.CID, out.CID},
				{"status", ev.Status, tt.want.Status},
				{"failed", ev.Failed, tt.want.Failed},
				{"input", string(ev.Input), tt.input},
				{"bytes in", ev.BytesIn, int64(len(tt.input))},
				{"output", string(ev.Output), string(tt.want.Output)},
				{"bytes out", ev.BytesOut, int64(len(tt.want.Output))},
				{"stack", ev.Stack != "", tt.stack},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
				}
			}
			if !strings.Contains(ev.Error, tt.want.Error) || (tt.want.Error == "") != (ev.Error == "") {
				t.Errorf("error %q, want one containing %q", ev.Error, tt.want.Error)
			}
			if ev.End.IsZero() || (tt.want.Status != 404 && ev.Duration <= 0) {
				t.Errorf("end %s, duration %s: want both set", ev.End, ev.Duration)
			}
		})
	}

	t.Run("nested call", func(t *testing.T) {
		e.Invoke(context.Background(), "chain.outer", sdk.Request{Method: "INVOKE"}, []byte(`{"n":2}`), 0)
		got := sink.Take()
		if len(got) != 2 {
			t.Fatalf("%d events, want 2: the inner call's and the outer's", len(got))
		}
		if inner := got[0]; inner.Name != "chain.inner" || inner.Origin != observe.OriginService || string(inner.Output) != `{"n":4}` {
			t.Errorf("first event %s from %s with %s, want chain.inner from service with {\"n\":4}", inner.Name, inner.Origin, inner.Output)
		}
		if outer := got[1]; outer.Name != "chain.outer" || outer.Origin != observe.OriginInvoke {
			t.Errorf("second event %s from %s, want chain.outer from invoke", outer.Name, outer.Origin)
		}
	})

	t.Run("through a channel", func(t *testing.T) {
		h := &channel.Handler{Current: e.Route, MaxBodyBytes: 1 << 20, NewCID: NewCID, Log: slog.New(slog.DiscardHandler), Observer: sink}
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/say", strings.NewReader(`{"say":"yo"}`))
		r.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(w, r)
		got := sink.Take()
		if w.Code != 200 || len(got) != 2 {
			t.Fatalf("status %d with %d events, want 200 with 2", w.Code, len(got))
		}
		svc, req := got[0], got[1]
		if svc.Kind != observe.KindService || svc.Origin != observe.OriginChannel || svc.Channel != "say" || svc.Name != "boom.ok" {
			t.Errorf("first event %+v, want the service's, from channel say", svc)
		}
		if req.Kind != observe.KindChannel || req.Name != "say" || req.Service != "boom.ok" || req.CID != svc.CID || req.Duration < svc.Duration {
			t.Errorf("second event %+v, want channel say's, of the same cid, no shorter than the service's", req)
		}
	})

	// The channel leaves the body's syntax to the service's decoder: the
	// client is told where it broke, and the service counts a 400, not a
	// failure.
	t.Run("malformed JSON through a channel", func(t *testing.T) {
		h := &channel.Handler{Current: e.Route, MaxBodyBytes: 1 << 20, NewCID: NewCID, Log: slog.New(slog.DiscardHandler), Observer: sink}
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/say", strings.NewReader(`{"say":}`))
		r.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(w, r)
		if w.Code != 400 || !strings.Contains(w.Body.String(), "malformed JSON at byte 8") {
			t.Errorf("answer %d %s, want 400 naming byte 8", w.Code, w.Body)
		}
		got := sink.Take()
		if len(got) != 2 || got[0].Kind != observe.KindService || got[0].Status != 400 || got[0].Failed || got[1].Status != 400 || got[1].Failed {
			t.Errorf("events %+v, want the service's and the channel's, both 400 and not failed", got)
		}
	})
}
