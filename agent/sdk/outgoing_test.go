package sdk_test

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weft-dev/weft/agent/outgoing"
	"github.com/weft-dev/weft/agent/sdk"
)

// connServices offers outgoing connections by name, and nothing else.
type connServices struct {
	conns map[string]sdk.OutgoingConn
}

func (s connServices) Invoke(context.Context, string, []byte) ([]byte, error) {
	return nil, sdk.Errorf(http.StatusNotImplemented, "no services in this test")
}

func (s connServices) InvokeAsync(string, []byte) (string, error) {
	return "", sdk.Errorf(http.StatusNotImplemented, "no services in this test")
}

func (s connServices) Go(func(context.Context)) error {
	return sdk.Errorf(http.StatusNotImplemented, "no goroutines in this test")
}

func (s connServices) Cache() *sdk.Cache { return nil }

func (s connServices) Outgoing(name string) (sdk.OutgoingConn, error) {
	if c := s.conns[name]; c != nil {
		return c, nil
	}
	return nil, sdk.Errorf(http.StatusInternalServerError, "outgoing connection %q does not exist on this agent", name)
}

// handle returns ctx.Outgoing(cfg.Name) for a real connection built from
// cfg, in a Context whose call has ctx.
func handle(t *testing.T, ctx context.Context, cfg outgoing.Config) *sdk.Outgoing {
	t.Helper()
	c, err := outgoing.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	svcs := connServices{conns: map[string]sdk.OutgoingConn{cfg.Name: c.ForService()}}
	return sdk.NewContext(ctx, sdk.Request{Services: svcs}).Outgoing(cfg.Name)
}

// server serves h and counts the requests it gets.
func server(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

type customer struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name"`
}

func TestOutgoingJSON(t *testing.T) {
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		var in customer
		if r.Method != http.MethodPut || r.URL.Path != "/api/customers/42" || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type"), http.StatusTeapot)
			return
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(customer{ID: strings.TrimPrefix(r.URL.Path, "/api/customers/"), Name: in.Name + "!"})
	})
	o := handle(t, context.Background(), outgoing.Config{Name: "crm", Address: srv.URL + "/api", PathTemplate: "/customers/{id}", Method: "PUT"})
	if o.Name() != "crm" {
		t.Fatalf("Name = %q", o.Name())
	}
	var out customer
	if err := o.JSON(map[string]string{"id": "42"}, customer{Name: "Ada"}, &out); err != nil {
		t.Fatal(err)
	}
	if out != (customer{ID: "42", Name: "Ada!"}) {
		t.Fatalf("answer = %+v", out)
	}
	// The answer may be ignored.
	if err := o.JSON(map[string]string{"id": "42"}, customer{Name: "Ada"}, nil); err != nil {
		t.Fatal(err)
	}
	// A missing path param is the service's own mistake, named.
	err := o.JSON(nil, customer{Name: "Ada"}, &out)
	var oe *sdk.OutgoingError
	if err == nil || errors.As(err, &oe) || !strings.Contains(err.Error(), `path param "id" is missing`) {
		t.Fatalf("JSON without the path param = %v, want an error naming the param", err)
	}
}

func TestOutgoingJSONEmptyAndBadAnswers(t *testing.T) {
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > 0 {
			http.Error(w, "want no body", http.StatusBadRequest)
			return
		}
		switch r.URL.Path {
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/bad":
			_, _ = io.WriteString(w, "not json")
		}
	})
	var out customer
	if err := handle(t, context.Background(), outgoing.Config{Name: "e", Address: srv.URL + "/empty"}).JSON(nil, nil, &out); err != nil || out != (customer{}) {
		t.Fatalf("empty answer = %v, %+v; want nil and out untouched", err, out)
	}
	err := handle(t, context.Background(), outgoing.Config{Name: "b", Address: srv.URL + "/bad"}).JSON(nil, nil, &out)
	if err == nil || !strings.Contains(err.Error(), `outgoing "b": decode the JSON answer`) {
		t.Fatalf("bad answer = %v", err)
	}
}

type price struct {
	XMLName xml.Name `xml:"price"`
	Item    string   `xml:"item,attr"`
	Amount  float64  `xml:"amount"`
}

