package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weft-dev/weft/controlplane/store/storetest"
	"github.com/weft-dev/weft/tests/testenv"
)

// TestSecurityAndOutgoing walks security definitions and outgoing
// connections end to end, on two agents and both backends: every inbound
// kind on a channel and every outbound kind on a connection accepts a good
// credential and refuses a bad one; credential and address changes reach
// the agents with no restart; a service calls a plain HTTP server, an HTTPS
// server with a self-signed CA and a SOAP service; path params and query
// become service input; SOAP operations route to services; a channel rate
// limits per client; secrets never come back from reads or logs.
func TestSecurityAndOutgoing(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			e := newEnv(t, b.DSN)
			r := newRemote(t)
			pids := map[string]int{}
			for _, a := range e.agents {
				pids[a.ID] = a.PID()
			}
			relay := filepath.Join(testenv.ModuleRoot(t), "tests", "e2e", "testdata", "relay")
			runSteps(t, []step{
				{"deploy", func(t *testing.T) {
					e.ctlOK(t, "deploy", e.example, relay, "--wait")
					e.ctlOK(t, "channel", "create", "relay", "--path", "/relay", "--service", "relay.call")
					e.sync(t)
				}},
				{"inbound security on channels", func(t *testing.T) { inboundSecurity(t, e, r) }},
				{"outbound security on connections", func(t *testing.T) { outboundSecurity(t, e, r) }},
				{"outgoing address change and params", func(t *testing.T) { outgoingAddress(t, e, r) }},
				{"outgoing TLS with a self-signed CA", func(t *testing.T) { outgoingTLS(t, e, r) }},
				{"outgoing SOAP and SOAP routing", func(t *testing.T) { soapBothWays(t, e, r) }},
				{"rate limit and request errors", func(t *testing.T) { limitsAndErrors(t, e) }},
				{"ping", func(t *testing.T) { ping(t, e, r) }},
				{"bad input changes nothing", func(t *testing.T) { badConnectionInput(t, e) }},
				{"secrets never shown", func(t *testing.T) { secretsHidden(t, e) }},
				{"no restarts", func(t *testing.T) {
					for _, a := range e.agents {
						if a.PID() != pids[a.ID] || !a.Running() {
							t.Errorf("agent %s restarted: pid %d, was %d", a.ID, a.PID(), pids[a.ID])
						}
					}
				}},
			})
		})
	}
}

