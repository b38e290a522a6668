package format

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"unicode"
)

// MergeParams adds a request's path params and query to the service input
// decoded from its body, a JSON object. The precedence, highest first:
//
//  1. path params: /orders/{id} always sets "id";
//  2. query: ?status=open sets "status", unless a path param has the name;
//  3. the body's own keys.
//
// A param also beats a body key that differs from it only in case, which
// encoding/json would match to the same field.
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
	lead := len(input) - len(bytes.TrimLeftFunc(input, unicode.IsSpace)) // for the byte an error names
	trimmed := bytes.TrimSpace(input)
	if len(trimmed) == 0 {
		trimmed = []byte("{}")
	}
	if trimmed[0] != '{' {
		return input, nil
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &body); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) { // as the service's decoder says it
			return nil, fmt.Errorf("malformed JSON at byte %d: %v", syn.Offset+int64(lead), syn)
		}
		return nil, fmt.Errorf("service input: %v", err)
	}
	queried := map[string]json.RawMessage{}
	for _, key := range sortedKeys(query) {
		if _, isPath := path[key]; isPath || len(query[key]) == 0 {
			continue
		}
		v, err := queryValue(query[key], fieldType(hint, key))
		if err != nil {
			return nil, fmt.Errorf("query param %s: %w", key, err)
		}
		queried[key] = v
	}
	pathed := make(map[string]json.RawMessage, len(path))
	for key, text := range path {
		var b bytes.Buffer
		if err := writeTyped(&b, text, fieldType(hint, key)); err != nil {
			return nil, fmt.Errorf("path param %s: %w", key, err)
		}
		pathed[key] = b.Bytes()
	}
	// Written lowest precedence first: encoding/json lets the last of the
	// keys that name a field win, and it matches names case-insensitively,
	// so a param also beats a body key that differs from it only in case.
	var out bytes.Buffer
	out.WriteByte('{')
	writeMembers(&out, body, queried, pathed)
	writeMembers(&out, queried, pathed)
	writeMembers(&out, pathed)
	out.WriteByte('}')
	return out.Bytes(), nil
}

// writeMembers writes the members of m, sorted by key, that no map of over
// has, each preceded by a comma unless it is the object's first.
func writeMembers(b *bytes.Buffer, m map[string]json.RawMessage, over ...map[string]json.RawMessage) {
next:
	for _, k := range slices.Sorted(maps.Keys(m)) {
		for _, o := range over {
			if _, ok := o[k]; ok {
				continue next
			}
		}
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		name, _ := json.Marshal(k) // a string always marshals
		b.Write(name)
		b.WriteByte(':')
		b.Write(m[k])
	}
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
