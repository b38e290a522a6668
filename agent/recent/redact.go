package recent

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"regexp"
	"unicode/utf8"

	"github.com/weft-dev/weft/proto/marks"
)

// Redacted is what a secret's value becomes in a sample: what reads of
// the admin API show for a secret.
const Redacted = marks.Redacted

// secretWords mark a JSON key, an XML element or an XML attribute as
// holding a secret when its name contains one of them, ignoring case, '_'
// and '-' (so access_token, userPassword and X-Api-Key all do).
var secretWords = [][]byte{
	[]byte("password"), []byte("passwd"), []byte("secret"), []byte("token"), []byte("apikey"),
	[]byte("authorization"), []byte("privatekey"), []byte("keypem"),
}

// secretName reports whether a key or element named name holds a secret.
func secretName(name []byte) bool {
	var buf [64]byte
	b := buf[:0]
	for _, c := range name {
		switch {
		case c == '_' || c == '-':
			continue
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	for _, w := range secretWords {
		if bytes.Contains(b, w) {
			return true
		}
	}
	return false
}

// Sample returns the start of body, at most n bytes, as a copy the caller
// owns, with secrets redacted first: in a JSON body the value of every key
// that names a secret (at any depth, whatever its type), in an XML or SOAP
// body the content of every element and the value of every attribute that
// names one. A body that is neither valid JSON nor valid XML is kept as it
// is. truncated says the sample was cut; it is cut at a character boundary.
func Sample(body []byte, n int) (sample []byte, truncated bool) {
	if len(body) == 0 {
		return nil, false
	}
	if n <= 0 {
		return nil, true
	}
	return cut(redact(body), n)
}

// cut copies at most n bytes of b, backing off to the start of a UTF-8
// character so that a cut never splits one.
func cut(b []byte, n int) ([]byte, bool) {
	if len(b) <= n {
		return bytes.Clone(b), false
	}
	i := n
	for i > 0 && !utf8.RuneStart(b[i]) {
		i--
	}
	return bytes.Clone(b[:i]), true
}

// redact returns body with its secrets replaced, or body itself when it
// has none or is not valid JSON or XML.
func redact(body []byte) []byte {
	if len(body) > maxParsed {
		// Only the start is kept: it is redacted as text, not parsed.
		return redactLoose(body[:maxParsed])
	}
	i := skipSpace(body, 0)
	if i == len(body) {
		return body
	}
	var spans []span
	switch body[i] {
	case '{', '[':
		if json.Valid(body) {
			s := jsonScan{b: body, i: i}
			s.value()
			spans = s.spans
		}
	case '<':
		spans = xmlSecrets(body)
	}
	// Then as text, whatever the body: what the parsers could not read (a
	// form, JSON cut short, XML with an entity it does not know) and the
	// name/value pairs they see as plain values.
	return redactLoose(splice(body, spans))
}

// maxParsed bounds the body parsed to redact it; a longer one is redacted
// as text, its start only, so a large body costs little.
const maxParsed = 64 << 10

// loosePatterns find secrets in text: a value after a key that names one
// (password=x, "token": "x", <secret>x), and the value of a name/value
// pair whose name does ({"name":"Authorization","value":"x"},
// <param name="password" value="x"/>). Group 2 is the value.
var loosePatterns = []*regexp.Regexp{
	regexp.MustCompile(`(?i)([\w.-]*(?:password|passwd|secret|token|api[_-]?key|authorization|private[_-]?key|key[_-]?pem|credential|cookie)[\w.-]*"?\s*[:=>]\s*["']?)((?:(?i:bearer|basic|digest)\s+)?[^"'&\s,;}<>]+)`),
	regexp.MustCompile(`(?i)(name"?\s*[:=]\s*"[\w.-]*(?:password|passwd|secret|token|api[_-]?key|authorization|private[_-]?key|key[_-]?pem|credential|cookie)[\w.-]*"\s*,?\s*"?value"?\s*[:=]\s*")([^"]*)`),
}

// redactLoose replaces the secrets loosePatterns find, and returns b when
// there are none.
func redactLoose(b []byte) []byte {
	for _, p := range loosePatterns {
		if !p.Match(b) {
			continue
		}
		b = p.ReplaceAllFunc(b, func(m []byte) []byte {
			sub := p.FindSubmatchIndex(m)
			if bytes.Equal(m[sub[4]:sub[5]], []byte(Redacted)) {
				return m
			}
			return append(append(bytes.Clone(m[:sub[4]]), Redacted...), m[sub[5]:]...)
		})
	}
	return b
}

// span is a range of a body to replace with with.
type span struct {
	from, to int
	with     string
}

// splice returns body with each span, in order and not overlapping,
// replaced.
func splice(body []byte, spans []span) []byte {
	if len(spans) == 0 {
		return body
	}
	out := make([]byte, 0, len(body))
	at := 0
	for _, s := range spans {
		out = append(out, body[at:s.from]...)
		out = append(out, s.with...)
		at = s.to
	}
	return append(out, body[at:]...)
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// jsonScan finds the values of secret keys in a valid JSON document.
type jsonScan struct {
	b     []byte
	i     int
	quiet int // inside a secret value: record nothing
	spans []span
}

func (s *jsonScan) value() {
	s.i = skipSpace(s.b, s.i)
	switch s.b[s.i] {
	case '{':
		s.object()
	case '[':
		s.array()
	case '"':
		s.str()
	default:
		for s.i < len(s.b) && !endsScalar(s.b[s.i]) {
			s.i++
		}
	}
}

func (s *jsonScan) object() {
	s.i++ // '{'
	for {
		s.i = skipSpace(s.b, s.i)
		switch s.b[s.i] {
		case '}':
			s.i++
			return
		case ',':
			s.i++
			continue
		}
		start := s.i
		s.str()
		key := s.b[start+1 : s.i-1]
		s.i = skipSpace(s.b, s.i) + 1 // ':'
		s.i = skipSpace(s.b, s.i)
		if s.quiet > 0 || !secretName(unquote(key)) {
			s.value()
			continue
		}
		from := s.i
		s.quiet++
		s.value()
		s.quiet--
		s.spans = append(s.spans, span{from, s.i, `"` + Redacted + `"`})
	}
}

func (s *jsonScan) array() {
	s.i++ // '['
	for {
		s.i = skipSpace(s.b, s.i)
		switch s.b[s.i] {
		case ']':
			s.i++
			return
		case ',':
			s.i++
			continue
		}
		s.value()
	}
}

// endsScalar reports whether c ends a number, true, false or null.
func endsScalar(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\t', '\r', '\n':
		return true
	}
	return false
}

// str moves past the string that starts at s.i.
func (s *jsonScan) str() {
	s.i++ // '"'
	for {
		switch s.b[s.i] {
		case '\\':
			s.i += 2
		case '"':
			s.i++
			return
		default:
			s.i++
		}
	}
}

// unquote decodes the escapes of a JSON string's content, which a key may
// use to hide its name.
func unquote(raw []byte) []byte {
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw
	}
	var s string
	if err := json.Unmarshal(append(append([]byte{'"'}, raw...), '"'), &s); err != nil {
		return raw
	}
	return []byte(s)
}

// xmlSecrets returns the spans to redact in an XML document: the content
// of secret elements and the values of secret attributes. It returns none
// when body is not well-formed XML with at least one element.
func xmlSecrets(body []byte) []span {
	d := xml.NewDecoder(bytes.NewReader(body))
	// Read any declared encoding byte for byte: element names are ASCII in
	// practice, and the spans must be offsets into body.
	d.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	var spans []span
	elements := 0
	secret := 0       // depth inside a secret element; 0 outside any
	var contentAt int // where the secret element's content starts
	before := 0       // the offset before the current token
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil
		}
		after := int(d.InputOffset())
		switch t := tok.(type) {
		case xml.StartElement:
			elements++
			switch {
			case secret > 0:
				secret++
			case secretName([]byte(t.Name.Local)):
				secret, contentAt = 1, after
				spans = append(spans, attrSecrets(body, before, after)...)
			default:
				spans = append(spans, attrSecrets(body, before, after)...)
			}
		case xml.EndElement:
			if secret > 0 {
				if secret--; secret == 0 && before > contentAt {
					spans = append(spans, span{contentAt, before, Redacted})
				}
			}
		}
		before = after
	}
	if elements == 0 {
		return nil
	}
	return spans
}

