package configfile

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// maxDepth bounds how deep a walker goes, so that an alias inside what it
// names is an error rather than a walk without end.
const maxDepth = 1000

// sourceFile is the message a package's file is, the one where text may
// stand for content.
var sourceFile = (&adminv1.SourceFile{}).ProtoReflect().Descriptor().FullName()

// walker turns one object's YAML into JSON for protojson, field by field
// against the object's message, noting the line of each field and what is
// wrong on the way.
type walker struct {
	fields   map[string]int // the line of each field's key, by its path in the object
	problems []lineProblem
	nodes    *int // the nodes left to convert, shared by the walkers of one Read
	depth    int
	stopped  bool // whether the walk stopped short: out of nodes, or too deep
}

// lineProblem is one thing wrong with an object, at a line of its file.
type lineProblem struct {
	line int
	msg  string
}

// problem notes a problem at line.
func (w *walker) problem(line int, format string, args ...any) {
	w.problems = append(w.problems, lineProblem{line, fmt.Sprintf(format, args...)})
}

// mapping is a message as the file gives it: a mapping of its fields.
type mapping struct {
	md      protoreflect.MessageDescriptor
	entries []*entry
}

// entry is one field of a mapping.
type entry struct {
	fd    protoreflect.FieldDescriptor
	path  string     // the field's path in the object
	line  int        // the line of its key
	value any        // its value as JSON
	subs  []*mapping // the messages it holds that the file gives as mappings
	items []*item    // the other elements or values it holds, of a list or a map
}

// item is one element of a list field, or one value of a map field, that
// is not a message given as a mapping.
type item struct {
	key   string // the map key; "" for a list's element
	path  string
	line  int        // the line of the element, or of the key
	node  *yaml.Node // the element, or the value
	value any
}

// json is m as a JSON object, by the fields' proto names.
func (m *mapping) json() map[string]any {
	out := make(map[string]any, len(m.entries))
	for _, e := range m.entries {
		out[string(e.fd.Name())] = e.value
	}
	return out
}

// name is the name m gives, or "".
func (m *mapping) name() string {
	if m == nil {
		return ""
	}
	for _, e := range m.entries {
		if s, ok := e.value.(string); ok && e.fd.Name() == "name" && e.fd.Kind() == protoreflect.StringKind {
			return s
		}
	}
	return ""
}

// unmarshal unmarshals m into msg with protojson.
func (m *mapping) unmarshal(msg proto.Message) error {
	b, err := json.Marshal(m.json())
	if err != nil {
		return err
	}
	return protojson.Unmarshal(b, msg)
}

// typeProblems finds the fields of m whose values protojson refuses, one
// at a time, and notes each at the deepest field it can: the field in a
// nested message, else the field's key. It reports whether it found any.
func (w *walker) typeProblems(m *mapping) bool {
	found := false
	for _, e := range m.entries {
		one := &mapping{md: m.md, entries: []*entry{e}}
		err := one.unmarshal(dynamicpb.NewMessage(m.md))
		if err == nil {
			continue
		}
		found = true
		deeper := w.itemProblems(m.md, e)
		for _, sub := range e.subs {
			if w.typeProblems(sub) {
				deeper = true
			}
		}
		if !deeper {
			// protojson names a field by its JSON name; the file, by its
			// proto name.
			msg := strings.Replace(protoMessage(err), "field "+e.fd.JSONName()+":", "field "+string(e.fd.Name())+":", 1)
			w.problem(e.line, "%s: %s", e.path, msg)
		}
	}
	return found
}

// itemProblems finds the items of e, a list or a map in a message md,
// that protojson refuses, one at a time, and notes each at its line. It
// reports whether it found any.
func (w *walker) itemProblems(md protoreflect.MessageDescriptor, e *entry) bool {
	found := false
	for _, it := range e.items {
		var one any = []any{it.value}
		if e.fd.IsMap() {
			one = map[string]any{it.key: it.value}
		}
		m := &mapping{md: md, entries: []*entry{{fd: e.fd, value: one}}}
		err := m.unmarshal(dynamicpb.NewMessage(md))
		if err == nil {
			continue
		}
		found = true
		fd := e.fd
		if fd.IsMap() {
			fd = fd.MapValue()
		}
		var msg string
		switch {
		case isMessage(fd):
			msg = "want a mapping of fields, not " + describe(deref(it.node))
		case fd.Kind() == protoreflect.MessageKind:
			msg = protoMessage(err) // a Timestamp's, say
		default:
			msg = fmt.Sprintf("want %s, not %s", fd.Kind(), describe(deref(it.node)))
		}
		w.problem(it.line, "%s: %s", it.path, msg)
	}
	return found
}

// enter is n, or what n is an alias of, counting it against the budget of
// nodes and the depth; false when either is spent. Each enter is paired
// with a leave.
func (w *walker) enter(n *yaml.Node) (*yaml.Node, bool) {
	w.depth++
	*w.nodes--
	switch {
	case w.stopped:
		return nil, false
	case *w.nodes < 0:
		w.stopped = true
		w.problem(n.Line, "too many YAML nodes to read (aliases of aliases?)")
		return nil, false
	case w.depth > maxDepth:
		w.stopped = true
		w.problem(n.Line, "nested more than %d deep (an alias inside what it names?)", maxDepth)
		return nil, false
	}
	return deref(n), true
}

