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

// walker turns one object's YAML into the JSON protojson reads. It follows
// the object's message only as far as the shape goes (a mapping of fields
// for a message, a list, a map), noting the line of each field and what
// is wrong with the shape; the values are protojson's to read.
type walker struct {
	fields   map[string]int // the line of each field's key, by its path in the object
	leaves   []leaf         // the values left to protojson, to try one by one when it refuses the object
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

// leaf is a value the walker leaves to protojson: a field's, an element
// of a list or a value of a map, other than a message given as a mapping.
type leaf struct {
	md    protoreflect.MessageDescriptor // the message that has the field
	fd    protoreflect.FieldDescriptor
	item  bool   // an element of the list fd, or a value of the map fd
	key   string // the map value's key
	path  string
	line  int
	node  *yaml.Node
	value any // as JSON
}

// leaf notes l, a value at n, and returns it as JSON.
func (w *walker) leaf(l leaf, n *yaml.Node) any {
	l.node, l.value = n, w.json(n)
	w.leaves = append(w.leaves, l)
	return l.value
}

// refused tries each leaf alone, as protojson would read it in its
// message, and notes a problem at each it refuses. It reports whether
// there was one.
func (w *walker) refused() bool {
	before := len(w.problems)
	for _, l := range w.leaves {
		v := l.value
		switch {
		case l.item && l.fd.IsMap():
			v = map[string]any{l.key: v}
		case l.item:
			v = []any{v}
		}
		if err := unmarshal(map[string]any{string(l.fd.Name()): v}, dynamicpb.NewMessage(l.md)); err != nil {
			w.problem(l.line, "%s: %s", l.path, l.why(err))
		}
	}
	return len(w.problems) > before
}

// why says what is wrong with l, which protojson refused with err.
func (l leaf) why(err error) string {
	fd := l.fd
	if fd.IsMap() {
		fd = fd.MapValue()
	}
	switch {
	case !l.item:
		// protojson names a field by its JSON name; the file, by its
		// proto name.
		return strings.Replace(protoMessage(err), "field "+fd.JSONName()+":", "field "+string(fd.Name())+":", 1)
	case fd.Kind() == protoreflect.MessageKind:
		return protoMessage(err) // a Timestamp's, say
	}
	return fmt.Sprintf("want %s, not %s", fd.Kind(), describe(deref(l.node)))
}

// unmarshal reads v, JSON by the fields' proto names, into m with
// protojson.
func unmarshal(v any, m proto.Message) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return protojson.Unmarshal(b, m)
}

// enter is n, or what n is an alias of, counting it against the budget of
// nodes and the depth; false when either is spent. Each enter is paired
// with a leave.
func (w *walker) enter(n *yaml.Node) (*yaml.Node, bool) {
	w.depth++
	*w.nodes--
	n = deref(n)
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
	return n, true
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

// message reads n as the message md at path in the object: its fields as
// JSON by their proto names, or nil when n is not a mapping (a problem
// noted).
func (w *walker) message(n *yaml.Node, md protoreflect.MessageDescriptor, path string) map[string]any {
	n, ok := w.enter(n)
	defer w.leave()
	if !ok {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		w.problem(n.Line, "%swant a mapping of fields, not %s", prefix(path), describe(n))
		return nil
	}
	out := map[string]any{}
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
		at := fieldPath(path, string(fd.Name()))
		w.fields[at] = k.Line
		var value any
		switch {
		case text:
			value = w.text(v, at)
		case isNull(v):
		case fd.IsList():
			value = w.list(v, md, fd, at)
		case fd.IsMap():
			value = w.mapValue(v, md, fd, at)
		case isMessage(fd):
			if sub := w.message(v, fd.Message(), at); sub != nil {
				value = sub
			}
		default:
			value = w.leaf(leaf{md: md, fd: fd, path: at, line: k.Line}, v)
		}
		if value != nil {
			out[string(fd.Name())] = value
		}
	}
	return out
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

// list reads v as the list field fd of md, at path, noting the line of
// each element.
func (w *walker) list(v *yaml.Node, md protoreflect.MessageDescriptor, fd protoreflect.FieldDescriptor, path string) any {
	n, ok := w.enter(v)
	defer w.leave()
	if !ok {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		w.problem(v.Line, "%s: want a list, not %s", path, describe(n))
		return nil
	}
	out := make([]any, 0, len(n.Content))
	for i, el := range n.Content {
		at := indexPath(path, i)
		w.fields[at] = el.Line
		if !isMessage(fd) {
			out = append(out, w.leaf(leaf{md: md, fd: fd, item: true, path: at, line: el.Line}, el))
		} else if sub := w.message(el, fd.Message(), at); sub != nil {
			out = append(out, sub)
		}
	}
	return out
}

// mapValue reads v as the map field fd of md, at path, noting the line of
// each key.
func (w *walker) mapValue(v *yaml.Node, md protoreflect.MessageDescriptor, fd protoreflect.FieldDescriptor, path string) any {
	n, ok := w.enter(v)
	defer w.leave()
	if !ok {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		w.problem(v.Line, "%s: want a mapping, not %s", path, describe(n))
		return nil
	}
	out := map[string]any{}
	given := map[string]int{}
	for _, kv := range w.pairs(n) {
		k, line := deref(kv[0]), kv[0].Line
		if k.Kind != yaml.ScalarNode {
			w.problem(line, "%s: want a key, not %s", path, describe(k))
			continue
		}
		if first, dup := given[k.Value]; dup {
			w.problem(line, "%s: key %q given twice (also at line %d)", path, k.Value, first)
			continue
		}
		given[k.Value] = line
		at := keyPath(path, k.Value)
		w.fields[at] = line
		if !isMessage(fd.MapValue()) {
			out[k.Value] = w.leaf(leaf{md: md, fd: fd, item: true, key: k.Value, path: at, line: line}, kv[1])
		} else if sub := w.message(kv[1], fd.MapValue().Message(), at); sub != nil {
			out[k.Value] = sub
		}
	}
	return out
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
// value v names, each itself merged.
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
		m, ok := w.enter(src)
		switch {
		case !ok: // noted
		case m.Kind != yaml.MappingNode:
			w.problem(m.Line, "<<: want a mapping or a list of mappings to merge, not %s", describe(m))
		default:
			out = append(out, w.pairs(m)...)
		}
		w.leave()
	}
	return out
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
