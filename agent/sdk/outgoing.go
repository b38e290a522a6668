package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// The data formats of outgoing connections, as OutgoingConn.Format reports
// them.
const (
	FormatJSON   = "json"
	FormatXML    = "xml"
	FormatSOAP11 = "soap11"
	FormatSOAP12 = "soap12"
)

// OutgoingConn is an outgoing HTTP connection as the agent offers it to
// services. Service code reaches it through Context.Outgoing.
type OutgoingConn interface {
	// Format is the connection's data format: json, xml, soap11 or soap12.
	Format() string
	// Do makes one call. A non-2xx answer returns the response together
	// with an *OutgoingError.
	Do(ctx context.Context, call OutgoingCall) (*OutgoingResponse, error)
}

// OutgoingCall is one call to an outgoing connection.
type OutgoingCall struct {
	// Params fill the {params} of the connection's path template.
	Params map[string]string
	// Query is added to the URL.
	Query url.Values
	// Body is sent as it is, with the connection's Content-Type.
	Body []byte
}

// OutgoingResponse is the answer to a call.
type OutgoingResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

// OutgoingError is a call that got no 2xx answer: the remote answered with
// another status, or did not answer at all (Status 0). A handler that
// returns it answers its own caller 502 Bad Gateway, or 504 when the remote
// did not answer in time. That caller is told only the connection's name
// and the CID: the URL and the remote's answer go to the agent's log.
type OutgoingError struct {
	// Connection is the outgoing connection's name.
	Connection string
	// Method and URL say what was called; the URL carries no query and no
	// credentials.
	Method, URL string
	// Status is the remote's HTTP status; 0 when there was no usable answer
	// (no connection, a timeout, an answer over the size limit).
	Status int
	// Excerpt is the start of the remote's answer (at most 512 bytes), or
	// why there was no usable one.
	Excerpt string
	// Timeout reports that the call ran out of time.
	Timeout bool
}

// Error reads like: outgoing "crm": GET https://h/customers/42: 404 Not
// Found: {"error":"..."}.
func (e *OutgoingError) Error() string {
	what := fmt.Sprintf("outgoing %q: %s %s", e.Connection, e.Method, e.URL)
	if e.Status == 0 {
		return fmt.Sprintf("%s: %s", what, e.Excerpt)
	}
	s := fmt.Sprintf("%s: %d %s", what, e.Status, http.StatusText(e.Status))
	if e.Excerpt != "" {
		s += ": " + e.Excerpt
	}
	return s
}

