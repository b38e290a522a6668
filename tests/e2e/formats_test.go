package e2e

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
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
			testenv.AwaitAgentsSynced(t, e.cp, e.cp.DesiredRevision(t), 10*time.Second, e.ids()...)
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
