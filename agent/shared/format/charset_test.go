package format

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"unicode/utf16"
)

// utf16Bytes encodes s as UTF-16 in the given byte order, with a byte
// order mark when bom is set: the bytes a UTF-16 client sends.
func utf16Bytes(s string, order binary.ByteOrder, bom bool) []byte {
	units := utf16.Encode([]rune(s))
	if bom {
		units = append([]uint16{0xFEFF}, units...)
	}
	b := make([]byte, 2*len(units))
	for i, u := range units {
		order.PutUint16(b[2*i:], u)
	}
	return b
}

// TestDecodeXMLEncodings decodes documents sent in the encodings real
// clients use, as the bytes they send: é is E9 in ISO-8859-1, € is 80 in
// windows-1252, and UTF-16 comes with and without a byte order mark.
func TestDecodeXMLEncodings(t *testing.T) {
	const want = `{"name":"Renée Müller","price":"12 €"}`
	const text = `<order><name>Renée Müller</name><price>12 €</price></order>`
	tests := []struct {
		name        string
		contentType string
		body        []byte
		want        string
	}{
		{name: "ISO-8859-1 declared", body: []byte("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><order><name>Ren\xe9e M\xfcller</name></order>"), want: `{"name":"Renée Müller"}`},
		{name: "latin1 alias declared", body: []byte("<?xml version='1.0' encoding='latin1'?><order><name>Ren\xe9e M\xfcller</name></order>"), want: `{"name":"Renée Müller"}`},
		{name: "windows-1252 declared", body: []byte("<?xml version=\"1.0\" encoding=\"windows-1252\"?><order><name>Ren\xe9e M\xfcller</name><price>12 \x80</price></order>"), want: want},
		{name: "cp1252 label declared", body: []byte("<?xml version=\"1.0\" encoding=\"cp1252\"?><order><name>Ren\xe9e M\xfcller</name><price>12 \x80</price></order>"), want: want},
		{name: "ISO-8859-1 by charset only", contentType: "application/xml; charset=ISO-8859-1", body: []byte("<order><name>Ren\xe9e M\xfcller</name></order>"), want: `{"name":"Renée Müller"}`},
		{name: "charset beats the declaration", contentType: "text/xml; charset=windows-1252", body: []byte("<?xml version=\"1.0\" encoding=\"UTF-8\"?><order><name>Ren\xe9e M\xfcller</name><price>12 \x80</price></order>"), want: want},
		{name: "UTF-8 declared", contentType: "application/xml", body: []byte(`<?xml version="1.0" encoding="utf-8"?>` + text), want: want},
		{name: "UTF-8 with a byte order mark", body: append([]byte("\xef\xbb\xbf"), text...), want: want},
		{name: "UTF-16LE with a byte order mark", body: utf16Bytes(`<?xml version="1.0" encoding="UTF-16"?>`+text, binary.LittleEndian, true), want: want},
		{name: "UTF-16BE with a byte order mark", body: utf16Bytes(`<?xml version="1.0" encoding="UTF-16"?>`+text, binary.BigEndian, true), want: want},
		{name: "UTF-16LE without a mark", body: utf16Bytes(`<?xml version="1.0" encoding="UTF-16"?>`+text, binary.LittleEndian, false), want: want},
		{name: "UTF-16BE without a mark", body: utf16Bytes(`<?xml version="1.0" encoding="UTF-16"?>`+text, binary.BigEndian, false), want: want},
		{name: "UTF-16 by charset", contentType: "application/xml; charset=utf-16", body: utf16Bytes(text, binary.LittleEndian, true), want: want},
		{name: "UTF-16LE by charset without a mark", contentType: `text/xml; charset="UTF-16LE"`, body: utf16Bytes(text, binary.LittleEndian, false), want: want},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeXML(tt.body, tt.contentType, nil)
			if err != nil {
				t.Fatalf("DecodeXML: %v", err)
			}
			sameJSON(t, got, tt.want)
		})
	}
}

// TestDecodeXMLEncodingErrors checks that an encoding this package does
// not know is refused with a *MediaError that names it, never with
// encoding/xml's own words, and that bytes that are not what they claim
// are malformed XML.
func TestDecodeXMLEncodingErrors(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
		media       bool
		want        string
	}{
		{name: "unknown declared", body: `<?xml version="1.0" encoding="EBCDIC-XYZ"?><r/>`, media: true,
			want: `the XML declaration's encoding "EBCDIC-XYZ" is not supported: send UTF-8, UTF-16, ISO-8859-1`},
		{name: "unknown charset", contentType: "application/xml; charset=klingon", body: `<r/>`, media: true,
			want: `the Content-Type's charset "klingon" is not supported`},
		{name: "replacement encoding", body: `<?xml version="1.0" encoding="ISO-2022-KR"?><r/>`, media: true,
			want: `"ISO-2022-KR" is not supported`},
		{name: "not XML", contentType: "application/json", body: `<r/>`, media: true,
			want: `content type "application/json": an XML channel takes application/xml or text/xml`},
		{name: "Latin-1 bytes sent as UTF-8", contentType: "application/xml; charset=utf-8", body: "<r>Ren\xe9e</r>",
			want: "malformed XML at line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeXML([]byte(tt.body), tt.contentType, nil)
			if err == nil {
				t.Fatalf("DecodeXML succeeded: %s", got)
			}
			var me *MediaError
			if errors.As(err, &me) != tt.media || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v (a *MediaError: %v), want one containing %q (a *MediaError: %v)", err, me != nil, tt.want, tt.media)
			}
			if strings.Contains(err.Error(), "CharsetReader") || strings.Contains(err.Error(), "xml: ") {
				t.Fatalf("error %q speaks encoding/xml's words", err)
			}
		})
	}
}

// TestDecodeSOAPEncodings decodes SOAP envelopes sent in ISO-8859-1 and
// UTF-16, as .NET and Java clients may send them.
func TestDecodeSOAPEncodings(t *testing.T) {
	latin1 := []byte("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>" +
		`<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><m:Greet xmlns:m="urn:example"><m:name>Ren` + "\xe9e" + `</m:name></m:Greet></soap:Body></soap:Envelope>`)
	op, got, err := DecodeSOAP(latin1, SOAP11, "text/xml; charset=ISO-8859-1", `"Greet"`, hints)
	if err != nil {
		t.Fatalf("ISO-8859-1: %v", err)
	}
	if op.Name != "Greet" || op.Element.Space != "urn:example" {
		t.Fatalf("ISO-8859-1 operation %+v", op)
	}
	sameJSON(t, got, `{"name":"Renée"}`)

	u16 := utf16Bytes(`<?xml version="1.0" encoding="UTF-16"?>`+env12(`<env:Body><Greet><name>Zoë €</name><times>3</times></Greet></env:Body>`), binary.LittleEndian, true)
	_, got, err = DecodeSOAP(u16, SOAP12, "application/soap+xml; charset=utf-16", "", hints)
	if err != nil {
		t.Fatalf("UTF-16: %v", err)
	}
	sameJSON(t, got, `{"name":"Zoë €","times":3}`)

	_, _, err = DecodeSOAP([]byte(`<?xml version="1.0" encoding="EBCDIC-XYZ"?>`+env11(`<soap:Body><Greet/></soap:Body>`)), SOAP11, "text/xml", "", hints)
	var me *MediaError
	if !errors.As(err, &me) || !strings.Contains(err.Error(), `"EBCDIC-XYZ" is not supported`) {
		t.Fatalf("unknown encoding: %v, want a *MediaError naming it", err)
	}
}
