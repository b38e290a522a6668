package recent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// red is Redacted as a JSON string.
const red = `"` + Redacted + `"`

func TestSampleRedacts(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"json flat", `{"user":"ann","password":"hunter2"}`, `{"user":"ann","password":` + red + `}`},
		{
			"json nested objects and arrays",
			`{"a":{"b":[{"token":"t1"},{"x":1,"Api_Key":"k"}]},"list":[1,2,{"client_secret":{"deep":"s"}}]}`,
			`{"a":{"b":[{"token":` + red + `},{"x":1,"Api_Key":` + red + `}]},"list":[1,2,{"client_secret":` + red + `}]}`,
		},
		{
			"json names by case and separators",
			`{"PassWord":"a","passwd":"b","X-Api-Key":"c","apikey":"d","access_token":"e","Authorization":"Bearer f","private_key":"g","key_pem":"h","name":"keep"}`,
			`{"PassWord":` + red + `,"passwd":` + red + `,"X-Api-Key":` + red + `,"apikey":` + red + `,"access_token":` + red + `,"Authorization":` + red + `,"private_key":` + red + `,"key_pem":` + red + `,"name":"keep"}`,
		},
		{
			"json values of every type",
			`{"secret":12345,"token":null,"apikey":[1,"x",{"a":2}],"private_key":{"pem":"p"},"password":true,"n":-1.5e3}`,
			`{"secret":` + red + `,"token":` + red + `,"apikey":` + red + `,"private_key":` + red + `,"password":` + red + `,"n":-1.5e3}`,
		},
		{"json escaped key", `{"pass\u0077ord":"x","a\"b":"keep"}`, `{"pass\u0077ord":` + red + `,"a\"b":"keep"}`},
		{"json escapes in a secret", `{"token":"a\"}b\\","k":"v"}`, `{"token":` + red + `,"k":"v"}`},
		{"json top-level array", `[{"password":"a"},{"ok":"b"}]`, `[{"password":` + red + `},{"ok":"b"}]`},
		{
			"json indented",
			"{\n  \"login\": {\n    \"password\" : \"hunter2\" ,\n    \"user\": \"ann\"\n  }\n}\n",
			"{\n  \"login\": {\n    \"password\" : " + red + " ,\n    \"user\": \"ann\"\n  }\n}\n",
		},
		{"json without secrets", `{"a":[1,2,3],"b":{"c":"d"}}`, `{"a":[1,2,3],"b":{"c":"d"}}`},
		{"json scalar", `"password"`, `"password"`},
		{"xml element", `<login><user>ann</user><password>hunter2</password></login>`, `<login><user>ann</user><password>` + Redacted + `</password></login>`},
		{
			"soap with namespaces",
			`<?xml version="1.0"?><soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:wsse="urn:wsse"><soap:Header><wsse:Security><wsse:UsernameToken><wsse:Username>ann</wsse:Username></wsse:UsernameToken><wsse:Password Type="PasswordText">hunter2</wsse:Password></wsse:Security></soap:Header><soap:Body><m:Get xmlns:m="urn:m"><m:Id>7</m:Id></m:Get></soap:Body></soap:Envelope>`,
			`<?xml version="1.0"?><soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:wsse="urn:wsse"><soap:Header><wsse:Security><wsse:UsernameToken>` + Redacted + `</wsse:UsernameToken><wsse:Password Type="PasswordText">` + Redacted + `</wsse:Password></wsse:Security></soap:Header><soap:Body><m:Get xmlns:m="urn:m"><m:Id>7</m:Id></m:Get></soap:Body></soap:Envelope>`,
		},
		{"xml nested content", `<a><ApiKey><part>1</part><!-- c --><part>2</part></ApiKey><b>x</b></a>`, `<a><ApiKey>` + Redacted + `</ApiKey><b>x</b></a>`},
		{"xml cdata", `<a><secret><![CDATA[s<>]]></secret></a>`, `<a><secret>` + Redacted + `</secret></a>`},
		{"xml attributes", `<auth password="x" user='ann' ns:token='t'/>`, `<auth password="` + Redacted + `" user='ann' ns:token='` + Redacted + `'/>`},
		{"xml empty secret", `<a><password/><token></token></a>`, `<a><password/><token></token></a>`},
		{"xml declared charset", `<?xml version="1.0" encoding="ISO-8859-1"?><a><password>x</password></a>`, `<?xml version="1.0" encoding="ISO-8859-1"?><a><password>` + Redacted + `</password></a>`},
		{"invalid json redacted as text", `{"password":"x"`, `{"password":"••••••••"`},
		{"invalid xml redacted as text", `<a><password>x</a>`, `<a><password>••••••••</a>`},
		{"a form redacted as text", `password=x&user=ann`, `password=••••••••&user=ann`},
		{"html-ish redacted as text", `<p>password: x<br></p>`, `<p>password: ••••••••<br></p>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, truncated := Sample([]byte(tt.body), 1<<20)
			if string(got) != tt.want || truncated {
				t.Fatalf("Sample =\n%s (truncated %v)\nwant\n%s", got, truncated, tt.want)
			}
			if json.Valid([]byte(tt.body)) && !json.Valid(got) {
				t.Errorf("redacted JSON is not valid: %s", got)
			}
		})
	}
}

func TestSampleEmpty(t *testing.T) {
	if got, truncated := Sample(nil, 10); got != nil || truncated {
		t.Fatalf("Sample(nil) = %q, %v", got, truncated)
	}
	if got, truncated := Sample([]byte("abc"), 0); got != nil || !truncated {
		t.Fatalf("Sample(n=0) = %q, %v; want nothing, truncated", got, truncated)
	}
}

func TestSampleTruncatesAfterRedaction(t *testing.T) {
	long := strings.Repeat("hunter2", 100)
	body := []byte(`{"user":"ann","password":"` + long + `","note":"` + strings.Repeat("é", 50) + `"}`)
	for n := 1; n < len(body)+5; n++ {
		got, truncated := Sample(body, n)
		if len(got) > n {
			t.Fatalf("n=%d: %d bytes", n, len(got))
		}
		if bytes.Contains(got, []byte("hunter")) {
			t.Fatalf("n=%d: the secret shows: %s", n, got)
		}
		if !utf8.Valid(got) {
			t.Fatalf("n=%d: cut inside a character: %q", n, got)
		}
		full, _ := Sample(body, 1<<20)
		if truncated != (len(full) > n) || !bytes.HasPrefix(full, got) {
			t.Fatalf("n=%d: %q truncated=%v; the whole sample is %d bytes", n, got, truncated, len(full))
		}
	}
}

func TestSampleCopies(t *testing.T) {
	body := []byte(`plain text body`)
	got, _ := Sample(body, 100)
	body[0] = 'X'
	if string(got) != "plain text body" {
		t.Fatalf("sample changed with its body: %q", got)
	}
}

// TestSampleNeverShowsASecret redacts random JSON documents whose secret
// keys hold values marked SECRET, at any depth and of any type.
func TestSampleNeverShowsASecret(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	secretKeys := []string{"password", "Passwd", "client_secret", "refresh_token", "API_KEY", "apikey", "authorization", "private_key", "key_pem", "x-secret-thing"}
	plainKeys := []string{"id", "name", "items", "address", "note"}
	var gen func(depth int, secret bool) any
	gen = func(depth int, secret bool) any {
		leaf := func() any {
			if secret {
				return []any{"SECRET", fmt.Sprintf("SECRET-%d", r.IntN(100))}[r.IntN(2)]
			}
			return []any{"plain", 42.5, true, nil}[r.IntN(4)]
		}
		if depth == 0 {
			return leaf()
		}
		switch r.IntN(3) {
		case 0:
			m := map[string]any{}
			for range r.IntN(4) + 1 {
				if r.IntN(3) == 0 {
					m[secretKeys[r.IntN(len(secretKeys))]] = gen(depth-1, true)
				} else {
					m[plainKeys[r.IntN(len(plainKeys))]+fmt.Sprint(r.IntN(9))] = gen(depth-1, secret)
				}
			}
			return m
		case 1:
			a := make([]any, r.IntN(4))
			for i := range a {
				a[i] = gen(depth-1, secret)
			}
			return a
		}
		return leaf()
	}
	for i := range 500 {
		doc := map[string]any{"root": gen(5, false), "password": gen(2, true)}
		body, err := json.MarshalIndent(doc, "", []string{"", " ", "\t"}[i%3])
		if err != nil {
			t.Fatal(err)
		}
		got, _ := Sample(body, 1<<20)
		if bytes.Contains(got, []byte("SECRET")) || !json.Valid(got) {
			t.Fatalf("document %d:\n%s\nsampled as\n%s", i, body, got)
		}
	}
}

func BenchmarkSampleJSON(b *testing.B) {
	body := []byte(`{"order":{"id":"o-1","lines":[{"sku":"a","qty":2},{"sku":"b","qty":1}]},"auth":{"token":"t","user":"ann"}}`)
	b.ReportAllocs()
	for b.Loop() {
		Sample(body, DefaultSampleBytes)
	}
}

// What the parsers cannot read is redacted as text.
func TestSampleRedactsText(t *testing.T) {
	for _, body := range []string{
		"user=ada&password=hunter2&x=1",
		`{"password": "hunter2", "cut short`,
		"\ufeff{\"token\":\"hunter2\"}",
		`<login><password>hunter2</password>&nbsp;</login>`,
		`<params><param name="password" value="hunter2"/></params>`,
		`[{"name":"Authorization","value":"Bearer hunter2"}]`,
		`{"credentials":"hunter2","cookie":"sid=hunter2"}`,
		"Authorization: Bearer hunter2",
		strings.Repeat("x", 70<<10) + "password=hunter2",
	} {
		got, _ := Sample([]byte(body), 200<<10)
		if strings.Contains(string(got), "hunter2") {
			t.Errorf("Sample(%.60q) = %.200q: the secret shows", body, got)
		}
	}
	// Plain values stay.
	if got, _ := Sample([]byte("user=ada&item=7"), 100); string(got) != "user=ada&item=7" {
		t.Errorf("a form without secrets became %q", got)
	}
}
