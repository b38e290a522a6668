package e2e

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weft-dev/weft/controlplane/store/storetest"
	"github.com/weft-dev/weft/tests/testenv"
)

// TestChannelFormats puts the example service behind a JSON, a plain XML,
// a SOAP 1.1 and a SOAP 1.2 channel and calls each on both agents, parsing
// every answer.
func TestChannelFormats(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			e := newEnv(t, b.DSN)
			if r := testenv.Ctl(t, e.cp, "deploy", e.example, "--wait"); r.ExitCode != 0 {
				t.Fatalf("deploy: %s", r)
			}
			for _, c := range [][]string{{"fjson", "json"}, {"fxml", "xml"}, {"fsoap11", "soap11"}, {"fsoap12", "soap12"}} {
				if r := testenv.Ctl(t, e.cp, "channel", "create", c[0], "--path", "/"+c[0], "--service", exampleService, "--format", c[1]); r.ExitCode != 0 {
					t.Fatalf("channel create %s: %s", c[0], r)
				}
			}
			testenv.AwaitAgentsSynced(t, e.cp, e.cp.DesiredRevision(t), time.Minute, e.ids()...)
			if r := testenv.Ctl(t, e.cp, "channel", "create", "fbad", "--path", "/fbad", "--service", exampleService, "--format", "csv"); r.ExitCode == 0 || !strings.Contains(r.Stderr, "--format \"csv\"") {
				t.Fatalf("channel with format csv: %s; want a refusal naming --format", r)
			}

			for _, a := range e.agents {
				status, ct, body := call(t, a.URL("/fjson"), "application/json", `{"name":"Ada"}`, "")
				var j struct{ Greeting string }
				if status != 200 || json.Unmarshal(body, &j) != nil || j.Greeting != "Hello, Ada!" {
					t.Fatalf("%s json: %d %s %s", a.ID, status, ct, body)
				}

				status, ct, body = call(t, a.URL("/fxml"), "application/xml", `<greet><name>Ada</name></greet>`, "")
				var x struct {
					XMLName  xml.Name
					Greeting string `xml:"greeting"`
				}
				if status != 200 || !strings.Contains(ct, "xml") || xml.Unmarshal(body, &x) != nil || x.Greeting != "Hello, Ada!" {
					t.Fatalf("%s xml: %d %s %s", a.ID, status, ct, body)
				}
				status, _, body = call(t, a.URL("/fxml"), "application/xml", `<greet><name>Ada</greet>`, "")
				if status != 400 || !strings.Contains(string(body), "<error>") {
					t.Fatalf("%s malformed xml: %d %s; want 400 with an <error>", a.ID, status, body)
				}

				env11 := `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><Greet><name>Ada</name></Greet></soap:Body></soap:Envelope>`
				status, ct, body = call(t, a.URL("/fsoap11"), "text/xml; charset=utf-8", env11, `"Greet"`)
				var s struct {
					Body struct {
						Resp struct {
							XMLName  xml.Name
							Greeting string `xml:"greeting"`
						} `xml:",any"`
					} `xml:"Body"`
				}
				if status != 200 || !strings.HasPrefix(ct, "text/xml") || xml.Unmarshal(body, &s) != nil || s.Body.Resp.XMLName.Local != "GreetResponse" || s.Body.Resp.Greeting != "Hello, Ada!" {
					t.Fatalf("%s soap 1.1: %d %s %s", a.ID, status, ct, body)
				}

				env12 := `<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body><Greet><language>xx</language></Greet></env:Body></env:Envelope>`
				status, ct, body = call(t, a.URL("/fsoap12"), "application/soap+xml; charset=utf-8; action=Greet", env12, "")
				var f struct {
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
				if status != 400 || !strings.HasPrefix(ct, "application/soap+xml") || xml.Unmarshal(body, &f) != nil ||
					!strings.HasSuffix(f.Body.Fault.Code.Value, "Sender") || !strings.Contains(f.Body.Fault.Reason.Text, "name") {
					t.Fatalf("%s soap 1.2 fault: %d %s %s", a.ID, status, ct, body)
				}
			}
		})
	}
}