func inboundSecurity(t *testing.T, e *env, r *remote) {
	hsSecret := strings.Repeat("i", 40)
	defs := [][]string{
		{"in-basic", "--kind", "basic_auth", "--username", basicUser, "--password", basicPassword},
		{"in-apikey", "--kind", "api_key", "--header", apiKeyHeader, "--key", apiKeyValue},
		{"in-jwt-hs", "--kind", "jwt", "--algorithms", "HS256", "--secret", hsSecret, "--issuer", jwtIssuer, "--audience", jwtAudience},
		{"in-jwt-rs", "--kind", "jwt", "--algorithms", "RS256", "--public-key-file", r.rsaPub, "--issuer", jwtIssuer, "--audience", jwtAudience},
		{"in-jwt-es", "--kind", "jwt", "--algorithms", "ES256", "--jwks-url", r.a.URL + "/jwks", "--issuer", jwtIssuer, "--audience", jwtAudience, "--leeway", "5s"},
	}
	for _, d := range defs {
		e.ctlOK(t, append([]string{"security", "create"}, d...)...)
		e.ctlOK(t, "channel", "create", d[0], "--path", "/sec/"+d[0], "--service", exampleService, "--security", d[0])
	}
	e.sync(t)

	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	basic := func(u, p string) http.Header {
		req, _ := http.NewRequest("GET", "/", nil)
		req.SetBasicAuth(u, p)
		return req.Header
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		channel   string
		good, bad http.Header
	}{
		{"in-basic", basic(basicUser, basicPassword), basic(basicUser, "wrong")},
		{"in-apikey", http.Header{apiKeyHeader: {apiKeyValue}}, http.Header{apiKeyHeader: {"wrong"}}},
		{"in-jwt-hs", bearer(signJWT(t, []byte(hsSecret), "", jwtClaims("ada"))), bearer(signJWT(t, []byte(strings.Repeat("x", 40)), "", jwtClaims("ada")))},
		{"in-jwt-rs", bearer(signJWT(t, r.rsaKey, "", jwtClaims("ada"))), bearer(signJWT(t, other, "", jwtClaims("ada")))},
		{"in-jwt-es", bearer(signJWT(t, r.ecKey, jwksKeyID, jwtClaims("ada"))), bearer(signJWT(t, r.ecKey, jwksKeyID, expired(jwtClaims("ada"))))},
	}
	for _, a := range e.agents {
		for _, c := range cases {
			url := a.URL("/sec/" + c.channel)
			if status, _, body := do(t, "POST", url, "application/json", adaInput, c.good); status != 200 {
				t.Errorf("%s %s good credential: %d %s", a.ID, c.channel, status, body)
			}
			for what, h := range map[string]http.Header{"bad": c.bad, "missing": nil} {
				status, hdr, body := do(t, "POST", url, "application/json", adaInput, h)
				if status != http.StatusUnauthorized || hdr.Get("WWW-Authenticate") == "" || !strings.Contains(string(body), `"error"`) {
					t.Errorf("%s %s %s credential: %d WWW-Authenticate %q %s; want 401 with a challenge and an error", a.ID, c.channel, what, status, hdr.Get("WWW-Authenticate"), body)
				}
			}
		}
	}

	// A credential change reaches the agents with no restart.
	e.ctlOK(t, "security", "update", "in-apikey", "--key", "key-secret-2")
	e.sync(t)
	for _, a := range e.agents {
		url := a.URL("/sec/in-apikey")
		if status, _, body := do(t, "POST", url, "application/json", adaInput, http.Header{apiKeyHeader: {apiKeyValue}}); status != 401 {
			t.Errorf("%s: the old API key after the change: %d %s, want 401", a.ID, status, body)
		}
		if status, _, body := do(t, "POST", url, "application/json", adaInput, http.Header{apiKeyHeader: {"key-secret-2"}}); status != 200 {
			t.Errorf("%s: the new API key after the change: %d %s, want 200", a.ID, status, body)
		}
	}
}

