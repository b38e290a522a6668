package handler

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
)

// field is a struct field of an input type that is required or holds
// required fields further down.
type field struct {
	name     string   // JSON name
	required bool     // tagged weft:"required"
	nest     nesting  // how sub applies to the field's value
	sub      []*field // required fields inside the value
}

type nesting int

const (
	nestNone   nesting = iota
	nestObject         // the value is an object
	nestList           // the value is an array of objects
	nestMap            // the value is an object of objects
)

// requiredFields returns the fields of t (a struct or a pointer to one)
// that checkRequired has to look at, or nil if there are none. seen guards
// against recursive types.
func requiredFields(t reflect.Type, seen map[reflect.Type]bool) []*field {
	t = deref(t)
	if t.Kind() != reflect.Struct || seen[t] {
		return nil
	}
	seen[t] = true
	defer delete(seen, t)
	var fields []*field
	for i := range t.NumField() {
		sf := t.Field(i)
		name, ok := jsonName(sf)
		if !ok {
			continue
		}
		if sf.Anonymous && name == "" {
			// encoding/json promotes the fields of an untagged embedded struct.
			fields = append(fields, requiredFields(sf.Type, seen)...)
			continue
		}
		if name == "" {
			name = sf.Name
		}
		f := &field{name: name, required: hasOption(sf.Tag.Get("weft"), "required")}
		switch ft := deref(sf.Type); ft.Kind() {
		case reflect.Struct:
			f.nest, f.sub = nestObject, requiredFields(ft, seen)
		case reflect.Slice, reflect.Array:
			f.nest, f.sub = nestList, requiredFields(ft.Elem(), seen)
		case reflect.Map:
			f.nest, f.sub = nestMap, requiredFields(ft.Elem(), seen)
		}
		if f.sub == nil {
			f.nest = nestNone
		}
		if f.required || f.sub != nil {
			fields = append(fields, f)
		}
	}
	return fields
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// jsonName returns the name from the field's json tag ("" if the tag has
// none) and whether encoding/json uses the field at all.
func jsonName(sf reflect.StructField) (string, bool) {
	tag := sf.Tag.Get("json")
	if tag == "-" {
		return "", false
	}
	if !sf.IsExported() && !sf.Anonymous {
		return "", false
	}
	name, _, _ := strings.Cut(tag, ",")
	return name, true
}

func hasOption(tag, option string) bool {
	for _, o := range strings.Split(tag, ",") {
		if strings.TrimSpace(o) == option {
			return true
		}
	}
	return false
}

// checkRequired reports the first required field missing (or null) in the
// JSON object raw. path is the JSON path of raw, "" at the top.
func checkRequired(raw []byte, fields []*field, path string) error {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return err
	}
	for _, f := range fields {
		fpath := joinPath(path, f.name)
		v, ok := lookup(obj, f.name)
		if !ok || string(v) == "null" {
			if f.required {
				return fmt.Errorf("field %q is required", fpath)
			}
			continue
		}
		switch f.nest {
		case nestObject:
			if err := checkRequired(v, f.sub, fpath); err != nil {
				return err
			}
		case nestList:
			var items []json.RawMessage
			if err := json.Unmarshal(v, &items); err != nil {
				return err
			}
			for i, item := range items {
				if string(item) == "null" {
					continue
				}
				if err := checkRequired(item, f.sub, fmt.Sprintf("%s[%d]", fpath, i)); err != nil {
					return err
				}
			}
		case nestMap:
			var items map[string]json.RawMessage
			if err := json.Unmarshal(v, &items); err != nil {
				return err
			}
			for _, k := range slices.Sorted(maps.Keys(items)) {
				if string(items[k]) == "null" {
					continue
				}
				if err := checkRequired(items[k], f.sub, joinPath(fpath, k)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// lookup finds key in obj the way encoding/json matches field names: an
// exact match first, then a case-insensitive one.
func lookup(obj map[string]json.RawMessage, key string) (json.RawMessage, bool) {
	if v, ok := obj[key]; ok {
		return v, true
	}
	for k, v := range obj {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}
