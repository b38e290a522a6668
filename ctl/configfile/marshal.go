package configfile

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// The formats Marshal writes.
const (
	YAML = "yaml"
	JSON = "json"
)

// protoJSON writes a config as the file holds it: proto field names, and
// only the fields that are set, so that a file holds what matters and
// nothing that churns.
var protoJSON = protojson.MarshalOptions{UseProtoNames: true}

// Marshal writes cfg as a config file in format, YAML or JSON. Equal
// configs give equal bytes. YAML has its keys sorted and each multi-line
// string (a PEM key, a file's source) as a literal block; JSON has the
// fields in the order of the proto, indented by two spaces. A package's
// file whose content is UTF-8 is written as text: its source, not as
// content: base64. Read reads back what Marshal wrote as the same config.
func Marshal(cfg *adminv1.Config, format string) ([]byte, error) {
	if format != YAML && format != JSON {
		return nil, fmt.Errorf("format %q: want %s or %s", format, YAML, JSON)
	}
	if cfg == nil {
		cfg = &adminv1.Config{}
	}
	b, err := protoJSON.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("marshal config: %w", err)
	}
	// protojson varies its spacing on purpose: decode what it wrote, so as
	// to write it one way.
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := decodeOrdered(dec)
	if err != nil {
		return nil, fmt.Errorf("marshal config: %w", err)
	}
	filesAsText(v)
	if format == YAML {
		return marshalYAML(v)
	}
	return marshalJSON(v)
}

// object is a JSON object with its keys in the order written.
type object []member

// member is one key of an object and its value.
type member struct {
	key   string
	value any
}

// get is the value of key, or nil.
func (o object) get(key string) any {
	for _, m := range o {
		if m.key == key {
			return m.value
		}
	}
	return nil
}

// decodeOrdered decodes the next JSON value of dec: an object as an
// object, an array as []any, a number as a json.Number.
func decodeOrdered(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		o := object{}
		for dec.More() {
			key, err := dec.Token()
			if err != nil {
				return nil, err
			}
			v, err := decodeOrdered(dec)
			if err != nil {
				return nil, err
			}
			o = append(o, member{key.(string), v})
		}
		_, err := dec.Token() // }
		return o, err
	case json.Delim('['):
		a := []any{}
		for dec.More() {
			v, err := decodeOrdered(dec)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err := dec.Token() // ]
		return a, err
	}
	return tok, nil
}

// filesAsText writes each package file whose content is UTF-8 as text,
// in the config v.
func filesAsText(v any) {
	cfg, _ := v.(object)
	pkgs, _ := cfg.get("packages").([]any)
	for _, p := range pkgs {
		pkg, _ := p.(object)
		files, _ := pkg.get("files").([]any)
		for _, f := range files {
			file, _ := f.(object)
			for i, m := range file {
				s, ok := m.value.(string)
				if m.key != "content" || !ok {
					continue
				}
				if b, err := base64.StdEncoding.DecodeString(s); err == nil && utf8.Valid(b) {
					file[i] = member{"text", string(b)}
				}
			}
		}
	}
}

// marshalYAML writes v as YAML: keys sorted, two-space indents, lists
// at their key's indent, multi-line strings as literal blocks.
func marshalYAML(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	enc.CompactSeqIndent()
	if err := enc.Encode(yamlValue(v)); err != nil {
		return nil, fmt.Errorf("marshal config as YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("marshal config as YAML: %w", err)
	}
	return b.Bytes(), nil
}

// yamlValue is v as the YAML encoder takes it: an object as a map, which
// it writes sorted, a number as an int64 or a float64.
func yamlValue(v any) any {
	switch v := v.(type) {
	case object:
		m := make(map[string]any, len(v))
		for _, mb := range v {
			m[mb.key] = yamlValue(mb.value)
		}
		return m
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = yamlValue(e)
		}
		return out
	case json.Number:
		if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return i
		}
		if f, err := strconv.ParseFloat(string(v), 64); err == nil {
			return f
		}
		return string(v)
	}
	return v
}

// marshalJSON writes v as JSON indented by two spaces, with a final
// newline.
func marshalJSON(v any) ([]byte, error) {
	var compact bytes.Buffer
	if err := writeJSON(&compact, v); err != nil {
		return nil, fmt.Errorf("marshal config as JSON: %w", err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, compact.Bytes(), "", "  "); err != nil {
		return nil, fmt.Errorf("marshal config as JSON: %w", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// writeJSON writes v to b as compact JSON, an object's keys in order.
func writeJSON(b *bytes.Buffer, v any) error {
	switch v := v.(type) {
	case object:
		b.WriteByte('{')
		for i, m := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeJSON(b, m.key); err != nil {
				return err
			}
			b.WriteByte(':')
			if err := writeJSON(b, m.value); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeJSON(b, e); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	default:
		var one bytes.Buffer
		enc := json.NewEncoder(&one)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return err
		}
		escapeForYAML(b, bytes.TrimSuffix(one.Bytes(), []byte("\n")))
	}
	return nil
}

// escapeForYAML writes JSON value j to b with the characters escaped that
// JSON may hold raw and YAML, which Read reads JSON as, may not: DEL and
// the C1 controls (NEL is a line break to YAML), a BOM, U+FFFE and U+FFFF.
func escapeForYAML(b *bytes.Buffer, j []byte) {
	for _, r := range string(j) {
		if r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == 0xfeff || r == 0xfffe || r == 0xffff {
			fmt.Fprintf(b, `\u%04x`, r)
			continue
		}
		b.WriteRune(r)
	}
}

// WriteFile writes b to path through a temporary file in the same
// directory, renamed over path: a reader sees the old file or the new one,
// never a part. The file is 0644: secrets in a config file are
// placeholders.
func WriteFile(path string, b []byte) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(b); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Summary counts the objects of cfg by kind, such as "2 channels, 1 job",
// or says "no objects".
func Summary(cfg *adminv1.Config) string {
	counts := []struct {
		n           int
		one, plural string
	}{
		{len(cfg.GetSecurity()), "security definition", "security definitions"},
		{len(cfg.GetOutgoing()), "outgoing connection", "outgoing connections"},
		{len(cfg.GetChannels()), "channel", "channels"},
		{len(cfg.GetJobs()), "job", "jobs"},
		{len(cfg.GetPackages()), "package", "packages"},
	}
	var parts []string
	for _, c := range counts {
		switch {
		case c.n == 1:
			parts = append(parts, "1 "+c.one)
		case c.n > 1:
			parts = append(parts, fmt.Sprintf("%d %s", c.n, c.plural))
		}
	}
	if len(parts) == 0 {
		return "no objects"
	}
	return strings.Join(parts, ", ")
}
