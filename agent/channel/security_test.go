package channel

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/weft-dev/weft/agent/sdk"
	"github.com/weft-dev/weft/agent/security"
	"github.com/weft-dev/weft/agent/shared/secdef"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// recorder is an Invoker that answers with the service it ran and who the
// request came from, and keeps the last call's input. It knows the input
// types in types, so that params and XML text are typed.
type recorder struct {
	types map[string]reflect.Type

	mu        sync.Mutex
	lastReq   sdk.Request
	lastInput []byte
}

func (rc *recorder) Call(_ context.Context, service string, req sdk.Request, input []byte, _ time.Duration, _ Late) (Outcome, bool) {
	rc.mu.Lock()
	rc.lastReq, rc.lastInput = req, append([]byte(nil), input...)
	rc.mu.Unlock()
	iss, _ := req.Principal.Claims["iss"].(string)
	out, err := json.Marshal(map[string]any{
		"service":  service,
		"security": req.Principal.Security,
		"subject":  req.Principal.Subject,
		"iss":      iss,
	})
	if err != nil {
		return Outcome{CID: req.CID, Status: http.StatusInternalServerError, Error: err.Error()}, true
	}
	return Outcome{CID: req.CID, Status: http.StatusOK, Output: out}, true
}

func (rc *recorder) InputType(service string) reflect.Type { return rc.types[service] }

// last returns the last call's request and input.
func (rc *recorder) last() (sdk.Request, string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.lastReq, string(rc.lastInput)
}

// newTestHandler serves router with inv.
func newTestHandler(router *Router, inv Invoker) *Handler {
	return &Handler{
		Current:      func() (*Router, Invoker) { return router, inv },
		MaxBodyBytes: 1 << 20,
		NewCID:       func() string { return "cid-test" },
		Log:          slog.New(slog.DiscardHandler),
	}
}

// wireRequest is a request body in one channel format.
type wireRequest struct {
	contentType string
	body        string
	header      map[string]string
}

// requestIn returns a request for operation op (SOAP) in format f.
func requestIn(f, op string) wireRequest {
	switch f {
	case "xml":
		return wireRequest{contentType: "application/xml", body: "<req><n>1</n></req>"}
	case "soap11":
		return wireRequest{
			contentType: "text/xml; charset=utf-8",
			body:        `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><` + op + `><n>1</n></` + op + `></soap:Body></soap:Envelope>`,
			header:      map[string]string{"SOAPAction": `"` + op + `"`},
		}
	case "soap12":
		return wireRequest{
			contentType: `application/soap+xml; charset=utf-8; action="` + op + `"`,
			body:        `<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body><` + op + `><n>1</n></` + op + `></env:Body></env:Envelope>`,
		}
	}
	return wireRequest{contentType: "application/json", body: `{"n":1}`}
}

// reply is what recorder answers, as a client reads it in any format.
type reply struct {
	Service  string `json:"service" xml:"service"`
	Security string `json:"security" xml:"security"`
	Subject  string `json:"subject" xml:"subject"`
	Issuer   string `json:"iss" xml:"iss"`
}

// readReply parses a successful answer in format f; for SOAP it also
// returns the name of the Body's element.
func readReply(t *testing.T, f string, body []byte) (reply, string) {
	t.Helper()
	var r reply
	switch f {
	case "xml":
		var x struct {
			XMLName xml.Name
			reply
		}
		if err := xml.Unmarshal(body, &x); err != nil || x.XMLName.Local != "response" {
			t.Fatalf("xml answer %s: %v", body, err)
		}
		return x.reply, x.XMLName.Local
	case "soap11", "soap12":
		var env struct {
			Body struct {
				Resp struct {
					XMLName xml.Name
					reply
				} `xml:",any"`
			} `xml:"Body"`
		}
		if err := xml.Unmarshal(body, &env); err != nil {
			t.Fatalf("soap answer %s: %v", body, err)
		}
		return env.Body.Resp.reply, env.Body.Resp.XMLName.Local
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("json answer %s: %v", body, err)
	}
	return r, ""
}

// wireError is an error answer as a client reads it in any format.
type wireError struct {
	Code    string // SOAP fault code; "" otherwise
	Message string
	CID     string
}