func TestOutgoingXML(t *testing.T) {
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		var in price
		if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/xml") || !strings.Contains(r.Header.Get("Accept"), "xml") {
			http.Error(w, "content type "+r.Header.Get("Content-Type"), http.StatusUnsupportedMediaType)
			return
		}
		if err := xml.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		in.Amount *= 2
		w.Header().Set("Content-Type", "application/xml")
		_ = xml.NewEncoder(w).Encode(in)
	})
	o := handle(t, context.Background(), outgoing.Config{Name: "prices", Address: srv.URL, Method: "POST", Format: "xml"})
	var out price
	if err := o.XML(nil, price{Item: "tea", Amount: 1.25}, &out); err != nil {
		t.Fatal(err)
	}
	if out.Item != "tea" || out.Amount != 2.5 {
		t.Fatalf("answer = %+v", out)
	}
}

// getPrice is a SOAP operation in namespace urn:shop.
type getPrice struct {
	XMLName xml.Name `xml:"urn:shop GetPrice"`
	Item    string   `xml:"Item"`
}

type getPriceResponse struct {
	XMLName xml.Name `xml:"urn:shop GetPriceResponse"`
	Price   float64  `xml:"Price"`
}

// soapEnvelope reads a request envelope.
type soapEnvelope struct {
	XMLName xml.Name
	Body    struct {
		Op getPrice `xml:"urn:shop GetPrice"`
	} `xml:"Body"`
}

// soapServer answers GetPrice in SOAP version ns (its envelope namespace),
// checking the Content-Type and action a connection of that version sends.
// An item "bad" gets a fault in the shape of faultVersion.
func soapServer(t *testing.T, ns, faultVersion string, faultStatus int) *httptest.Server {
	t.Helper()
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		ct := r.Header.Get("Content-Type")
		var ok bool
		switch ns {
		case "http://schemas.xmlsoap.org/soap/envelope/":
			ok = strings.HasPrefix(ct, "text/xml") && r.Header.Get("SOAPAction") == `"urn:shop#GetPrice"`
		default:
			ok = strings.HasPrefix(ct, "application/soap+xml") && strings.Contains(ct, `action="urn:shop#GetPrice"`)
		}
		if !ok {
			http.Error(w, "content type "+ct+", SOAPAction "+r.Header.Get("SOAPAction"), http.StatusUnsupportedMediaType)
			return
		}
		var env soapEnvelope
		if err := xml.NewDecoder(r.Body).Decode(&env); err != nil || env.XMLName.Space != ns || env.XMLName.Local != "Envelope" {
			http.Error(w, "not an envelope", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", strings.SplitN(ct, ";", 2)[0])
		if env.Body.Op.Item == "bad" {
			w.WriteHeader(faultStatus)
			if faultVersion == "soap12" {
				_, _ = io.WriteString(w, `<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body><env:Fault><env:Code><env:Value>env:Sender</env:Value></env:Code><env:Reason><env:Text xml:lang="en">unknown item bad</env:Text></env:Reason></env:Fault></env:Body></env:Envelope>`)
			} else {
				_, _ = io.WriteString(w, `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault><faultcode>soap:Client</faultcode><faultstring>unknown item bad</faultstring></soap:Fault></soap:Body></soap:Envelope>`)
			}
			return
		}
		_, _ = io.WriteString(w, `<?xml version="1.0"?><s:Envelope xmlns:s="`+ns+`"><s:Header><h:Trace xmlns:h="urn:trace">t-1</h:Trace></s:Header><s:Body><m:GetPriceResponse xmlns:m="urn:shop"><m:Price>1.5</m:Price></m:GetPriceResponse></s:Body></s:Envelope>`)
	})
	return srv
}

