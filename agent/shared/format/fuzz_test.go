package format

import (
	"encoding/json"
	"reflect"
	"testing"
)

// The seed corpora are in testdata/fuzz/<FuzzName>/.

// fuzzContentTypes are the Content-Types FuzzDecodeXML reads each body
// with: none (the declaration or a byte order mark decides), and charsets
// that make it convert the body before parsing.
var fuzzContentTypes = []string{"", "text/xml; charset=iso-8859-1", "application/xml; charset=utf-16"}

func FuzzDecodeXML(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, ct := range fuzzContentTypes {
			for _, hint := range []reflect.Type{nil, orderType} {
				out, err := DecodeXML(body, ct, hint)
				if err != nil {
					continue
				}
				if !json.Valid(out) {
					t.Fatalf("DecodeXML(%q, %q, %v) = %q: not JSON", body, ct, hint, out)
				}
				// Whatever decodes must encode again.
				if _, err := EncodeXML(out, ""); err != nil && hint == nil {
					t.Fatalf("EncodeXML(DecodeXML(%q, %q) = %s): %v", body, ct, out, err)
				}
			}
		}
	})
}

func FuzzDecodeSOAP(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte, soap12 bool, contentType, action string) {
		version := SOAP11
		if soap12 {
			version = SOAP12
		}
		op, out, err := DecodeSOAP(body, version, contentType, action, hints)
		if err != nil {
			return
		}
		if op.Name == "" {
			t.Fatalf("DecodeSOAP(%q) gave no operation", body)
		}
		if !json.Valid(out) {
			t.Fatalf("DecodeSOAP(%q) = %q: not JSON", body, out)
		}
	})
}