func outboundSecurity(t *testing.T, e *env, r *remote) {
	type outbound struct {
		kind     string
		def      []string // security create flags after the name
		bad      []string // security update flags that make it wrong
		good     []string // security update flags that make it right again
		conn     []string // extra outgoing create flags
		errorHas string   // what the agent's log says of the refusal, and the caller is not told
	}
	cases := []outbound{
		{"basic", []string{"--kind", "basic_auth", "--username", basicUser, "--password", basicPassword}, []string{"--password", "wrong"}, []string{"--password", basicPassword}, nil, "401"},
		{"apikey", []string{"--kind", "api_key", "--header", apiKeyHeader, "--key", apiKeyValue}, []string{"--key", "wrong"}, []string{"--key", apiKeyValue}, nil, "401"},
		{"jwt", []string{"--kind", "jwt", "--algorithms", "HS256", "--secret", r.hsKey, "--issuer", "weft", "--audience", "partner"}, []string{"--secret", strings.Repeat("w", 40)}, []string{"--secret", r.hsKey}, nil, "401"},
		{"bearer", []string{"--kind", "bearer", "--token", bearerToken}, []string{"--token", "wrong"}, []string{"--token", bearerToken}, nil, "401"},
		{"oauth2", []string{"--kind", "oauth2_client_credentials", "--token-url", r.a.URL + "/token", "--client-id", oauthClientID, "--client-secret", oauthSecret}, []string{"--client-secret", "wrong"}, []string{"--client-secret", oauthSecret}, nil, "invalid_client"},
		{"tlscert", []string{"--kind", "tls_client_cert", "--cert-file", r.clientCert.Cert, "--key-file", r.clientCert.Key}, []string{"--cert-file", r.otherCert.Cert, "--key-file", r.otherCert.Key}, []string{"--cert-file", r.clientCert.Cert, "--key-file", r.clientCert.Key}, []string{"--ca-file", r.serverCAFile}, "tls:"},
	}
	for _, c := range cases {
		e.ctlOK(t, append([]string{"security", "create", "out-" + c.kind}, c.def...)...)
		addr := r.a.URL
		if c.kind == "tlscert" {
			addr = r.mtls.URL
		}
		e.ctlOK(t, append([]string{"outgoing", "create", "out-" + c.kind, "--address", addr, "--path", "/check/" + c.kind, "--security", "out-" + c.kind}, c.conn...)...)
	}
	e.sync(t)
	a := e.agents[0]
	call := func(conn string) (int, []byte, string) {
		status, hdr, body := do(t, "POST", a.URL("/relay"), "application/json", `{"conn":"`+conn+`"}`, nil)
		return status, body, hdr.Get("X-Weft-CID")
	}
	for _, c := range cases {
		if status, body, _ := call("out-" + c.kind); status != 200 || !strings.Contains(string(body), `"ok":true`) {
			t.Errorf("%s with a good credential: %d %s", c.kind, status, body)
		}
	}
	for _, c := range cases {
		e.ctlOK(t, append([]string{"security", "update", "out-" + c.kind}, c.bad...)...)
	}
	e.sync(t)
	for _, c := range cases {
		// The caller learns which connection failed; the URL and the
		// remote's answer are in the agent's log under the CID.
		conn := "out-" + c.kind
		status, body, cid := call(conn)
		if status != http.StatusBadGateway || !strings.Contains(string(body), "outgoing connection "+conn+" failed") {
			t.Errorf("%s with a bad credential: %d %s; want 502 naming connection %s", c.kind, status, body, conn)
		}
		if hidden := []string{c.errorHas, "/check/", hostOf(r.a.URL), hostOf(r.mtls.URL)}; containsAny(string(body), hidden) {
			t.Errorf("%s with a bad credential: %s; want none of %q shown to the caller", c.kind, body, hidden)
		}
		if line := agentLogLine(t, a, cid, "invocation failed"); !strings.Contains(line, c.errorHas) || !strings.Contains(line, "/check/"+c.kind) {
			t.Errorf("%s with a bad credential: agent log line of cid %s: %q; want it to name %q and the URL", c.kind, cid, line, c.errorHas)
		}
	}
	for _, c := range cases {
		e.ctlOK(t, append([]string{"security", "update", "out-" + c.kind}, c.good...)...)
	}
	e.sync(t)
	for _, c := range cases {
		if status, body, _ := call("out-" + c.kind); status != 200 {
			t.Errorf("%s with the credential restored: %d %s", c.kind, status, body)
		}
	}
}