// leave ends what enter began.
func (w *walker) leave() { w.depth-- }

// deref is n, or what n is an alias of, for a node read once.
func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// message reads n as the message md at path in the object; nil when n is
// not a mapping (a problem noted).
func (w *walker) message(n *yaml.Node, md protoreflect.MessageDescriptor, path string) *mapping {
	n, ok := w.enter(n)
	defer w.leave()
	if !ok {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		w.problem(n.Line, "%swant a mapping of fields, not %s", prefix(path), describe(n))
		return nil
	}
	m := &mapping{md: md}
	given := map[protoreflect.Name]*yaml.Node{}
	for _, kv := range w.pairs(n) {
		k, v := deref(kv[0]), kv[1]
		if k.Kind != yaml.ScalarNode {
			w.problem(kv[0].Line, "%swant a field's name, not %s", prefix(path), describe(k))
			continue
		}
		fd, text := fieldOf(md, k.Value)
		if fd == nil {
			w.problem(k.Line, "%sunknown field %q", prefix(path), k.Value)
			continue
		}
		if first, dup := given[fd.Name()]; dup {
			if first.Value != k.Value {
				w.problem(k.Line, "%sgive %s or %s, not both (%s at line %d)", prefix(path), first.Value, k.Value, first.Value, first.Line)
			} else {
				w.problem(k.Line, "%sfield %q given twice (also at line %d)", prefix(path), k.Value, first.Line)
			}
			continue
		}
		given[fd.Name()] = k
		e := &entry{fd: fd, path: fieldPath(path, string(fd.Name())), line: k.Line}
		w.fields[e.path] = k.Line
		switch {
		case text:
			e.value = w.text(v, e.path)
		case isNull(v):
		case fd.IsMap():
			w.mapValue(v, e)
		case fd.IsList():
			w.listValue(v, e)
		case isMessage(fd):
			if sub := w.message(v, fd.Message(), e.path); sub != nil {
				e.value, e.subs = sub.json(), []*mapping{sub}
			}
		default:
			e.value = w.json(v)
		}
		m.entries = append(m.entries, e)
	}
	return m
}

// fieldOf is the field of md that key names, by its proto name or its JSON
// name. text is true for a package file's text, which stands for content.
func fieldOf(md protoreflect.MessageDescriptor, key string) (fd protoreflect.FieldDescriptor, text bool) {
	fields := md.Fields()
	if md.FullName() == sourceFile && key == "text" {
		return fields.ByName("content"), true
	}
	if fd := fields.ByName(protoreflect.Name(key)); fd != nil {
		return fd, false
	}
	return fields.ByJSONName(key), false
}

// isMessage reports whether fd holds messages the file gives as mappings
// of fields: a message, but not one of protobuf's own, such as a
// Timestamp, that JSON writes otherwise.
func isMessage(fd protoreflect.FieldDescriptor) bool {
	if fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind {
		return false
	}
	return !strings.HasPrefix(string(fd.Message().FullName()), "google.protobuf.")
}

// text is a package file's text at path as content: its bytes in base64.
func (w *walker) text(v *yaml.Node, path string) any {
	v = deref(v)
	switch {
	case isNull(v):
		return nil
	case v.Kind != yaml.ScalarNode:
		w.problem(v.Line, "%s: text: want the file's source as a string, not %s", path, describe(v))
		return nil
	}
	return base64.StdEncoding.EncodeToString([]byte(v.Value))
}

// listValue reads the list field e from v, noting the line of each
// element.
func (w *walker) listValue(v *yaml.Node, e *entry) {
	n, ok := w.enter(v)
	defer w.leave()
	if !ok {
		return
	}
	if n.Kind != yaml.SequenceNode {
		w.problem(v.Line, "%s: want a list, not %s", e.path, describe(n))
		return
	}
	out := make([]any, 0, len(n.Content))
	for i, el := range n.Content {
		at := indexPath(e.path, i)
		w.fields[at] = el.Line
		if isMessage(e.fd) && !isNull(el) {
			if sub := w.message(el, e.fd.Message(), at); sub != nil {
				out = append(out, sub.json())
				e.subs = append(e.subs, sub)
			}
			continue
		}
		it := &item{path: at, line: el.Line, node: el, value: w.json(el)}
		out = append(out, it.value)
		e.items = append(e.items, it)
	}
	e.value = out
}

