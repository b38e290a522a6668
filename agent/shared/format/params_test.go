package format

import (
	"encoding/json"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// paramsInput is a service input type for MergeParams.
type paramsInput struct {
	ID     int      `json:"id"`
	Status string   `json:"status"`
	Open   bool     `json:"open"`
	Tags   []string `json:"tags"`
	Nums   []int    `json:"nums"`
	Limit  *int     `json:"limit"`
	Note   string   `json:"note"`
}

var paramsInputType = reflect.TypeFor[paramsInput]()

func TestMergeParams(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		hint  reflect.Type
		path  map[string]string
		query string
		want  string // JSON, compared as a value
		err   string // substring of the error, "" for none
	}{
		{
			name:  "path beats query beats body",
			body:  `{"id":1,"status":"body","note":"kept"}`,
			hint:  paramsInputType,
			path:  map[string]string{"id": "42"},
			query: "id=7&status=open",
			want:  `{"id":42,"status":"open","note":"kept"}`,
		},
		{
			name:  "typed by the input type",
			body:  `{}`,
			hint:  paramsInputType,
			path:  map[string]string{"id": "+5"},
			query: "open=1&limit=3&status=12",
			want:  `{"id":5,"open":true,"limit":3,"status":"12"}`,
		},
		{
			name:  "pointer to the input type",
			body:  `{}`,
			hint:  reflect.PointerTo(paramsInputType),
			query: "open=false",
			want:  `{"open":false}`,
		},
		{
			name:  "repeated query into a slice",
			body:  `{}`,
			hint:  paramsInputType,
			query: "tags=a&tags=b&nums=1&nums=2",
			want:  `{"tags":["a","b"],"nums":[1,2]}`,
		},
		{
			name:  "single query value into a slice",
			body:  `{}`,
			hint:  paramsInputType,
			query: "tags=a&nums=3",
			want:  `{"tags":["a"],"nums":[3]}`,
		},
		{
			name:  "repeated query into a scalar takes the last",
			body:  `{}`,
			hint:  paramsInputType,
			query: "status=a&status=b",
			want:  `{"status":"b"}`,
		},
		{
			name:  "untyped: repeated query is an array, text stays text",
			body:  `{"a":true}`,
			path:  map[string]string{"id": "42"},
			query: "q=x&q=y&n=1",
			want:  `{"a":true,"id":"42","q":["x","y"],"n":"1"}`,
		},
		{
			name: "map input type",
			body: `{}`,
			hint: reflect.TypeFor[map[string]int](),
			path: map[string]string{"id": "9"},
			want: `{"id":9}`,
		},
		{
			name: "empty body",
			body: "",
			hint: paramsInputType,
			path: map[string]string{"id": "3"},
			want: `{"id":3}`,
		},
		{
			name: "blank body",
			body: " \n",
			hint: paramsInputType,
			path: map[string]string{"id": "3"},
			want: `{"id":3}`,
		},
		{
			name:  "body that is not an object is left alone",
			body:  `[1,2]`,
			hint:  paramsInputType,
			path:  map[string]string{"id": "3"},
			query: "status=x",
			want:  `[1,2]`,
		},
		{
			name: "no params leave the body as it is",
			body: `{"id":1}`,
			hint: paramsInputType,
			want: `{"id":1}`,
		},
		{
			name: "bad int path param",
			body: `{}`,
			hint: paramsInputType,
			path: map[string]string{"id": "abc"},
			err:  `path param id: "abc" is not an integer`,
		},
		{
			name:  "bad bool query param",
			body:  `{}`,
			hint:  paramsInputType,
			query: "open=maybe",
			err:   `query param open: "maybe" is not a boolean`,
		},
		{
			name:  "bad element of a repeated query param",
			body:  `{}`,
			hint:  paramsInputType,
			query: "nums=1&nums=two",
			err:   `query param nums: value 2: "two" is not an integer`,
		},
		{
			name: "malformed object body",
			body: `{"id":`,
			hint: paramsInputType,
			path: map[string]string{"id": "3"},
			err:  "malformed JSON at byte 6",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			query, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			if tt.query == "" {
				query = nil
			}
			got, err := MergeParams([]byte(tt.body), tt.hint, tt.path, query)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("MergeParams = %s, %v; want an error containing %q", got, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("MergeParams: %v", err)
			}
			if !jsonEqual(t, got, []byte(tt.want)) {
				t.Fatalf("MergeParams = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestMergeParamsCaseFolded checks the precedence as a service sees it:
// encoding/json matches keys to fields case-insensitively, so a body key
// that differs from a param only in case must not win over the param.
func TestMergeParamsCaseFolded(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		path  map[string]string
		query string
		want  paramsInput
	}{
		{"path over body", `{"ID":1}`, map[string]string{"id": "2"}, "", paramsInput{ID: 2}},
		{"path named in upper case over body", `{"id":1}`, map[string]string{"ID": "2"}, "", paramsInput{ID: 2}},
		{"query over body", `{"status":"body"}`, nil, "Status=query", paramsInput{Status: "query"}},
		{"path over query", `{}`, map[string]string{"ID": "2"}, "id=3", paramsInput{ID: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			query, _ := url.ParseQuery(tt.query)
			got, err := MergeParams([]byte(tt.body), paramsInputType, tt.path, query)
			if err != nil {
				t.Fatal(err)
			}
			var in paramsInput
			if err := json.Unmarshal(got, &in); err != nil {
				t.Fatalf("unmarshal %s: %v", got, err)
			}
			if !reflect.DeepEqual(in, tt.want) {
				t.Fatalf("the service gets %+v from %s, want %+v", in, got, tt.want)
			}
		})
	}
}

func TestMergeParamsEmptyQueryValues(t *testing.T) {
	got, err := MergeParams([]byte(`{"a":1}`), paramsInputType, nil, url.Values{"status": {}})
	if err != nil {
		t.Fatal(err)
	}
	if !jsonEqual(t, got, []byte(`{"a":1}`)) {
		t.Fatalf("MergeParams = %s, want the body unchanged", got)
	}
}

// jsonEqual reports whether a and b are the same JSON value.
func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("not JSON: %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("not JSON: %s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}