func outgoingAddress(t *testing.T, e *env, r *remote) {
	e.ctlOK(t, "outgoing", "create", "crm", "--address", r.a.URL, "--path", "/customers/{id}", "--timeout", "5s")
	e.ctlOK(t, "security", "create", "crm-users", "--kind", "basic_auth", "--username", "ada", "--password", "ada-secret")
	e.ctlOK(t, "channel", "create", "customers", "--path", "/api/customers/{id}", "--method", "GET", "--service", "relay.customer", "--security", "crm-users")
	e.sync(t)
	auth := http.Header{}
	auth.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("ada:ada-secret")))
	get := func(a *testenv.Agent, path string) (int, map[string]any, []byte) {
		status, _, body := do(t, "GET", a.URL(path), "", "", auth)
		var out map[string]any
		_ = json.Unmarshal(body, &out)
		return status, out, body
	}
	for _, a := range e.agents {
		status, out, body := get(a, "/api/customers/7?detail=true&tag=vip")
		if status != 200 || out["id"] != 7.0 || out["server"] != "A" || out["detail"] != true || out["tag"] != "vip" || out["caller"] != "ada" {
			t.Errorf("%s: customer 7: %d %s; want id 7 from server A, detail, tag and caller from path, query and credential", a.ID, status, body)
		}
		// Path params win over the query.
		if status, out, body := get(a, "/api/customers/8?id=9"); status != 200 || out["id"] != 8.0 {
			t.Errorf("%s: path param id=8 with query id=9: %d %s; want id 8", a.ID, status, body)
		}
		if status, _, body := get(a, "/api/customers/abc"); status != 400 || !strings.Contains(string(body), "path param id") {
			t.Errorf("%s: customer abc: %d %s; want 400 naming path param id", a.ID, status, body)
		}
		if status, _, body := get(a, "/api/customers/7?detail=maybe"); status != 400 || !strings.Contains(string(body), "query param detail") {
			t.Errorf("%s: detail=maybe: %d %s; want 400 naming query param detail", a.ID, status, body)
		}
	}
	e.ctlOK(t, "outgoing", "update", "crm", "--address", r.b.URL)
	e.sync(t)
	for _, a := range e.agents {
		if status, out, body := get(a, "/api/customers/7"); status != 200 || out["server"] != "B" {
			t.Errorf("%s: after the address change: %d %s; want server B", a.ID, status, body)
		}
	}
	// An inactive connection says so.
	e.ctlOK(t, "outgoing", "update", "crm", "--inactive")
	e.sync(t)
	if status, _, body := get(e.agents[0], "/api/customers/7"); status != 503 || !strings.Contains(string(body), "inactive") {
		t.Errorf("inactive connection: %d %s; want 503 naming it inactive", status, body)
	}
	e.ctlOK(t, "outgoing", "update", "crm", "--active")
	e.sync(t)
}

func outgoingTLS(t *testing.T, e *env, r *remote) {
	e.ctlOK(t, "outgoing", "create", "crm-tls", "--address", r.tls.URL, "--path", "/customers/{id}", "--ca-file", r.serverCAFile)
	e.ctlOK(t, "outgoing", "create", "crm-tls-noca", "--address", r.tls.URL, "--path", "/customers/{id}")
	e.sync(t)
	for _, a := range e.agents {
		status, _, body := do(t, "POST", a.URL("/relay"), "application/json", `{"conn":"crm-tls","params":{"id":"5"}}`, nil)
		if status != 200 || !strings.Contains(string(body), `"server":"TLS"`) {
			t.Errorf("%s: TLS with the CA: %d %s", a.ID, status, body)
		}
		status, hdr, body := do(t, "POST", a.URL("/relay"), "application/json", `{"conn":"crm-tls-noca","params":{"id":"5"}}`, nil)
		if status != http.StatusBadGateway || !strings.Contains(string(body), "crm-tls-noca") || containsAny(string(body), []string{"certificate", hostOf(r.tls.URL)}) {
			t.Errorf("%s: TLS without the CA: %d %s; want 502 naming the connection, not its address or the certificate", a.ID, status, body)
		}
		cid := hdr.Get("X-Weft-CID")
		if line := agentLogLine(t, a, cid, "invocation failed"); !strings.Contains(line, "certificate") {
			t.Errorf("%s: TLS without the CA: agent log line of cid %s: %q; want it to name the certificate", a.ID, cid, line)
		}
	}
}