// HTTPStatus is what a handler's caller gets when the handler returns the
// error: 504 for a timeout, else 502.
func (e *OutgoingError) HTTPStatus() int {
	if e.Timeout {
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

// SOAPFault is a SOAP Fault a remote answered with.
type SOAPFault struct {
	// Connection is the outgoing connection's name.
	Connection string
	// Status is the HTTP status it came with (usually 500).
	Status int
	// Code is the fault code: faultcode in SOAP 1.1, Code/Value in 1.2.
	Code string
	// Reason is the fault string: faultstring in SOAP 1.1, Reason/Text in
	// 1.2.
	Reason string
}

// Error reads like: outgoing "billing": SOAP fault soap:Client: unknown
// account.
func (e *SOAPFault) Error() string {
	return fmt.Sprintf("outgoing %q: SOAP fault %s: %s", e.Connection, e.Code, e.Reason)
}

// HTTPStatus is 502: the remote refused the call.
func (e *SOAPFault) HTTPStatus() int { return http.StatusBadGateway }

// Outgoing is a handle on one outgoing connection for one call's Context.
// Its calls end at the call's deadline or the connection's timeout,
// whichever comes first.
type Outgoing struct {
	ctx  context.Context
	name string
	conn OutgoingConn
	err  error
}

// Outgoing returns the outgoing connection name. A connection that does
// not exist or is inactive makes every call on the handle fail saying so.
// A configuration change applies, with no restart, to the invocations that
// start after the agent applied it; one already running keeps the settings
// it started with.
func (c *Context) Outgoing(name string) *Outgoing {
	o := &Outgoing{ctx: c.ctx, name: name}
	if c.req.Services == nil {
		o.err = Errorf(http.StatusNotImplemented, "outgoing %q: no outgoing connections are available here", name)
		return o
	}
	o.conn, o.err = c.req.Services.Outgoing(name)
	return o
}

// Name returns the connection's name.
func (o *Outgoing) Name() string { return o.name }

// Do makes a call with a body of the caller's making, and returns the
// answer. A non-2xx answer returns the response together with an
// *OutgoingError.
func (o *Outgoing) Do(call OutgoingCall) (*OutgoingResponse, error) {
	if o.err != nil {
		return nil, o.err
	}
	return o.conn.Do(o.ctx, call)
}

// JSON calls a json connection: in (when not nil) is sent as the JSON
// body, and the JSON answer is decoded into out (when not nil and the
// answer is not empty). params fill the path template.
func (o *Outgoing) JSON(params map[string]string, in, out any) error {
	if err := o.want(FormatJSON); err != nil {
		return err
	}
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("outgoing %q: encode the request as JSON: %w", o.name, err)
		}
	}
	resp, err := o.conn.Do(o.ctx, OutgoingCall{Params: params, Body: body})
	if err != nil {
		return err
	}
	if out == nil || len(bytes.TrimSpace(resp.Body)) == 0 {
		return nil
	}
	if err := json.Unmarshal(resp.Body, out); err != nil {
		return fmt.Errorf("outgoing %q: decode the JSON answer: %w", o.name, err)
	}
	return nil
}

// XML calls an xml connection: in (when not nil) is sent marshalled with
// encoding/xml, and the answer is unmarshalled into out (when not nil and
// the answer is not empty). params fill the path template.
func (o *Outgoing) XML(params map[string]string, in, out any) error {
	if err := o.want(FormatXML); err != nil {
		return err
	}
	var body []byte
	if in != nil {
		var err error
		if body, err = xml.Marshal(in); err != nil {
			return fmt.Errorf("outgoing %q: encode the request as XML: %w", o.name, err)
		}
	}
	resp, err := o.conn.Do(o.ctx, OutgoingCall{Params: params, Body: body})
	if err != nil {
		return err
	}
	if out == nil || len(bytes.TrimSpace(resp.Body)) == 0 {
		return nil
	}
	if err := xml.Unmarshal(resp.Body, out); err != nil {
		return fmt.Errorf("outgoing %q: decode the XML answer: %w", o.name, err)
	}
	return nil
}

