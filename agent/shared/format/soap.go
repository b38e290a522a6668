package format

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
)

// Fault codes for a FaultError, named as in SOAP 1.2 (SOAP 1.1 uses the
// same local names).
const (
	CodeVersionMismatch = "VersionMismatch"
	CodeMustUnderstand  = "MustUnderstand"
)

// FaultError is a request error that SOAP answers with its own fault code
// rather than Client/Sender: an envelope of the wrong version, or a header
// marked mustUnderstand. Fault writes it with that code.
type FaultError struct {
	// Code is CodeVersionMismatch or CodeMustUnderstand.
	Code string
	// Message says what was wrong.
	Message string
	// NotUnderstood names the header entries of a MustUnderstand fault:
	// SOAP 1.2 lists each in an env:NotUnderstood header block.
	NotUnderstood []xml.Name
	// Envelope is the SOAP version to answer in, when not the channel's: a
	// SOAP 1.2 node answers a SOAP 1.1 envelope with a SOAP 1.1
	// VersionMismatch fault (SOAP 1.2 Part 1, appendix A).
	Envelope Format
}

// Error returns the message.
func (e *FaultError) Error() string { return e.Message }

// Operation is what a SOAP request calls: its name, and the element that
// carries it, whose namespace the answer takes.
type Operation struct {
	// Name routes the request: the SOAPAction (1.1) or the action
	// parameter (1.2) when given, else Element's local name.
	Name string
	// Element is the name of the Body's first element.
	Element xml.Name
	// Qualified reports that Element's children are in its namespace (a
	// schema's elementFormDefault="qualified"), or that it has none.
	Qualified bool
}

// DecodeSOAP parses a SOAP envelope of the given version and converts the
// operation element, the first child of Body, like DecodeXML converts a
// root element, typed by hint(op) when hint is not nil.
//
// The operation's name is the SOAPAction header for SOAP 1.1 (quotes
// stripped) or the action parameter of the Content-Type for SOAP 1.2, when
// given, else the local name of the operation element. contentType must be
// text/xml for SOAP 1.1 and application/soap+xml for SOAP 1.2 (empty is
// accepted); another, or a charset this package does not know, gives a
// *MediaError. Header entries are ignored, except that one marked
// mustUnderstand for this node gives a *FaultError with CodeMustUnderstand;
// an envelope of the other version or an unknown namespace gives one with
// CodeVersionMismatch.
func DecodeSOAP(body []byte, version Format, contentType, soapAction string, hint func(operation string) reflect.Type) (op Operation, data []byte, err error) {
	if !version.IsSOAP() {
		return op, nil, fmt.Errorf("decode SOAP: data format %v is not SOAP", version)
	}
	action, err := CheckContentType(version, contentType)
	if err != nil {
		return op, nil, err
	}
	if version == SOAP11 {
		action = strings.Trim(strings.TrimSpace(soapAction), `"`)
	}
	root, err := parseTree(body, charsetOf(contentType))
	if err != nil {
		return op, nil, err
	}
	if root == nil {
		return op, nil, fmt.Errorf("%s request: empty body, want an Envelope", soapName(version))
	}
	want := envelopeNS(version)
	if root.name.Local != "Envelope" {
		return op, nil, &FaultError{Code: CodeVersionMismatch, Message: fmt.Sprintf("%s request: root %s, want a %s Envelope", soapName(version), root.where(), soapName(version))}
	}
	if root.name.Space != want {
		got := "unknown namespace " + fmt.Sprintf("%q", root.name.Space)
		var answerIn Format
		switch root.name.Space {
		case NamespaceSOAP11:
			got = "a SOAP 1.1 envelope"
			answerIn = SOAP11 // which its sender reads
		case NamespaceSOAP12:
			got = "a SOAP 1.2 envelope"
		}
		return op, nil, &FaultError{Code: CodeVersionMismatch, Message: fmt.Sprintf("%s on a %s channel: Envelope namespace must be %s", got, soapName(version), want), Envelope: answerIn}
	}
	var bodyElem *node
	for _, c := range root.children {
		if c.name.Space != want {
			continue
		}
		switch c.name.Local {
		case "Header":
			if bodyElem != nil {
				return op, nil, fmt.Errorf("%s request: %s: Header must come before Body", soapName(version), c.where())
			}
			if err := checkHeaders(c, version); err != nil {
				return op, nil, err
			}
		case "Body":
			if bodyElem == nil {
				bodyElem = c
			}
		}
	}
	if bodyElem == nil {
		return op, nil, fmt.Errorf("%s request: the Envelope has no Body", soapName(version))
	}
	if len(bodyElem.children) == 0 {
		return op, nil, fmt.Errorf("%s request: %s is empty, want the operation element", soapName(version), bodyElem.where())
	}
	opElem := bodyElem.children[0]
	op = Operation{Name: action, Element: opElem.name, Qualified: qualified(opElem)}
	if op.Name == "" {
		op.Name = opElem.name.Local
	}
	var t reflect.Type
	if hint != nil {
		t = hint(op.Name)
	}
	var b bytes.Buffer
	if err := writeObject(&b, opElem, t); err != nil {
		return op, nil, err
	}
	return op, b.Bytes(), nil
}

