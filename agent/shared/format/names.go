package format

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// XML names are mapped to and from JSON keys with the _xHHHH_ convention of
// ISO/IEC 9075-14 (also used by .NET's XmlConvert): a character that cannot
// appear in an element name is written as _x followed by its four hex
// digits and _ (or _U and eight digits beyond U+FFFF), and an underscore
// that would start such a sequence is itself escaped as _x005F_. Colons are
// escaped too, so a key never looks like a namespace prefix.

// escapeName returns the XML name for the JSON key s. It refuses the empty
// key, which has no XML spelling.
func escapeName(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("an empty key has no XML element name")
	}
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("key %q is not valid UTF-8", s)
	}
	var b strings.Builder
	first := true
	for i, r := range s {
		ok := r != ':' && ((first && isNameStart(r)) || (!first && isNameChar(r)))
		if r == '_' && strings.HasPrefix(s[i:], "_x") {
			ok = false
		}
		first = false
		switch {
		case ok:
			b.WriteRune(r)
		case r > 0xFFFF:
			fmt.Fprintf(&b, "_U%08X_", r)
		default:
			fmt.Fprintf(&b, "_x%04X_", r)
		}
	}
	return b.String(), nil
}

// unescapeName reverses escapeName; text that is not a valid escape stays,
// and so does a name that would read as an attribute or text key.
func unescapeName(s string) string {
	if !strings.Contains(s, "_x") && !strings.Contains(s, "_U") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if r, n := unescapeAt(s[i:]); n > 0 {
			b.WriteRune(r)
			i += n
			continue
		}
		b.WriteByte(s[i])
		i++
	}
	if out := b.String(); out != "#text" && !strings.HasPrefix(out, "@") {
		return out
	}
	return s // an element must not turn into an attribute or text key
}

// unescapeAt decodes an _xHHHH_ or _UHHHHHHHH_ sequence at the start of s,
// returning the rune and the bytes it took, or 0 bytes when there is none.
func unescapeAt(s string) (rune, int) {
	digits := 0
	switch {
	case strings.HasPrefix(s, "_x"):
		digits = 4
	case strings.HasPrefix(s, "_U"):
		digits = 8
	default:
		return 0, 0
	}
	if len(s) < digits+3 || s[digits+2] != '_' {
		return 0, 0
	}
	hex := s[2 : 2+digits]
	for _, c := range hex {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return 0, 0
		}
	}
	v, err := strconv.ParseUint(hex, 16, 32)
	if err != nil || v > utf8.MaxRune {
		return 0, 0
	}
	return rune(v), digits + 3
}

// isNameStart reports whether r may start an XML name (XML 1.0, fifth
// edition, production NameStartChar).
func isNameStart(r rune) bool {
	switch {
	case r == ':' || r == '_' || ('A' <= r && r <= 'Z') || ('a' <= r && r <= 'z'):
		return true
	case 0xC0 <= r && r <= 0xD6, 0xD8 <= r && r <= 0xF6, 0xF8 <= r && r <= 0x2FF,
		0x370 <= r && r <= 0x37D, 0x37F <= r && r <= 0x1FFF, 0x200C <= r && r <= 0x200D,
		0x2070 <= r && r <= 0x218F, 0x2C00 <= r && r <= 0x2FEF, 0x3001 <= r && r <= 0xD7FF,
		0xF900 <= r && r <= 0xFDCF, 0xFDF0 <= r && r <= 0xFFFD, 0x10000 <= r && r <= 0xEFFFF:
		return true
	}
	return false
}

// isNameChar reports whether r may appear after the first character of an
// XML name (production NameChar).
func isNameChar(r rune) bool {
	switch {
	case isNameStart(r), r == '-' || r == '.' || ('0' <= r && r <= '9'), r == 0xB7,
		0x300 <= r && r <= 0x36F, 0x203F <= r && r <= 0x2040:
		return true
	}
	return false
}
