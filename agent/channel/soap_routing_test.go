package channel

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// Input types that tell the routed service apart: the same <id>7</id> is a
// number for one and text for the other.
type (
	getOrderInput struct {
		ID int `json:"id"`
	}
	cancelOrderInput struct {
		ID     string `json:"id"`
		Reason string `json:"reason"`
	}
)

// soapCall is one SOAP request: its Content-Type, SOAPAction header and
// operation element.
type soapCall struct {
	version     string // soap11 or soap12
	soapAction  string // SOAP 1.1 header, sent as given when not empty
	action      string // SOAP 1.2 action parameter, when not empty
	element     string // the Body's first element
	contentType string // overrides the version's own
}

func (c soapCall) request(path string) *http.Request {
	var body, ct string
	inner := "<" + c.element + "><id>7</id></" + c.element + ">"
	if c.version == "soap12" {
		body = `<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body>` + inner + `</env:Body></env:Envelope>`
		ct = "application/soap+xml; charset=utf-8"
		if c.action != "" {
			ct += `; action="` + c.action + `"`
		}
	} else {
		body = `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>` + inner + `</soap:Body></soap:Envelope>`
		ct = "text/xml; charset=utf-8"
	}
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	r.Header.Set("Content-Type", ct)
	if c.soapAction != "" {
		r.Header.Set("SOAPAction", c.soapAction)
	}
	return r
}

func TestHandlerSOAPRouting(t *testing.T) {
	actions := map[string]string{
		"GetOrder":          "orders.get",
		"CancelOrder":       "orders.cancel",
		"urn:shop:GetOrder": "orders.special", // an exact match beats a last segment
	}
	chans := []*adminv1.Channel{
		{Name: "shop11", Path: "/shop11", Methods: []string{"POST"}, Active: proto.Bool(true), DataFormat: "soap11", SoapActions: actions},
		{Name: "shop12", Path: "/shop12", Methods: []string{"POST"}, Active: proto.Bool(true), DataFormat: "soap12", SoapActions: actions},
		{Name: "fallback", Path: "/fallback", Methods: []string{"POST"}, Active: proto.Bool(true), DataFormat: "soap11", SoapActions: actions, Service: "orders.default"},
	}
	router, err := NewRouter(chans, nil)
	if err != nil {
		t.Fatal(err)
	}
	inv := &recorder{types: map[string]reflect.Type{
		"orders.get":     reflect.TypeFor[getOrderInput](),
		"orders.special": reflect.TypeFor[getOrderInput](),
		"orders.cancel":  reflect.TypeFor[cancelOrderInput](),
	}}
	h := newTestHandler(router, inv)

	tests := []struct {
		name    string
		path    string
		call    soapCall
		service string
		input   string // the service's input
		elem    string // the answer's Body element
	}{
		{"1.1 SOAPAction", "/shop11", soapCall{version: "soap11", soapAction: `"GetOrder"`, element: "Whatever"}, "orders.get", `{"id":7}`, "GetOrderResponse"},
		{"1.1 other SOAPAction", "/shop11", soapCall{version: "soap11", soapAction: `"CancelOrder"`, element: "Whatever"}, "orders.cancel", `{"id":"7"}`, "CancelOrderResponse"},
		{"1.1 unquoted SOAPAction", "/shop11", soapCall{version: "soap11", soapAction: "CancelOrder", element: "Whatever"}, "orders.cancel", `{"id":"7"}`, "CancelOrderResponse"},
		{"1.1 URI action by its last segment", "/shop11", soapCall{version: "soap11", soapAction: `"http://shop.example/orders/CancelOrder"`, element: "Whatever"}, "orders.cancel", `{"id":"7"}`, "CancelOrderResponse"},
		{"1.1 URN action by its last segment", "/shop11", soapCall{version: "soap11", soapAction: `"urn:shop:orders:CancelOrder"`, element: "Whatever"}, "orders.cancel", `{"id":"7"}`, "CancelOrderResponse"},
		{"1.1 fragment action by its last segment", "/shop11", soapCall{version: "soap11", soapAction: `"http://shop.example/api#GetOrder"`, element: "Whatever"}, "orders.get", `{"id":7}`, "GetOrderResponse"},
		{"1.1 exact match first", "/shop11", soapCall{version: "soap11", soapAction: `"urn:shop:GetOrder"`, element: "Whatever"}, "orders.special", `{"id":7}`, "GetOrderResponse"},
		{"1.1 body element without SOAPAction", "/shop11", soapCall{version: "soap11", element: "CancelOrder"}, "orders.cancel", `{"id":"7"}`, "CancelOrderResponse"},
		{"1.1 body element with an empty SOAPAction", "/shop11", soapCall{version: "soap11", soapAction: `""`, element: "GetOrder"}, "orders.get", `{"id":7}`, "GetOrderResponse"},
		{"1.2 action param", "/shop12", soapCall{version: "soap12", action: "GetOrder", element: "Whatever"}, "orders.get", `{"id":7}`, "GetOrderResponse"},
		{"1.2 other action param", "/shop12", soapCall{version: "soap12", action: "CancelOrder", element: "Whatever"}, "orders.cancel", `{"id":"7"}`, "CancelOrderResponse"},
		{"1.2 URI action by its last segment", "/shop12", soapCall{version: "soap12", action: "http://shop.example/orders/GetOrder", element: "Whatever"}, "orders.get", `{"id":7}`, "GetOrderResponse"},
		{"1.2 body element without action", "/shop12", soapCall{version: "soap12", element: "CancelOrder"}, "orders.cancel", `{"id":"7"}`, "CancelOrderResponse"},
		{"1.2 ignores a SOAPAction header", "/shop12", soapCall{version: "soap12", soapAction: `"CancelOrder"`, element: "GetOrder"}, "orders.get", `{"id":7}`, "GetOrderResponse"},
		{"unrouted goes to the channel's service", "/fallback", soapCall{version: "soap11", soapAction: `"Refund"`, element: "Refund"}, "orders.default", `{"id":"7"}`, "RefundResponse"},
		{"routed beats the channel's service", "/fallback", soapCall{version: "soap11", soapAction: `"GetOrder"`, element: "Refund"}, "orders.get", `{"id":7}`, "GetOrderResponse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, tt.call.request(tt.path))
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d %s, want 200", rec.Code, rec.Body)
			}
			got, elem := readReply(t, tt.call.version, rec.Body.Bytes())
			if got.Service != tt.service || elem != tt.elem {
				t.Fatalf("answered by %q in <%s>, want %q in <%s>", got.Service, elem, tt.service, tt.elem)
			}
			if req, input := inv.last(); req.Service != tt.service || !jsonSame(t, input, tt.input) {
				t.Fatalf("the service %q got %s, want %q with %s", req.Service, input, tt.service, tt.input)
			}
		})
	}

	t.Run("no route and no service", func(t *testing.T) {
		for _, c := range []struct {
			path, version string
			status        int // SOAP 1.1 sends every fault as 500, SOAP 1.2 a Sender fault as 400
		}{{"/shop11", "soap11", http.StatusInternalServerError}, {"/shop12", "soap12", http.StatusBadRequest}} {
			rec := httptest.NewRecorder()
			call := soapCall{version: c.version, soapAction: `"Refund"`, action: "Refund", element: "Refund"}
			h.ServeHTTP(rec, call.request(c.path))
			if rec.Code != c.status {
				t.Fatalf("%s: status %d %s, want %d", c.version, rec.Code, rec.Body, c.status)
			}
			e := readError(t, c.version, rec.Result(), rec.Body.Bytes())
			for _, want := range []string{`SOAP operation "Refund"`, "CancelOrder, GetOrder, urn:shop:GetOrder", "channel shop"} {
				if !strings.Contains(e.Message, want) {
					t.Fatalf("%s: fault %+v, want it to contain %q", c.version, e, want)
				}
			}
			if e.Code != clientFaultCode(c.version) {
				t.Fatalf("%s: fault code %q, want %q", c.version, e.Code, clientFaultCode(c.version))
			}
		}
	})
}