func TestOutgoingSOAP(t *testing.T) {
	versions := []struct {
		format, ns string
	}{
		{"soap11", "http://schemas.xmlsoap.org/soap/envelope/"},
		{"soap12", "http://www.w3.org/2003/05/soap-envelope"},
	}
	for _, v := range versions {
		t.Run(v.format, func(t *testing.T) {
			srv := soapServer(t, v.ns, v.format, http.StatusInternalServerError)
			o := handle(t, context.Background(), outgoing.Config{Name: "shop", Address: srv.URL, Method: "POST", Format: v.format, SOAPAction: "urn:shop#GetPrice"})

			var out getPriceResponse
			if err := o.SOAP(nil, getPrice{Item: "tea"}, &out); err != nil {
				t.Fatal(err)
			}
			if out.Price != 1.5 {
				t.Fatalf("answer = %+v", out)
			}
			if err := o.SOAP(nil, getPrice{Item: "tea"}, nil); err != nil {
				t.Fatalf("answer ignored: %v", err)
			}

			err := o.SOAP(nil, getPrice{Item: "bad"}, &out)
			var fault *sdk.SOAPFault
			if !errors.As(err, &fault) {
				t.Fatalf("fault = %T %v, want a *sdk.SOAPFault", err, err)
			}
			wantCode := map[string]string{"soap11": "soap:Client", "soap12": "env:Sender"}[v.format]
			if fault.Code != wantCode || fault.Reason != "unknown item bad" || fault.Status != http.StatusInternalServerError || fault.Connection != "shop" {
				t.Fatalf("fault = %+v, want code %s, the reason, status 500 and the connection", fault, wantCode)
			}
			if fault.HTTPStatus() != http.StatusBadGateway || !strings.Contains(fault.Error(), `outgoing "shop": SOAP fault `+wantCode+": unknown item bad") {
				t.Fatalf("fault %q answers %d", fault.Error(), fault.HTTPStatus())
			}
		})
	}

	t.Run("fault with a 200", func(t *testing.T) {
		srv := soapServer(t, versions[0].ns, "soap11", http.StatusOK)
		o := handle(t, context.Background(), outgoing.Config{Name: "shop", Address: srv.URL, Method: "POST", Format: "soap11", SOAPAction: "urn:shop#GetPrice"})
		var fault *sdk.SOAPFault
		if err := o.SOAP(nil, getPrice{Item: "bad"}, nil); !errors.As(err, &fault) || fault.Status != http.StatusOK {
			t.Fatalf("fault with a 200 = %v, want a *sdk.SOAPFault", err)
		}
	})
	t.Run("answer of the other version", func(t *testing.T) {
		srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, `<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body><GetPriceResponse/></env:Body></env:Envelope>`)
		})
		o := handle(t, context.Background(), outgoing.Config{Name: "shop", Address: srv.URL, Method: "POST", Format: "soap11"})
		err := o.SOAP(nil, getPrice{Item: "tea"}, &getPriceResponse{})
		if err == nil || !strings.Contains(err.Error(), `outgoing "shop": decode the SOAP answer`) {
			t.Fatalf("SOAP 1.2 answer on a SOAP 1.1 connection = %v", err)
		}
	})
	t.Run("error status without a fault", func(t *testing.T) {
		srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "gateway down", http.StatusServiceUnavailable)
		})
		o := handle(t, context.Background(), outgoing.Config{Name: "shop", Address: srv.URL, Method: "POST", Format: "soap12"})
		var oe *sdk.OutgoingError
		if err := o.SOAP(nil, getPrice{Item: "tea"}, nil); !errors.As(err, &oe) || oe.Status != http.StatusServiceUnavailable || !strings.Contains(oe.Excerpt, "gateway down") {
			t.Fatalf("503 without a fault = %v, want an *sdk.OutgoingError", err)
		}
	})
}

