package format

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// nsXSI is the XML Schema instance namespace; its nil attribute marks null.
const nsXSI = "http://www.w3.org/2001/XMLSchema-instance"

// DecodeXML converts a plain XML document into a JSON object.
//
// The root element's children become keys, named by their local names with
// namespaces dropped; repeated children become arrays; attributes become
// "@name" keys; non-blank text beside child elements or attributes becomes a
// "#text" key; an element with only text becomes a string. An element with
// xsi:nil="true" becomes null.
//
// hint, the service's input type (may be nil), refines this: a field that is
// a number or bool (following json tags, embedded, nested structs, slices,
// arrays, maps and pointers) turns text into a JSON number or bool and an
// empty element into null; a slice field makes a single child an array of
// one; an empty struct or map field becomes {}. Types with their own
// UnmarshalJSON or UnmarshalText get the text as a string.
//
// contentType is the request's ("" when it has none): a type that is not
// XML, or a charset this package does not know, gives a *MediaError; the
// body is read in the encoding its byte order mark, the charset or its XML
// declaration names.
//
// An empty body gives "{}". DTDs are refused, and documents deeper than
// MaxDepth or with more than MaxElements elements are refused. Errors name
// the line and column.
func DecodeXML(body []byte, contentType string, hint reflect.Type) ([]byte, error) {
	if _, err := CheckContentType(XML, contentType); err != nil {
		return nil, err
	}
	root, err := parseTree(body, charsetOf(contentType))
	if err != nil {
		return nil, err
	}
	if root == nil {
		return []byte("{}"), nil
	}
	var b bytes.Buffer
	if err := writeObject(&b, root, hint); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// writeObject writes n as a JSON object typed by t.
func writeObject(b *bytes.Buffer, n *node, t reflect.Type) error {
	t = indirect(t)
	seen := make(map[string]bool)
	b.WriteByte('{')
	comma := func() {
		if len(seen) > 0 {
			b.WriteByte(',')
		}
	}
	for _, a := range n.attrs {
		if skipAttr(a.Name.Space, a.Name.Local) {
			continue
		}
		key := "@" + unescapeName(a.Name.Local)
		if seen[key] {
			return fmt.Errorf("%s: attribute %q appears twice (namespaces are dropped)", n.where(), a.Name.Local)
		}
		comma()
		seen[key] = true
		writeString(b, key)
		b.WriteByte(':')
		if err := writeScalar(b, n, a.Value, fieldType(t, key)); err != nil {
			return err
		}
	}
	var keys []string
	groups := make(map[string][]*node)
	for _, c := range n.children {
		key := unescapeName(c.name.Local)
		if _, ok := groups[key]; !ok {
			keys = append(keys, key)
		}
		groups[key] = append(groups[key], c)
	}
	for _, key := range keys {
		if seen[key] {
			return fmt.Errorf("%s: key %q appears twice", n.where(), key)
		}
		comma()
		seen[key] = true
		writeString(b, key)
		b.WriteByte(':')
		ft := fieldType(t, key)
		list := isList(indirect(ft))
		g := groups[key]
		if len(g) == 1 && !list {
			if err := writeElem(b, g[0], ft); err != nil {
				return err
			}
			continue
		}
		var et reflect.Type
		if list {
			et = indirect(ft).Elem()
		}
		b.WriteByte('[')
		for i, c := range g {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeElem(b, c, et); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	}
	if text := n.text.String(); strings.TrimSpace(text) != "" {
		if seen["#text"] {
			return fmt.Errorf("%s: key %q appears twice", n.where(), "#text")
		}
		comma()
		writeString(b, "#text")
		b.WriteByte(':')
		writeString(b, text)
	}
	b.WriteByte('}')
	return nil
}

// writeElem writes the value of element n typed by t.
func writeElem(b *bytes.Buffer, n *node, t reflect.Type) error {
	attrs := false
	for _, a := range n.attrs {
		if a.Name.Space == nsXSI && a.Name.Local == "nil" && (strings.TrimSpace(a.Value) == "true" || strings.TrimSpace(a.Value) == "1") {
			b.WriteString("null")
			return nil
		}
		if !skipAttr(a.Name.Space, a.Name.Local) {
			attrs = true
		}
	}
	if len(n.children) == 0 && !attrs {
		return writeScalar(b, n, n.text.String(), t)
	}
	if lt := indirect(t); isList(lt) && !attrs && allItems(n) {
		// An array inside an array, as EncodeXML writes it.
		b.WriteByte('[')
		for i, c := range n.children {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeElem(b, c, lt.Elem()); err != nil {
				return err
			}
		}
		b.WriteByte(']')
		return nil
	}
	return writeObject(b, n, t)
}

// allItems reports whether every child of n is an <item>.
func allItems(n *node) bool {
	for _, c := range n.children {
		if c.name.Local != "item" {
			return false
		}
	}
	return true
}

// skipAttr reports whether an attribute is markup rather than data:
// namespace declarations and XML Schema instance attributes.
func skipAttr(space, local string) bool {
	return space == "xmlns" || (space == "" && local == "xmlns") || space == nsXSI
}

// writeScalar writes text, found in or on element n, as a JSON value of type t.
func writeScalar(b *bytes.Buffer, n *node, text string, t reflect.Type) error {
	if err := writeTyped(b, text, t); err != nil {
		return fmt.Errorf("%s: %w", n.where(), err)
	}
	return nil
}

// writeTyped writes text as a JSON value of type t: a number or bool when
// t is one, else a string.
func writeTyped(b *bytes.Buffer, text string, t reflect.Type) error {
	t = indirect(t)
	if t == nil || opaque(t) {
		writeString(b, text)
		return nil
	}
	s := strings.TrimSpace(text)
	switch t.Kind() {
	case reflect.Bool:
		switch s {
		case "":
			b.WriteString("null")
		case "true", "1":
			b.WriteString("true")
		case "false", "0":
			b.WriteString("false")
		default:
			return fmt.Errorf("%q is not a boolean (want true, false, 1 or 0)", clip(s))
		}
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if s == "" {
			b.WriteString("null")
			return nil
		}
		v, err := strconv.ParseInt(strings.TrimPrefix(s, "+"), 10, t.Bits())
		if err != nil {
			return numberError(s, err, "an integer", t)
		}
		b.WriteString(strconv.FormatInt(v, 10))
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if s == "" {
			b.WriteString("null")
			return nil
		}
		v, err := strconv.ParseUint(strings.TrimPrefix(s, "+"), 10, t.Bits())
		if err != nil {
			return numberError(s, err, "a non-negative integer", t)
		}
		b.WriteString(strconv.FormatUint(v, 10))
		return nil
	case reflect.Float32, reflect.Float64:
		if s == "" {
			b.WriteString("null")
			return nil
		}
		v, err := strconv.ParseFloat(strings.TrimPrefix(s, "+"), t.Bits())
		if errors.Is(err, strconv.ErrRange) && !strings.ContainsAny(s, "xXpP_") {
			return numberError(s, err, "a number", t)
		}
		if err != nil || math.IsInf(v, 0) || math.IsNaN(v) || strings.ContainsAny(s, "xXpP_") {
			return fmt.Errorf("%q is not a number", clip(s))
		}
		b.WriteString(strconv.FormatFloat(v, 'g', -1, t.Bits()))
		return nil
	case reflect.Struct, reflect.Map:
		if s == "" {
			b.WriteString("{}")
			return nil
		}
	case reflect.Slice, reflect.Array:
		if s == "" && isList(t) {
			b.WriteString("[]")
			return nil
		}
	}
	writeString(b, text)
	return nil
}

// numberError says why text s is not what, a number of type t, in words
// rather than Go's kind names: "is not an integer", or, for a number that
// does not fit, the range t takes.
func numberError(s string, err error, what string, t reflect.Type) error {
	if !errors.Is(err, strconv.ErrRange) {
		if what == "a non-negative integer" && strings.HasPrefix(s, "-") {
			if _, ierr := strconv.ParseInt(s, 10, 64); ierr == nil || errors.Is(ierr, strconv.ErrRange) {
				return fmt.Errorf("%q is negative; want a non-negative integer", clip(s))
			}
		}
		return fmt.Errorf("%q is not %s", clip(s), what)
	}
	switch t.Kind() {
	case reflect.Float32, reflect.Float64:
		return fmt.Errorf("%q is out of range for a %d-bit number", clip(s), t.Bits())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return fmt.Errorf("%q is out of range: want an integer from 0 to %d", clip(s), uint64(math.MaxUint64)>>(64-t.Bits()))
	}
	top := int64(math.MaxInt64 >> (64 - t.Bits()))
	return fmt.Errorf("%q is out of range: want an integer from %d to %d", clip(s), -top-1, top)
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) <= 40 {
		return s
	}
	cut := 40
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

var (
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	stringType      = reflect.TypeFor[string]()
)

// indirect strips pointers from t.
func indirect(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// opaque reports whether t decodes its own JSON or text, so the XML text
// is handed over as a string.
func opaque(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return t.Implements(jsonUnmarshaler) || p.Implements(jsonUnmarshaler) ||
		t.Implements(textUnmarshaler) || p.Implements(textUnmarshaler)
}

// isList reports whether t is a slice or array that JSON writes as an array.
func isList(t reflect.Type) bool {
	if t == nil || opaque(t) {
		return false
	}
	switch t.Kind() {
	case reflect.Slice:
		return t.Elem().Kind() != reflect.Uint8
	case reflect.Array:
		return true
	}
	return false
}

// fieldType is the type of key in a value of type t, or nil when unknown.
// Struct fields follow encoding/json: json tags, embedded structs, then a
// case-insensitive match. A ",string" field takes a string.
func fieldType(t reflect.Type, key string) reflect.Type {
	t = indirect(t)
	if t == nil || opaque(t) {
		return nil
	}
	switch t.Kind() {
	case reflect.Map:
		return t.Elem()
	case reflect.Struct:
		exact, fold := structField(t, key, 0)
		if exact != nil {
			return exact
		}
		return fold
	}
	return nil
}

// structField finds key among the fields of struct t, exactly and folded.
func structField(t reflect.Type, key string, depth int) (exact, fold reflect.Type) {
	if depth > 8 {
		return nil, nil
	}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			if ft := indirect(f.Type); ft.Kind() == reflect.Struct {
				e, fo := structField(ft, key, depth+1)
				if e != nil {
					return e, nil
				}
				if fold == nil {
					fold = fo
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		ft := f.Type
		if strings.Contains(","+opts+",", ",string,") {
			ft = stringType
		}
		if name == key {
			return ft, nil
		}
		if fold == nil && strings.EqualFold(name, key) {
			fold = ft
		}
	}
	return nil, fold
}

// writeString writes s as a JSON string, replacing invalid UTF-8.
func writeString(b *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case c == '\n':
				b.WriteString(`\n`)
			case c == '\r':
				b.WriteString(`\r`)
			case c == '\t':
				b.WriteString(`\t`)
			case c < 0x20:
				b.WriteString(`\u00`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&0xF])
			default:
				b.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\ufffd`)
		case r == '\u2028' || r == '\u2029':
			fmt.Fprintf(b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	b.WriteByte('"')
}