// readError parses an error answer in format f and checks its
// Content-Type.
func readError(t *testing.T, f string, resp *http.Response, body []byte) wireError {
	t.Helper()
	ct := resp.Header.Get("Content-Type")
	switch f {
	case "xml":
		var x struct {
			XMLName xml.Name
			Message string `xml:"message"`
			CID     string `xml:"cid"`
		}
		if err := xml.Unmarshal(body, &x); err != nil || x.XMLName.Local != "error" || !strings.HasPrefix(ct, "application/xml") {
			t.Fatalf("xml error (%s) %s: %v", ct, body, err)
		}
		return wireError{Message: x.Message, CID: x.CID}
	case "soap11":
		var env struct {
			XMLName xml.Name
			Fault   struct {
				Code   string `xml:"faultcode"`
				String string `xml:"faultstring"`
				CID    string `xml:"detail>cid"`
			} `xml:"Body>Fault"`
		}
		if err := xml.Unmarshal(body, &env); err != nil || env.XMLName.Space != "http://schemas.xmlsoap.org/soap/envelope/" || !strings.HasPrefix(ct, "text/xml") {
			t.Fatalf("soap 1.1 fault (%s) %s: %v", ct, body, err)
		}
		return wireError{Code: env.Fault.Code, Message: env.Fault.String, CID: env.Fault.CID}
	case "soap12":
		var env struct {
			XMLName xml.Name
			Fault   struct {
				Code string `xml:"Code>Value"`
				Text string `xml:"Reason>Text"`
				CID  string `xml:"Detail>cid"`
			} `xml:"Body>Fault"`
		}
		if err := xml.Unmarshal(body, &env); err != nil || env.XMLName.Space != "http://www.w3.org/2003/05/soap-envelope" || !strings.HasPrefix(ct, "application/soap+xml") {
			t.Fatalf("soap 1.2 fault (%s) %s: %v", ct, body, err)
		}
		return wireError{Code: env.Fault.Code, Message: env.Fault.Text, CID: env.Fault.CID}
	}
	var e struct {
		Error string `json:"error"`
		CID   string `json:"cid"`
	}
	if err := json.Unmarshal(body, &e); err != nil || ct != "application/json" {
		t.Fatalf("json error (%s) %s: %v", ct, body, err)
	}
	return wireError{Message: e.Error, CID: e.CID}
}

// clientFaultCode is the fault code of a client error in format f.
func clientFaultCode(f string) string {
	switch f {
	case "soap11":
		return "soap:Client"
	case "soap12":
		return "env:Sender"
	}
	return ""
}

