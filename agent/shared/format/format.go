// Package format converts channel request and response bodies between the
// wire formats a channel speaks (JSON, plain XML, SOAP 1.1 and SOAP 1.2) and
// the JSON a Weft service takes and returns.
//
// It is a leaf package: it imports only the standard library and
// golang.org/x/text's encodings, so the agent's channel layer can use it
// without pulling anything else in.
//
// Decoding builds a JSON object from the XML: child elements become keys
// (local names, namespaces dropped), repeated children become arrays,
// attributes become "@name" keys, text next to child elements becomes a
// "#text" key, and text-only elements become strings, or numbers and
// booleans when the service's input type says so. Encoding is the inverse.
// DTDs are refused and documents are bounded in depth and element count.
// XML is read in the encoding its byte order mark, the Content-Type's
// charset or its declaration names (UTF-8, UTF-16, ISO-8859-x,
// windows-125x and the others of x/text); one it does not know is refused
// with a *MediaError naming it.
package format

import (
	"fmt"
	"mime"
	"strings"
)

// Format is the data format of a channel's request and response bodies.
type Format int

// The formats a channel can speak. The zero value is JSON.
const (
	JSON Format = iota
	XML
	SOAP11
	SOAP12
)

// Limits applied to every XML document decoded by this package.
const (
	// MaxDepth is the deepest element nesting accepted, the root being 1.
	MaxDepth = 64
	// MaxElements is the most elements accepted in one document.
	MaxElements = 100_000
)

// SOAP envelope namespaces.
const (
	NamespaceSOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
	NamespaceSOAP12 = "http://www.w3.org/2003/05/soap-envelope"
)

var names = [...]string{JSON: "json", XML: "xml", SOAP11: "soap11", SOAP12: "soap12"}

// Parse returns the Format named by s: "json", "xml", "soap11" or "soap12"
// (case-insensitive). The empty string is JSON, the default of a channel.
func Parse(s string) (Format, error) {
	if strings.TrimSpace(s) == "" {
		return JSON, nil
	}
	for f, n := range names {
		if strings.EqualFold(strings.TrimSpace(s), n) {
			return Format(f), nil
		}
	}
	return 0, fmt.Errorf("data format %q: want one of json, xml, soap11, soap12", s)
}

// String returns the name Parse accepts for f.
func (f Format) String() string {
	if f >= 0 && int(f) < len(names) {
		return names[f]
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// IsSOAP reports whether f is SOAP 1.1 or SOAP 1.2.
func (f Format) IsSOAP() bool { return f == SOAP11 || f == SOAP12 }

// ContentType is the Content-Type of a response body in format f.
func (f Format) ContentType() string {
	switch f {
	case XML:
		return "application/xml; charset=utf-8"
	case SOAP11:
		return "text/xml; charset=utf-8"
	case SOAP12:
		return "application/soap+xml; charset=utf-8"
	default:
		return "application/json"
	}
}

// soapName is how error messages name a format: "SOAP 1.1", "XML".
func soapName(f Format) string {
	switch f {
	case SOAP11:
		return "SOAP 1.1"
	case SOAP12:
		return "SOAP 1.2"
	case XML, JSON:
		return strings.ToUpper(f.String())
	}
	return f.String()
}

// aChannel is how error messages name a channel of format f: "a SOAP 1.1
// channel", "an XML channel".
func aChannel(f Format) string {
	if f == XML {
		return "an XML channel"
	}
	return "a " + soapName(f) + " channel"
}

// Takes names the Content-Types a request body in format f may have, for
// error messages.
func (f Format) Takes() string {
	switch f {
	case XML:
		return "application/xml or text/xml"
	case SOAP11:
		return "text/xml"
	case SOAP12:
		return "application/soap+xml"
	default:
		return "application/json"
	}
}

// CheckContentType checks that a request's Content-Type suits format f and
// returns the SOAP 1.2 "action" parameter, if any. An empty Content-Type is
// accepted: whether a body may come without one is the channel's to say.
// JSON wants application/json or a "+json" type; XML wants application/xml,
// text/xml or a "+xml" type; SOAP 1.1 wants text/xml; SOAP 1.2 wants
// application/soap+xml. A Content-Type that does not suit gives a
// *MediaError.
func CheckContentType(f Format, contentType string) (action string, err error) {
	if strings.TrimSpace(contentType) == "" {
		return "", nil
	}
	mt, params, perr := mime.ParseMediaType(contentType)
	var ok bool
	switch f {
	case JSON:
		ok = mt == "application/json" || strings.HasSuffix(mt, "+json")
	case XML:
		ok = mt == "application/xml" || mt == "text/xml" || strings.HasSuffix(mt, "+xml")
	case SOAP11:
		ok = mt == "text/xml"
	case SOAP12:
		ok = mt == "application/soap+xml"
	default:
		return "", fmt.Errorf("content type %q: unknown data format %v", contentType, f)
	}
	if perr != nil || !ok {
		return "", &MediaError{Message: fmt.Sprintf("content type %q: %s takes %s", contentType, aChannel(f), f.Takes())}
	}
	if f == SOAP12 {
		action = strings.TrimSpace(params["action"])
	}
	return action, nil
}
