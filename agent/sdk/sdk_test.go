package sdk_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/weft-dev/weft/agent/sdk"
)

func TestContext(t *testing.T) {
	var logs bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := sdk.NewContext(ctx, sdk.Request{
		CID:        "c-1",
		Service:    "hello.greet",
		Channel:    "greet-http",
		Method:     "POST",
		PathParams: map[string]string{"id": "42"},
		Query:      url.Values{"q": {"x"}},
		Header:     http.Header{"X-Req": {"r"}},
		Logger:     slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if c.Context() != ctx {
		t.Error("Context() is not the context passed in")
	}
	for _, tt := range []struct{ name, got, want string }{
		{"CID", c.CID(), "c-1"},
		{"Service", c.Service(), "hello.greet"},
		{"Channel", c.Channel(), "greet-http"},
		{"Method", c.Method(), "POST"},
		{"PathParam", c.PathParam("id"), "42"},
		{"missing PathParam", c.PathParam("nope"), ""},
		{"Query", c.Query().Get("q"), "x"},
		{"Header", c.Header().Get("X-Req"), "r"},
	} {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	c.Logger().Info("hi")
	if !strings.Contains(logs.String(), "cid=c-1") || !strings.Contains(logs.String(), "service=hello.greet") {
		t.Errorf("log line %q lacks cid or service", logs.String())
	}

	if r := c.Response(); r.Status != 0 || r.Header != nil || r.ContentType != "" {
		t.Errorf("fresh Response = %+v, want zero", r)
	}
	c.SetStatus(201)
	c.SetHeader("X-A", "1")
	c.SetHeader("X-A", "2")
	c.SetContentType("text/csv")
	r := c.Response()
	if r.Status != 201 || r.Header.Get("X-A") != "2" || r.ContentType != "text/csv" {
		t.Errorf("Response = %+v", r)
	}
	r.Header.Set("X-A", "changed")
	if c.Response().Header.Get("X-A") != "2" {
		t.Error("Response returned the Context's own header map")
	}
}

func TestZeroRequest(t *testing.T) {
	c := sdk.NewContext(nil, sdk.Request{}) //nolint:staticcheck // nil context is documented to mean Background
	if c.Context() == nil || c.Logger() == nil || c.PathParam("x") != "" || c.Query().Get("x") != "" || c.Header().Get("x") != "" {
		t.Error("zero Request gives unusable accessors")
	}
	c.Logger().Info("discarded")
}

func TestErrorf(t *testing.T) {
	tests := []struct {
		status, want int
	}{{404, 404}, {400, 400}, {599, 599}, {200, 500}, {0, 500}, {600, 500}}
	for _, tt := range tests {
		err := sdk.Errorf(tt.status, "no customer %q", "c1")
		var se *sdk.Error
		if !errors.As(err, &se) || se.Status != tt.status || se.HTTPStatus() != tt.want || err.Error() != `no customer "c1"` {
			t.Errorf("Errorf(%d) = %#v (HTTPStatus %d), want status %d", tt.status, err, se.HTTPStatus(), tt.want)
		}
	}
}

func init() {
	sdk.Register("sdk_test.once", func(*sdk.Context, struct{}) (struct{}, error) { return struct{}{}, nil })
}

func TestRegisterPanics(t *testing.T) {
	for _, name := range []string{"", "sdk_test.once"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Register(%q) did not panic", name)
				}
			}()
			sdk.Register(name, nil)
		}()
	}
}