// call POSTs body with a content type (and a SOAPAction when given).
func call(t *testing.T, url, contentType, body, soapAction string) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if soapAction != "" {
		req.Header.Set("SOAPAction", soapAction)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

// TestSOAPFaultsEndToEnd calls SOAP 1.1 and 1.2 channels of a real agent
// as an outside client would, and parses each Fault: a service's plain
// error (500, a generic reason with the CID), a missing field and a wrong
// operation (SOAP 1.1: 500, SOAP 1.2: 400 Sender), a version mismatch and
// a mustUnderstand header (500), each with the error's own status and the
// CID in the detail. It also checks that an answer is in the request's
// namespace, or the one the service's output type chose, that a body in
// ISO-8859-1 is read, and that the full text of the plain error reaches
// the operator (weftctl invoke, weftctl debug failures) and no caller.
func TestSOAPFaultsEndToEnd(t *testing.T) {
	cp := testenv.StartControlPlane(t, storetest.SQLite(t).DSN)
	agent := testenv.StartAgent(t, cp, "soap-1")
	if r := testenv.Ctl(t, cp, "deploy", filepath.Join("testdata", "faults"), "--wait"); r.ExitCode != 0 {
		t.Fatalf("deploy: %s", r)
	}
	for _, v := range []string{"soap11", "soap12"} {
		if r := testenv.Ctl(t, cp, "channel", "create", v, "--path", "/"+v, "--format", v,
			"--soap-action", "Greet=faults.greet", "--soap-action", "GetQuote=faults.quote"); r.ExitCode != 0 {
			t.Fatalf("channel create %s: %s", v, r)
		}
	}
	testenv.AwaitAgentsSynced(t, cp, cp.DesiredRevision(t), time.Minute, agent.ID)

	const (
		ns11 = "http://schemas.xmlsoap.org/soap/envelope/"
		ns12 = "http://www.w3.org/2003/05/soap-envelope"
	)
	envelope := func(v, header, body string) (string, string) {
		if v == "soap12" {
			return "application/soap+xml; charset=utf-8", `<env:Envelope xmlns:env="` + ns12 + `"><env:Header>` + header + `</env:Header><env:Body>` + body + `</env:Body></env:Envelope>`
		}
		return "text/xml; charset=utf-8", `<soap:Envelope xmlns:soap="` + ns11 + `"><soap:Header>` + header + `</soap:Header><soap:Body>` + body + `</soap:Body></soap:Envelope>`
	}
	other := map[string]string{"soap11": "soap12", "soap12": "soap11"}
	mu := map[string]string{"soap11": `soap:mustUnderstand="1"`, "soap12": `env:mustUnderstand="true"`}
	var plainCID string
	for _, v := range []string{"soap11", "soap12"} {
		tests := []struct {
			name, envOf, header, body string
			status                    map[string]int // by channel version
			code                      map[string]string
			detail                    string
			reason                    string
		}{
			{"service error", v, "", `<q:Greet xmlns:q="urn:greet"><name>Ada</name><fail>plain</fail></q:Greet>`,
				map[string]int{"soap11": 500, "soap12": 500}, map[string]string{"soap11": "soap:Server", "soap12": "env:Receiver"}, "500", "the service failed; see the agent log, cid "},
			{"missing field", v, "", `<q:Greet xmlns:q="urn:greet"><fail>plain</fail></q:Greet>`,
				map[string]int{"soap11": 500, "soap12": 400}, map[string]string{"soap11": "soap:Client", "soap12": "env:Sender"}, "400", `"name" is required`},
			{"wrong operation", v, "", `<Refund><id>7</id></Refund>`,
				map[string]int{"soap11": 500, "soap12": 400}, map[string]string{"soap11": "soap:Client", "soap12": "env:Sender"}, "400", `no service for SOAP operation "Refund"`},
			{"version mismatch", other[v], "", `<Greet><name>Ada</name></Greet>`,
				map[string]int{"soap11": 500, "soap12": 500}, map[string]string{"soap11": "soap:VersionMismatch", "soap12": "soap:VersionMismatch"}, "400", "envelope on a SOAP"},
			{"mustUnderstand header", v, `<s:Token xmlns:s="urn:sec" ` + mu[v] + `>x</s:Token>`, `<Greet><name>Ada</name></Greet>`,
				map[string]int{"soap11": 500, "soap12": 500}, map[string]string{"soap11": "soap:MustUnderstand", "soap12": "env:MustUnderstand"}, "400", "mustUnderstand"},
		}
		for _, tt := range tests {
			t.Run(v+"/"+tt.name, func(t *testing.T) {
				_, body := envelope(tt.envOf, tt.header, tt.body)
				ct, _ := envelope(v, "", "")
				status, gotCT, b, cid := callCID(t, agent.URL("/"+v), ct, body)
				var f struct {
					XMLName xml.Name
					Fault   struct {
						FaultCode   string `xml:"faultcode"`
						FaultString string `xml:"faultstring"`
						Code        string `xml:"http://www.w3.org/2003/05/soap-envelope Code>Value"`
						Reason      string `xml:"http://www.w3.org/2003/05/soap-envelope Reason>Text"`
						Detail      struct {
							Status string `xml:"urn:weft:fault status"`
							CID    string `xml:"urn:weft:fault cid"`
						} `xml:"detail"`
						Detail12 struct {
							Status string `xml:"urn:weft:fault status"`
							CID    string `xml:"urn:weft:fault cid"`
						} `xml:"http://www.w3.org/2003/05/soap-envelope Detail"`
					} `xml:"Body>Fault"`
				}
				if err := xml.Unmarshal(b, &f); err != nil {
					t.Fatalf("not XML (%v): %d %s %s", err, status, gotCT, b)
				}
				code, reason := f.Fault.FaultCode+f.Fault.Code, f.Fault.FaultString+f.Fault.Reason
				detail, detailCID := f.Fault.Detail.Status+f.Fault.Detail12.Status, f.Fault.Detail.CID+f.Fault.Detail12.CID
				if status != tt.status[v] || code != tt.code[v] || !strings.Contains(reason, tt.reason) {
					t.Fatalf("%d %s %q, want %d %s %q\n%s", status, code, reason, tt.status[v], tt.code[v], tt.reason, b)
				}
				if code == "soap:MustUnderstand" {
					return // a header's fault: no detail in SOAP 1.1
				}
				if detail != tt.detail || detailCID != cid || cid == "" {
					t.Fatalf("detail status %q cid %q, want %s and %q\n%s", detail, detailCID, tt.detail, cid, b)
				}
				if tt.name == "service error" {
					if strings.Contains(string(b), "db-7") {
						t.Fatalf("the plain error's text reached the caller:\n%s", b)
					}
					plainCID = cid
				}
			})
		}

		t.Run(v+"/answers in the request's namespace", func(t *testing.T) {
			ct, body := envelope(v, "", `<q:Greet xmlns:q="urn:greet"><q:name>Ada</q:name></q:Greet>`)
			status, _, b, _ := callCID(t, agent.URL("/"+v), ct, body)
			var r struct {
				Resp struct {
					XMLName  xml.Name
					Greeting struct {
						XMLName xml.Name
						Text    string `xml:",chardata"`
					} `xml:",any"`
				} `xml:"Body>GreetResponse"`
			}
			if status != 200 || xml.Unmarshal(b, &r) != nil || r.Resp.XMLName.Space != "urn:greet" ||
				r.Resp.Greeting.XMLName != (xml.Name{Space: "urn:greet", Local: "greeting"}) || r.Resp.Greeting.Text != "Hello, Ada!" {
				t.Fatalf("%d %s, want <GreetResponse> and its <greeting> in urn:greet", status, b)
			}
			ct, body = envelope(v, "", `<q:GetQuote xmlns:q="urn:greet"><q:name>WFT</q:name></q:GetQuote>`)
			status, _, b, _ = callCID(t, agent.URL("/"+v), ct, body)
			var q struct {
				Resp struct {
					XMLName xml.Name
					Price   string `xml:"urn:quotes price"`
				} `xml:"Body>QuoteResult"`
			}
			if status != 200 || xml.Unmarshal(b, &q) != nil || q.Resp.XMLName.Space != "urn:quotes" || q.Resp.Price != "12.5" {
				t.Fatalf("%d %s, want <QuoteResult xmlns=\"urn:quotes\">, the output type's choice", status, b)
			}
		})

		t.Run(v+"/ISO-8859-1 body", func(t *testing.T) {
			ct, body := envelope(v, "", "<Greet><name>Ren\xe9e M\xfcller</name></Greet>")
			body = `<?xml version="1.0" encoding="ISO-8859-1"?>` + body
			status, _, b, _ := callCID(t, agent.URL("/"+v), strings.Replace(ct, "utf-8", "ISO-8859-1", 1), body)
			if status != 200 || !strings.Contains(string(b), "Hello, Renée Müller!") {
				t.Fatalf("%d %s, want the name read as ISO-8859-1", status, b)
			}
		})
	}

	// The operator reads the full text: weftctl invoke, and the failure
	// sample of the channel call.
	r := testenv.Ctl(t, cp, "invoke", "faults.greet", "--data", `{"name":"Ada","fail":"plain"}`, "--agent", agent.ID)
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, "password for weft_app expired") {
		t.Fatalf("weftctl invoke of a failing service: %s; want the full error", r)
	}
	testenv.Await(t, 10*time.Second, "the failure sample of the channel call", func() (bool, string) {
		r := testenv.Ctl(t, cp, "debug", "failures", "faults.greet", "--limit", "50")
		return r.ExitCode == 0 && strings.Contains(r.Stdout, plainCID) && strings.Contains(r.Stdout, "password for weft_app expired"), r.String()
	})
}

// callCID POSTs body with a content type and returns the status, the
// answer's Content-Type, its body and its CID.
func callCID(t *testing.T, url, contentType, body string) (int, string, []byte, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), b, resp.Header.Get("X-Weft-CID")
}