// qualified reports whether the children of n are in its namespace, as a
// schema with elementFormDefault="qualified" has them; true when it has
// no child elements to tell, as encoding/xml and most toolkits write.
func qualified(n *node) bool {
	if len(n.children) == 0 {
		return true
	}
	for _, c := range n.children {
		if c.name.Space == n.name.Space {
			return true
		}
	}
	return false
}

// checkHeaders refuses header entries marked mustUnderstand for this node,
// since this package understands none. An entry for another SOAP 1.1 actor
// or SOAP 1.2 role is not this node's to understand.
func checkHeaders(h *node, version Format) error {
	ns := envelopeNS(version)
	var refused []*node
	for _, e := range h.children {
		must, ours := false, true
		for _, a := range e.attrs {
			if a.Name.Space != ns {
				continue
			}
			v := strings.TrimSpace(a.Value)
			switch {
			case a.Name.Local == "mustUnderstand":
				must = v == "1" || v == "true"
			case a.Name.Local == "actor" && version == SOAP11:
				ours = v == "http://schemas.xmlsoap.org/soap/actor/next"
			case a.Name.Local == "role" && version == SOAP12:
				ours = v == "" || v == NamespaceSOAP12+"/role/next" || v == NamespaceSOAP12+"/role/ultimateReceiver"
			}
		}
		if must && ours {
			refused = append(refused, e)
		}
	}
	if len(refused) == 0 {
		return nil
	}
	fe := &FaultError{Code: CodeMustUnderstand}
	where := make([]string, len(refused))
	for i, e := range refused {
		fe.NotUnderstood = append(fe.NotUnderstood, e.name)
		where[i] = e.where()
	}
	if len(refused) == 1 {
		fe.Message = fmt.Sprintf("%s request: header %s is marked mustUnderstand and is not understood", soapName(version), where[0])
	} else {
		fe.Message = fmt.Sprintf("%s request: headers %s are marked mustUnderstand and are not understood", soapName(version), strings.Join(where, "; "))
	}
	return fe
}

// envelopeNS is the envelope namespace of a SOAP version.
func envelopeNS(version Format) string {
	if version == SOAP12 {
		return NamespaceSOAP12
	}
	return NamespaceSOAP11
}

// Response is the element a SOAP answer's Body holds.
type Response struct {
	// Name is the element's name and namespace ("" for none).
	Name xml.Name
	// Qualified puts the element's children in its namespace, else in
	// none (elementFormDefault="unqualified").
	Qualified bool
}

// Response is the element that answers op: <NameResponse>, where Name is
// op's name cut to its last segment after '/', '#' or ':' (a SOAPAction
// URI names its operation last), or the element's local name when nothing
// is left; in the namespace of op's element, with its children qualified
// as op's were. A name chosen by the service (see ResponseName) replaces
// the local name, and its namespace, when not empty, the namespace, with
// the children in it, as encoding/xml writes them.
func (op Operation) Response(chosen xml.Name) Response {
	name := op.Name
	if i := strings.LastIndexAny(name, "/#:"); i >= 0 {
		name = name[i+1:]
	}
	if name == "" {
		name = op.Element.Local
	}
	r := Response{Name: xml.Name{Space: op.Element.Space, Local: name + "Response"}, Qualified: op.Qualified}
	if name == "" {
		r.Name.Local = ""
	}
	if chosen.Local != "" {
		r.Name.Local = chosen.Local
	}
	if chosen.Space != "" {
		r.Name.Space, r.Qualified = chosen.Space, true
	}
	return r
}