// mapValue reads the map field e from v, noting the line of each key.
func (w *walker) mapValue(v *yaml.Node, e *entry) {
	n, ok := w.enter(v)
	defer w.leave()
	if !ok {
		return
	}
	if n.Kind != yaml.MappingNode {
		w.problem(v.Line, "%s: want a mapping, not %s", e.path, describe(n))
		return
	}
	out := map[string]any{}
	given := map[string]int{}
	vd := e.fd.MapValue()
	for _, kv := range w.pairs(n) {
		k, val := deref(kv[0]), kv[1]
		line := kv[0].Line
		if k.Kind != yaml.ScalarNode {
			w.problem(line, "%s: want a key, not %s", e.path, describe(k))
			continue
		}
		if first, dup := given[k.Value]; dup {
			w.problem(line, "%s: key %q given twice (also at line %d)", e.path, k.Value, first)
			continue
		}
		at := keyPath(e.path, k.Value)
		given[k.Value] = line
		w.fields[at] = line
		if isMessage(vd) && !isNull(val) {
			if sub := w.message(val, vd.Message(), at); sub != nil {
				out[k.Value] = sub.json()
				e.subs = append(e.subs, sub)
			}
			continue
		}
		it := &item{key: k.Value, path: at, line: line, node: val, value: w.json(val)}
		out[k.Value] = it.value
		e.items = append(e.items, it)
	}
	e.value = out
}

// pairs are the keys and values of mapping n, with YAML's merge keys
// (<<: *defaults, or <<: [*a, *b]) replaced by the pairs of the mappings
// they name: a key n gives wins over a merged one, and an earlier merged
// mapping over a later.
func (w *walker) pairs(n *yaml.Node) [][2]*yaml.Node {
	var own, merged [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if dk := deref(k); dk.Kind != yaml.ScalarNode || dk.ShortTag() != "!!merge" {
			own = append(own, [2]*yaml.Node{k, v})
			continue
		}
		merged = append(merged, w.merge(v)...)
	}
	if len(merged) == 0 {
		return own
	}
	seen := map[string]bool{}
	for _, kv := range own {
		seen[deref(kv[0]).Value] = true
	}
	for _, kv := range merged {
		if key := deref(kv[0]).Value; !seen[key] {
			seen[key] = true
			own = append(own, kv)
		}
	}
	return own
}

// merge is the pairs of the mapping, or list of mappings, a merge key's
// value v names.
func (w *walker) merge(v *yaml.Node) [][2]*yaml.Node {
	n, ok := w.enter(v)
	defer w.leave()
	if !ok {
		return nil
	}
	sources := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		sources = n.Content
	}
	var out [][2]*yaml.Node
	for _, src := range sources {
		if deref(src).Kind != yaml.MappingNode {
			w.problem(src.Line, "<<: want a mapping or a list of mappings to merge, not %s", describe(deref(src)))
			continue
		}
		out = append(out, w.mergeOne(src)...)
	}
	return out
}

// mergeOne is the pairs of the mapping src, itself merged.
func (w *walker) mergeOne(src *yaml.Node) [][2]*yaml.Node {
	n, ok := w.enter(src)
	defer w.leave()
	if !ok {
		return nil
	}
	return w.pairs(n)
}

// isNull reports whether n is null: left empty, or written null or ~.
func isNull(n *yaml.Node) bool {
	n = deref(n)
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// json is n as JSON: a mapping as an object, a sequence as an array, a
// scalar as YAML resolves it. protojson, not this, says whether it fits
// its field.
func (w *walker) json(n *yaml.Node) any {
	n, ok := w.enter(n)
	defer w.leave()
	if !ok {
		return nil
	}
	switch n.Kind {
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, item := range n.Content {
			out = append(out, w.json(item))
		}
		return out
	case yaml.MappingNode:
		out := map[string]any{}
		for _, kv := range w.pairs(n) {
			k := deref(kv[0])
			if k.Kind != yaml.ScalarNode {
				w.problem(kv[0].Line, "want a key, not %s", describe(k))
				continue
			}
			out[k.Value] = w.json(kv[1])
		}
		return out
	case yaml.ScalarNode:
		return scalar(n)
	}
	return nil
}

// scalar is the JSON value of a scalar: null, a bool, a number, else its
// text. A number YAML reads (0x1F, 1_000, .inf) is written as JSON writes
// it.
func scalar(n *yaml.Node) any {
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!bool":
		var b bool
		if n.Decode(&b) == nil {
			return b
		}
	case "!!int":
		var i int64
		if n.Decode(&i) == nil {
			return json.Number(strconv.FormatInt(i, 10))
		}
		var u uint64
		if n.Decode(&u) == nil {
			return json.Number(strconv.FormatUint(u, 10))
		}
	case "!!float":
		var f float64
		if n.Decode(&f) == nil {
			switch {
			case math.IsNaN(f):
				return "NaN"
			case math.IsInf(f, 1):
				return "Infinity"
			case math.IsInf(f, -1):
				return "-Infinity"
			}
			return json.Number(strconv.FormatFloat(f, 'g', -1, 64))
		}
	case "!!binary":
		return strings.Join(strings.Fields(n.Value), "")
	}
	return n.Value
}

// prefix is path and a colon, to start a message about the field at path;
// "" for the object itself.
func prefix(path string) string {
	if path == "" {
		return ""
	}
	return path + ": "
}

// describe names what n is, for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "null"
		}
		if n.ShortTag() == "!!str" {
			return strconv.Quote(n.Value)
		}
		return n.Value
	}
	return "nothing"
}
