package handler

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/weft-dev/weft/agent/sdk"
)

// fuzzItem and fuzzInput are a service input with the shapes decode and
// its required-field check walk: nested objects, lists and maps of them.
type fuzzItem struct {
	SKU string  `json:"sku" weft:"required"`
	Qty int     `json:"qty"`
	Tag *string `json:"tag"`
}

type fuzzInput struct {
	Name  string              `json:"name" weft:"required"`
	Age   int                 `json:"age"`
	Ratio float64             `json:"ratio"`
	OK    bool                `json:"ok"`
	Main  fuzzItem            `json:"main"`
	Items []fuzzItem          `json:"items"`
	ByID  map[string]fuzzItem `json:"by_id"`
	Extra map[string]any      `json:"extra"`
}

// FuzzDecodeJSON feeds arbitrary bodies to the JSON decoder of service
// input, which is what checks a JSON channel's body (the channel leaves its
// syntax to it). The seed corpus is in testdata/fuzz/FuzzDecodeJSON/.
func FuzzDecodeJSON(f *testing.F) {
	svc, err := New("fuzz", func(_ *sdk.Context, in fuzzInput) (fuzzInput, error) { return in, nil })
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		v, err := svc.decode(body)
		trimmed := bytes.TrimSpace(body)
		if len(trimmed) == 0 {
			trimmed = []byte("{}")
		}
		if !json.Valid(trimmed) {
			var at int
			if err == nil {
				t.Fatalf("decode(%q) took malformed JSON", body)
			}
			if _, serr := fmt.Sscanf(err.Error(), "malformed JSON at byte %d:", &at); serr != nil || at < 0 || at > len(body) {
				t.Fatalf("decode(%q) = %v, want an error naming a byte of the body", body, err)
			}
			return
		}
		if err != nil {
			if strings.HasPrefix(err.Error(), "malformed JSON") {
				t.Fatalf("decode(%q) says %v of valid JSON", body, err)
			}
			return
		}
		// What decodes encodes, and decodes again to the same.
		out, err := json.Marshal(v.Interface())
		if err != nil {
			t.Fatalf("decode(%q) gave a value that does not encode: %v", body, err)
		}
		again, err := svc.decode(out)
		if err != nil {
			t.Fatalf("decode(%q) encoded as %s, which does not decode: %v", body, out, err)
		}
		if out2, _ := json.Marshal(again.Interface()); !bytes.Equal(out, out2) {
			t.Fatalf("decode(%q): %s then %s", body, out, out2)
		}
	})
}
