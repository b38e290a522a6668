package channel

import (
	"bufio"
	"context"
	"io"
	"net"
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

// overrun is an Invoker whose calls all overrun: each answers late, from
// another goroutine, and holds the request's goroutine until release is
// closed, as a service stuck past its deadline does. answered is closed
// once Late.Answer has returned (one call per overrun).
type overrun struct {
	release  chan struct{}
	answered chan struct{}
}

func newOverrun() overrun {
	return overrun{release: make(chan struct{}), answered: make(chan struct{})}
}

func (o overrun) Call(_ context.Context, service string, req sdk.Request, _ []byte, timeout time.Duration, late Late) (Outcome, bool) {
	go func() {
		late.Answer(Outcome{CID: req.CID, Status: http.StatusGatewayTimeout, Error: "the service did not finish within its deadline of " + timeout.String()})
		close(o.answered)
	}()
	<-o.answered
	<-o.release
	return Outcome{}, false
}

// TestLateAnswer checks that an answer given at the deadline reaches the
// client whole while the request's goroutine is still held, in the
// channel's format, that it closes the connection, and that the request
// makes one event.
func TestLateAnswer(t *testing.T) {
	for _, tt := range []struct {
		name, format, contentType, body, want string
		status                                int // sent: SOAP sends every fault as 500, the 504 in its detail
	}{
		{"json", "", "application/json", `{}`, `"error":"the service did not finish within its deadline of 100ms"`, http.StatusGatewayTimeout},
		{"soap", "soap11", "text/xml; charset=utf-8", `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><Get/></s:Body></s:Envelope>`,
			`<faultcode>soap:Server</faultcode><faultstring>the service did not finish within its deadline of 100ms</faultstring><detail><w:status xmlns:w="urn:weft:fault">504</w:status>`, http.StatusInternalServerError},
	} {
		t.Run(tt.name, func(t *testing.T) {
			router, err := NewRouter([]*adminv1.Channel{
				{Name: "slow", Path: "/slow", Service: "slow", Methods: []string{"POST"}, Active: proto.Bool(true), TimeoutMs: 100, DataFormat: tt.format},
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			inv := newOverrun()
			sink := &observetest.Sink{}
			h := newTestHandler(router, inv)
			h.Observer = sink
			srv := httptest.NewServer(h)
			defer srv.Close()

			type result struct {
				resp *http.Response
				body string
				err  error
			}
			got := make(chan result, 1)
			go func() {
				resp, err := http.Post(srv.URL+"/slow", tt.contentType, strings.NewReader(tt.body))
				if err != nil {
					got <- result{err: err}
					return
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				got <- result{resp, string(b), err}
			}()
			var r result
			select {
			case r = <-got:
			case <-time.After(time.Minute):
				close(inv.release)
				t.Fatal("no whole answer while the request's goroutine is held")
			}
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.resp.StatusCode != tt.status || !strings.Contains(r.body, tt.want) {
				t.Errorf("answer = %d %s, want %d with %s", r.resp.StatusCode, r.body, tt.status, tt.want)
			}
			if !r.resp.Close || r.resp.ContentLength != int64(len(r.body)) || r.resp.Header.Get(CIDHeader) != "cid-test" {
				t.Errorf("answer closes %v, length %d of %d, CID %q; want the connection closed, the length and the CID",
					r.resp.Close, r.resp.ContentLength, len(r.body), r.resp.Header.Get(CIDHeader))
			}
			close(inv.release)
			// The client may read the answer before Answer has emitted
			// its event, and the server does not wait for a handler whose
			// connection it gave up.
			select {
			case <-inv.answered:
			case <-time.After(time.Minute):
				t.Fatal("Answer did not return after its answer was read")
			}
			evs := sink.Take()
			if len(evs) != 1 || evs[0].Kind != observe.KindChannel || evs[0].Status != http.StatusGatewayTimeout || !evs[0].Failed || evs[0].Service != "slow" {
				t.Errorf("events = %+v, want one failed channel event with 504", evs)
			}
		})
	}
}

// TestLateAnswerClosesConnection checks that the server lets the
// connection go with the late answer, while the call still holds the
// request's goroutine: the client reads the answer, then the end.
func TestLateAnswerClosesConnection(t *testing.T) {
	router, err := NewRouter([]*adminv1.Channel{
		{Name: "slow", Path: "/slow", Service: "slow", Methods: []string{"POST"}, Active: proto.Bool(true), TimeoutMs: 100},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	inv := newOverrun()
	srv := httptest.NewServer(newTestHandler(router, inv))
	defer srv.Close()
	defer close(inv.release)

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, "POST /slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"); err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(conn)
	resp, err := http.ReadResponse(rd, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("answer %d %s, %v; want 504", resp.StatusCode, body, err)
	}
	if n, err := rd.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("after the answer: read %d, %v; want the end of the connection while the call is held", n, err)
	}
}
