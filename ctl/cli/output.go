package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weft-dev/weft/proto/configfile"
)

// jsonOut is how -o json renders responses: stable field names for scripts,
// every field present even when zero.
var jsonOut = protojson.MarshalOptions{Multiline: true, EmitUnpopulated: true, UseProtoNames: true}

// json reports whether -o json or -o yaml was asked for: output for
// scripts, which printJSON writes.
func (a *app) json() bool { return a.output == outputJSON || a.output == outputYAML }

// printJSON writes m to stdout as JSON, or as YAML with the same field
// names for -o yaml.
func (a *app) printJSON(m proto.Message) error {
	what := string(m.ProtoReflect().Descriptor().Name())
	b, err := jsonOut.Marshal(m)
	if err != nil {
		return fmt.Errorf("render %s as JSON: %w", what, err)
	}
	return a.writeStructured(what, b)
}

// printJSONWith is printJSON with the values of the named top-level fields
// replaced by the given JSON documents, in the message's field order. It
// is for bytes fields that hold JSON, which protojson renders as base64.
func (a *app) printJSONWith(m proto.Message, values map[string]json.RawMessage) error {
	what := string(m.ProtoReflect().Descriptor().Name())
	b, err := jsonOut.Marshal(m)
	if err != nil {
		return fmt.Errorf("render %s as JSON: %w", what, err)
	}
	// Walk the object key by key rather than through a map, which would
	// sort the fields.
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil { // the opening brace
		return fmt.Errorf("render %s as JSON: %w", what, err)
	}
	var obj bytes.Buffer
	obj.WriteByte('{')
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return fmt.Errorf("render %s as JSON: %w", what, err)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("render %s as JSON: %w", what, err)
		}
		if r, ok := values[key.(string)]; ok {
			v = r
		}
		if obj.Len() > 1 {
			obj.WriteByte(',')
		}
		k, _ := json.Marshal(key)
		obj.Write(k)
		obj.WriteByte(':')
		obj.Write(v)
	}
	obj.WriteByte('}')
	var out bytes.Buffer
	if err := json.Indent(&out, obj.Bytes(), "", "  "); err != nil {
		return fmt.Errorf("render %s as JSON: %w", what, err)
	}
	return a.writeStructured(what, out.Bytes())
}

// printJSONLine writes m as one line of JSON (-o json), or as one YAML
// document after a --- line (-o yaml): for streams, one message at a time.
func (a *app) printJSONLine(m proto.Message) error {
	what := string(m.ProtoReflect().Descriptor().Name())
	b, err := protojson.MarshalOptions{EmitUnpopulated: true, UseProtoNames: true}.Marshal(m)
	if err != nil {
		return fmt.Errorf("render %s as JSON: %w", what, err)
	}
	var line bytes.Buffer
	if err := json.Compact(&line, b); err != nil { // protojson varies its spacing
		return fmt.Errorf("render %s as JSON: %w", what, err)
	}
	if a.output == outputYAML {
		fmt.Fprintln(a.stdout, "---")
	}
	return a.writeStructured(what, line.Bytes())
}

// writeStructured writes the JSON document b to stdout, converted to YAML
// for -o yaml. Every command's script output goes through here, so -o json
// and -o yaml always carry the same field names.
func (a *app) writeStructured(what string, b []byte) error {
	if a.output == outputYAML {
		y, err := configfile.JSONToYAML(b)
		if err != nil {
			return fmt.Errorf("render %s as YAML: %w", what, err)
		}
		_, err = a.stdout.Write(y)
		return err
	}
	_, err := a.stdout.Write(append(b, '\n'))
	return err
}

// table writes aligned columns to w; call flush when done.
type table struct{ tw *tabwriter.Writer }

// newTable starts a table on w with the given column headers (none for a
// key: value listing).
func newTable(w io.Writer, headers ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	if len(headers) > 0 {
		t.row(headers...)
	}
	return t
}

// row writes one row; empty cells show as "-".
func (t *table) row(cells ...string) {
	for i, c := range cells {
		if c == "" {
			cells[i] = "-"
		}
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

// kv writes one "key: value" line of a detail listing.
func (t *table) kv(key, value string) {
	if value == "" {
		value = "-"
	}
	fmt.Fprintf(t.tw, "%s:\t%s\n", key, value)
}

// flush writes out the table.
func (t *table) flush() error { return t.tw.Flush() }

// yesNo renders a bool for a table.
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// ago renders t relative to now, such as "3s ago"; "never" for no time.
func ago(now time.Time, ts *timestamppb.Timestamp) string {
	if ts == nil || (ts.GetSeconds() == 0 && ts.GetNanos() == 0) {
		return "never"
	}
	d := now.Sub(ts.AsTime())
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d/time.Hour))
	default:
		return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
	}
}

// when renders a timestamp in full with its age, for detail listings.
func when(now time.Time, ts *timestamppb.Timestamp) string {
	if ts == nil || (ts.GetSeconds() == 0 && ts.GetNanos() == 0) {
		return "never"
	}
	return fmt.Sprintf("%s (%s)", ts.AsTime().Local().Format(time.RFC3339), ago(now, ts))
}

// shorten cuts s to its first line and at most n runes, marking a cut.
func shorten(s string, n int) string {
	cut := false
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s, cut = s[:i], true
	}
	if r := []rune(s); len(r) > n {
		s, cut = string(r[:n]), true
	}
	if cut {
		s += "..."
	}
	return s
}

// shortHash renders a hex digest by its first 8 digits, as sha256:1a2b3c4d.
func shortHash(hex string) string {
	if hex == "" {
		return ""
	}
	if len(hex) > 8 {
		hex = hex[:8]
	}
	return "sha256:" + hex
}

// humanMicros renders a duration in microseconds shortly: 850µs, 12.3ms,
// 1.25s, 3m4s.
func humanMicros(us int64) string {
	d := time.Duration(us) * time.Microsecond
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", us)
	case d < time.Second:
		return fmt.Sprintf("%.3gms", float64(d)/float64(time.Millisecond))
	case d < time.Minute:
		return fmt.Sprintf("%.3gs", d.Seconds())
	default:
		return d.Round(time.Second).String()
	}
}