// SOAP calls a soap11 or soap12 connection: in, marshalled with
// encoding/xml, becomes the Body of an envelope of the connection's
// version, and the first element of the answer's Body is unmarshalled into
// out (when not nil). A Fault in the answer returns a *SOAPFault, whatever
// the HTTP status.
func (o *Outgoing) SOAP(params map[string]string, in, out any) error {
	if o.err != nil {
		return o.err
	}
	ns, ok := soapNamespaces[o.conn.Format()]
	if !ok {
		return fmt.Errorf("outgoing %q: SOAP on a %s connection; its data format must be soap11 or soap12", o.name, o.conn.Format())
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="%s"><soap:Body>`, ns)
	if in != nil {
		op, err := xml.Marshal(in)
		if err != nil {
			return fmt.Errorf("outgoing %q: encode the SOAP operation: %w", o.name, err)
		}
		b.Write(op)
	}
	b.WriteString(`</soap:Body></soap:Envelope>`)
	resp, err := o.conn.Do(o.ctx, OutgoingCall{Params: params, Body: b.Bytes()})
	if resp == nil {
		return err
	}
	op, fault, perr := soapBody(resp.Body, ns)
	if perr == nil && fault != nil {
		fault.Connection, fault.Status = o.name, resp.Status
		return fault
	}
	if err != nil {
		return err
	}
	if perr != nil {
		return fmt.Errorf("outgoing %q: decode the SOAP answer: %w", o.name, perr)
	}
	if out == nil || op == nil {
		return nil
	}
	if err := xml.Unmarshal(op, out); err != nil {
		return fmt.Errorf("outgoing %q: decode the SOAP answer's operation: %w", o.name, err)
	}
	return nil
}

// want checks that the handle works and its connection speaks format.
func (o *Outgoing) want(format string) error {
	if o.err != nil {
		return o.err
	}
	if f := o.conn.Format(); f != format {
		return fmt.Errorf("outgoing %q: %s call on a %s connection", o.name, strings.ToUpper(format), f)
	}
	return nil
}

var soapNamespaces = map[string]string{
	FormatSOAP11: "http://schemas.xmlsoap.org/soap/envelope/",
	FormatSOAP12: "http://www.w3.org/2003/05/soap-envelope",
}

// soapBody finds, in a SOAP envelope of namespace ns, the first element of
// the Body: its raw XML, or the Fault it holds.
func soapBody(data []byte, ns string) ([]byte, *SOAPFault, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	depth := 0
	inBody := false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			if !inBody {
				return nil, nil, errors.New("no SOAP Body in the answer")
			}
			return nil, nil, nil
		}
		if err != nil {
			return nil, nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case depth == 1 && (t.Name.Space != ns || t.Name.Local != "Envelope"):
				return nil, nil, fmt.Errorf("the answer's root is <%s>, want a SOAP Envelope in %s", t.Name.Local, ns)
			case depth == 2 && t.Name.Space == ns && t.Name.Local == "Body":
				inBody = true
			case depth == 3 && inBody && t.Name.Space == ns && t.Name.Local == "Fault":
				var f soapFault
				if err := d.DecodeElement(&f, &t); err != nil {
					return nil, nil, fmt.Errorf("read the SOAP Fault: %w", err)
				}
				return nil, f.fault(), nil
			case depth == 3 && inBody:
				var raw rawElement
				if err := d.DecodeElement(&raw, &t); err != nil {
					return nil, nil, err
				}
				return raw.xml(t), nil, nil
			}
		case xml.EndElement:
			depth--
		}
	}
}

// soapFault reads a Fault of either version.
type soapFault struct {
	Code11   string `xml:"faultcode"`
	String11 string `xml:"faultstring"`
	Code12   string `xml:"Code>Value"`
	Reason12 string `xml:"Reason>Text"`
}

func (f soapFault) fault() *SOAPFault {
	if f.Code12 != "" || f.Reason12 != "" {
		return &SOAPFault{Code: strings.TrimSpace(f.Code12), Reason: strings.TrimSpace(f.Reason12)}
	}
	return &SOAPFault{Code: strings.TrimSpace(f.Code11), Reason: strings.TrimSpace(f.String11)}
}

// rawElement keeps an element's attributes and inner XML, so it can be
// unmarshalled again into the caller's type.
type rawElement struct {
	Attrs []xml.Attr `xml:",any,attr"`
	Inner []byte     `xml:",innerxml"`
}

// xml rebuilds the element: its start tag with its namespace declared,
// the inner XML as it came.
func (r rawElement) xml(start xml.StartElement) []byte {
	var b bytes.Buffer
	b.WriteString("<" + start.Name.Local)
	if start.Name.Space != "" {
		fmt.Fprintf(&b, ` xmlns="%s"`, escapeAttr(start.Name.Space))
	}
	for _, a := range r.Attrs {
		switch {
		case a.Name.Space == "xmlns":
			fmt.Fprintf(&b, ` xmlns:%s="%s"`, a.Name.Local, escapeAttr(a.Value))
		case a.Name.Space == "" && a.Name.Local != "xmlns":
			fmt.Fprintf(&b, ` %s="%s"`, a.Name.Local, escapeAttr(a.Value))
		}
		// The default namespace is the element's own, written above; a
		// prefixed attribute's prefix is lost in decoding, so it is left out.
	}
	b.WriteString(">")
	b.Write(r.Inner)
	b.WriteString("</" + start.Name.Local + ">")
	return b.Bytes()
}

func escapeAttr(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