func TestOutgoingErrors(t *testing.T) {
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/missing":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error":"no customer 42"}`)
		case "/slow":
			<-r.Context().Done() // until the caller gives up
		}
	})
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	tests := []struct {
		name     string
		deadline time.Duration // of the call, when not 0
		cfg      outgoing.Config
		status   int  // OutgoingError.Status
		timeout  bool // OutgoingError.Timeout
		http     int  // HTTPStatus
		excerpt  string
		message  string
	}{
		{"404", 0, outgoing.Config{Name: "crm", Address: srv.URL + "/missing"}, 404, false, 502, `{"error":"no customer 42"}`, `outgoing "crm": GET ` + srv.URL + `/missing: 404 Not Found: {"error":"no customer 42"}`},
		{"connection's timeout", 0, outgoing.Config{Name: "slow", Address: srv.URL + "/slow", Timeout: 50 * time.Millisecond}, 0, true, 504, "timed out after 50ms", `outgoing "slow": GET ` + srv.URL + "/slow: timed out"},
		{"call's deadline", 50 * time.Millisecond, outgoing.Config{Name: "slow", Address: srv.URL + "/slow"}, 0, true, 504, "deadline", `outgoing "slow"`},
		{"no answer", 0, outgoing.Config{Name: "gone", Address: closed.URL}, 0, false, 502, "refused", `outgoing "gone": GET ` + closed.URL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.deadline)
				defer cancel()
			}
			o := handle(t, ctx, tt.cfg)
			resp, err := o.Do(sdk.OutgoingCall{Query: url.Values{"api_key": {"secret-in-query"}}})
			var oe *sdk.OutgoingError
			if !errors.As(err, &oe) {
				t.Fatalf("Do = %T %v, want an *sdk.OutgoingError", err, err)
			}
			if oe.Connection != tt.cfg.Name || oe.Method != "GET" || oe.Status != tt.status || oe.Timeout != tt.timeout || oe.HTTPStatus() != tt.http {
				t.Fatalf("error = %+v (HTTPStatus %d), want status %d, timeout %v, HTTPStatus %d", oe, oe.HTTPStatus(), tt.status, tt.timeout, tt.http)
			}
			if !strings.Contains(oe.Excerpt, tt.excerpt) || !strings.HasPrefix(oe.Error(), tt.message) {
				t.Fatalf("error %q (excerpt %q), want it to start with %q and the excerpt to hold %q", oe.Error(), oe.Excerpt, tt.message, tt.excerpt)
			}
			if strings.Contains(oe.Error(), "secret-in-query") || strings.Contains(oe.URL, "?") {
				t.Fatalf("error %q shows the query", oe.Error())
			}
			if tt.status != 0 && (resp == nil || resp.Status != tt.status || !strings.Contains(string(resp.Body), "no customer")) {
				t.Fatalf("Do's response = %+v, want the answer along with the error", resp)
			}
			// The helpers return the same error.
			if err := o.JSON(nil, nil, nil); !errors.As(err, &oe) || oe.Status != tt.status || oe.Timeout != tt.timeout {
				t.Fatalf("JSON = %v, want the same *sdk.OutgoingError", err)
			}
		})
	}
}

func TestOutgoingWrongFormat(t *testing.T) {
	srv, hits := server(t, func(w http.ResponseWriter, r *http.Request) {})
	conns := map[string]*sdk.Outgoing{}
	for _, f := range []string{"json", "xml", "soap11", "soap12"} {
		conns[f] = handle(t, context.Background(), outgoing.Config{Name: "c-" + f, Address: srv.URL, Method: "POST", Format: f})
	}
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"JSON on xml", func() error { return conns["xml"].JSON(nil, nil, nil) }, `outgoing "c-xml": JSON call on a xml connection`},
		{"JSON on soap11", func() error { return conns["soap11"].JSON(nil, nil, nil) }, `outgoing "c-soap11": JSON call on a soap11 connection`},
		{"XML on json", func() error { return conns["json"].XML(nil, nil, nil) }, `outgoing "c-json": XML call on a json connection`},
		{"XML on soap12", func() error { return conns["soap12"].XML(nil, nil, nil) }, `outgoing "c-soap12": XML call on a soap12 connection`},
		{"SOAP on json", func() error { return conns["json"].SOAP(nil, nil, nil) }, `outgoing "c-json": SOAP on a json connection`},
		{"SOAP on xml", func() error { return conns["xml"].SOAP(nil, nil, nil) }, `outgoing "c-xml": SOAP on a xml connection`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("= %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the server got %d requests; a call of the wrong format must not be sent", n)
	}
}

func TestOutgoingUnknown(t *testing.T) {
	tests := []struct {
		name   string
		o      *sdk.Outgoing
		status int
		want   string
	}{
		{"no such connection", sdk.NewContext(context.Background(), sdk.Request{Services: connServices{}}).Outgoing("nope"), 500, `outgoing connection "nope" does not exist`},
		{"no services", sdk.NewContext(context.Background(), sdk.Request{}).Outgoing("nope"), 501, `outgoing "nope": no outgoing connections are available here`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := map[string]func() error{
				"Do":   func() error { _, err := tt.o.Do(sdk.OutgoingCall{}); return err },
				"JSON": func() error { return tt.o.JSON(nil, nil, nil) },
				"XML":  func() error { return tt.o.XML(nil, nil, nil) },
				"SOAP": func() error { return tt.o.SOAP(nil, nil, nil) },
			}
			for name, call := range calls {
				err := call()
				var se *sdk.Error
				if !errors.As(err, &se) || se.HTTPStatus() != tt.status || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("%s = %v, want a %d naming the connection", name, err, tt.status)
				}
			}
		})
	}
}