// attrSecrets returns the spans of the secret attribute values of the
// start tag body[from:to], which the decoder found well-formed.
func attrSecrets(body []byte, from, to int) []span {
	tag := body[from:to]
	if bytes.IndexByte(tag, '=') < 0 {
		return nil
	}
	var spans []span
	i := 1 // past '<'
	for i < len(tag) && !isTagSpace(tag[i]) && tag[i] != '/' && tag[i] != '>' {
		i++ // the element's name
	}
	for {
		i = skipSpace(tag, i)
		if i >= len(tag) || tag[i] == '/' || tag[i] == '>' {
			return spans
		}
		nameAt := i
		for i < len(tag) && tag[i] != '=' && !isTagSpace(tag[i]) {
			i++
		}
		name := tag[nameAt:i]
		if c := bytes.LastIndexByte(name, ':'); c >= 0 {
			name = name[c+1:]
		}
		i = skipSpace(tag, i) + 1 // '='
		i = skipSpace(tag, i)
		if i >= len(tag) {
			return spans
		}
		quote := tag[i]
		end := bytes.IndexByte(tag[i+1:], quote)
		if end < 0 {
			return spans
		}
		if secretName(name) && end > 0 {
			spans = append(spans, span{from + i + 1, from + i + 1 + end, Redacted})
		}
		i += end + 2
	}
}

func isTagSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
