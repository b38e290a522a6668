package format

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

type address struct {
	City string `json:"city"`
	Zip  int    `json:"zip"`
}

type base struct {
	ID int64 `json:"id"`
}

type order struct {
	base
	Name   string         `json:"name"`
	Qty    int            `json:"qty"`
	Price  float64        `json:"price"`
	Paid   bool           `json:"paid"`
	Tags   []string       `json:"tags"`
	Counts []int          `json:"counts"`
	Addr   *address       `json:"address"`
	Extra  map[string]int `json:"extra"`
	Code   int            `json:"code,string"`
	When   time.Time      `json:"when"`
	Blob   []byte         `json:"blob"`
	Small  uint8
	Skip   int     `json:"-"`
	N      int     `json:"@n"`
	Grid   [][]int `json:"grid"`
}

var orderType = reflect.TypeFor[order]()

// sameJSON reports whether two JSON texts hold the same value.
func sameJSON(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want: %v", err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestDecodeXML(t *testing.T) {
	tests := []struct {
		name string
		body string
		hint reflect.Type
		want string
	}{
		{name: "empty", body: "", want: `{}`},
		{name: "only prolog and comment", body: "<?xml version=\"1.0\"?>\n<!-- nothing -->\n", want: `{}`},
		{name: "strings without hint", body: `<req><name>Ada</name><qty>3</qty></req>`, want: `{"name":"Ada","qty":"3"}`},
		{name: "coerced by hint", hint: orderType,
			body: `<req><id>+7</id><name>Ada</name><qty> 3 </qty><price>2.50</price><paid>1</paid><Small>200</Small></req>`,
			want: `{"id":7,"name":"Ada","qty":3,"price":2.5,"paid":true,"Small":200}`},
		{name: "pointer hint", hint: reflect.TypeFor[*order](), body: `<req><qty>3</qty></req>`, want: `{"qty":3}`},
		{name: "case-insensitive field", hint: orderType, body: `<req><small>5</small><QTY>1</QTY></req>`, want: `{"small":5,"QTY":1}`},
		{name: "repeated become array", body: `<r><t>a</t><x>1</x><t>b</t></r>`, want: `{"t":["a","b"],"x":"1"}`},
		{name: "slice hint makes array of one", hint: orderType, body: `<r><tags>a</tags><counts>4</counts></r>`, want: `{"tags":["a"],"counts":[4]}`},
		{name: "slice of numbers", hint: orderType, body: `<r><counts>1</counts><counts>2</counts></r>`, want: `{"counts":[1,2]}`},
		{name: "nested struct", hint: orderType, body: `<r><address><city>Oslo</city><zip>0150</zip></address></r>`, want: `{"address":{"city":"Oslo","zip":150}}`},
		{name: "map", hint: orderType, body: `<r><extra><a>1</a><b>2</b></extra></r>`, want: `{"extra":{"a":1,"b":2}}`},
		{name: "string option keeps string", hint: orderType, body: `<r><code>42</code></r>`, want: `{"code":"42"}`},
		{name: "text unmarshaler keeps string", hint: orderType, body: `<r><when>2026-01-02T03:04:05Z</when><blob>aGk=</blob></r>`, want: `{"when":"2026-01-02T03:04:05Z","blob":"aGk="}`},
		{name: "skipped field not coerced", hint: orderType, body: `<r><Skip>1</Skip></r>`, want: `{"Skip":"1"}`},
		{name: "nested arrays", hint: orderType, body: `<r><grid><item>1</item><item>2</item></grid><grid><item>3</item></grid></r>`, want: `{"grid":[[1,2],[3]]}`},
		{name: "nested arrays without hint", body: `<r><grid><item>1</item><item>2</item></grid></r>`, want: `{"grid":{"item":["1","2"]}}`},
		{name: "attributes", hint: orderType, body: `<r n="5" kind="x"><name>A</name></r>`, want: `{"@n":5,"@kind":"x","name":"A"}`},
		{name: "attribute and text", body: `<r><price currency="EUR">5</price></r>`, want: `{"price":{"@currency":"EUR","#text":"5"}}`},
		{name: "root text", body: `<r a="1">hi</r>`, want: `{"@a":"1","#text":"hi"}`},
		{name: "namespaces use local names", body: `<p:r xmlns:p="urn:p" xmlns:q="urn:q" xmlns="urn:d"><q:name q:lang="en">A</q:name><b>x</b></p:r>`, want: `{"name":{"@lang":"en","#text":"A"},"b":"x"}`},
		{name: "xsi nil", hint: orderType, body: `<r xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><name xsi:nil="true"/><qty xsi:type="xs:int">2</qty></r>`, want: `{"name":null,"qty":2}`},
		{name: "empty elements by hint", hint: orderType, body: `<r><qty/><paid></paid><address/><name/><counts/></r>`, want: `{"qty":null,"paid":null,"address":{},"name":"","counts":[null]}`},
		{name: "escaped names", body: `<r><first_x0020_name>A</first_x0020_name></r>`, want: `{"first name":"A"}`},
		{name: "entities and cdata", body: `<r><a>&lt;&amp;&#65;&#x42;</a><b><![CDATA[<x>]]></b></r>`, want: `{"a":"<&AB","b":"<x>"}`},
		{name: "text kept verbatim", body: "<r><a>  two\nlines </a></r>", want: `{"a":"  two\nlines "}`},
		{name: "whitespace between children dropped", body: "<r>\n  <a>1</a>\n  <b>2</b>\n</r>\n", want: `{"a":"1","b":"2"}`},
		{name: "byte order mark", body: "\ufeff<r><a>1</a></r>", want: `{"a":"1"}`},
		{name: "unicode", body: `<r><ключ>値 "q" \ </ключ></r>`, want: `{"ключ":"値 \"q\" \\ "}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeXML([]byte(tt.body), "", tt.hint)
			if err != nil {
				t.Fatalf("DecodeXML: %v", err)
			}
			sameJSON(t, got, tt.want)
		})
	}
}

func TestDecodeXMLKeepsOrder(t *testing.T) {
	got, err := DecodeXML([]byte(`<r z="1"><b>1</b><a>2</a><b>3</b></r>`), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"@z":"1","b":["1","3"],"a":"2"}`; string(got) != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestDecodeXMLErrors(t *testing.T) {
	deep := func(n int) string {
		return strings.Repeat("<a>", n) + strings.Repeat("</a>", n)
	}
	tests := []struct {
		name string
		body string
		hint reflect.Type
		want []string
	}{
		{name: "mismatched tag", body: "<r>\n<a>1</a>\n<b>2</c>\n</r>", want: []string{"malformed XML at line 3", "c"}},
		{name: "unclosed", body: "<r>\n<a>", want: []string{"malformed XML at line 2", "unexpected EOF"}},
		{name: "not XML", body: "{\"json\":true}", want: []string{"malformed XML at line 1"}},
		{name: "doctype", body: "<?xml version=\"1.0\"?>\n<!DOCTYPE r><r/>", want: []string{"line 2", "DOCTYPE", "refused"}},
		{name: "xxe", body: `<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>`, want: []string{"DOCTYPE", "refused"}},
		{name: "undefined entity", body: `<r>&xxe;</r>`, want: []string{"malformed XML at line 1", "xxe"}},
		{name: "too deep", body: deep(MaxDepth + 1), want: []string{"deeper than 64"}},
		{name: "too many elements", body: "<r>" + strings.Repeat("<a/>", MaxElements) + "</r>", want: []string{"more than 100000 elements"}},
		{name: "second root", body: "<a/>\n<b/>", want: []string{"line 2", "second root element <b>"}},
		{name: "text outside root", body: "<a/>junk", want: []string{"text outside the root"}},
		{name: "bad integer", hint: orderType, body: "<r>\n<qty>three</qty></r>", want: []string{"element <qty> at line 2", `"three" is not an integer`}},
		{name: "overflow", hint: orderType, body: "<r><Small>300</Small></r>", want: []string{"<Small>", `"300" is out of range: want an integer from 0 to 255`}},
		{name: "bad float", hint: orderType, body: "<r><price>NaN</price></r>", want: []string{"<price>", "not a number"}},
		{name: "hex float", hint: orderType, body: "<r><price>0x1p3</price></r>", want: []string{"not a number"}},
		{name: "bad bool", hint: orderType, body: "<r><paid>yes</paid></r>", want: []string{"<paid>", "not a boolean"}},
		{name: "duplicate attribute", body: `<r xmlns:a="urn:a" xmlns:b="urn:b" a:id="1" b:id="2"/>`, want: []string{"attribute \"id\" appears twice"}},
		{name: "unknown encoding", body: `<?xml version="1.0" encoding="X-NO-SUCH"?><r/>`, want: []string{`the XML declaration's encoding "X-NO-SUCH" is not supported`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeXML([]byte(tt.body), "", tt.hint)
			if err == nil {
				t.Fatalf("DecodeXML succeeded: %s", got)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	if _, err := DecodeXML([]byte(deep(MaxDepth)), "", nil); err != nil {
		t.Fatalf("depth %d refused: %v", MaxDepth, err)
	}
}

// goKind matches a Go kind name where a message should have words.
var goKind = regexp.MustCompile(`\ba (u?int\d*|uintptr|float\d+|bool)\b`)

// TestNumberWording checks that text that is not what a field takes is
// named in words, not in Go's kind names.
func TestNumberWording(t *testing.T) {
	type kinds struct {
		I   int     `json:"i"`
		I8  int8    `json:"i8"`
		I64 int64   `json:"i64"`
		U   uint    `json:"u"`
		U16 uint16  `json:"u16"`
		F32 float32 `json:"f32"`
		F   float64 `json:"f"`
		B   bool    `json:"b"`
	}
	hint := reflect.TypeFor[kinds]()
	tests := []struct {
		field, text, want string
	}{
		{"i", "abc", `"abc" is not an integer`},
		{"i", "1.5", `"1.5" is not an integer`},
		{"i8", "200", `"200" is out of range: want an integer from -128 to 127`},
		{"i64", "99999999999999999999", `"99999999999999999999" is out of range: want an integer from -9223372036854775808 to 9223372036854775807`},
		{"u", "abc", `"abc" is not a non-negative integer`},
		{"u", "-3", `"-3" is negative; want a non-negative integer`},
		{"u16", "70000", `"70000" is out of range: want an integer from 0 to 65535`},
		{"f32", "1e39", `"1e39" is out of range for a 32-bit number`},
		{"f", "ten", `"ten" is not a number`},
		{"b", "yes", `"yes" is not a boolean (want true, false, 1 or 0)`},
	}
	for _, tt := range tests {
		t.Run(tt.field+" "+tt.text, func(t *testing.T) {
			_, err := DecodeXML([]byte("<r><"+tt.field+">"+tt.text+"</"+tt.field+"></r>"), "", hint)
			if err == nil || !strings.HasSuffix(err.Error(), ": "+tt.want) {
				t.Fatalf("DecodeXML error %v, want one ending in %q", err, tt.want)
			}
			_, err = MergeParams(nil, hint, map[string]string{tt.field: tt.text}, nil)
			if want := "path param " + tt.field + ": " + tt.want; err == nil || err.Error() != want {
				t.Fatalf("MergeParams error %v, want %q", err, want)
			}
			if goKind.MatchString(err.Error()) {
				t.Fatalf("error %q names a Go kind", err)
			}
		})
	}
}