// ResponseName is the name t, a service's output type, gives its SOAP
// answer: the tag of an XMLName field of type xml.Name, as encoding/xml
// reads it ("urn:quotes GetQuoteResponse", or only a name). Zero when t
// has no such field.
func ResponseName(t reflect.Type) xml.Name {
	t = indirect(t)
	if t == nil || t.Kind() != reflect.Struct {
		return xml.Name{}
	}
	f, ok := t.FieldByName("XMLName")
	if !ok || f.Type != xmlNameType {
		return xml.Name{}
	}
	tag, _, _ := strings.Cut(f.Tag.Get("xml"), ",")
	space, local, found := strings.Cut(strings.TrimSpace(tag), " ")
	if !found {
		space, local = "", space
	}
	return xml.Name{Space: strings.TrimSpace(space), Local: strings.TrimSpace(local)}
}

var xmlNameType = reflect.TypeFor[xml.Name]()

// EncodeSOAP wraps a service's JSON output in a SOAP envelope of the given
// version: the Body holds resp's element, converted as EncodeXML does. It
// returns the body and its Content-Type.
func EncodeSOAP(version Format, resp Response, data []byte) (body []byte, contentType string, err error) {
	if !version.IsSOAP() {
		return nil, "", fmt.Errorf("encode SOAP: data format %v is not SOAP", version)
	}
	if resp.Name.Local == "" {
		return nil, "", fmt.Errorf("encode SOAP: no operation name")
	}
	name, err := escapeName(resp.Name.Local)
	if err != nil || name != resp.Name.Local {
		return nil, "", fmt.Errorf("encode SOAP: %q is not an XML element name", resp.Name.Local)
	}
	var xmlns string
	if ns := resp.Name.Space; ns != "" {
		var b bytes.Buffer
		if resp.Qualified {
			b.WriteString(` xmlns="`) // the children inherit it
		} else {
			name = "ns:" + name // the children stay in no namespace
			b.WriteString(` xmlns:ns="`)
		}
		writeText(&b, ns)
		b.WriteByte('"')
		xmlns = b.String()
	}
	var b bytes.Buffer
	b.WriteString(xmlHeader)
	b.WriteString(`<soap:Envelope xmlns:soap="` + envelopeNS(version) + `"><soap:Body>`)
	if err := writeRoot(&b, data, name, xmlns); err != nil {
		return nil, "", fmt.Errorf("encode SOAP %s: %w", resp.Name.Local, err)
	}
	b.WriteString(`</soap:Body></soap:Envelope>`)
	return b.Bytes(), version.ContentType(), nil
}

// The statuses of a SOAP fault (SOAP 1.1 section 6.2 and WS-I Basic
// Profile R1126: every fault is a 500; SOAP 1.2 Part 2 section 7.5.2.2:
// Sender faults 400, the others 500).
const (
	faultStatusSender = http.StatusBadRequest
	faultStatus       = http.StatusInternalServerError
)

// Fault returns a SOAP fault of the given version answering a request
// error that has status in other formats, its Content-Type, and the HTTP
// status the SOAP binding gives it: 500 for every SOAP 1.1 fault; 400 for
// a SOAP 1.2 Sender fault and 500 for any other.
//
// The code is the error's own when it is a *FaultError (VersionMismatch,
// MustUnderstand); else a 4xx status is the client's fault (soap:Client,
// or env:Sender in SOAP 1.2), anything else the server's (soap:Server or
// env:Receiver). The fault string is the error's text. The detail holds
// status and cid (cid only when not empty) in the namespace
// NamespaceFault, except for a SOAP 1.1 MustUnderstand fault, which is
// about a header and so has no detail (SOAP 1.1 section 4.4). For a
// version that is not SOAP it returns XMLError's body and status.
func Fault(version Format, status int, err error, cid string) (body []byte, contentType string, httpStatus int) {
	if !version.IsSOAP() {
		return XMLError(status, err.Error(), cid), XML.ContentType(), status
	}
	var fe *FaultError
	if !errors.As(err, &fe) {
		fe = &FaultError{Message: err.Error()}
	}
	if fe.Envelope.IsSOAP() {
		version = fe.Envelope
	}
	code := fe.Code
	if code == "" {
		client := status >= 400 && status < 500
		switch {
		case version == SOAP11 && client:
			code = "Client"
		case version == SOAP11:
			code = "Server"
		case client:
			code = "Sender"
		default:
			code = "Receiver"
		}
	}
	httpStatus = faultStatus
	if version == SOAP12 && code == "Sender" {
		httpStatus = faultStatusSender
	}
	return fault(version, code, fe, status, cid), version.ContentType(), httpStatus
}

