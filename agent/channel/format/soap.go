package format

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
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
// marked mustUnderstand. FaultFor writes it with that code.
type FaultError struct {
	// Code is CodeVersionMismatch or CodeMustUnderstand.
	Code string
	// Message says what was wrong.
	Message string
}

// Error returns the message.
func (e *FaultError) Error() string { return e.Message }

// DecodeSOAP parses a SOAP envelope of the given version and converts the
// operation element, the first child of Body, like DecodeXML converts a
// root element, typed by hint(op) when hint is not nil.
//
// The operation is the SOAPAction header for SOAP 1.1 (quotes stripped) or
// the action parameter of the Content-Type for SOAP 1.2, when given, else
// the local name of the operation element. contentType must be text/xml for
// SOAP 1.1 and application/soap+xml for SOAP 1.2 (empty is accepted).
// Header entries are ignored, except that one marked mustUnderstand gives a
// *FaultError with CodeMustUnderstand; an envelope of the other version or
// an unknown namespace gives one with CodeVersionMismatch.
func DecodeSOAP(body []byte, version Format, contentType, soapAction string, hint func(operation string) reflect.Type) (op string, data []byte, err error) {
	if !version.IsSOAP() {
		return "", nil, fmt.Errorf("decode SOAP: data format %v is not SOAP", version)
	}
	action, err := CheckContentType(version, contentType)
	if err != nil {
		return "", nil, err
	}
	if version == SOAP11 {
		action = strings.Trim(strings.TrimSpace(soapAction), `"`)
	}
	root, err := parseTree(body)
	if err != nil {
		return "", nil, err
	}
	if root == nil {
		return "", nil, fmt.Errorf("%s request: empty body, want an Envelope", soapName(version))
	}
	want := envelopeNS(version)
	if root.name.Local != "Envelope" {
		return "", nil, &FaultError{CodeVersionMismatch, fmt.Sprintf("%s request: root %s, want a %s Envelope", soapName(version), root.where(), soapName(version))}
	}
	if root.name.Space != want {
		got := "unknown namespace " + fmt.Sprintf("%q", root.name.Space)
		switch root.name.Space {
		case NamespaceSOAP11:
			got = "a SOAP 1.1 envelope"
		case NamespaceSOAP12:
			got = "a SOAP 1.2 envelope"
		}
		return "", nil, &FaultError{CodeVersionMismatch, fmt.Sprintf("%s on a %s channel: Envelope namespace must be %s", got, soapName(version), want)}
	}
	var bodyElem *node
	for _, c := range root.children {
		if c.name.Space != want {
			continue
		}
		switch c.name.Local {
		case "Header":
			if bodyElem != nil {
				return "", nil, fmt.Errorf("%s request: %s: Header must come before Body", soapName(version), c.where())
			}
			if err := checkHeaders(c, version); err != nil {
				return "", nil, err
			}
		case "Body":
			if bodyElem == nil {
				bodyElem = c
			}
		}
	}
	if bodyElem == nil {
		return "", nil, fmt.Errorf("%s request: the Envelope has no Body", soapName(version))
	}
	if len(bodyElem.children) == 0 {
		return "", nil, fmt.Errorf("%s request: %s is empty, want the operation element", soapName(version), bodyElem.where())
	}
	opElem := bodyElem.children[0]
	op = action
	if op == "" {
		op = opElem.name.Local
	}
	var t reflect.Type
	if hint != nil {
		t = hint(op)
	}
	var b bytes.Buffer
	if err := writeObject(&b, opElem, t); err != nil {
		return "", nil, err
	}
	return op, b.Bytes(), nil
}

// checkHeaders refuses header entries marked mustUnderstand, since this
// package understands none.
func checkHeaders(h *node, version Format) error {
	for _, e := range h.children {
		for _, a := range e.attrs {
			v := strings.TrimSpace(a.Value)
			if a.Name.Space == envelopeNS(version) && a.Name.Local == "mustUnderstand" && (v == "1" || v == "true") {
				return &FaultError{CodeMustUnderstand, fmt.Sprintf("%s request: header %s is marked mustUnderstand and is not understood", soapName(version), e.where())}
			}
		}
	}
	return nil
}

