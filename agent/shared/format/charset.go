package format

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"strings"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/ianaindex"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"
)

// MediaError is a request body refused for its media type or its character
// encoding: what the channel does not take, rather than a malformed body.
// A channel answers it with 415 Unsupported Media Type.
type MediaError struct {
	// Message names what was sent and what is taken.
	Message string
}

// Error returns the message.
func (e *MediaError) Error() string { return e.Message }

// The byte order marks a document may start with.
var (
	bomUTF8    = []byte("\xef\xbb\xbf")
	bomUTF16BE = []byte("\xfe\xff")
	bomUTF16LE = []byte("\xff\xfe")
)

// charsetOf is the charset parameter of a Content-Type, "" when there is
// none or the Content-Type does not parse (CheckContentType says so).
func charsetOf(contentType string) string {
	if !strings.Contains(contentType, "charset") {
		return "" // the common case, without parsing
	}
	_, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(params["charset"])
}

// toUTF8 returns body as UTF-8 when its encoding is settled before the
// XML declaration is read, and whether it was: by a byte order mark, then
// by charset (the Content-Type's parameter, which RFC 7303 makes
// authoritative over the declaration), then by the zero bytes that start
// UTF-16 text without a mark. A body whose encoding is not settled is left
// to its declaration (see charsetReader), and to UTF-8 without one.
func toUTF8(body []byte, charset string) ([]byte, bool, error) {
	switch {
	case bytes.HasPrefix(body, bomUTF8):
		return body[len(bomUTF8):], true, nil
	case bytes.HasPrefix(body, bomUTF16BE), bytes.HasPrefix(body, bomUTF16LE):
		b, err := decodeAll(unicode.UTF16(unicode.BigEndian, unicode.ExpectBOM), body, "UTF-16")
		return b, true, err
	case charset != "":
		enc, err := lookupEncoding(charset, "the Content-Type's charset")
		if err != nil {
			return nil, false, err
		}
		if isUTF16(enc) {
			enc = utf16Of(body)
		}
		if enc == nil {
			return body, true, nil
		}
		b, err := decodeAll(enc, body, charset)
		return b, true, err
	case len(body) >= 2 && (body[0] == 0) != (body[1] == 0):
		// '<' as UTF-16 without a mark: 3C 00 or 00 3C. Neither byte of an
		// XML document's start is ever zero in UTF-8.
		b, err := decodeAll(utf16Of(body), body, "UTF-16")
		return b, true, err
	}
	return body, false, nil
}

// utf16Of is UTF-16 in the byte order body starts with: little-endian
// when its first character's high byte comes second, else big-endian, the
// default of RFC 2781. A byte order mark overrides either.
func utf16Of(body []byte) encoding.Encoding {
	if len(body) >= 2 && body[0] != 0 && body[1] == 0 {
		return unicode.UTF16(unicode.LittleEndian, unicode.UseBOM)
	}
	return unicode.UTF16(unicode.BigEndian, unicode.UseBOM)
}

// isUTF16 reports whether enc is one of the UTF-16 encodings.
func isUTF16(enc encoding.Encoding) bool {
	if enc == nil {
		return false
	}
	name, err := ianaindex.IANA.Name(enc)
	return err == nil && strings.HasPrefix(name, "UTF-16")
}

// decodeAll converts body from enc to UTF-8.
func decodeAll(enc encoding.Encoding, body []byte, name string) ([]byte, error) {
	b, _, err := transform.Bytes(enc.NewDecoder(), body)
	if err != nil {
		return nil, fmt.Errorf("malformed XML: the body is not valid %s: %v", name, err)
	}
	return b, nil
}

// charsetReader is the xml.Decoder's CharsetReader for a body whose
// encoding the XML declaration names (settled false), or one already
// converted to UTF-8 by what settled it, whose declaration is then moot.
// An encoding it does not know gives a *MediaError.
func charsetReader(settled bool) func(label string, in io.Reader) (io.Reader, error) {
	return func(label string, in io.Reader) (io.Reader, error) {
		if settled {
			return in, nil
		}
		enc, err := lookupEncoding(label, "the XML declaration's encoding")
		if err != nil {
			return nil, err
		}
		if enc == nil || isUTF16(enc) {
			// Bytes read as ASCII up to here are not UTF-16 (which toUTF8
			// would have found): the declaration is wrong, and the body is
			// read as the UTF-8 it evidently is.
			return in, nil
		}
		return transform.NewReader(in, enc.NewDecoder()), nil
	}
}

// lookupEncoding returns the encoding named label (an IANA name or alias,
// else a WHATWG label such as cp1252), nil for UTF-8 and ASCII, which need
// no conversion, or a *MediaError naming label and where it came from.
func lookupEncoding(label, source string) (encoding.Encoding, error) {
	name := strings.TrimSpace(label)
	switch strings.ToLower(name) {
	case "utf-8", "utf8", "us-ascii", "ascii":
		return nil, nil
	}
	enc, err := ianaindex.IANA.Encoding(name)
	if err != nil || enc == nil {
		enc, err = htmlindex.Get(name)
	}
	if err != nil || enc == nil || enc == encoding.Replacement {
		return nil, &MediaError{Message: fmt.Sprintf("%s %q is not supported: send UTF-8, UTF-16, ISO-8859-1 or another encoding of the IANA registry that Go's x/text knows", source, clip(name))}
	}
	return enc, nil
}
