package channel

import (
	"bufio"
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/weft-dev/weft/agent/sdk"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func ch(name, path, service string, methods ...string) *adminv1.Channel {
	return &adminv1.Channel{Name: name, Path: path, Service: service, Methods: methods, Active: proto.Bool(true)}
}

// echo is an Invoker that answers with what it was asked.
type echo struct{}

func (echo) Call(_ context.Context, service string, req sdk.Request, input []byte, timeout time.Duration, _ Late) (Outcome, bool) {
	if service == "fail" {
		return Outcome{CID: req.CID, Status: http.StatusBadRequest, Error: `field "name" is required`}, true
	}
	out, _ := json.Marshal(map[string]any{"service": service, "channel": req.Channel, "params": req.PathParams, "input": json.RawMessage(input), "timeout_ms": timeout.Milliseconds()})
	return Outcome{CID: req.CID, Status: http.StatusOK, Output: out}, true
}

func TestHandler(t *testing.T) {
	chans := []*adminv1.Channel{
		ch("order", "/orders/{id}", "orders.get", "GET"),
		ch("latest", "/orders/latest", "orders.latest", "GET"),
		ch("create", "/orders", "orders.create", "POST", "PUT"),
		ch("fail", "/fail", "fail", "POST"),
		{Name: "off", Path: "/off", Service: "s", Methods: []string{"POST"}},
		{Name: "small", Path: "/small", Service: "s", Methods: []string{"POST"}, Active: proto.Bool(true), MaxBodyBytes: 10, TimeoutMs: 1500},
	}
	router, err := NewRouter(chans, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &Handler{
		Current:      func() (*Router, Invoker) { return router, echo{} },
		MaxBodyBytes: 1 << 20,
		NewCID:       func() string { return "cid1" },
		Log:          slog.New(slog.DiscardHandler),
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        string
		status      int
		want        string // substring of the body
		allow       string
	}{
		{name: "param", method: "GET", path: "/orders/42", status: 200, want: `"params":{"id":"42"}`},
		{name: "escaped param", method: "GET", path: "/orders/a%2Fb", status: 200, want: `"params":{"id":"a/b"}`},
		{name: "literal wins", method: "GET", path: "/orders/latest", status: 200, want: `"service":"orders.latest"`},
		{name: "json body", method: "POST", path: "/orders", contentType: "application/json", body: `{"a":1}`, status: 200, want: `"input":{"a":1}`},
		{name: "empty body is {}", method: "PUT", path: "/orders", status: 200, want: `"input":{}`},
		{name: "wrong content type", method: "POST", path: "/orders", contentType: "text/plain", body: `{}`, status: 415, want: "takes application/json"},
		{name: "method not allowed", method: "DELETE", path: "/orders", status: 405, want: "allowed: POST, PUT", allow: "POST, PUT"},
		{name: "unknown path", method: "GET", path: "/nope", status: 404, want: "no channel serves /nope"},
		{name: "inactive channel", method: "POST", path: "/off", status: 404, want: "no channel serves /off"},
		{name: "body too large", method: "POST", path: "/small", contentType: "application/json", body: `{"a":"0123456789"}`, status: 413, want: "at most 10"},
		{name: "channel timeout passed on", method: "POST", path: "/small", status: 200, want: `"timeout_ms":1500`},
		{name: "service error", method: "POST", path: "/fail", status: 400, want: `field \"name\" is required`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status || !strings.Contains(string(b), tt.want) {
				t.Fatalf("%s %s = %d %s, want %d containing %s", tt.method, tt.path, resp.StatusCode, b, tt.status, tt.want)
			}
			if got := resp.Header.Get(CIDHeader); got != "cid1" {
				t.Errorf("%s = %q, want cid1", CIDHeader, got)
			}
			if got := resp.Header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
		})
	}
}

