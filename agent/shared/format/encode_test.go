package format

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func TestEncodeXML(t *testing.T) {
	tests := []struct {
		name string
		json string
		root string
		want string
	}{
		{name: "object", json: `{"greeting":"Hello","n":3,"ok":true,"f":-1.5e3}`,
			want: `<response><greeting>Hello</greeting><n>3</n><ok>true</ok><f>-1.5e3</f></response>`},
		{name: "custom root", json: `{"a":"1"}`, root: "greeting", want: `<greeting><a>1</a></greeting>`},
		{name: "arrays repeat", json: `{"tags":["a","b"],"none":[]}`, want: `<response><tags>a</tags><tags>b</tags></response>`},
		{name: "nulls omitted", json: `{"a":null,"b":[1,null,2],"@c":null}`, want: `<response><b>1</b><b>2</b></response>`},
		{name: "nested", json: `{"addr":{"city":"Oslo","geo":{"lat":1}}}`, want: `<response><addr><city>Oslo</city><geo><lat>1</lat></geo></addr></response>`},
		{name: "attributes and text", json: `{"name":"x","@id":7,"#text":"t","@q":"a\"b<"}`, want: `<response id="7" q="a&#34;b&lt;"><name>x</name>t</response>`},
		{name: "escaped text", json: `{"m":"<&>"}`, want: `<response><m>&lt;&amp;&gt;</m></response>`},
		{name: "escaped names", json: `{"first name":1,"1st":2,"a:b":3,"_x":4,"ü":5}`,
			want: `<response><first_x0020_name>1</first_x0020_name><_x0031_st>2</_x0031_st><a_x003A_b>3</a_x003A_b><_x005F_x>4</_x005F_x><ü>5</ü></response>`},
		{name: "nested arrays", json: `{"m":[[1,2],[],[3]]}`, want: `<response><m><item>1</item><item>2</item></m><m></m><m><item>3</item></m></response>`},
		{name: "empty object", json: `{}`, want: `<response></response>`},
		{name: "empty body", json: ``, want: `<response/>`},
		{name: "null", json: `null`, want: `<response/>`},
		{name: "top-level scalar", json: `"hi"`, want: `<response>hi</response>`},
		{name: "top-level array", json: `[1,{"a":2}]`, want: `<response><item>1</item><item><a>2</a></item></response>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodeXML([]byte(tt.json), tt.root)
			if err != nil {
				t.Fatalf("EncodeXML: %v", err)
			}
			if !bytes.HasPrefix(got, []byte(xmlHeader)) {
				t.Fatalf("no XML header: %s", got)
			}
			if s := strings.TrimPrefix(string(got), xmlHeader); s != tt.want {
				t.Fatalf("got  %s\nwant %s", s, tt.want)
			}
		})
	}
}

func TestEncodeXMLErrors(t *testing.T) {
	tests := []struct {
		name string
		json string
		root string
		want string
	}{
		{name: "empty key", json: `{"a":{"":1}}`, want: "$.a: an empty key"},
		{name: "empty attribute name", json: `{"@":1}`, want: "$.@: an empty key"},
		{name: "attribute object", json: `{"x":{"@id":{"a":1}}}`, want: "$.x.@id: an attribute takes"},
		{name: "text array", json: `{"#text":[1]}`, want: "$.#text: text takes"},
		{name: "invalid JSON", json: `{"a":}`, want: "invalid JSON at offset"},
		{name: "trailing data", json: `{} {}`, want: "data after the value"},
		{name: "truncated", json: `{"a":[1`, want: "invalid JSON"},
		{name: "bad root", json: `{}`, root: "1x", want: `root "1x" is not an XML element name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodeXML([]byte(tt.json), tt.root)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("EncodeXML = %s, %v; want error containing %q", got, err, tt.want)
			}
		})
	}
}

func TestXMLRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		json string
		hint reflect.Type
	}{
		{name: "strings", json: `{"a":"1","b":"two words","c":"<&>\"'"}`},
		{name: "arrays", json: `{"t":["a","b","c"],"u":"x"}`},
		{name: "attributes", json: `{"@id":"7","item":{"@lang":"en","#text":"hi"}}`},
		{name: "nested", json: `{"o":{"p":{"q":"deep"}}}`},
		{name: "odd keys", json: `{"first name":"a","1":"b","a:b":"c","_x0020_":"d","@x y":"e"}`},
		{name: "typed", hint: orderType,
			json: `{"id":9,"name":"Ada","qty":3,"price":2.5,"paid":false,"tags":["x"],"counts":[1,2],"address":{"city":"Oslo","zip":150},"extra":{"k":4},"code":"42","grid":[[1,2],[3]]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x, err := EncodeXML([]byte(tt.json), "")
			if err != nil {
				t.Fatalf("EncodeXML: %v", err)
			}
			back, err := DecodeXML(x, "", tt.hint)
			if err != nil {
				t.Fatalf("DecodeXML(%s): %v", x, err)
			}
			sameJSON(t, back, tt.json)
		})
	}
}
