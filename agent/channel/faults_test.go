package channel_test

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/weft-dev/weft/agent/channel"
	"github.com/weft-dev/weft/agent/engine"
	"github.com/weft-dev/weft/agent/observe"
	"github.com/weft-dev/weft/agent/shared/snapshot"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
	"github.com/weft-dev/weft/tests/testenv"
)

// faultsSrc is a service package as an author writes it: a greeting with
// a required field that fails on request in every way a service can, and
// a quote whose output type names its SOAP answer's element.
const faultsSrc = `package faults

import (
	"encoding/xml"
	"errors"

	"github.com/weft-dev/weft/agent/sdk"
)

type In struct {
	Name string ` + "`json:\"name\" weft:\"required\"`" + `
	Fail string ` + "`json:\"fail\"`" + `
}

type Out struct {
	Greeting string ` + "`json:\"greeting\"`" + `
}

type Quote struct {
	XMLName xml.Name ` + "`xml:\"urn:quotes QuoteResult\" json:\"-\"`" + `
	Price   float64  ` + "`json:\"price\"`" + `
}

func init() {
	sdk.Register("faults.greet", func(ctx *sdk.Context, in In) (Out, error) {
		switch in.Fail {
		case "plain":
			return Out{}, errors.New("dial db-7.internal:3306: password for weft_app expired")
		case "typed":
			return Out{}, sdk.Errorf(404, "no customer %q", in.Name)
		case "panic":
			panic("lost the key to vault-3")
		}
		return Out{Greeting: "Hello, " + in.Name + "!"}, nil
	})
	sdk.Register("faults.quote", func(ctx *sdk.Context, in In) (Quote, error) { return Quote{Price: 12.5}, nil })
}
`

// The full text of the plain error, which must stay on the agent.
const plainDetail = "dial db-7.internal:3306: password for weft_app expired"

// faultsEnv is an engine serving faultsSrc behind real channels of every
// format over HTTP, recording what the agent logs and observes.
type faultsEnv struct {
	srv  *httptest.Server
	log  *testenv.LogBuffer
	sink *eventSink
}

func newFaultsEnv(t *testing.T) *faultsEnv {
	t.Helper()
	files := []*adminv1.SourceFile{{Name: "faults.go", Content: []byte(faultsSrc)}}
	pkg := &adminv1.Package{Name: "faults", Version: 1, Sha256: snapshot.PackageHash(files), Services: []string{"faults.greet", "faults.quote"}, Sources: files}
	var chans []*adminv1.Channel
	for _, f := range []string{"json", "xml", "soap11", "soap12"} {
		chans = append(chans,
			&adminv1.Channel{Name: f, Path: "/" + f, Methods: []string{"POST"}, Service: "faults.greet", Active: proto.Bool(true), DataFormat: f},
			&adminv1.Channel{Name: f + "-small", Path: "/" + f + "/small", Methods: []string{"POST"}, Service: "faults.greet", Active: proto.Bool(true), DataFormat: f, MaxBodyBytes: 16},
			&adminv1.Channel{Name: f + "-limited", Path: "/" + f + "/limited", Methods: []string{"POST"}, Service: "faults.greet", Active: proto.Bool(true), DataFormat: f, RateLimit: 0.001, RateBurst: 1},
		)
	}
	for _, f := range []string{"soap11", "soap12"} {
		chans = append(chans,
			&adminv1.Channel{Name: f + "-routed", Path: "/" + f + "/routed", Methods: []string{"POST"}, Active: proto.Bool(true), DataFormat: f,
				SoapActions: map[string]string{"Greet": "faults.greet", "GetQuote": "faults.quote"}})
	}
	env := &faultsEnv{log: &testenv.LogBuffer{}, sink: &eventSink{}}
	e := engine.New(slog.New(slog.NewTextHandler(env.log, nil)), 5*time.Second)
	e.Observer = env.sink
	s := &agentv1.Desired{Revision: 1, Packages: []*adminv1.Package{pkg}, Channels: chans}
	if _, errs := e.Apply(context.Background(), s); len(errs) > 0 {
		t.Fatalf("apply: %v", errs)
	}
	h := &channel.Handler{Current: e.Route, MaxBodyBytes: 1 << 20, NewCID: engine.NewCID, Log: slog.New(slog.DiscardHandler), Observer: env.sink}
	env.srv = httptest.NewServer(h)
	t.Cleanup(env.srv.Close)
	return env
}

