package configfile

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// Version is the version of the file format this package reads and
// writes.
const Version = 1

// includeKey is the top-level key that lists the files to read in too.
const includeKey = "include"

// topKeys are the keys a file may have at its top, for messages.
const topKeys = "version, include, security, outgoing, channels, jobs or packages"

// maxNodes bounds the YAML nodes one Read converts, aliases expanded, so
// that a file of aliases of aliases cannot make it run for ever.
const maxNodes = 1 << 20

// Read reads the config file at path, YAML or JSON (JSON is YAML), and the
// files it includes.
//
// A file's top-level keys are the Config's fields (version, security,
// outgoing, channels, jobs, packages) and include, a list of files, each
// relative to the directory of the file that includes it, whose objects
// join the config. A file's keys are read in order, an include when it is
// met, so the objects of each kind are in the order read; a file included
// twice is read once. In a package's files, text: the source as text may
// stand for content: the source in base64. A field may be named as in the
// proto or as in JSON (timeout_ms or timeoutMs); YAML's anchors, aliases
// and merge keys (<<: *defaults) work.
//
// Every problem of every file is reported, each naming its file:line and
// the object: YAML that does not parse, an unknown field, a value of the
// wrong type, an object given twice (in one file or two), a version other
// than 1 or two files' versions that differ, an include that cannot be
// read or that includes itself. A path that cannot be read is an error
// as os.ReadFile gives it.
func Read(path string) (*Doc, error) {
	return ReadFiles(path)
}

// ReadFiles reads several config files, and the files they include, as
// one config: as Read reads a file that includes them all, in order.
func ReadFiles(paths ...string) (*Doc, error) {
	return ReadFilesWithin("", paths...)
}

// MaxFileBytes bounds one config file: an export with every package's
// source fits many times over.
const MaxFileBytes = 64 << 20

// ReadFilesWithin is ReadFiles for files the reader did not write itself,
// such as those dropped in a directory: every file included must lie
// under root (a directory; empty means anywhere).
func ReadFilesWithin(root string, paths ...string) (*Doc, error) {
	r := &reader{
		root:  root,
		doc:   &Doc{Config: &adminv1.Config{}, objects: map[string][]*objectPos{}},
		read:  map[string]bool{},
		order: map[string]int{},
		names: map[string]pos{},
		nodes: maxNodes,
	}
	for _, path := range paths {
		if err := r.file(path, pos{}); err != nil {
			return nil, err
		}
	}
	if err := r.err(); err != nil {
		return nil, err
	}
	return r.doc, nil
}

// readFile reads the regular file at path (abs), at most MaxFileBytes; an
// included one (from is its include) must lie under r.root.
func (r *reader) readFile(path, abs string, from pos) ([]byte, error) {
	if r.root != "" && from.file != "" {
		rel, err := filepath.Rel(absPath(r.root), abs)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return nil, fmt.Errorf("outside %s, where includes must stay", r.root)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	if fi.Size() > MaxFileBytes {
		return nil, fmt.Errorf("%s: %d bytes; a config file may have %d", path, fi.Size(), MaxFileBytes)
	}
	return io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
}

// reader reads a config's files into a Doc, collecting the problems.
type reader struct {
	doc      *Doc
	problems []problem
	read     map[string]bool // the absolute paths of the files read
	chain    []string        // the files being read, each including the next
	chainAbs []string        // the same, absolute
	order    map[string]int  // the order each file was read in, by path
	names    map[string]pos  // where each object was given, by kind and name
	nodes    int             // the YAML nodes left to convert
	root     string          // the directory includes must lie under; "" for anywhere
}

// problem is one thing wrong with a file, at a line of it.
type problem struct {
	at  pos
	err error
}

// add notes a problem at at.
func (r *reader) add(at pos, format string, args ...any) {
	r.problems = append(r.problems, problem{at, fmt.Errorf(format, args...)})
}

// err is every problem, in the order the files were read and by line, as
// one error; nil without problems.
func (r *reader) err() error {
	slices.SortStableFunc(r.problems, func(a, b problem) int {
		return cmp.Or(cmp.Compare(r.order[a.at.file], r.order[b.at.file]), cmp.Compare(a.at.line, b.at.line))
	})
	errs := make([]error, len(r.problems))
	for i, p := range r.problems {
		errs[i] = fmt.Errorf("%s: %w", p.at, p.err)
	}
	return errors.Join(errs...)
}

// file reads the file at path, included at from (zero for the file Read
// was given). Only a file Read was given returns its error; the others
// are problems at their include.
func (r *reader) file(path string, from pos) error {
	abs := absPath(path)
	if i := slices.Index(r.chainAbs, abs); i >= 0 {
		r.add(from, "include cycle: %s", strings.Join(append(slices.Clone(r.chain[i:]), path), " → "))
		return nil
	}
	if r.read[abs] {
		return nil
	}
	b, err := r.readFile(path, abs, from)
	if err != nil {
		if from.file == "" {
			return err
		}
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		r.add(from, "include %s: %w", path, err)
		return nil
	}
	r.read[abs] = true
	if _, ok := r.order[path]; !ok {
		r.order[path] = len(r.order)
	}
	r.chain, r.chainAbs = append(r.chain, path), append(r.chainAbs, abs)
	defer func() { r.chain, r.chainAbs = r.chain[:len(r.chain)-1], r.chainAbs[:len(r.chainAbs)-1] }()
	root, p := parse(path, b)
	if p != nil {
		r.problems = append(r.problems, *p)
		return nil
	}
	if root != nil {
		r.top(path, root)
	}
	return nil
}

// absPath is path made absolute, to tell whether two paths are one file.
func absPath(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	return path
}

// yamlLine finds the line in an error of the YAML parser.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// parse parses the file path holds, b: its one YAML document's top node,
// or nil when it is empty.
func parse(path string, b []byte) (*yaml.Node, *problem) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil, nil
	} else if err != nil {
		return nil, syntaxProblem(path, err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		return nil, &problem{pos{path, next.Line}, errors.New("a config file holds one YAML document; a second starts here")}
	} else if !errors.Is(err, io.EOF) {
		return nil, syntaxProblem(path, err)
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	if isNull(root) {
		return nil, nil
	}
	return root, nil
}

// syntaxProblem is the YAML parser's err at its line; the parser leaves the
// line out of an error on the first.
func syntaxProblem(path string, err error) *problem {
	msg, line := err.Error(), 1
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	return &problem{pos{path, line}, fmt.Errorf("not YAML or JSON: %s", msg)}
}

// top reads the top node of the file at path.
func (r *reader) top(path string, root *yaml.Node) {
	root = deref(root)
	if root.Kind != yaml.MappingNode {
		r.add(pos{path, root.Line}, "want a mapping of %s", topKeys)
		return
	}
	given := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		at := pos{path, k.Line}
		if line, dup := given[k.Value]; dup {
			r.add(at, "%s given twice (also at line %d)", k.Value, line)
			continue
		}
		given[k.Value] = k.Line
		switch k.Value {
		case "version":
			r.version(at, v)
		case includeKey:
			r.includes(at, v)
		default:
			kd, ok := kindOf(k.Value)
			if !ok || k.Kind != yaml.ScalarNode {
				r.add(at, "unknown field %q (want %s)", k.Value, topKeys)
				continue
			}
			r.objects(at, kd, v)
		}
	}
}

