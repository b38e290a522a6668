package format

import (
	"encoding/json"
	"reflect"
	"testing"
)

// The seed corpora are in testdata/fuzz/<FuzzName>/.

func FuzzDecodeXML(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, hint := range []reflect.Type{nil, orderType} {
			out, err := DecodeXML(body, hint)
			if err != nil {
				continue
			}
			if !json.Valid(out) {
				t.Fatalf("DecodeXML(%q, %v) = %q: not JSON", body, hint, out)
			}
			// Whatever decodes must encode again.
			if _, err := EncodeXML(out, ""); err != nil && hint == nil {
				t.Fatalf("EncodeXML(DecodeXML(%q) = %s): %v", body, out, err)
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
		if op == "" {
			t.Fatalf("DecodeSOAP(%q) gave no operation", body)
		}
		if !json.Valid(out) {
			t.Fatalf("DecodeSOAP(%q) = %q: not JSON", body, out)
		}
	})
}
