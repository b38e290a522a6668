package format

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// node is one parsed XML element.
type node struct {
	name      xml.Name
	attrs     []xml.Attr
	children  []*node
	text      strings.Builder
	line, col int
}

// where names n for error messages.
func (n *node) where() string {
	return fmt.Sprintf("element <%s> at line %d, column %d", n.name.Local, n.line, n.col)
}

// parseTree parses body into a tree of elements, refusing DTDs, text
// outside the root, a second root, and documents deeper than MaxDepth or
// larger than MaxElements. An empty document (only whitespace, comments or
// processing instructions) gives a nil root and no error.
//
// The body is read in the encoding its byte order mark, charset (the
// Content-Type's parameter, "" when none) or XML declaration names, in
// that order, else as UTF-8; an encoding this package does not know gives
// a *MediaError.
func parseTree(body []byte, charset string) (*node, error) {
	body, settled, err := toUTF8(body, charset)
	if err != nil {
		return nil, err
	}
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = true
	d.CharsetReader = charsetReader(settled)
	var root *node
	var stack []*node
	count := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			var me *MediaError
			if errors.As(err, &me) {
				return nil, me
			}
			return nil, malformed(d, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			line, col := d.InputPos()
			if root != nil && len(stack) == 0 {
				return nil, fmt.Errorf("malformed XML at line %d, column %d: second root element <%s>: a document has one root", line, col, t.Name.Local)
			}
			count++
			if count > MaxElements {
				return nil, fmt.Errorf("XML at line %d, column %d: more than %d elements", line, col, MaxElements)
			}
			if len(stack) >= MaxDepth {
				return nil, fmt.Errorf("XML at line %d, column %d: elements nested deeper than %d", line, col, MaxDepth)
			}
			n := &node{name: t.Name, attrs: t.Attr, line: line, col: col}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			} else {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) == 0 {
				if len(bytes.TrimSpace(t)) != 0 {
					line, col := d.InputPos()
					return nil, fmt.Errorf("malformed XML at line %d, column %d: text outside the root element", line, col)
				}
				continue
			}
			stack[len(stack)-1].text.Write(t)
		case xml.Directive:
			line, col := d.InputPos()
			kw, _, _ := strings.Cut(strings.TrimSpace(string(t)), " ")
			return nil, fmt.Errorf("XML at line %d, column %d: <!%.20s> refused: DTDs and entity declarations are not allowed", line, col, kw)
		}
	}
	return root, nil
}

// malformed turns a decoder error into one naming the line (and column when
// the decoder still stands on that line).
func malformed(d *xml.Decoder, err error) error {
	line, col := d.InputPos()
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		if se.Line == line {
			return fmt.Errorf("malformed XML at line %d, column %d: %s", se.Line, col, se.Msg)
		}
		return fmt.Errorf("malformed XML at line %d: %s", se.Line, se.Msg)
	}
	return fmt.Errorf("malformed XML at line %d, column %d: %w", line, col, err)
}