// version reads the version given at at.
func (r *reader) version(at pos, v *yaml.Node) {
	cfg := &adminv1.Config{}
	if err := unmarshal(map[string]any{"version": r.walker().json(v)}, cfg); err != nil {
		r.add(at, "version: %s", protoMessage(err))
		return
	}
	switch first := r.doc.version; {
	case first.file != "" && cfg.GetVersion() != r.doc.Config.GetVersion():
		r.add(at, "version %d differs from version %d at %s", cfg.GetVersion(), r.doc.Config.GetVersion(), first)
	case cfg.GetVersion() != Version:
		r.add(at, "version %d: this reader knows version %d only", cfg.GetVersion(), Version)
	case first.file == "":
		r.doc.version = at
		r.doc.Config.Version = cfg.GetVersion()
	}
}

// includes reads the files listed at at.
func (r *reader) includes(at pos, v *yaml.Node) {
	v = deref(v)
	var items []*yaml.Node
	switch {
	case v.Kind == yaml.SequenceNode:
		items = v.Content
	case isNull(v):
	case v.Kind == yaml.ScalarNode:
		items = []*yaml.Node{v}
	default:
		r.add(at, "include: want a list of files")
		return
	}
	for _, item := range items {
		from := pos{at.file, item.Line}
		item = deref(item)
		if item.Kind != yaml.ScalarNode || item.Value == "" {
			r.add(from, "include: want a file's path")
			continue
		}
		path := item.Value
		if !filepath.IsAbs(path) {
			path = filepath.Join(filepath.Dir(at.file), path)
		}
		_ = r.file(path, from)
	}
}

// objects reads the list of objects of kind kd given at at.
func (r *reader) objects(at pos, kd kind, v *yaml.Node) {
	v = deref(v)
	switch {
	case isNull(v):
		return
	case v.Kind != yaml.SequenceNode:
		r.add(at, "%s: want a list of objects", kd.list)
		return
	}
	for _, item := range v.Content {
		r.object(at.file, kd, item)
	}
}

// object reads one object of kind kd from n, in the file at path, and
// adds it to the config, whatever its problems, so that the lists of
// objects and of their places stay aligned.
func (r *reader) object(path string, kd kind, n *yaml.Node) {
	at := pos{path, n.Line}
	list := listOf(r.doc.Config, kd.list)
	el := list.NewElement()
	w := r.walker()
	m := w.message(n, el.Message().Descriptor(), "")
	if m != nil && !w.stopped {
		if err := unmarshal(m, el.Message().Interface()); err != nil && !w.refused() {
			w.problem(at.line, "%s", protoMessage(err))
		}
	}
	list.Append(el)
	r.doc.objects[string(kd.list)] = append(r.doc.objects[string(kd.list)], &objectPos{at: at, fields: w.fields})

	name, _ := m["name"].(string)
	label := kd.label(name)
	for _, p := range w.problems {
		r.add(pos{path, p.line}, "%s: %s", label, p.msg)
	}
	if name == "" {
		return
	}
	key := kd.word + "\x00" + name
	if first, dup := r.names[key]; dup {
		r.add(at, "%s is given twice: here and at %s", label, first)
		return
	}
	r.names[key] = at
}

// walker is a walker that shares the reader's budget of nodes.
func (r *reader) walker() *walker {
	return &walker{fields: map[string]int{}, nodes: &r.nodes}
}

// protoNoise is what protojson puts before the text of an error: a prefix,
// and a position in the JSON made from the file that means nothing to its
// reader.
var protoNoise = regexp.MustCompile(`^proto:[\s\x{a0}]*(syntax error )?(\(line \d+:\d+\):\s*)?`)

// protoMessage is the text of a protojson error.
func protoMessage(err error) string {
	return protoNoise.ReplaceAllString(err.Error(), "")
}
