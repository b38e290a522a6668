package format

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"sort"
)

// MergeParams adds a request's path params and query to the service input
// decoded from its body, a JSON object. The precedence, highest first:
//
//  1. path params: /orders/{id} always sets "id";
//  2. query: ?status=open sets "status", unless a path param has the name;
//  3. the body's own keys.
//
// A query key given more than once becomes an array when the input field is
// a slice (or when the type is unknown), else its last value is used. Text
// becomes a number or bool where hint, the service's input type, says so;
// text that is not one gives an error naming the param, which the channel
// answers with 400. When the body is not a JSON object (an array, say), the
// params are not merged; the service still reads them from its Context.
func MergeParams(input []byte, hint reflect.Type, path map[string]string, query url.Values) ([]byte, error) {
	if len(path) == 0 && len(query) == 0 {
		return input, nil
	}
	trimmed := bytes.TrimSpace(input)
	if len(trimmed) == 0 {
		trimmed = []byte("{}")
	}
	if trimmed[0] != '{' {
		return input, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &obj); err != nil {
		return nil, fmt.Errorf("service input: %v", err)
	}
	if obj == nil {
		obj = map[string]json.RawMessage{}
	}
	for _, key := range sortedKeys(query) {
		if _, isPath := path[key]; isPath {
			continue
		}
		v, err := queryValue(query[key], fieldType(hint, key))
		if err != nil {
			return nil, fmt.Errorf("query param %s: %w", key, err)
		}
		obj[key] = v
	}
	for key, text := range path {
		var b bytes.Buffer
		if err := writeTyped(&b, text, fieldType(hint, key)); err != nil {
			return nil, fmt.Errorf("path param %s: %w", key, err)
		}
		obj[key] = b.Bytes()
	}
	return json.Marshal(obj)
}

// queryValue is the JSON value of a query key's values for a field of type t.
func queryValue(values []string, t reflect.Type) (json.RawMessage, error) {
	if len(values) > 1 && (t == nil || isList(indirect(t))) {
		var elem reflect.Type
		if t != nil {
			elem = indirect(t).Elem()
		}
		var b bytes.Buffer
		b.WriteByte('[')
		for i, v := range values {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeTyped(&b, v, elem); err != nil {
				return nil, fmt.Errorf("value %d: %w", i+1, err)
			}
		}
		b.WriteByte(']')
		return b.Bytes(), nil
	}
	var b bytes.Buffer
	if t != nil && isList(indirect(t)) {
		// One value for a list field: a list of one.
		b.WriteByte('[')
		if err := writeTyped(&b, values[len(values)-1], indirect(t).Elem()); err != nil {
			return nil, err
		}
		b.WriteByte(']')
		return b.Bytes(), nil
	}
	if err := writeTyped(&b, values[len(values)-1], t); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func sortedKeys(q url.Values) []string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