func soapBothWays(t *testing.T, e *env, r *remote) {
	e.ctlOK(t, "outgoing", "create", "quotes", "--address", r.a.URL, "--path", "/soap", "--method", "POST", "--format", "soap11", "--soap-action", quotesAction)
	e.ctlOK(t, "channel", "create", "quote", "--path", "/api/quote", "--service", "relay.quote")
	e.ctlOK(t, "channel", "create", "soap-multi", "--path", "/soap/multi", "--format", "soap11",
		"--soap-action", "Greet="+exampleService, "--soap-action", "GetQuote=relay.quote")
	e.sync(t)
	a := e.agents[1]
	status, _, body := do(t, "POST", a.URL("/api/quote"), "application/json", `{"symbol":"WFT"}`, nil)
	var q struct{ Price float64 }
	if status != 200 || json.Unmarshal(body, &q) != nil || q.Price != quotePrice {
		t.Errorf("SOAP outbound: %d %s; want price %g", status, body, quotePrice)
	}
	status, _, body = do(t, "POST", a.URL("/api/quote"), "application/json", `{"symbol":"NOPE"}`, nil)
	if status != http.StatusBadGateway || !strings.Contains(string(body), "unknown symbol NOPE") || !strings.Contains(string(body), "SOAP fault") {
		t.Errorf("SOAP outbound fault: %d %s; want 502 with the fault's reason", status, body)
	}

	envelope := func(op string) string {
		return `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>` + op + `</soap:Body></soap:Envelope>`
	}
	var resp struct {
		Body struct {
			Op struct {
				XMLName  xml.Name
				Greeting string  `xml:"greeting"`
				Price    float64 `xml:"price"`
			} `xml:",any"`
		} `xml:"Body"`
	}
	status, hdr, body := do(t, "POST", a.URL("/soap/multi"), "text/xml; charset=utf-8", envelope(`<GetQuote><symbol>WFT</symbol></GetQuote>`), http.Header{"SOAPAction": {`"urn:quotes#GetQuote"`}})
	if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/xml") || xml.Unmarshal(body, &resp) != nil || resp.Body.Op.XMLName.Local != "GetQuoteResponse" || resp.Body.Op.Price != quotePrice {
		t.Errorf("SOAP routing to relay.quote: %d %s", status, body)
	}
	status, _, body = do(t, "POST", a.URL("/soap/multi"), "text/xml; charset=utf-8", envelope(`<Greet><name>Ada</name></Greet>`), http.Header{"SOAPAction": {`"Greet"`}})
	if status != 200 || xml.Unmarshal(body, &resp) != nil || resp.Body.Op.XMLName.Local != "GreetResponse" || resp.Body.Op.Greeting != "Hello, Ada!" {
		t.Errorf("SOAP routing to hello.greet: %d %s", status, body)
	}
	status, _, body = do(t, "POST", a.URL("/soap/multi"), "text/xml; charset=utf-8", envelope(`<Other/>`), http.Header{"SOAPAction": {`"Other"`}})
	var fault struct {
		Body struct {
			Fault struct {
				Code   string `xml:"faultcode"`
				String string `xml:"faultstring"`
			} `xml:"Fault"`
		} `xml:"Body"`
	}
	// SOAP 1.1 sends every Fault with 500 (SOAP 1.1 section 6.2, WS-I BP R1126).
	if status != 500 || xml.Unmarshal(body, &fault) != nil || !strings.Contains(fault.Body.Fault.String, `"Other"`) || !strings.HasSuffix(fault.Body.Fault.Code, "Client") {
		t.Errorf("SOAP operation with no route: %d %s; want a 500 Client fault naming it", status, body)
	}
}