// send makes one request in format f (op for SOAP) with extra headers.
func send(t *testing.T, url, f, op string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	w := requestIn(f, op)
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(w.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", w.contentType)
	for k, v := range w.header {
		req.Header.Set(k, v)
	}
	for k, v := range header {
		req.Header.Set(k, v)
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

// Credentials of the security definitions below.
const (
	testJWTSecret = "0123456789abcdef0123456789abcdef-channel"
	testIssuer    = "https://issuer.test"
)

// signHS256 signs claims as an HS256 JWT with secret.
func signHS256(t *testing.T, secret string, claims map[string]any) string {
	t.Helper()
	enc := base64.RawURLEncoding
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signed := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(payload)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(signed))
	return signed + "." + enc.EncodeToString(mac.Sum(nil))
}

// testVerifiers builds real verifiers for a basic_auth, an api_key with its
// own header and an HS256 jwt definition.
func testVerifiers(t *testing.T) map[string]security.Verifier {
	t.Helper()
	defs := []secdef.Definition{
		{Name: "basic", Kind: secdef.KindBasicAuth, Username: "ada", Password: "s3cret pass"},
		{Name: "key", Kind: secdef.KindAPIKey, Header: "X-Partner-Key", Key: "k-123456"},
		{Name: "token", Kind: secdef.KindJWT, Algorithms: []string{secdef.HS256}, Secret: testJWTSecret, Issuer: testIssuer, Audience: "weft"},
	}
	out := map[string]security.Verifier{}
	for _, d := range defs {
		v, err := security.NewVerifier(d)
		if err != nil {
			t.Fatalf("verifier %s: %v", d.Name, err)
		}
		out[d.Name] = v
	}
	return out
}

func TestHandlerSecurity(t *testing.T) {
	now := time.Now()
	tokenClaims := map[string]any{"iss": testIssuer, "aud": "weft", "sub": "partner-1", "iat": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix()}
	goodJWT := signHS256(t, testJWTSecret, tokenClaims)
	otherJWT := signHS256(t, strings.Repeat("x", 40), tokenClaims)
	basic := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}

	kinds := []struct {
		security  string
		good      map[string]string
		wrong     map[string]string
		subject   string
		issuer    string
		challenge string // prefix of WWW-Authenticate when missing
		wrongMsg  string
	}{
		{"basic", map[string]string{"Authorization": basic("ada", "s3cret pass")}, map[string]string{"Authorization": basic("ada", "nope")}, "ada", "", `Basic realm="weft"`, "invalid user name or password"},
		{"key", map[string]string{"X-Partner-Key": "k-123456"}, map[string]string{"X-Partner-Key": "k-654321"}, "", "", `APIKey header="X-Partner-Key"`, "invalid API key"},
		{"token", map[string]string{"Authorization": "Bearer " + goodJWT}, map[string]string{"Authorization": "Bearer " + otherJWT}, "partner-1", testIssuer, `Bearer realm="weft"`, "token signature is invalid"},
	}
	formats := []string{"json", "xml", "soap11", "soap12"}

	var chans []*adminv1.Channel
	for _, k := range kinds {
		for _, f := range formats {
			chans = append(chans, &adminv1.Channel{Name: k.security + "-" + f, Path: "/" + k.security + "/" + f, Methods: []string{"POST"}, Service: "svc", Active: proto.Bool(true), DataFormat: f, Security: k.security})
		}
	}
	chans = append(chans, &adminv1.Channel{Name: "open", Path: "/open", Methods: []string{"POST"}, Service: "svc", Active: proto.Bool(true)})
	router, err := NewRouter(chans, testVerifiers(t))
	if err != nil {
		t.Fatal(err)
	}
	inv := &recorder{}
	srv := httptest.NewServer(newTestHandler(router, inv))
	defer srv.Close()

	for _, k := range kinds {
		for _, f := range formats {
			url := srv.URL + "/" + k.security + "/" + f
			t.Run(k.security+"/"+f+"/good", func(t *testing.T) {
				resp, body := send(t, url, f, "Op", k.good)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d %s, want 200", resp.StatusCode, body)
				}
				got, elem := readReply(t, f, body)
				want := reply{Service: "svc", Security: k.security, Subject: k.subject, Issuer: k.issuer}
				if got != want {
					t.Fatalf("the service saw %+v, want %+v", got, want)
				}
				if strings.HasPrefix(f, "soap") && elem != "OpResponse" {
					t.Fatalf("SOAP answer element %q, want OpResponse", elem)
				}
				if req, _ := inv.last(); req.Principal.Security != k.security || req.Principal.Subject != k.subject {
					t.Fatalf("Principal = %+v", req.Principal)
				}
			})
			t.Run(k.security+"/"+f+"/missing", func(t *testing.T) {
				resp, body := send(t, url, f, "Op", nil)
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("status %d %s, want 401", resp.StatusCode, body)
				}
				if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, k.challenge) {
					t.Fatalf("WWW-Authenticate = %q, want it to start with %q", got, k.challenge)
				}
				e := readError(t, f, resp, body)
				if e.Code != clientFaultCode(f) || !strings.Contains(e.Message, "required") || e.CID != "cid-test" {
					t.Fatalf("error = %+v, want code %q, a message saying what is required and the cid", e, clientFaultCode(f))
				}
			})
			t.Run(k.security+"/"+f+"/wrong", func(t *testing.T) {
				resp, body := send(t, url, f, "Op", k.wrong)
				if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
					t.Fatalf("status %d (WWW-Authenticate %q) %s, want 401 with a challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
				}
				e := readError(t, f, resp, body)
				if e.Code != clientFaultCode(f) || !strings.Contains(e.Message, k.wrongMsg) {
					t.Fatalf("error = %+v, want code %q and %q", e, clientFaultCode(f), k.wrongMsg)
				}
				if k.security == "token" && !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
					t.Fatalf("WWW-Authenticate = %q, want an invalid_token error", resp.Header.Get("WWW-Authenticate"))
				}
			})
		}
	}

	t.Run("credentials of another definition", func(t *testing.T) {
		resp, body := send(t, srv.URL+"/key/json", "json", "", kinds[0].good)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("basic credentials on an api_key channel = %d %s, want 401", resp.StatusCode, body)
		}
	})
	t.Run("no security", func(t *testing.T) {
		resp, body := send(t, srv.URL+"/open", "json", "", nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("WWW-Authenticate") != "" {
			t.Fatalf("open channel = %d %s", resp.StatusCode, body)
		}
		if got, _ := readReply(t, "json", body); got.Security != "" || got.Subject != "" {
			t.Fatalf("open channel principal = %+v, want none", got)
		}
	})
}

func TestNewRouterSecurity(t *testing.T) {
	verifiers := testVerifiers(t)
	tests := []struct {
		name    string
		channel *adminv1.Channel
		err     string
	}{
		{"known", &adminv1.Channel{Name: "a", Path: "/a", Methods: []string{"POST"}, Service: "s", Active: proto.Bool(true), Security: "basic"}, ""},
		{"missing", &adminv1.Channel{Name: "a", Path: "/a", Methods: []string{"POST"}, Service: "s", Active: proto.Bool(true), Security: "partner"}, `channel a: security definition "partner" is not in the snapshot`},
		{"missing but inactive", &adminv1.Channel{Name: "a", Path: "/a", Methods: []string{"POST"}, Service: "s", Security: "partner"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewRouter([]*adminv1.Channel{tt.channel}, verifiers)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("NewRouter = %v, want nil", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("NewRouter = %v, want an error containing %q", err, tt.err)
			}
		})
	}
}