// NamespaceFault is the namespace of the detail entries of Weft's SOAP
// faults: <status> (the HTTP status the error has on JSON and XML
// channels) and <cid>.
const NamespaceFault = "urn:weft:fault"

// fault writes a fault envelope with the given local code name.
func fault(version Format, code string, fe *FaultError, status int, cid string) []byte {
	var b bytes.Buffer
	b.WriteString(xmlHeader)
	if version == SOAP12 {
		b.WriteString(`<env:Envelope xmlns:env="` + NamespaceSOAP12 + `">`)
		faultHeader12(&b, fe)
		b.WriteString(`<env:Body><env:Fault><env:Code><env:Value>env:` + code + `</env:Value></env:Code><env:Reason><env:Text xml:lang="en">`)
		writeText(&b, fe.Message)
		b.WriteString(`</env:Text></env:Reason><env:Detail>`)
		faultDetail(&b, status, cid)
		b.WriteString(`</env:Detail></env:Fault></env:Body></env:Envelope>`)
		return b.Bytes()
	}
	b.WriteString(`<soap:Envelope xmlns:soap="` + NamespaceSOAP11 + `">`)
	if fe.Envelope == SOAP11 && code == CodeVersionMismatch {
		// A SOAP 1.2 channel's answer to a SOAP 1.1 envelope says which it
		// takes (SOAP 1.2 Part 1, appendix A).
		b.WriteString(`<soap:Header><upg:Upgrade xmlns:upg="` + NamespaceSOAP12 + `"><upg:SupportedEnvelope qname="upg:Envelope"/></upg:Upgrade></soap:Header>`)
	}
	b.WriteString(`<soap:Body><soap:Fault><faultcode>soap:` + code + `</faultcode><faultstring>`)
	writeText(&b, fe.Message)
	b.WriteString(`</faultstring>`)
	if code != CodeMustUnderstand {
		b.WriteString(`<detail>`)
		faultDetail(&b, status, cid)
		b.WriteString(`</detail>`)
	}
	b.WriteString(`</soap:Fault></soap:Body></soap:Envelope>`)
	return b.Bytes()
}

// faultHeader12 writes the header blocks a SOAP 1.2 fault carries: one
// env:NotUnderstood for each header a MustUnderstand fault refused
// (section 5.4.8), and env:Upgrade naming the envelope this node takes for
// a VersionMismatch (section 5.4.7).
func faultHeader12(b *bytes.Buffer, fe *FaultError) {
	switch {
	case fe.Code == CodeMustUnderstand && len(fe.NotUnderstood) > 0:
		b.WriteString(`<env:Header>`)
		for _, n := range fe.NotUnderstood {
			if n.Space == "" {
				b.WriteString(`<env:NotUnderstood qname="`)
				writeText(b, n.Local)
				b.WriteString(`"/>`)
				continue
			}
			b.WriteString(`<env:NotUnderstood xmlns:h="`)
			writeText(b, n.Space)
			b.WriteString(`" qname="h:`)
			writeText(b, n.Local)
			b.WriteString(`"/>`)
		}
		b.WriteString(`</env:Header>`)
	case fe.Code == CodeVersionMismatch:
		b.WriteString(`<env:Header><env:Upgrade><env:SupportedEnvelope qname="env:Envelope"/></env:Upgrade></env:Header>`)
	}
}

// faultDetail writes the detail entries: status and cid.
func faultDetail(b *bytes.Buffer, status int, cid string) {
	b.WriteString(`<w:status xmlns:w="` + NamespaceFault + `">` + strconv.Itoa(status) + `</w:status>`)
	if cid != "" {
		b.WriteString(`<w:cid xmlns:w="` + NamespaceFault + `">`)
		writeText(b, cid)
		b.WriteString(`</w:cid>`)
	}
}

// XMLError is the error body of a plain XML channel:
// <error><message>…</message><cid>…</cid></error>. status is not written;
// it is taken for symmetry with Fault and goes in the HTTP status line.
func XMLError(status int, message, cid string) []byte {
	_ = status
	var b bytes.Buffer
	b.WriteString(xmlHeader + "<error><message>")
	writeText(&b, message)
	b.WriteString("</message><cid>")
	writeText(&b, cid)
	b.WriteString("</cid></error>")
	return b.Bytes()
}
