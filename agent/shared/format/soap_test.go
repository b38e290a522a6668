package format

import (
	"encoding/xml"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

type greetInput struct {
	Name  string `json:"name"`
	Times int    `json:"times"`
}

// hints types the operations the tests route to.
func hints(op string) reflect.Type {
	switch op {
	case "Greet", "urn:Greet", "http://example.com/Greet":
		return reflect.TypeFor[greetInput]()
	}
	return nil
}

func env11(inner string) string {
	return `<?xml version="1.0"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">` + inner + `</soap:Envelope>`
}

func env12(inner string) string {
	return `<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope">` + inner + `</env:Envelope>`
}

const greetBody = `<m:Greet xmlns:m="urn:example"><m:name>Ada</m:name><m:times>2</m:times></m:Greet>`

func TestDecodeSOAP(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		version Format
		ct      string
		action  string
		wantOp  string
		want    string
	}{
		{name: "1.1 by element", version: SOAP11, ct: "text/xml; charset=utf-8",
			body: env11(`<soap:Body>` + greetBody + `</soap:Body>`), wantOp: "Greet", want: `{"name":"Ada","times":2}`},
		{name: "1.1 by SOAPAction", version: SOAP11, ct: "text/xml", action: `"http://example.com/Greet"`,
			body: env11(`<soap:Body>` + greetBody + `</soap:Body>`), wantOp: "http://example.com/Greet", want: `{"name":"Ada","times":2}`},
		{name: "1.1 empty SOAPAction", version: SOAP11, action: `""`,
			body: env11(`<soap:Body>` + greetBody + `</soap:Body>`), wantOp: "Greet", want: `{"name":"Ada","times":2}`},
		{name: "1.1 unknown op untyped", version: SOAP11, action: "Other",
			body: env11(`<soap:Body>` + greetBody + `</soap:Body>`), wantOp: "Other", want: `{"name":"Ada","times":"2"}`},
		{name: "1.1 header ignored", version: SOAP11,
			body:   env11(`<soap:Header><t:Trace xmlns:t="urn:t" soap:mustUnderstand="0">x</t:Trace></soap:Header><soap:Body>` + greetBody + `</soap:Body>`),
			wantOp: "Greet", want: `{"name":"Ada","times":2}`},
		{name: "1.2 by element", version: SOAP12, ct: "application/soap+xml; charset=utf-8",
			body: env12(`<env:Body>` + greetBody + `</env:Body>`), wantOp: "Greet", want: `{"name":"Ada","times":2}`},
		{name: "1.2 by action parameter", version: SOAP12, ct: `application/soap+xml;charset=utf-8;action="urn:Greet"`, action: "ignored",
			body: env12(`<env:Header/><env:Body>` + greetBody + `</env:Body>`), wantOp: "urn:Greet", want: `{"name":"Ada","times":2}`},
		{name: "1.1 mustUnderstand for another actor", version: SOAP11,
			body:   env11(`<soap:Header><t:Auth xmlns:t="urn:t" soap:actor="urn:gateway" soap:mustUnderstand="1"/></soap:Header><soap:Body>` + greetBody + `</soap:Body>`),
			wantOp: "Greet", want: `{"name":"Ada","times":2}`},
		{name: "1.2 mustUnderstand for role none", version: SOAP12,
			body:   env12(`<env:Header><t:Auth xmlns:t="urn:t" env:role="http://www.w3.org/2003/05/soap-envelope/role/none" env:mustUnderstand="true"/></env:Header><env:Body>` + greetBody + `</env:Body>`),
			wantOp: "Greet", want: `{"name":"Ada","times":2}`},
		{name: "1.2 empty operation", version: SOAP12,
			body: env12(`<env:Body><Ping/></env:Body>`), wantOp: "Ping", want: `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op, got, err := DecodeSOAP([]byte(tt.body), tt.version, tt.ct, tt.action, hints)
			if err != nil {
				t.Fatalf("DecodeSOAP: %v", err)
			}
			if op.Name != tt.wantOp {
				t.Fatalf("op = %q, want %q", op.Name, tt.wantOp)
			}
			sameJSON(t, got, tt.want)
		})
	}
}

func TestDecodeSOAPErrors(t *testing.T) {
	body11 := env11(`<soap:Body>` + greetBody + `</soap:Body>`)
	tests := []struct {
		name     string
		body     string
		version  Format
		ct       string
		want     []string
		wantCode string
	}{
		{name: "1.1 envelope on 1.2 channel", version: SOAP12, body: body11,
			want: []string{"SOAP 1.1 envelope on a SOAP 1.2 channel", NamespaceSOAP12}, wantCode: CodeVersionMismatch},
		{name: "1.2 envelope on 1.1 channel", version: SOAP11, body: env12(`<env:Body>` + greetBody + `</env:Body>`),
			want: []string{"SOAP 1.2 envelope on a SOAP 1.1 channel"}, wantCode: CodeVersionMismatch},
		{name: "unknown namespace", version: SOAP11, body: `<Envelope xmlns="urn:x"><Body/></Envelope>`,
			want: []string{`unknown namespace "urn:x"`}, wantCode: CodeVersionMismatch},
		{name: "not an envelope", version: SOAP11, body: greetBody, want: []string{"root element <Greet>", "want a SOAP 1.1 Envelope"}, wantCode: CodeVersionMismatch},
		{name: "1.1 wrong content type", version: SOAP11, ct: "application/soap+xml", body: body11, want: []string{"takes text/xml"}},
		{name: "1.2 wrong content type", version: SOAP12, ct: "text/xml; charset=utf-8", body: body11, want: []string{"takes application/soap+xml"}},
		{name: "must understand", version: SOAP11,
			body: env11(`<soap:Header><t:Auth xmlns:t="urn:t" soap:mustUnderstand="1"/></soap:Header><soap:Body>` + greetBody + `</soap:Body>`),
			want: []string{"header element <Auth>", "mustUnderstand"}, wantCode: CodeMustUnderstand},
		{name: "must understand 1.2", version: SOAP12,
			body: env12(`<env:Header><t:Auth xmlns:t="urn:t" env:mustUnderstand="true"/></env:Header><env:Body>` + greetBody + `</env:Body>`),
			want: []string{"mustUnderstand"}, wantCode: CodeMustUnderstand},
		{name: "must understand 1.1 for the next actor", version: SOAP11,
			body: env11(`<soap:Header><t:Auth xmlns:t="urn:t" soap:actor="http://schemas.xmlsoap.org/soap/actor/next" soap:mustUnderstand="1"/></soap:Header><soap:Body>` + greetBody + `</soap:Body>`),
			want: []string{"header element <Auth>", "mustUnderstand"}, wantCode: CodeMustUnderstand},
		{name: "must understand 1.2 for the ultimate receiver, two headers", version: SOAP12,
			body: env12(`<env:Header><t:Auth xmlns:t="urn:t" env:role="http://www.w3.org/2003/05/soap-envelope/role/ultimateReceiver" env:mustUnderstand="1"/><Trace env:mustUnderstand="true"/></env:Header><env:Body>` + greetBody + `</env:Body>`),
			want: []string{"headers element <Auth>", "; element <Trace>", "are marked mustUnderstand"}, wantCode: CodeMustUnderstand},
		{name: "no body", version: SOAP11, body: env11(`<soap:Header/>`), want: []string{"no Body"}},
		{name: "empty body element", version: SOAP11, body: env11(`<soap:Body> </soap:Body>`), want: []string{"element <Body>", "is empty"}},
		{name: "empty request", version: SOAP11, body: "", want: []string{"empty body"}},
		{name: "malformed", version: SOAP11, body: "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\">\n<soap:Body>\n</soap:Envelope>", want: []string{"malformed XML at line 3"}},
		{name: "doctype", version: SOAP11, body: `<!DOCTYPE x [<!ENTITY e "e">]>` + body11, want: []string{"DOCTYPE", "refused"}},
		{name: "bad typed value", version: SOAP11, body: env11(`<soap:Body><Greet><times>often</times></Greet></soap:Body>`), want: []string{"<times>", `"often" is not an integer`}},
		{name: "not SOAP", version: XML, body: body11, want: []string{"not SOAP"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op, got, err := DecodeSOAP([]byte(tt.body), tt.version, tt.ct, "", hints)
			if err == nil {
				t.Fatalf("DecodeSOAP succeeded: %+v %s", op, got)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not contain %q", err, w)
				}
			}
			var fe *FaultError
			if errors.As(err, &fe) != (tt.wantCode != "") || (fe != nil && fe.Code != tt.wantCode) {
				t.Fatalf("error %#v, want fault code %q", err, tt.wantCode)
			}
			if fe != nil && fe.Code == CodeMustUnderstand && (len(fe.NotUnderstood) == 0 || fe.NotUnderstood[0] != (xml.Name{Space: "urn:t", Local: "Auth"})) {
				t.Fatalf("NotUnderstood = %v, want the Auth header first", fe.NotUnderstood)
			}
			if fe != nil && fe.Code == CodeVersionMismatch && (fe.Envelope == SOAP11) != (tt.version == SOAP12 && strings.Contains(tt.body, NamespaceSOAP11)) {
				t.Fatalf("a version mismatch answered in %v", fe.Envelope)
			}
		})
	}
}

// soapResponse is what a SOAP client reads from EncodeSOAP's envelope.
type soapResponse struct {
	XMLName xml.Name
	Body    struct {
		XMLName xml.Name
		Op      struct {
			XMLName  xml.Name
			Greeting string   `xml:"greeting"`
			Tags     []string `xml:"tags"`
		} `xml:",any"`
	} `xml:",any"`
}

func TestEncodeSOAP(t *testing.T) {
	for _, v := range []Format{SOAP11, SOAP12} {
		for _, op := range []string{"Greet", "http://example.com/Greet", "urn:svc#Greet"} {
			t.Run(v.String()+" "+op, func(t *testing.T) {
				body, ct, err := EncodeSOAP(v, Operation{Name: op, Element: xml.Name{Local: "Greet"}}.Response(xml.Name{}), []byte(`{"greeting":"Hi <Ada>","tags":["a","b"],"none":null}`))
				if err != nil {
					t.Fatalf("EncodeSOAP: %v", err)
				}
				if ct != v.ContentType() {
					t.Fatalf("content type %q, want %q", ct, v.ContentType())
				}
				var r soapResponse
				if err := xml.Unmarshal(body, &r); err != nil {
					t.Fatalf("unmarshal %s: %v", body, err)
				}
				ns := envelopeNS(v)
				if r.XMLName != (xml.Name{Space: ns, Local: "Envelope"}) || r.Body.XMLName != (xml.Name{Space: ns, Local: "Body"}) {
					t.Fatalf("envelope %v body %v, want namespace %s", r.XMLName, r.Body.XMLName, ns)
				}
				if r.Body.Op.XMLName.Local != "GreetResponse" || r.Body.Op.Greeting != "Hi <Ada>" || !reflect.DeepEqual(r.Body.Op.Tags, []string{"a", "b"}) {
					t.Fatalf("operation %+v\n%s", r.Body.Op, body)
				}
				// And back through DecodeSOAP, as a client of the same version would send it.
				gotOp, j, err := DecodeSOAP(body, v, ct, "", nil)
				if err != nil {
					t.Fatalf("DecodeSOAP: %v", err)
				}
				if gotOp.Name != "GreetResponse" || gotOp.Element != (xml.Name{Local: "GreetResponse"}) {
					t.Fatalf("op %+v", gotOp)
				}
				sameJSON(t, j, `{"greeting":"Hi <Ada>","tags":["a","b"]}`)
			})
		}
	}
	for _, tt := range []struct {
		name string
		v    Format
		op   string
		json string
		want string
	}{
		{name: "not SOAP", v: JSON, op: "Greet", json: `{}`, want: "not SOAP"},
		{name: "no operation", v: SOAP11, op: "urn:x/", json: `{}`, want: "no operation"},
		{name: "bad JSON", v: SOAP12, op: "Greet", json: `{`, want: "invalid JSON"},
		{name: "not a name", v: SOAP12, op: "1x", json: `{}`, want: `"1xResponse" is not an XML element name`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := EncodeSOAP(tt.v, Operation{Name: tt.op}.Response(xml.Name{}), []byte(tt.json)); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// faultDetailXML is the detail of a fault as a client parses it.
type faultDetailXML struct {
	Status string `xml:"urn:weft:fault status"`
	CID    string `xml:"urn:weft:fault cid"`
}

// fault11 and fault12 are the faults as a SOAP client parses them.
type fault11 struct {
	XMLName xml.Name `xml:"http://schemas.xmlsoap.org/soap/envelope/ Envelope"`
	Header  struct {
		Upgrade struct {
			Supported struct {
				QName string `xml:"qname,attr"`
			} `xml:"http://www.w3.org/2003/05/soap-envelope SupportedEnvelope"`
		} `xml:"http://www.w3.org/2003/05/soap-envelope Upgrade"`
	} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Header"`
	Body struct {
		Fault struct {
			Code   string          `xml:"faultcode"`
			String string          `xml:"faultstring"`
			Detail *faultDetailXML `xml:"detail"`
		} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Fault"`
	} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Body"`
}

type fault12 struct {
	XMLName xml.Name `xml:"http://www.w3.org/2003/05/soap-envelope Envelope"`
	Header  struct {
		NotUnderstood []struct {
			QName string `xml:"qname,attr"`
		} `xml:"http://www.w3.org/2003/05/soap-envelope NotUnderstood"`
		Upgrade struct {
			Supported struct {
				QName string `xml:"qname,attr"`
			} `xml:"http://www.w3.org/2003/05/soap-envelope SupportedEnvelope"`
		} `xml:"http://www.w3.org/2003/05/soap-envelope Upgrade"`
	} `xml:"http://www.w3.org/2003/05/soap-envelope Header"`
	Body struct {
		Fault struct {
			Code struct {
				Value string `xml:"http://www.w3.org/2003/05/soap-envelope Value"`
			} `xml:"http://www.w3.org/2003/05/soap-envelope Code"`
			Reason struct {
				Text struct {
					Lang string `xml:"http://www.w3.org/XML/1998/namespace lang,attr"`
					Text string `xml:",chardata"`
				} `xml:"http://www.w3.org/2003/05/soap-envelope Text"`
			} `xml:"http://www.w3.org/2003/05/soap-envelope Reason"`
			Detail *faultDetailXML `xml:"http://www.w3.org/2003/05/soap-envelope Detail"`
		} `xml:"http://www.w3.org/2003/05/soap-envelope Fault"`
	} `xml:"http://www.w3.org/2003/05/soap-envelope Body"`
}

func TestFault(t *testing.T) {
	const msg = `bad "name" <&>`
	notUnderstood := []xml.Name{{Space: "urn:t", Local: "Auth"}, {Local: "Trace"}}
	tests := []struct {
		name       string
		v          Format
		status     int
		err        error
		wantV      Format // the envelope's version, when not v
		wantCode   string
		wantHTTP   int
		wantDetail bool
		wantHeader []string // NotUnderstood qnames, or the Upgrade's SupportedEnvelope
	}{
		{name: "1.1 client", v: SOAP11, status: 400, wantCode: "soap:Client", wantHTTP: 500, wantDetail: true},
		{name: "1.1 not found", v: SOAP11, status: 404, wantCode: "soap:Client", wantHTTP: 500, wantDetail: true},
		{name: "1.1 server", v: SOAP11, status: 502, wantCode: "soap:Server", wantHTTP: 500, wantDetail: true},
		{name: "1.2 sender", v: SOAP12, status: 422, wantCode: "env:Sender", wantHTTP: 400, wantDetail: true},
		{name: "1.2 receiver", v: SOAP12, status: 500, wantCode: "env:Receiver", wantHTTP: 500, wantDetail: true},
		{name: "1.2 deadline", v: SOAP12, status: 504, wantCode: "env:Receiver", wantHTTP: 500, wantDetail: true},
		{name: "1.1 must understand has no detail", v: SOAP11, status: 400, err: &FaultError{Code: CodeMustUnderstand, Message: msg, NotUnderstood: notUnderstood}, wantCode: "soap:MustUnderstand", wantHTTP: 500},
		{name: "1.2 must understand names the headers", v: SOAP12, status: 400, err: &FaultError{Code: CodeMustUnderstand, Message: msg, NotUnderstood: notUnderstood}, wantCode: "env:MustUnderstand", wantHTTP: 500, wantDetail: true, wantHeader: []string{"h:Auth", "Trace"}},
		{name: "1.1 version mismatch", v: SOAP11, status: 400, err: &FaultError{Code: CodeVersionMismatch, Message: msg}, wantCode: "soap:VersionMismatch", wantHTTP: 500, wantDetail: true},
		{name: "1.2 version mismatch offers 1.2", v: SOAP12, status: 400, err: &FaultError{Code: CodeVersionMismatch, Message: msg}, wantCode: "env:VersionMismatch", wantHTTP: 500, wantDetail: true, wantHeader: []string{"env:Envelope"}},
		{name: "1.1 envelope on 1.2 answered in 1.1", v: SOAP12, status: 400, err: &FaultError{Code: CodeVersionMismatch, Message: msg, Envelope: SOAP11}, wantV: SOAP11, wantCode: "soap:VersionMismatch", wantHTTP: 500, wantDetail: true, wantHeader: []string{"upg:Envelope"}},
		{name: "1.2 plain error", v: SOAP12, status: 404, err: errors.New(msg), wantCode: "env:Sender", wantHTTP: 400, wantDetail: true},
		{name: "1.2 wrapped fault error", v: SOAP12, status: 400, err: fmt.Errorf("decode: %w", &FaultError{Code: CodeVersionMismatch, Message: msg}), wantCode: "env:VersionMismatch", wantHTTP: 500, wantDetail: true, wantHeader: []string{"env:Envelope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err
			if err == nil {
				err = errors.New(msg)
			}
			body, ct, status := Fault(tt.v, tt.status, err, "cid-1")
			v := tt.v
			if tt.wantV != 0 {
				v = tt.wantV
			}
			if ct != v.ContentType() || status != tt.wantHTTP {
				t.Fatalf("content type %q, status %d; want %q, %d", ct, status, v.ContentType(), tt.wantHTTP)
			}
			var code, text string
			var detail *faultDetailXML
			var header []string
			if v == SOAP11 {
				var f fault11
				if err := xml.Unmarshal(body, &f); err != nil {
					t.Fatalf("unmarshal %s: %v", body, err)
				}
				code, text, detail = f.Body.Fault.Code, f.Body.Fault.String, f.Body.Fault.Detail
				if q := f.Header.Upgrade.Supported.QName; q != "" {
					header = append(header, q)
				}
			} else {
				var f fault12
				if err := xml.Unmarshal(body, &f); err != nil {
					t.Fatalf("unmarshal %s: %v", body, err)
				}
				code, text, detail = f.Body.Fault.Code.Value, f.Body.Fault.Reason.Text.Text, f.Body.Fault.Detail
				if f.Body.Fault.Reason.Text.Lang != "en" {
					t.Fatalf("xml:lang = %q", f.Body.Fault.Reason.Text.Lang)
				}
				for _, n := range f.Header.NotUnderstood {
					header = append(header, n.QName)
				}
				if q := f.Header.Upgrade.Supported.QName; q != "" {
					header = append(header, q)
				}
			}
			if code != tt.wantCode || text != msg {
				t.Fatalf("code %q text %q\n%s", code, text, body)
			}
			if (detail != nil) != tt.wantDetail {
				t.Fatalf("detail %+v, want one: %v\n%s", detail, tt.wantDetail, body)
			}
			if detail != nil && (detail.Status != strconv.Itoa(tt.status) || detail.CID != "cid-1") {
				t.Fatalf("detail %+v, want status %d and cid-1\n%s", detail, tt.status, body)
			}
			if !slices.Equal(header, tt.wantHeader) {
				t.Fatalf("header blocks %q, want %q\n%s", header, tt.wantHeader, body)
			}
		})
	}
	t.Run("content types", func(t *testing.T) {
		if _, ct, _ := Fault(SOAP11, 400, errors.New("x"), ""); ct != "text/xml; charset=utf-8" {
			t.Fatalf("1.1 %q", ct)
		}
		if _, ct, _ := Fault(SOAP12, 400, errors.New("x"), ""); ct != "application/soap+xml; charset=utf-8" {
			t.Fatalf("1.2 %q", ct)
		}
	})
}

func TestXMLError(t *testing.T) {
	var e struct {
		XMLName xml.Name `xml:"error"`
		Message string   `xml:"message"`
		CID     string   `xml:"cid"`
	}
	body := XMLError(400, `no <name> & "quote"`, "c1")
	if err := xml.Unmarshal(body, &e); err != nil {
		t.Fatalf("unmarshal %s: %v", body, err)
	}
	if e.Message != `no <name> & "quote"` || e.CID != "c1" {
		t.Fatalf("%+v", e)
	}
	b, ct, status := Fault(XML, 400, errors.New("m"), "c")
	if ct != XML.ContentType() || status != 400 || !strings.Contains(string(b), "<error><message>m</message><cid>c</cid></error>") {
		t.Fatalf("Fault(XML) = %s, %q, %d", b, ct, status)
	}
}

// TestEncodeSOAPNamespace checks that an answer is in the namespace of the
// request's operation element, its children qualified as the request's
// were, unless the service's output type names its own element.
func TestEncodeSOAPNamespace(t *testing.T) {
	type quote struct {
		XMLName xml.Name `xml:"urn:quotes QuoteResult" json:"-"`
		Price   float64  `json:"price"`
	}
	type onlyName struct {
		XMLName xml.Name `xml:"Priced"`
	}
	type notXMLName struct {
		XMLName string `xml:"urn:x Other"`
	}
	tests := []struct {
		name      string
		request   string // the Body's element
		action    string
		chosen    reflect.Type // the service's output type
		wantElem  xml.Name
		wantChild xml.Name
	}{
		{name: "qualified request", request: `<m:Greet xmlns:m="urn:example"><m:name>Ada</m:name></m:Greet>`,
			wantElem: xml.Name{Space: "urn:example", Local: "GreetResponse"}, wantChild: xml.Name{Space: "urn:example", Local: "greeting"}},
		{name: "default namespace", request: `<Greet xmlns="urn:example"><name>Ada</name></Greet>`,
			wantElem: xml.Name{Space: "urn:example", Local: "GreetResponse"}, wantChild: xml.Name{Space: "urn:example", Local: "greeting"}},
		{name: "unqualified children", request: `<m:Greet xmlns:m="urn:example"><name>Ada</name></m:Greet>`,
			wantElem: xml.Name{Space: "urn:example", Local: "GreetResponse"}, wantChild: xml.Name{Local: "greeting"}},
		{name: "no children", request: `<m:Greet xmlns:m="urn:example"/>`,
			wantElem: xml.Name{Space: "urn:example", Local: "GreetResponse"}, wantChild: xml.Name{Space: "urn:example", Local: "greeting"}},
		{name: "no namespace", request: `<Greet><name>Ada</name></Greet>`,
			wantElem: xml.Name{Local: "GreetResponse"}, wantChild: xml.Name{Local: "greeting"}},
		{name: "named by SOAPAction", request: `<m:Greet xmlns:m="urn:example"><m:name>Ada</m:name></m:Greet>`, action: `"urn:example/SayHello"`,
			wantElem: xml.Name{Space: "urn:example", Local: "SayHelloResponse"}, wantChild: xml.Name{Space: "urn:example", Local: "greeting"}},
		{name: "chosen by the output type", request: `<m:Greet xmlns:m="urn:example"><name>Ada</name></m:Greet>`, chosen: reflect.TypeFor[*quote](),
			wantElem: xml.Name{Space: "urn:quotes", Local: "QuoteResult"}, wantChild: xml.Name{Space: "urn:quotes", Local: "greeting"}},
		{name: "chosen name keeps the namespace", request: `<m:Greet xmlns:m="urn:example"><m:name>Ada</m:name></m:Greet>`, chosen: reflect.TypeFor[onlyName](),
			wantElem: xml.Name{Space: "urn:example", Local: "Priced"}, wantChild: xml.Name{Space: "urn:example", Local: "greeting"}},
		{name: "an XMLName that is not an xml.Name", request: `<Greet/>`, chosen: reflect.TypeFor[notXMLName](),
			wantElem: xml.Name{Local: "GreetResponse"}, wantChild: xml.Name{Local: "greeting"}},
	}
	for _, v := range []Format{SOAP11, SOAP12} {
		for _, tt := range tests {
			t.Run(v.String()+" "+tt.name, func(t *testing.T) {
				env, ct, action := env11(`<soap:Body>`+tt.request+`</soap:Body>`), "", tt.action
				if v == SOAP12 {
					env = env12(`<env:Body>` + tt.request + `</env:Body>`)
					if action != "" {
						ct, action = "application/soap+xml; action="+action, ""
					}
				}
				op, _, err := DecodeSOAP([]byte(env), v, ct, action, nil)
				if err != nil {
					t.Fatalf("DecodeSOAP: %v", err)
				}
				body, _, err := EncodeSOAP(v, op.Response(ResponseName(tt.chosen)), []byte(`{"greeting":"Hello"}`))
				if err != nil {
					t.Fatalf("EncodeSOAP: %v", err)
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
				if err := xml.Unmarshal(body, &r); err != nil {
					t.Fatalf("unmarshal %s: %v", body, err)
				}
				if r.Body.Op.XMLName != tt.wantElem || r.Body.Op.Child.XMLName != tt.wantChild {
					t.Fatalf("answer <%v> with <%v>, want <%v> with <%v>\n%s", r.Body.Op.XMLName, r.Body.Op.Child.XMLName, tt.wantElem, tt.wantChild, body)
				}
			})
		}
	}
}
