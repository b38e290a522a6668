package format

import (
	"encoding/xml"
	"errors"
	"reflect"
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
		{name: "1.2 empty operation", version: SOAP12,
			body: env12(`<env:Body><Ping/></env:Body>`), wantOp: "Ping", want: `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op, got, err := DecodeSOAP([]byte(tt.body), tt.version, tt.ct, tt.action, hints)
			if err != nil {
				t.Fatalf("DecodeSOAP: %v", err)
			}
			if op != tt.wantOp {
				t.Fatalf("op = %q, want %q", op, tt.wantOp)
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
		{name: "no body", version: SOAP11, body: env11(`<soap:Header/>`), want: []string{"no Body"}},
		{name: "empty body element", version: SOAP11, body: env11(`<soap:Body> </soap:Body>`), want: []string{"element <Body>", "is empty"}},
		{name: "empty request", version: SOAP11, body: "", want: []string{"empty body"}},
		{name: "malformed", version: SOAP11, body: "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\">\n<soap:Body>\n</soap:Envelope>", want: []string{"malformed XML at line 3"}},
		{name: "doctype", version: SOAP11, body: `<!DOCTYPE x [<!ENTITY e "e">]>` + body11, want: []string{"DOCTYPE", "refused"}},
		{name: "bad typed value", version: SOAP11, body: env11(`<soap:Body><Greet><times>often</times></Greet></soap:Body>`), want: []string{"<times>", "not a int"}},
		{name: "not SOAP", version: XML, body: body11, want: []string{"not SOAP"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op, got, err := DecodeSOAP([]byte(tt.body), tt.version, tt.ct, "", hints)
			if err == nil {
				t.Fatalf("DecodeSOAP succeeded: %q %s", op, got)
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
				body, ct, err := EncodeSOAP(v, op, []byte(`{"greeting":"Hi <Ada>","tags":["a","b"],"none":null}`))
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
				if gotOp != "GreetResponse" {
					t.Fatalf("op %q", gotOp)
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
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := EncodeSOAP(tt.v, tt.op, []byte(tt.json)); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// fault11 and fault12 are the faults as a SOAP client parses them.
type fault11 struct {
	XMLName xml.Name `xml:"http://schemas.xmlsoap.org/soap/envelope/ Envelope"`
	Body    struct {
		Fault struct {
			Code   string `xml:"faultcode"`
			String string `xml:"faultstring"`
			CID    string `xml:"detail>cid"`
		} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Fault"`
	} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Body"`
}

type fault12 struct {
	XMLName xml.Name `xml:"http://www.w3.org/2003/05/soap-envelope Envelope"`
	Body    struct {
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
			Detail struct {
				CID string `xml:"cid"`
			} `xml:"http://www.w3.org/2003/05/soap-envelope Detail"`
		} `xml:"http://www.w3.org/2003/05/soap-envelope Fault"`
	} `xml:"http://www.w3.org/2003/05/soap-envelope Body"`
}

func TestFault(t *testing.T) {
	const msg = `bad "name" <&>`
	tests := []struct {
		name     string
		v        Format
		status   int
		err      error
		wantCode string
	}{
		{name: "1.1 client", v: SOAP11, status: 400, wantCode: "soap:Client"},
		{name: "1.1 server", v: SOAP11, status: 502, wantCode: "soap:Server"},
		{name: "1.2 sender", v: SOAP12, status: 413, wantCode: "env:Sender"},
		{name: "1.2 receiver", v: SOAP12, status: 500, wantCode: "env:Receiver"},
		{name: "1.1 must understand", v: SOAP11, status: 400, err: &FaultError{CodeMustUnderstand, msg}, wantCode: "soap:MustUnderstand"},
		{name: "1.2 version mismatch", v: SOAP12, status: 400, err: &FaultError{CodeVersionMismatch, msg}, wantCode: "env:VersionMismatch"},
		{name: "1.2 plain error", v: SOAP12, status: 404, err: errors.New(msg), wantCode: "env:Sender"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, ct := Fault(tt.v, tt.status, msg, "cid-1")
			if tt.err != nil {
				body, ct = FaultFor(tt.v, tt.status, tt.err, "cid-1")
			}
			if ct != tt.v.ContentType() {
				t.Fatalf("content type %q", ct)
			}
			var code, text, cid string
			if tt.v == SOAP11 {
				var f fault11
				if err := xml.Unmarshal(body, &f); err != nil {
					t.Fatalf("unmarshal %s: %v", body, err)
				}
				code, text, cid = f.Body.Fault.Code, f.Body.Fault.String, f.Body.Fault.CID
			} else {
				var f fault12
				if err := xml.Unmarshal(body, &f); err != nil {
					t.Fatalf("unmarshal %s: %v", body, err)
				}
				code, text, cid = f.Body.Fault.Code.Value, f.Body.Fault.Reason.Text.Text, f.Body.Fault.Detail.CID
				if f.Body.Fault.Reason.Text.Lang != "en" {
					t.Fatalf("xml:lang = %q", f.Body.Fault.Reason.Text.Lang)
				}
			}
			if code != tt.wantCode || text != msg || cid != "cid-1" {
				t.Fatalf("code %q text %q cid %q\n%s", code, text, cid, body)
			}
		})
	}
	t.Run("content types", func(t *testing.T) {
		if _, ct := Fault(SOAP11, 400, "x", ""); ct != "text/xml; charset=utf-8" {
			t.Fatalf("1.1 %q", ct)
		}
		if _, ct := Fault(SOAP12, 400, "x", ""); ct != "application/soap+xml; charset=utf-8" {
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
	b, ct := Fault(XML, 400, "m", "c")
	if ct != XML.ContentType() || !strings.Contains(string(b), "<error><message>m</message><cid>c</cid></error>") {
		t.Fatalf("Fault(XML) = %s, %q", b, ct)
	}
}