func TestHandlerFormats(t *testing.T) {
	chans := []*adminv1.Channel{
		{Name: "x", Path: "/x", Methods: []string{"POST"}, Service: "orders.get", Active: proto.Bool(true), DataFormat: "xml"},
		{Name: "s11", Path: "/s11", Methods: []string{"POST"}, Service: "orders.get", Active: proto.Bool(true), DataFormat: "soap11"},
		{Name: "s12", Path: "/s12", Methods: []string{"POST"}, Service: "fail", Active: proto.Bool(true), DataFormat: "soap12"},
	}
	router, err := NewRouter(chans, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &Handler{Current: func() (*Router, Invoker) { return router, echo{} }, MaxBodyBytes: 1 << 20, NewCID: func() string { return "cid1" }, Log: slog.New(slog.DiscardHandler)}
	srv := httptest.NewServer(h)
	defer srv.Close()
	post := func(path, ct, body string, header ...string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}

	resp, body := post("/x", "application/xml", "<order><id>7</id></order>")
	var xr struct {
		Service string `xml:"service"`
		Input   struct {
			ID string `xml:"id"`
		} `xml:"input"`
	}
	if resp.StatusCode != 200 || xml.Unmarshal(body, &xr) != nil || xr.Service != "orders.get" || xr.Input.ID != "7" {
		t.Fatalf("xml = %d %s", resp.StatusCode, body)
	}
	if resp, body := post("/x", "application/xml", "<order><id>7</order>"); resp.StatusCode != 400 || !strings.Contains(string(body), "<error>") {
		t.Fatalf("malformed xml = %d %s, want 400 with an <error>", resp.StatusCode, body)
	}

	env := `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><GetOrder><id>9</id></GetOrder></soap:Body></soap:Envelope>`
	resp, body = post("/s11", "text/xml; charset=utf-8", env, "SOAPAction", `"GetOrder"`)
	var sr struct {
		Body struct {
			Resp struct {
				XMLName xml.Name
				Service string `xml:"service"`
			} `xml:",any"`
		} `xml:"Body"`
	}
	if resp.StatusCode != 200 || xml.Unmarshal(body, &sr) != nil || sr.Body.Resp.XMLName.Local != "GetOrderResponse" || sr.Body.Resp.Service != "orders.get" {
		t.Fatalf("soap 1.1 = %d %s", resp.StatusCode, body)
	}
	// A Fault, so 500 (SOAP 1.1 §6.2), with the 415 in its detail.
	if resp, b := post("/s11", "application/json", env); resp.StatusCode != 500 || !strings.Contains(string(b), "415") {
		t.Fatalf("soap 1.1 with a JSON content type = %d %s, want a 500 Fault saying 415", resp.StatusCode, b)
	}

	env12 := `<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body><Op/></env:Body></env:Envelope>`
	resp, body = post("/s12", "application/soap+xml; charset=utf-8", env12)
	var fault struct {
		Body struct {
			Fault struct {
				Code struct {
					Value string `xml:"Value"`
				} `xml:"Code"`
				Reason struct {
					Text string `xml:"Text"`
				} `xml:"Reason"`
			} `xml:"Fault"`
		} `xml:"Body"`
	}
	if resp.StatusCode != 400 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/soap+xml") ||
		xml.Unmarshal(body, &fault) != nil || !strings.HasSuffix(fault.Body.Fault.Code.Value, "Sender") || !strings.Contains(fault.Body.Fault.Reason.Text, "required") {
		t.Fatalf("soap 1.2 fault = %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}

// dated is an Invoker whose service "dated" sets its own Date header.
type dated struct{ echo }

const serviceDate = "Tue, 01 Dec 2026 10:00:00 GMT"

func (d dated) Call(ctx context.Context, service string, req sdk.Request, input []byte, timeout time.Duration, late Late) (Outcome, bool) {
	out, ok := d.echo.Call(ctx, service, req, input, timeout, late)
	if service == "dated" {
		out.Header = http.Header{"Date": {serviceDate}}
	}
	return out, ok
}

func TestHandlerDatesAnswers(t *testing.T) {
	router, err := NewRouter([]*adminv1.Channel{ch("plain", "/plain", "plain", "POST"), ch("dated", "/dated", "dated", "POST"), ch("fail", "/fail", "fail", "POST")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &Handler{Current: func() (*Router, Invoker) { return router, dated{} }, MaxBodyBytes: 1 << 20, NewCID: func() string { return "cid1" }, Log: slog.New(slog.DiscardHandler)}
	srv := httptest.NewServer(h)
	defer srv.Close()
	tests := []struct {
		path        string
		status      int
		date        string // "" for the time of the answer
		contentType string
	}{
		{"/plain", 200, "", "application/json"},
		{"/fail", 400, "", "application/json"}, // an error is dated too
		{"/dated", 200, serviceDate, "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			before := time.Now().Truncate(time.Second)
			resp, err := http.Post(srv.URL+tt.path, "application/json", strings.NewReader(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			after := time.Now()
			if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != tt.contentType {
				t.Fatalf("POST %s = %d, Content-Type %q; want %d, %q", tt.path, resp.StatusCode, resp.Header.Get("Content-Type"), tt.status, tt.contentType)
			}
			if got := resp.Header.Values("Date"); len(got) != 1 {
				t.Fatalf("Date headers %q, want one", got)
			}
			if tt.date != "" {
				if got := resp.Header.Get("Date"); got != tt.date {
					t.Fatalf("Date = %q, want the service's %q", got, tt.date)
				}
				return
			}
			d, err := http.ParseTime(resp.Header.Get("Date"))
			if err != nil || d.Before(before) || d.After(after) {
				t.Fatalf("Date = %q (%v), want the time of the answer, between %v and %v", resp.Header.Get("Date"), err, before, after)
			}
		})
	}
}

func TestDateHeader(t *testing.T) {
	at := time.Date(2026, 12, 7, 23, 0, 5, 0, time.FixedZone("CET", 3600))
	first := dateHeader(at)
	if want := "Mon, 07 Dec 2026 22:00:05 GMT"; len(first) != 1 || first[0] != want {
		t.Fatalf("dateHeader(%v) = %q, want [%q]", at, first, want)
	}
	if again := dateHeader(at.Add(999 * time.Millisecond)); again[0] != first[0] {
		t.Fatalf("dateHeader later in the same second = %q, want %q", again, first)
	}
	if next := dateHeader(at.Add(time.Second)); next[0] != "Mon, 07 Dec 2026 22:00:06 GMT" {
		t.Fatalf("dateHeader a second later = %q", next)
	}
}

func TestHandlerReadsBodies(t *testing.T) {
	router, err := NewRouter([]*adminv1.Channel{
		{Name: "small", Path: "/small", Service: "s", Methods: []string{"POST"}, Active: proto.Bool(true), MaxBodyBytes: 10},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &Handler{Current: func() (*Router, Invoker) { return router, echo{} }, MaxBodyBytes: 1 << 20, NewCID: func() string { return "cid1" }, Log: slog.New(slog.DiscardHandler)}
	srv := httptest.NewServer(h)
	defer srv.Close()
	// A reader of no known size: the client sends it chunked, without a
	// Content-Length.
	type unsized struct{ io.Reader }
	tests := []struct {
		name   string
		body   io.Reader
		status int
		want   string
	}{
		{"sized", strings.NewReader(`{"a":1}`), 200, `"input":{"a":1}`},
		{"chunked", unsized{strings.NewReader(`{"a":1}`)}, 200, `"input":{"a":1}`},
		{"sized, too large", strings.NewReader(`{"a":"0123456789"}`), 413, "at most 10"},
		{"chunked, too large", unsized{strings.NewReader(`{"a":"0123456789"}`)}, 413, "over 10 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Post(srv.URL+"/small", "application/json", tt.body)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status || !strings.Contains(string(b), tt.want) {
				t.Fatalf("POST = %d %s, want %d containing %q", resp.StatusCode, b, tt.status, tt.want)
			}
		})
	}

	t.Run("shorter than announced", func(t *testing.T) {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, "POST /small HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{\"a\""); err != nil {
			t.Fatal(err)
		}
		conn.(*net.TCPConn).CloseWrite() // the client gives up mid-body
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "read request body") {
			t.Fatalf("a body cut short = %d %s, want 400 saying it could not be read", resp.StatusCode, b)
		}
	})
}