// envelopeNS is the envelope namespace of a SOAP version.
func envelopeNS(version Format) string {
	if version == SOAP12 {
		return NamespaceSOAP12
	}
	return NamespaceSOAP11
}

// EncodeSOAP wraps a service's JSON output in a SOAP envelope of the given
// version: the Body holds <operationResponse>, converted as EncodeXML does.
// An operation that is a URI (a SOAPAction) is cut to its last segment after
// '/', '#' or ':'. It returns the body and its Content-Type.
func EncodeSOAP(version Format, operation string, data []byte) (body []byte, contentType string, err error) {
	if !version.IsSOAP() {
		return nil, "", fmt.Errorf("encode SOAP: data format %v is not SOAP", version)
	}
	if i := strings.LastIndexAny(operation, "/#:"); i >= 0 {
		operation = operation[i+1:]
	}
	if operation == "" {
		return nil, "", fmt.Errorf("encode SOAP: no operation name")
	}
	name, err := escapeName(operation + "Response")
	if err != nil {
		return nil, "", fmt.Errorf("encode SOAP: %w", err)
	}
	var b bytes.Buffer
	b.WriteString(xmlHeader)
	b.WriteString(`<soap:Envelope xmlns:soap="` + envelopeNS(version) + `"><soap:Body>`)
	if err := encodeInto(&b, data, name, ""); err != nil {
		return nil, "", fmt.Errorf("encode SOAP %s: %w", operation, err)
	}
	b.WriteString(`</soap:Body></soap:Envelope>`)
	return b.Bytes(), version.ContentType(), nil
}

// Fault returns a SOAP fault in the shape of the given version and its
// Content-Type: a 4xx status is the client's fault (soap:Client, or
// env:Sender in SOAP 1.2), anything else the server's (soap:Server or
// env:Receiver). cid, when not empty, goes in the detail. For a version that
// is not SOAP it returns XMLError's body.
func Fault(version Format, status int, message, cid string) (body []byte, contentType string) {
	client := status >= 400 && status < 500
	switch version {
	case SOAP11:
		code := "Server"
		if client {
			code = "Client"
		}
		return fault(version, code, message, cid), version.ContentType()
	case SOAP12:
		code := "Receiver"
		if client {
			code = "Sender"
		}
		return fault(version, code, message, cid), version.ContentType()
	}
	return XMLError(status, message, cid), XML.ContentType()
}

// FaultFor is Fault for an error: a *FaultError keeps its own code
// (VersionMismatch, MustUnderstand), any other error is a Client/Sender or
// Server/Receiver fault by status.
func FaultFor(version Format, status int, err error, cid string) (body []byte, contentType string) {
	var fe *FaultError
	if errors.As(err, &fe) && version.IsSOAP() {
		return fault(version, fe.Code, fe.Message, cid), version.ContentType()
	}
	return Fault(version, status, err.Error(), cid)
}

// fault writes a fault envelope with the given local code name.
func fault(version Format, code, message, cid string) []byte {
	var b bytes.Buffer
	b.WriteString(xmlHeader)
	if version == SOAP12 {
		b.WriteString(`<env:Envelope xmlns:env="` + NamespaceSOAP12 + `"><env:Body><env:Fault><env:Code><env:Value>env:` + code + `</env:Value></env:Code><env:Reason><env:Text xml:lang="en">`)
		writeText(&b, message)
		b.WriteString(`</env:Text></env:Reason>`)
		if cid != "" {
			b.WriteString(`<env:Detail><cid>`)
			writeText(&b, cid)
			b.WriteString(`</cid></env:Detail>`)
		}
		b.WriteString(`</env:Fault></env:Body></env:Envelope>`)
		return b.Bytes()
	}
	b.WriteString(`<soap:Envelope xmlns:soap="` + NamespaceSOAP11 + `"><soap:Body><soap:Fault><faultcode>soap:` + code + `</faultcode><faultstring>`)
	writeText(&b, message)
	b.WriteString(`</faultstring>`)
	if cid != "" {
		b.WriteString(`<detail><cid>`)
		writeText(&b, cid)
		b.WriteString(`</cid></detail>`)
	}
	b.WriteString(`</soap:Fault></soap:Body></soap:Envelope>`)
	return b.Bytes()
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
