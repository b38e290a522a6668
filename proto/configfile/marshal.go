package configfile

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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
	// protojson varies its spacing on purpose: compact what it wrote, so
	// as to write it one way.
	var compact bytes.Buffer
	if err := json.Compact(&compact, b); err != nil {
		return nil, fmt.Errorf("marshal config: %w", err)
	}
	b = filesAsText(cfg, compact.Bytes())
	if format == YAML {
		return JSONToYAML(b)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, escapeForYAML(b), "", "  "); err != nil {
		return nil, fmt.Errorf("marshal config as JSON: %w", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// filesAsText writes, in b, cfg as compact JSON, the content of each
// package file that is UTF-8 as text: its source, not base64. Only a
// package's file has a field named content, and in compact JSON an
// unescaped "content":" can only start one, so each file's is the first
// after the one before.
func filesAsText(cfg *adminv1.Config, b []byte) []byte {
	from := 0
	for _, p := range cfg.GetPackages() {
		for _, f := range p.GetFiles() {
			if len(f.GetContent()) == 0 || !utf8.Valid(f.GetContent()) {
				continue
			}
			content := []byte(`"content":"` + base64.StdEncoding.EncodeToString(f.GetContent()) + `"`)
			i := bytes.Index(b[from:], content)
			if i < 0 {
				continue
			}
			var text bytes.Buffer
			text.WriteString(`"text":`)
			enc := json.NewEncoder(&text)
			enc.SetEscapeHTML(false)
			_ = enc.Encode(string(f.GetContent())) // a string encodes
			text.Truncate(text.Len() - 1)          // the newline Encode ends with
			i += from
			b = slices.Concat(b[:i], text.Bytes(), b[i+len(content):])
			from = i + text.Len()
		}
	}
	return b
}

// JSONToYAML writes the JSON document b as YAML the way Marshal writes a
// config: keys sorted, two-space indents, lists at their key's indent,
// multi-line strings as literal blocks.
func JSONToYAML(b []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("read JSON: %w", err)
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	enc.CompactSeqIndent()
	if err := enc.Encode(yamlValue(v)); err != nil {
		return nil, fmt.Errorf("write YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("write YAML: %w", err)
	}
	return out.Bytes(), nil
}

// yamlValue is v, decoded JSON, as the YAML encoder takes it: a number as
// an int64 or a float64.
func yamlValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = yamlValue(e)
		}
	case []any:
		for i, e := range v {
			v[i] = yamlValue(e)
		}
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		if f, err := v.Float64(); err == nil {
			return f
		}
		return string(v)
	}
	return v
}

// escapeForYAML is the JSON b with the characters escaped that JSON may
// hold raw and YAML, which Read reads JSON as, may not: DEL and the C1
// controls (NEL is a line break to YAML), the line and paragraph
// separators, a BOM, U+FFFE and U+FFFF. Outside strings JSON is ASCII.
func escapeForYAML(b []byte) []byte {
	var out bytes.Buffer
	for _, r := range string(b) {
		switch {
		case r == 0x7f, r >= 0x80 && r <= 0x9f, r == 0x2028, r == 0x2029, r == 0xfeff, r == 0xfffe, r == 0xffff:
			fmt.Fprintf(&out, `\u%04x`, r)
		default:
			out.WriteRune(r)
		}
	}
	return out.Bytes()
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