// post sends body with a Content-Type (none when empty) and extra headers.
func (env *faultsEnv) post(t *testing.T, path, contentType, body string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, env.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// eventSink keeps copies of the events of services, by CID.
type eventSink struct {
	mu     sync.Mutex
	errors map[string]string
}

func (s *eventSink) Observe(e *observe.Event) {
	if e.Kind != observe.KindService {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.errors == nil {
		s.errors = map[string]string{}
	}
	s.errors[e.CID] = e.Error
}

// serviceError is the error the observer (and so the failure samples)
// got for the invocation of cid.
func (s *eventSink) serviceError(cid string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errors[cid]
}

// soapFault is a SOAP 1.1 or 1.2 Fault as a client parses it, with the
// envelope's namespace to tell the versions apart.
type soapFault struct {
	Envelope string
	Code     string // faultcode, or Code/Value
	Reason   string // faultstring, or Reason/Text
	Status   string // the detail's status
	CID      string // the detail's cid
	Detail   bool   // whether it has a detail
	Upgrade  string // the SupportedEnvelope qname of an Upgrade header
	NotUnd   string // the qname of a NotUnderstood header
}

// parseFault parses a Fault envelope of either SOAP version.
func parseFault(t *testing.T, body []byte) soapFault {
	t.Helper()
	var env struct {
		XMLName xml.Name
		Header  struct {
			Upgrade struct {
				Supported struct {
					QName string `xml:"qname,attr"`
				} `xml:"http://www.w3.org/2003/05/soap-envelope SupportedEnvelope"`
			} `xml:"http://www.w3.org/2003/05/soap-envelope Upgrade"`
			NotUnderstood struct {
				QName string `xml:"qname,attr"`
			} `xml:"http://www.w3.org/2003/05/soap-envelope NotUnderstood"`
		} `xml:"Header"`
		Body struct {
			Fault struct {
				XMLName     xml.Name
				FaultCode   string `xml:"faultcode"`
				FaultString string `xml:"faultstring"`
				Code        string `xml:"http://www.w3.org/2003/05/soap-envelope Code>Value"`
				Reason      string `xml:"http://www.w3.org/2003/05/soap-envelope Reason>Text"`
				Detail11    *struct {
					Status string `xml:"urn:weft:fault status"`
					CID    string `xml:"urn:weft:fault cid"`
				} `xml:"detail"`
				Detail12 *struct {
					Status string `xml:"urn:weft:fault status"`
					CID    string `xml:"urn:weft:fault cid"`
				} `xml:"http://www.w3.org/2003/05/soap-envelope Detail"`
			} `xml:"Fault"`
		} `xml:"Body"`
	}
	if err := xml.Unmarshal(body, &env); err != nil || env.Body.Fault.XMLName.Local != "Fault" {
		t.Fatalf("not a SOAP Fault (%v):\n%s", err, body)
	}
	f := env.Body.Fault
	out := soapFault{Envelope: env.XMLName.Space, Code: f.FaultCode + f.Code, Reason: f.FaultString + f.Reason,
		Upgrade: env.Header.Upgrade.Supported.QName, NotUnd: env.Header.NotUnderstood.QName}
	switch {
	case f.Detail11 != nil:
		out.Detail, out.Status, out.CID = true, f.Detail11.Status, f.Detail11.CID
	case f.Detail12 != nil:
		out.Detail, out.Status, out.CID = true, f.Detail12.Status, f.Detail12.CID
	}
	return out
}

const (
	ns11 = "http://schemas.xmlsoap.org/soap/envelope/"
	ns12 = "http://www.w3.org/2003/05/soap-envelope"
)

// envelope wraps header entries and a Body element in an envelope of
// version, with its Content-Type (action, when set, as SOAP 1.2's
// parameter).
func envelope(version, header, body, action string) (ct, env string) {
	if version == "soap12" {
		ct = "application/soap+xml; charset=utf-8"
		if action != "" {
			ct += `; action="` + action + `"`
		}
		return ct, `<env:Envelope xmlns:env="` + ns12 + `"><env:Header>` + header + `</env:Header><env:Body>` + body + `</env:Body></env:Envelope>`
	}
	return "text/xml; charset=utf-8", `<soap:Envelope xmlns:soap="` + ns11 + `"><soap:Header>` + header + `</soap:Header><soap:Body>` + body + `</soap:Body></soap:Envelope>`
}

// TestSOAPFaults sends SOAP 1.1 and 1.2 requests that fail in each way to
// a real engine running an interpreted service behind real channels, and
// checks each answer's parsed Fault: the code and the HTTP status the SOAP
// specifications give it (SOAP 1.1 section 6.2 and WS-I BP R1126: 500;
// SOAP 1.2 Part 2 section 7.5.2.2: 400 for Sender, 500 otherwise), the
// service's own status and the CID in the detail. Refusals at the HTTP
// level (body size, media type, rate) keep their status.
func TestSOAPFaults(t *testing.T) {
	env := newFaultsEnv(t)
	greet := func(fields string) string { return `<m:Greet xmlns:m="urn:greet">` + fields + `</m:Greet>` }
	tests := []struct {
		name       string
		path       string // after /soap11 or /soap12
		header     string // header entries
		body       string // the Body's element
		action     string
		envelopeOf string // the version of the envelope sent, when not the channel's
		ct         string // the Content-Type, when not the version's
		// Expected, for SOAP 1.1 and SOAP 1.2.
		code11, code12     string
		status11, status12 int
		detail             int    // the status in the detail
		reason             string // in the fault string
		notReason          string // never in the fault string
		answer11On12       bool   // a SOAP 1.2 channel answers in SOAP 1.1
	}{
		{name: "service error", body: greet(`<name>Ada</name><fail>plain</fail>`),
			code11: "soap:Server", code12: "env:Receiver", status11: 500, status12: 500, detail: 500,
			reason: "the service failed; see the agent log, cid ", notReason: "db-7"},
		{name: "service panic", body: greet(`<name>Ada</name><fail>panic</fail>`),
			code11: "soap:Server", code12: "env:Receiver", status11: 500, status12: 500, detail: 500,
			reason: "the service failed; see the agent log, cid ", notReason: "vault-3"},
		{name: "service error with a status", body: greet(`<name>Ada</name><fail>typed</fail>`),
			code11: "soap:Client", code12: "env:Sender", status11: 500, status12: 400, detail: 404,
			reason: `no customer "Ada"`},
		{name: "missing field", body: greet(`<fail>typed</fail>`),
			code11: "soap:Client", code12: "env:Sender", status11: 500, status12: 400, detail: 400,
			reason: `"name"`},
		{name: "wrong operation", path: "/routed", body: `<Refund><id>7</id></Refund>`, action: "Refund",
			code11: "soap:Client", code12: "env:Sender", status11: 500, status12: 400, detail: 400,
			reason: `no service for SOAP operation "Refund"; it routes GetQuote, Greet`},
		{name: "malformed envelope", body: greet(`<name>Ada</name>`) + `<oops>`,
			code11: "soap:Client", code12: "env:Sender", status11: 500, status12: 400, detail: 400,
			reason: "malformed XML"},
		{name: "version mismatch", body: greet(`<name>Ada</name>`), envelopeOf: "other",
			code11: "soap:VersionMismatch", code12: "soap:VersionMismatch", status11: 500, status12: 500, detail: 400,
			reason: "envelope on a SOAP", answer11On12: true},
		{name: "unknown envelope namespace", body: greet(`<name>Ada</name>`), envelopeOf: "urn:not-soap",
			code11: "soap:VersionMismatch", code12: "env:VersionMismatch", status11: 500, status12: 500, detail: 400,
			reason: `unknown namespace "urn:not-soap"`},
		{name: "mustUnderstand header", header: `<sec:Token xmlns:sec="urn:sec" MU>x</sec:Token>`, body: greet(`<name>Ada</name>`),
			code11: "soap:MustUnderstand", code12: "env:MustUnderstand", status11: 500, status12: 500, detail: 400,
			reason: "header element <Token>"},
		{name: "body over the limit", path: "/small", body: greet(`<name>Ada</name>`),
			code11: "soap:Client", code12: "env:Sender", status11: 500, status12: 400, detail: 413,
			reason: "takes at most 16"},
		{name: "wrong content type", body: greet(`<name>Ada</name>`), ct: "application/json",
			code11: "soap:Client", code12: "env:Sender", status11: 500, status12: 400, detail: 415,
			reason: `content type "application/json"`},
		{name: "no content type", body: greet(`<name>Ada</name>`), ct: "none",
			code11: "soap:Client", code12: "env:Sender", status11: 500, status12: 400, detail: 415,
			reason: "the request has a body but no Content-Type"},
		{name: "unknown encoding", body: greet(`<name>Ada</name>`), ct: "charset=klingon",
			code11: "soap:Client", code12: "env:Sender", status11: 500, status12: 400, detail: 415,
			reason: `charset "klingon" is not supported`},
	}
	for _, v := range []string{"soap11", "soap12"} {
		for _, tt := range tests {
			t.Run(v+"/"+tt.name, func(t *testing.T) {
				sent := v
				if tt.envelopeOf == "other" {
					sent = map[string]string{"soap11": "soap12", "soap12": "soap11"}[v]
				}
				header := strings.ReplaceAll(tt.header, "MU", map[string]string{"soap11": `soap:mustUnderstand="1"`, "soap12": `env:mustUnderstand="true"`}[sent])
				ct, body := envelope(sent, header, tt.body, tt.action)
				ct, _ = envelope(v, "", "", tt.action) // the channel's own type: the envelope is what is wrong
				if tt.envelopeOf == "urn:not-soap" {
					body = strings.NewReplacer(ns11, tt.envelopeOf, ns12, tt.envelopeOf).Replace(body)
				}
				switch {
				case tt.ct == "none":
					ct = ""
				case strings.HasPrefix(tt.ct, "charset="):
					ct = strings.Replace(ct, "charset=utf-8", tt.ct, 1)
				case tt.ct != "":
					ct = tt.ct
				}
				var extra []string
				if v == "soap11" && tt.action != "" {
					extra = []string{"SOAPAction", `"` + tt.action + `"`}
				}
				resp, b := env.post(t, "/"+v+tt.path, ct, body, extra...)
				code, status, wantEnv := tt.code11, tt.status11, ns11
				if v == "soap12" {
					code, status, wantEnv = tt.code12, tt.status12, ns12
					if tt.answer11On12 {
						wantEnv = ns11
					}
				}
				f := parseFault(t, b)
				cid := resp.Header.Get(channel.CIDHeader)
				if resp.StatusCode != status || f.Code != code || f.Envelope != wantEnv {
					t.Fatalf("answer %d with %s in %s, want %d with %s in %s\n%s", resp.StatusCode, f.Code, f.Envelope, status, code, wantEnv, b)
				}
				wantCT := map[string]string{ns11: "text/xml; charset=utf-8", ns12: "application/soap+xml; charset=utf-8"}[wantEnv]
				if got := resp.Header.Get("Content-Type"); got != wantCT {
					t.Fatalf("Content-Type %q, want %q", got, wantCT)
				}
				if !strings.Contains(f.Reason, tt.reason) || (tt.notReason != "" && strings.Contains(f.Reason, tt.notReason)) {
					t.Fatalf("fault string %q, want one containing %q and not %q", f.Reason, tt.reason, tt.notReason)
				}
				if code == "soap:MustUnderstand" {
					// About a header: SOAP 1.1 section 4.4 forbids a detail.
					if f.Detail {
						t.Fatalf("a SOAP 1.1 MustUnderstand fault with a detail:\n%s", b)
					}
				} else if !f.Detail || f.Status != strconv.Itoa(tt.detail) || f.CID != cid || cid == "" {
					t.Fatalf("detail status %q cid %q (present %v), want %d and %q\n%s", f.Status, f.CID, f.Detail, tt.detail, cid, b)
				}
				if code == "env:MustUnderstand" && f.NotUnd != "h:Token" {
					t.Fatalf("NotUnderstood %q, want h:Token\n%s", f.NotUnd, b)
				}
				if strings.HasSuffix(code, "VersionMismatch") && v == "soap12" && f.Upgrade == "" {
					t.Fatalf("a SOAP 1.2 channel's VersionMismatch without an Upgrade header:\n%s", b)
				}
			})
		}
		t.Run(v+"/over the rate", func(t *testing.T) {
			ct, body := envelope(v, "", greet(`<name>Ada</name>`), "")
			if resp, b := env.post(t, "/"+v+"/limited", ct, body); resp.StatusCode != 200 {
				t.Fatalf("first request %d %s, want 200", resp.StatusCode, b)
			}
			resp, b := env.post(t, "/"+v+"/limited", ct, body)
			f := parseFault(t, b)
			want := map[string]int{"soap11": 500, "soap12": 400}[v]
			if resp.StatusCode != want || resp.Header.Get("Retry-After") == "" || f.Status != "429" || !strings.Contains(f.Reason, "too many requests") {
				t.Fatalf("second request %d (Retry-After %q) %+v, want %d with Retry-After and a Fault saying 429", resp.StatusCode, resp.Header.Get("Retry-After"), f, want)
			}
		})
	}
}

// TestServiceErrorsReachCallers checks the one rule of what a caller reads
// of a service's error, on every format: a plain Go error or a panic is a
// generic message with the CID, while the agent's log and the failure
// sample keep the full text; an error the service gave a status is passed
// on as written.
func TestServiceErrorsReachCallers(t *testing.T) {
	env := newFaultsEnv(t)
	requests := map[string]struct{ ct, body string }{
		"json":   {"application/json", `{"name":"Ada","fail":"FAIL"}`},
		"xml":    {"application/xml", `<greet><name>Ada</name><fail>FAIL</fail></greet>`},
		"soap11": {"text/xml; charset=utf-8", `<soap:Envelope xmlns:soap="` + ns11 + `"><soap:Body><Greet><name>Ada</name><fail>FAIL</fail></Greet></soap:Body></soap:Envelope>`},
		"soap12": {"application/soap+xml; charset=utf-8", `<env:Envelope xmlns:env="` + ns12 + `"><env:Body><Greet><name>Ada</name><fail>FAIL</fail></Greet></env:Body></env:Envelope>`},
	}
	tests := []struct {
		fail   string
		status int
		want   string // what the caller reads, before the cid
		detail string // what the log and the sample keep
	}{
		{"plain", 500, "the service failed; see the agent log, cid ", plainDetail},
		{"panic", 500, "the service failed; see the agent log, cid ", "the service panicked: lost the key to vault-3"},
		{"typed", 404, `no customer "Ada"`, `no customer "Ada"`},
	}
	for _, f := range []string{"json", "xml", "soap11", "soap12"} {
		for _, tt := range tests {
			t.Run(f+"/"+tt.fail, func(t *testing.T) {
				req := requests[f]
				resp, b := env.post(t, "/"+f, req.ct, strings.ReplaceAll(req.body, "FAIL", tt.fail))
				cid := resp.Header.Get(channel.CIDHeader)
				var msg, gotCID string
				switch f {
				case "json":
					var e struct{ Error, CID string }
					if err := json.Unmarshal(b, &e); err != nil {
						t.Fatalf("%v: %s", err, b)
					}
					msg, gotCID = e.Error, e.CID
				case "xml":
					var e struct {
						Message string `xml:"message"`
						CID     string `xml:"cid"`
					}
					if err := xml.Unmarshal(b, &e); err != nil {
						t.Fatalf("%v: %s", err, b)
					}
					msg, gotCID = e.Message, e.CID
				default:
					fault := parseFault(t, b)
					msg, gotCID = fault.Reason, fault.CID
					if fault.Status != strconv.Itoa(tt.status) {
						t.Fatalf("detail status %q, want %d", fault.Status, tt.status)
					}
				}
				if gotCID != cid || cid == "" {
					t.Fatalf("cid %q in the body, %q in the header", gotCID, cid)
				}
				want := tt.want
				if strings.HasSuffix(want, "cid ") {
					want += cid
				}
				if msg != want {
					t.Fatalf("the caller read %q, want %q", msg, want)
				}
				if !strings.HasPrefix(f, "soap") && resp.StatusCode != tt.status {
					t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
				}
				if got := env.sink.serviceError(cid); got != tt.detail {
					t.Fatalf("the failure sample has %q, want %q", got, tt.detail)
				}
				if tt.status >= 500 && !strings.Contains(env.log.String(), "cid="+cid) {
					t.Fatalf("the agent log has no line of cid %s:\n%s", cid, env.log.String())
				}
			})
		}
	}
	if !strings.Contains(env.log.String(), plainDetail) {
		t.Fatalf("the agent log lacks the full error:\n%s", env.log.String())
	}
}

// TestSOAPResponseNamespace checks, through a real engine, that a SOAP
// answer is in the namespace of the request's operation element, and that
// a service's output type with an XMLName chooses its own.
func TestSOAPResponseNamespace(t *testing.T) {
	env := newFaultsEnv(t)
	for _, v := range []string{"soap11", "soap12"} {
		for _, tt := range []struct {
			name, op, body string
			want, child    xml.Name
		}{
			{"request's namespace", "Greet", `<g:Greet xmlns:g="urn:greet"><g:name>Ada</g:name></g:Greet>`,
				xml.Name{Space: "urn:greet", Local: "GreetResponse"}, xml.Name{Space: "urn:greet", Local: "greeting"}},
			{"unqualified children", "Greet", `<g:Greet xmlns:g="urn:greet"><name>Ada</name></g:Greet>`,
				xml.Name{Space: "urn:greet", Local: "GreetResponse"}, xml.Name{Local: "greeting"}},
			{"no namespace", "Greet", `<Greet><name>Ada</name></Greet>`,
				xml.Name{Local: "GreetResponse"}, xml.Name{Local: "greeting"}},
			{"chosen by the output type", "GetQuote", `<g:GetQuote xmlns:g="urn:greet"><g:name>WFT</g:name></g:GetQuote>`,
				xml.Name{Space: "urn:quotes", Local: "QuoteResult"}, xml.Name{Space: "urn:quotes", Local: "price"}},
		} {
			t.Run(v+"/"+tt.name, func(t *testing.T) {
				ct, body := envelope(v, "", tt.body, tt.op)
				var extra []string
				if v == "soap11" {
					extra = []string{"SOAPAction", tt.op}
				}
				resp, b := env.post(t, "/"+v+"/routed", ct, body, extra...)
				if resp.StatusCode != 200 {
					t.Fatalf("status %d %s", resp.StatusCode, b)
				}
				var r struct {
					Body struct {
						Op struct {
							XMLName xml.Name
							Child   struct {
								XMLName xml.Name
							} `xml:",any"`
						} `xml:",any"`
					} `xml:"Body"`
				}
				if err := xml.Unmarshal(b, &r); err != nil {
					t.Fatalf("%v: %s", err, b)
				}
				if r.Body.Op.XMLName != tt.want || r.Body.Op.Child.XMLName != tt.child {
					t.Fatalf("answer <%v> with <%v>, want <%v> with <%v>\n%s", r.Body.Op.XMLName, r.Body.Op.Child.XMLName, tt.want, tt.child, b)
				}
			})
		}
	}
}

// TestContentTypeRequired checks what a request without a Content-Type
// gets on each format: with a body, a 415 naming the type the channel
// takes; without one, none is needed.
func TestContentTypeRequired(t *testing.T) {
	env := newFaultsEnv(t)
	bodies := map[string]string{
		"json":   `{"name":"Ada"}`,
		"xml":    `<greet><name>Ada</name></greet>`,
		"soap11": `<soap:Envelope xmlns:soap="` + ns11 + `"><soap:Body><Greet><name>Ada</name></Greet></soap:Body></soap:Envelope>`,
		"soap12": `<env:Envelope xmlns:env="` + ns12 + `"><env:Body><Greet><name>Ada</name></Greet></env:Body></env:Envelope>`,
	}
	takes := map[string]string{"json": "application/json", "xml": "application/xml or text/xml", "soap11": "text/xml", "soap12": "application/soap+xml"}
	for _, f := range []string{"json", "xml", "soap11", "soap12"} {
		t.Run(f+"/body without a type", func(t *testing.T) {
			resp, b := env.post(t, "/"+f, "", bodies[f])
			want := "the request has a body but no Content-Type: channel " + f + " takes " + takes[f]
			// SOAP sends its Client/Sender Fault's status, the 415 in the detail.
			status := map[string]int{"json": 415, "xml": 415, "soap11": 500, "soap12": 400}[f]
			if resp.StatusCode != status || !strings.Contains(string(b), want) {
				t.Fatalf("%d %s, want %d saying %q", resp.StatusCode, b, status, want)
			}
		})
		t.Run(f+"/no body", func(t *testing.T) {
			resp, b := env.post(t, "/"+f, "", "")
			// No body is no input: the required name is missing (SOAP:
			// no envelope). Either way the request was read, not refused.
			if resp.StatusCode == http.StatusUnsupportedMediaType || (f == "json" || f == "xml") && (resp.StatusCode != 400 || !strings.Contains(string(b), "is required")) {
				t.Fatalf("%d %s, want the empty input decoded", resp.StatusCode, b)
			}
		})
	}
}
