package format

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// xmlHeader starts every document this package writes.
const xmlHeader = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"

// object is a JSON object that keeps its key order.
type object struct {
	keys []string
	vals []any
}

// EncodeXML converts a JSON value, normally an object, into an XML document
// whose root element is root ("response" when empty).
//
// It is the inverse of DecodeXML: each key becomes a child element, an
// array becomes repeated elements, an array inside an array becomes an
// element holding <item> children, "@name" keys with scalar values become
// attributes, a "#text" key becomes text, and nulls are left out. Keys that
// are not XML names are escaped as _xHHHH_ (see the package's name mapping);
// the empty key is refused. A top-level scalar or array becomes the root's
// text or <item> children. The output starts with the XML header.
func EncodeXML(data []byte, root string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(xmlHeader)
	if root == "" {
		root = "response"
	}
	if name, err := escapeName(root); err != nil || name != root {
		return nil, fmt.Errorf("encode XML: root %q is not an XML element name", root)
	}
	if err := writeRoot(&b, data, root, ""); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// writeRoot writes data as the element name, which may have a prefix,
// with xmlns as the raw attributes of its start tag (may be empty).
func writeRoot(b *bytes.Buffer, data []byte, name, xmlns string) error {
	v, err := parseJSON(data)
	if err != nil {
		return fmt.Errorf("encode XML: %w", err)
	}
	if err := writeXML(b, name, xmlns, v, "$"); err != nil {
		return fmt.Errorf("encode XML: %w", err)
	}
	return nil
}

// parseJSON reads one JSON value keeping key order; empty input is null.
func parseJSON(data []byte) (any, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	v, err := readJSON(d)
	if err != nil {
		return nil, fmt.Errorf("invalid JSON at offset %d: %w", d.InputOffset(), err)
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, fmt.Errorf("invalid JSON at offset %d: data after the value", d.InputOffset())
	}
	return v, nil
}

// readJSON reads the next value from d.
func readJSON(d *json.Decoder) (any, error) {
	tok, err := d.Token()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		o := &object{}
		for d.More() {
			k, err := d.Token()
			if err != nil {
				return nil, err
			}
			v, err := readJSON(d)
			if err != nil {
				return nil, err
			}
			o.keys = append(o.keys, k.(string))
			o.vals = append(o.vals, v)
		}
		_, err := d.Token()
		return o, err
	case json.Delim('['):
		a := []any{}
		for d.More() {
			v, err := readJSON(d)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err := d.Token()
		return a, err
	}
	return tok, nil
}

// writeXML writes v as element name; path names it in errors.
func writeXML(b *bytes.Buffer, name, xmlns string, v any, path string) error {
	b.WriteString("<" + name + xmlns)
	switch v := v.(type) {
	case nil:
		b.WriteString("/>")
		return nil
	case *object:
		return writeObjectXML(b, name, v, path)
	case []any:
		b.WriteByte('>')
		for i, e := range v {
			if e == nil {
				continue
			}
			if err := writeXML(b, "item", "", e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	default:
		b.WriteByte('>')
		writeText(b, scalarText(v))
	}
	b.WriteString("</" + name + ">")
	return nil
}

// writeObjectXML writes the attributes, children and text of o into the
// element name, whose start tag is open.
func writeObjectXML(b *bytes.Buffer, name string, o *object, path string) error {
	for i, k := range o.keys {
		if !strings.HasPrefix(k, "@") || o.vals[i] == nil {
			continue
		}
		switch o.vals[i].(type) {
		case *object, []any:
			return fmt.Errorf("%s.%s: an attribute takes a string, number or bool", path, k)
		}
		an, err := escapeName(k[1:])
		if err != nil {
			return fmt.Errorf("%s.%s: %w", path, k, err)
		}
		b.WriteString(" " + an + `="`)
		writeText(b, scalarText(o.vals[i]))
		b.WriteByte('"')
	}
	b.WriteByte('>')
	for i, k := range o.keys {
		v := o.vals[i]
		if strings.HasPrefix(k, "@") || v == nil {
			continue
		}
		if k == "#text" {
			if _, ok := v.(*object); ok {
				return fmt.Errorf("%s.%s: text takes a string, number or bool", path, k)
			}
			if _, ok := v.([]any); ok {
				return fmt.Errorf("%s.%s: text takes a string, number or bool", path, k)
			}
			writeText(b, scalarText(v))
			continue
		}
		en, err := escapeName(k)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		p := path + "." + k
		if a, ok := v.([]any); ok {
			for j, e := range a {
				if e == nil {
					continue
				}
				if err := writeXML(b, en, "", e, fmt.Sprintf("%s[%d]", p, j)); err != nil {
					return err
				}
			}
			continue
		}
		if err := writeXML(b, en, "", v, p); err != nil {
			return err
		}
	}
	b.WriteString("</" + name + ">")
	return nil
}

// scalarText is the XML text of a JSON string, number or bool.
func scalarText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return string(v)
	case bool:
		if v {
			return "true"
		}
		return "false"
	}
	return fmt.Sprint(v)
}

// writeText writes s escaped for text or an attribute value.
func writeText(b *bytes.Buffer, s string) {
	_ = xml.EscapeText(b, []byte(s)) // a bytes.Buffer does not fail
}