func TestHandlerParams(t *testing.T) {
	type orderInput struct {
		ID     int      `json:"id"`
		Open   bool     `json:"open"`
		Tags   []string `json:"tags"`
		Status string   `json:"status"`
	}
	chans := []*adminv1.Channel{
		{Name: "order", Path: "/orders/{id}", Methods: []string{"GET", "POST"}, Service: "orders.get", Active: proto.Bool(true)},
		{Name: "order-xml", Path: "/xml/orders/{id}", Methods: []string{"POST"}, Service: "orders.get", Active: proto.Bool(true), DataFormat: "xml"},
		{Name: "list", Path: "/lists/{id}", Methods: []string{"POST"}, Service: "lists.put", Active: proto.Bool(true)},
	}
	router, err := NewRouter(chans, nil)
	if err != nil {
		t.Fatal(err)
	}
	inv := &recorder{types: map[string]reflect.Type{"orders.get": reflect.TypeFor[orderInput]()}}
	h := newTestHandler(router, inv)

	tests := []struct {
		name   string
		path   string
		ctype  string
		body   string
		status int
		input  string // the service's input when 200, else a substring of the error
	}{
		{"path and query typed", "/orders/42?open=true&tags=a&tags=b", "", "", 200, `{"id":42,"open":true,"tags":["a","b"]}`},
		{"single query value into a slice", "/orders/42?tags=a", "", "", 200, `{"id":42,"tags":["a"]}`},
		{"path beats query beats body", "/orders/42?id=1&status=query", "application/json", `{"id":2,"status":"body","open":true}`, 200, `{"id":42,"status":"query","open":true}`},
		{"xml body with params", "/xml/orders/42?open=1", "application/xml", "<order><status>new</status></order>", 200, `{"id":42,"open":true,"status":"new"}`},
		{"bad int path param", "/orders/abc", "", "", 400, "path param id"},
		{"bad bool query param", "/orders/1?open=maybe", "", "", 400, "query param open"},
		{"untyped service", "/lists/7?q=x", "application/json", `{"a":1}`, 200, `{"a":1,"id":"7","q":"x"}`},
		{"array body left alone", "/lists/7?q=x", "application/json", `[1,2]`, 200, `[1,2]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := http.MethodGet
			if tt.body != "" {
				method = http.MethodPost
			}
			r := httptest.NewRequest(method, tt.path, strings.NewReader(tt.body))
			if tt.ctype != "" {
				r.Header.Set("Content-Type", tt.ctype)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != tt.status {
				t.Fatalf("status %d %s, want %d", rec.Code, rec.Body, tt.status)
			}
			if tt.status != http.StatusOK {
				if !strings.Contains(rec.Body.String(), tt.input) {
					t.Fatalf("error %s, want it to name %q", rec.Body, tt.input)
				}
				return
			}
			if _, input := inv.last(); !jsonSame(t, input, tt.input) {
				t.Fatalf("the service got %s, want %s", input, tt.input)
			}
		})
	}
}

// jsonSame reports whether a and b are the same JSON value.
func jsonSame(t *testing.T, a, b string) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal([]byte(a), &x); err != nil {
		t.Fatalf("not JSON: %s: %v", a, err)
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		t.Fatalf("not JSON: %s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}
