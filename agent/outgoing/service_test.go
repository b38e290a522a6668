package outgoing_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/weft-dev/weft/agent/outgoing"
	"github.com/weft-dev/weft/agent/sdk"
)

func TestForService(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read the body first: the server notices a caller that went away
		// only once the body is read.
		_, _ = io.Copy(io.Discard, r.Body)
		switch r.URL.Path {
		case "/items/42":
			w.Header().Set("X-Item", "42")
			_, _ = io.WriteString(w, `{"q":"`+r.URL.Query().Get("q")+`"}`)
		case "/items/big":
			_, _ = io.WriteString(w, strings.Repeat("x", 100))
		case "/items/slow":
			<-r.Context().Done()
		default:
			w.WriteHeader(http.StatusConflict)
			_, _ = io.WriteString(w, "  item "+strings.TrimPrefix(r.URL.Path, "/items/")+" is locked\n")
		}
	}))
	defer srv.Close()

	tests := []struct {
		name   string
		id     string
		opts   []outgoing.Option
		status int    // of the response; 0 for none
		body   string // of the response
		err    *sdk.OutgoingError
		plain  string // a plain error, not an *sdk.OutgoingError
	}{
		{name: "2xx", id: "42", status: 200, body: `{"q":"x y"}`},
		{name: "non-2xx", id: "7", status: 409, body: "  item 7 is locked\n",
			err: &sdk.OutgoingError{Connection: "items", Method: "POST", URL: srv.URL + "/items/7", Status: 409, Excerpt: "item 7 is locked"}},
		{name: "over the body limit", id: "big", opts: []outgoing.Option{outgoing.WithMaxBody(10)}, status: 200,
			err: &sdk.OutgoingError{Connection: "items", Method: "POST", URL: srv.URL + "/items/big", Excerpt: "response body too large: over 10 bytes"}},
		{name: "timeout", id: "slow",
			err: &sdk.OutgoingError{Connection: "items", Method: "POST", URL: srv.URL + "/items/slow", Excerpt: "timed out after 50ms: context deadline exceeded", Timeout: true}},
		{name: "missing path param", plain: `outgoing "items": path param "id" is missing`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := outgoing.New(outgoing.Config{Name: "items", Address: srv.URL, PathTemplate: "/items/{id}", Method: "POST", Timeout: 50 * time.Millisecond}, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			conn := c.ForService()
			if conn.Format() != sdk.FormatJSON {
				t.Fatalf("Format = %q, want the default json", conn.Format())
			}
			params := map[string]string{"id": tt.id}
			if tt.id == "" {
				params = nil
			}
			resp, err := conn.Do(context.Background(), sdk.OutgoingCall{Params: params, Query: url.Values{"q": {"x y"}}, Body: []byte(`{}`)})

			var oe *sdk.OutgoingError
			switch {
			case tt.plain != "":
				if err == nil || errors.As(err, &oe) || err.Error() != tt.plain {
					t.Fatalf("Do = %T %v, want the plain error %q", err, err, tt.plain)
				}
			case tt.err != nil:
				if !errors.As(err, &oe) {
					t.Fatalf("Do = %T %v, want an *sdk.OutgoingError", err, err)
				}
				if *oe != *tt.err {
					t.Fatalf("error = %+v\nwant      %+v", *oe, *tt.err)
				}
			case err != nil:
				t.Fatalf("Do: %v", err)
			}
			switch {
			case tt.status == 0 && resp != nil:
				t.Fatalf("response = %+v, want none", resp)
			case tt.status != 0 && (resp == nil || resp.Status != tt.status || string(resp.Body) != tt.body):
				t.Fatalf("response = %+v, want status %d with %q", resp, tt.status, tt.body)
			}
			if tt.name == "2xx" && resp.Header.Get("X-Item") != "42" {
				t.Fatalf("response header = %v, want the remote's", resp.Header)
			}
		})
	}
}

func TestForServiceFormat(t *testing.T) {
	for _, f := range []string{"json", "xml", "soap11", "soap12"} {
		c, err := outgoing.New(outgoing.Config{Name: "c", Address: "http://127.0.0.1:1", Format: f})
		if err != nil {
			t.Fatal(err)
		}
		if got := c.ForService().Format(); got != f {
			t.Errorf("Format of a %s connection = %q", f, got)
		}
		c.Close()
	}
}