func limitsAndErrors(t *testing.T, e *env) {
	e.ctlOK(t, "channel", "create", "limited", "--path", "/limited", "--service", exampleService, "--rate-limit", "0.2", "--rate-burst", "2")
	e.ctlOK(t, "channel", "create", "small", "--path", "/small", "--service", exampleService, "--max-body", "64")
	e.sync(t)
	url := e.agents[0].URL("/limited")
	for i := 1; i <= 2; i++ {
		if status, _, body := do(t, "POST", url, "application/json", adaInput, nil); status != 200 {
			t.Fatalf("request %d within the burst: %d %s", i, status, body)
		}
	}
	status, hdr, body := do(t, "POST", url, "application/json", adaInput, nil)
	if retry, _ := strconv.Atoi(hdr.Get("Retry-After")); status != http.StatusTooManyRequests || retry < 1 || !strings.Contains(string(body), "limited") {
		t.Errorf("request over the limit: %d Retry-After %q %s; want 429 with Retry-After naming the channel", status, hdr.Get("Retry-After"), body)
	}
	// The other agent keeps its own count.
	if status, _, body := do(t, "POST", e.agents[1].URL("/limited"), "application/json", adaInput, nil); status != 200 {
		t.Errorf("the other agent: %d %s", status, body)
	}

	small := e.agents[1].URL("/small")
	for _, c := range []struct {
		what, ct, body string
		status         int
		has            string
	}{
		{"malformed JSON", "application/json", `{"name":`, 400, "malformed JSON"},
		{"wrong content type", "text/plain", adaInput, 415, "application/json"},
		{"oversized body", "application/json", `{"name":"` + strings.Repeat("a", 100) + `"}`, 413, "64"},
	} {
		status, _, body := do(t, "POST", small, c.ct, c.body, nil)
		if status != c.status || !strings.Contains(string(body), c.has) {
			t.Errorf("%s: %d %s; want %d naming %q", c.what, status, body, c.status, c.has)
		}
	}
}

func ping(t *testing.T, e *env, r *remote) {
	res := e.ctlOK(t, "outgoing", "ping", "crm", "--agent", "agent-2")
	if !strings.Contains(res.Stdout, "agent-2") || !strings.Contains(res.Stdout, r.b.URL) {
		t.Errorf("ping: %s; want the agent and the address", res)
	}
	e.ctlOK(t, "outgoing", "create", "down", "--address", "http://"+testenv.ClosedAddr(t))
	e.sync(t)
	if res := testenv.Ctl(t, e.cp, "outgoing", "ping", "down"); res.ExitCode == 0 || !strings.Contains(res.Stdout+res.Stderr, "refused") {
		t.Errorf("ping of a closed address: %s; want a failure saying the connection was refused", res)
	}
	if res := testenv.Ctl(t, e.cp, "outgoing", "ping", "nope"); res.ExitCode == 0 || !strings.Contains(res.Stderr, "nope") {
		t.Errorf("ping of an unknown connection: %s; want a failure naming it", res)
	}
}

func badConnectionInput(t *testing.T, e *env) {
	rev := e.cp.DesiredRevision(t)
	for _, c := range []struct {
		args []string
		has  string
	}{
		{[]string{"security", "create", "short", "--kind", "jwt", "--algorithms", "HS256", "--secret", "short", "--issuer", "x"}, "secret"},
		{[]string{"security", "create", "nokind", "--username", "u"}, "kind"},
		{[]string{"security", "create", "in-basic", "--kind", "bearer", "--token", "t"}, "in-basic"},
		{[]string{"security", "delete", "in-basic"}, "in-basic"},
		{[]string{"security", "update", "in-basic", "--kind", "bearer", "--token", "t"}, "in-basic"},
		{[]string{"outgoing", "create", "bad-addr", "--address", "ftp://x"}, "address"},
		{[]string{"outgoing", "create", "bad-sec", "--address", "http://x", "--security", "missing"}, "missing"},
		{[]string{"outgoing", "create", "bad-dir", "--address", "http://x", "--security", "in-jwt-rs"}, `security definition "in-jwt-rs" is a jwt definition without an HS256 secret, which cannot supply outbound credentials`},
		{[]string{"channel", "create", "bad-sec", "--path", "/bad-sec", "--service", exampleService, "--security", "out-bearer"}, `security definition "out-bearer" is bearer, which cannot verify inbound requests`},
		{[]string{"channel", "create", "bad-sec2", "--path", "/bad-sec2", "--service", exampleService, "--security", "missing"}, "missing"},
		{[]string{"channel", "create", "bad-rate", "--path", "/bad-rate", "--service", exampleService, "--rate-limit", "-1"}, "rate-limit"},
		{[]string{"channel", "create", "bad-soap", "--path", "/bad-soap", "--format", "soap11", "--soap-action", "X=no.such.service"}, "no.such.service"},
	} {
		res := testenv.Ctl(t, e.cp, c.args...)
		if res.ExitCode == 0 || !strings.Contains(res.Stderr, c.has) {
			t.Errorf("weftctl %s: %s; want a refusal naming %q", strings.Join(c.args, " "), res, c.has)
		}
	}
	if got := e.cp.DesiredRevision(t); got != rev {
		t.Errorf("bad input moved the revision from %d to %d", rev, got)
	}
}

func secretsHidden(t *testing.T, e *env) {
	secrets := []string{basicPassword, apiKeyValue, bearerToken, oauthSecret, "key-secret-2", "ada-secret", strings.Repeat("i", 40)}
	var shown []string
	for _, args := range [][]string{
		{"security", "list"}, {"security", "list", "-o", "json"}, {"security", "list", "-o", "yaml"},
		{"security", "get", "in-basic", "-o", "json"}, {"security", "get", "out-oauth2", "-o", "yaml"}, {"security", "get", "out-tlscert"},
	} {
		res := e.ctlOK(t, args...)
		shown = append(shown, res.Stdout)
	}
	logs, err := os.ReadFile(e.cp.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	shown = append(shown, string(logs))
	for _, out := range shown {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("secret %q is shown:\n%s", s, clip(out))
			}
		}
	}
	if !strings.Contains(shown[3], "••••••••") {
		t.Errorf("security get -o json does not show a set password as redacted:\n%s", shown[3])
	}
}

// ctlOK runs weftctl and fails the test unless it exits 0.
func (e *env) ctlOK(t *testing.T, args ...string) testenv.Result {
	t.Helper()
	res := testenv.Ctl(t, e.cp, args...)
	if res.ExitCode != 0 {
		t.Fatalf("weftctl %s: %s", strings.Join(args, " "), res)
	}
	return res
}

// sync waits until every agent applied the current revision.
func (e *env) sync(t *testing.T) {
	t.Helper()
	testenv.AwaitAgentsSynced(t, e.cp, e.cp.DesiredRevision(t), time.Minute, e.ids()...)
}

// do sends one request and returns the status, headers and body.
func do(t *testing.T, method, url, contentType, body string, h http.Header) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = bytes.NewBufferString(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// agentLogLine returns the line of a's log that carries cid and msg,
// waiting for it: a worker's records reach the agent's log in batches,
// just after the answer.
func agentLogLine(t *testing.T, a *testenv.Agent, cid, msg string) string {
	t.Helper()
	if cid == "" {
		t.Errorf("%s: the answer has no CID to look up in the log", a.ID)
		return ""
	}
	var found string
	testenv.Await(t, time.Minute, fmt.Sprintf("a line of %s's log carrying cid %s and %q", a.ID, cid, msg), func() (bool, string) {
		data, err := os.ReadFile(a.LogPath())
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(data)) {
			if strings.Contains(line, cid) && strings.Contains(line, msg) {
				found = line
				return true, ""
			}
		}
		return false, "none yet in " + a.LogPath()
	})
	return found
}

// hostOf returns the host:port of an httptest server's URL.
func hostOf(serverURL string) string {
	_, host, _ := strings.Cut(serverURL, "://")
	return host
}

// containsAny reports whether s contains any of subs.
func containsAny(s string, subs []string) bool {
	return slices.ContainsFunc(subs, func(sub string) bool { return strings.Contains(s, sub) })
}

func expired(c map[string]any) map[string]any {
	c["exp"] = time.Now().Add(-time.Hour).Unix()
	return c
}

func clip(s string) string {
	if len(s) > 2000 {
		return s[:2000] + "…"
	}
	return s
}
