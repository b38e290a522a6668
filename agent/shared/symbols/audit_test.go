package symbols

import (
	"fmt"
	"go/constant"
	"maps"
	"os"
	"path"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestAudit walks every exported symbol of every package in the tables,
// the methods of every exported type, and the types services reach through
// them, and requires each to be classified in audit.txt: allowed, or
// refused with a reason. A Go or Yaegi upgrade, or a package added to
// generate.go, that brings a symbol fails here until someone classifies it.
//
// It also holds the audit to what the tables are: a refused function,
// variable or type must be left out of them (-exclude in generate.go, so
// that the interpreter cannot reach it even if the door were bypassed), and
// generate.go leaves out nothing the audit does not refuse.
func TestAudit(t *testing.T) {
	audit, err := ParseAudit(auditText)
	if err != nil {
		t.Fatal(err)
	}
	w := newWalker(audit)
	w.walkTables()

	var missing []string
	for _, p := range slices.Sorted(maps.Keys(w.need)) {
		ap := audit.Packages[p]
		switch {
		case ap == nil && w.tables[p]:
			missing = append(missing, fmt.Sprintf("package %s: <why the package is allowed>", p))
		case ap == nil:
			missing = append(missing, fmt.Sprintf("reachable %s: <why its types are safe to hold>", p))
		case ap.Reachable == w.tables[p]:
			t.Errorf("audit.txt:%d: %s is %s, so its header must start with %q", ap.Line, p,
				map[bool]string{true: "in the tables", false: "not in the tables but reached through them"}[w.tables[p]],
				map[bool]string{true: "package", false: "reachable"}[w.tables[p]])
		}
		for _, name := range slices.Sorted(maps.Keys(w.need[p])) {
			if ap == nil || ap.Entries[name] == nil {
				missing = append(missing, fmt.Sprintf("\t%s\t# %s", name, w.need[p][name]))
			}
		}
	}
	if len(missing) > 0 {
		t.Errorf("audit.txt does not classify %d symbols services can reach; add each under its package, "+
			"alone to allow it, or with \" refused: <why>\" (and -exclude it in generate.go if it is not a method):\n%s",
			len(missing), strings.Join(missing, "\n"))
	}

	excluded := generateExclusions(t)
	for _, p := range slices.Sorted(maps.Keys(audit.Packages)) {
		ap := audit.Packages[p]
		if w.need[p] == nil {
			t.Errorf("audit.txt:%d: %s is neither in the tables nor reached through them; remove its part", ap.Line, p)
			continue
		}
		for _, name := range slices.Sorted(maps.Keys(ap.Entries)) {
			e := ap.Entries[name]
			_, inTable := w.table(p)[name]
			isMethod := strings.Contains(name, ".")
			switch {
			case e.Refused && inTable:
				t.Errorf("audit.txt:%d: %s.%s is refused but still in the tables; add ^%s$ to its -exclude in generate.go and run go generate", e.Line, p, name, name)
			case e.Refused && !isMethod && !ap.Reachable && !excluded[p][name]:
				t.Errorf("audit.txt:%d: %s.%s is refused, but generate.go does not exclude it; add ^%s$ to its -exclude", e.Line, p, name, name)
			case w.need[p][name] == "" && !(e.Refused && excluded[p][name]):
				t.Errorf("audit.txt:%d: %s.%s is not in the tables or reached through them any more; remove the line", e.Line, p, name)
			}
		}
	}
	for _, p := range slices.Sorted(maps.Keys(excluded)) {
		for _, name := range slices.Sorted(maps.Keys(excluded[p])) {
			if _, refused := audit.Packages[p].refusal(name); !refused {
				t.Errorf("generate.go excludes %s.%s, which audit.txt does not refuse; refuse it there with a reason, or stop excluding it", p, name)
			}
		}
	}
	for _, msg := range w.problems {
		t.Error(msg)
	}
}

func (p *AuditPackage) refusal(name string) (string, bool) {
	if p == nil || p.Entries[name] == nil || !p.Entries[name].Refused {
		return "", false
	}
	return p.Entries[name].Reason, true
}

// TestAuditParse checks that a malformed audit is refused with its line.
func TestAuditParse(t *testing.T) {
	for _, tt := range []struct{ text, want string }{
		{"\tNew\n", "audit.txt:1: an entry before the first package line"},
		{"package fmt\n", "audit.txt:1: want \"package <import path>: <why it is allowed>\""},
		{"package fmt: formatting\n\tprintln\n", "audit.txt:2: \"println\" is not a symbol"},
		{"package fmt: formatting\n\tScan refused:\n", "audit.txt:2: after Scan, want nothing"},
		{"package fmt: formatting\n\tScan denied: why\n", "audit.txt:2: after Scan, want nothing"},
		{"package fmt: formatting\n\tScan\n\tScan\n", "audit.txt:3: fmt.Scan is already classified at line 2"},
		{"package fmt: a\npackage fmt: b\n", "audit.txt:2: package fmt is already audited at line 1"},
	} {
		if _, err := ParseAudit(tt.text); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseAudit(%q) = %v; want %q", tt.text, err, tt.want)
		}
	}
	a, err := ParseAudit("# comment\npackage text/template: templates\n\tNew\n\tParseFiles refused: it reads files on the agent\n\tTemplate.ParseGlob refused: it reads files\n")
	if err != nil {
		t.Fatal(err)
	}
	if e := a.Packages["text/template"].Entries["ParseFiles"]; !e.Refused || e.Reason != "it reads files on the agent" || e.Line != 4 {
		t.Errorf("ParseFiles = %+v", e)
	}
	if e := a.Packages["text/template"].Entries["New"]; e.Refused || e.Reason != "" {
		t.Errorf("New = %+v", e)
	}
}

// TestRefusal checks the lookup the door uses against audit.txt itself.
func TestRefusal(t *testing.T) {
	for _, tt := range []struct {
		path, name string
		refused    bool
	}{
		{"text/template", "ParseFiles", true},
		{"text/template", "Template.ParseGlob", true},
		{"text/template", "Template.Execute", false},
		{"sync", "WaitGroup.Go", true},
		{"sync", "WaitGroup.Wait", false},
		{"time", "AfterFunc", true},
		{"context", "AfterFunc", true},
		{"os", "ReadFile", false}, // not in the tables at all: the import is refused
	} {
		reason, refused := Refusal(tt.path, tt.name)
		if refused != tt.refused || refused && reason == "" {
			t.Errorf("Refusal(%s, %s) = %q, %v; want refused %v with a reason", tt.path, tt.name, reason, refused, tt.refused)
		}
	}
}

// walker finds what the audit must classify: the symbols of the tables,
// the methods of their types, and the named types (and their methods)
// reached through allowed symbols' signatures and exported fields.
type walker struct {
	audit  *Audit
	tables map[string]bool // import paths in the tables
	// need maps an import path and a name ("Func", "Type.Method") to what
	// it is, for the message that asks to classify it.
	need     map[string]map[string]string
	seen     map[reflect.Type]bool
	problems []string
}

func newWalker(a *Audit) *walker {
	w := &walker{audit: a, tables: map[string]bool{}, need: map[string]map[string]string{}, seen: map[reflect.Type]bool{}}
	for key := range Symbols {
		w.tables[path.Dir(key)] = true
	}
	return w
}

// table returns the symbols of the package at p.
func (w *walker) table(p string) map[string]reflect.Value {
	return Symbols[p+"/"+packageName(p)]
}

func packageName(p string) string {
	for key := range Symbols {
		if path.Dir(key) == p {
			return path.Base(key)
		}
	}
	return ""
}

func (w *walker) refused(p, name string) bool {
	_, refused := w.audit.Packages[p].refusal(name)
	return refused
}

func (w *walker) add(p, name, what string) {
	if w.need[p] == nil {
		w.need[p] = map[string]string{}
	}
	if w.need[p][name] == "" {
		w.need[p][name] = what
	}
}

func (w *walker) walkTables() {
	for _, key := range slices.Sorted(maps.Keys(Symbols)) {
		p := path.Dir(key)
		syms := Symbols[key]
		for _, name := range slices.Sorted(maps.Keys(syms)) {
			v := syms[name]
			if strings.HasPrefix(name, "_") || !v.IsValid() {
				continue // Yaegi's interface wrappers
			}
			switch {
			case v.Kind() == reflect.Pointer && v.IsNil():
				w.add(p, name, "type "+v.Type().Elem().String())
				w.walkType(v.Type().Elem(), p+"."+name, false)
			case v.Kind() == reflect.Func:
				w.add(p, name, "func "+strings.TrimPrefix(v.Type().String(), "func"))
				w.walkType(v.Type(), p+"."+name, false)
			case v.CanAddr():
				w.add(p, name, "var of type "+v.Type().String())
				w.walkType(v.Type(), p+"."+name, false)
			default:
				if _, untyped := v.Interface().(constant.Value); untyped {
					w.add(p, name, "constant")
				} else {
					w.add(p, name, "constant of type "+v.Type().String())
				}
			}
		}
	}
}

// walkType records t's methods and walks what they, and t's structure,
// reach. via names where t was found; field says whether through a struct
// field, the one way into reflect the door refuses by type rather than
// the audit by name.
func (w *walker) walkType(t reflect.Type, via string, field bool) {
	if t.Name() != "" && (t.PkgPath() == "reflect" || t.PkgPath() == "unsafe") {
		if !field {
			w.problems = append(w.problems, fmt.Sprintf("%s reaches %s outside a struct field; refuse it in audit.txt (reflect and unsafe reach any code and memory)", via, t))
		}
		return
	}
	if w.seen[t] {
		return
	}
	w.seen[t] = true
	if name := t.Name(); name != "" && t.PkgPath() != "" {
		name, _, _ = strings.Cut(name, "[") // an instance of a generic type
		if !isExported(name) {
			// An unexported type cannot be named in code; what it offers
			// is reached through the interfaces it is returned as.
			w.walkStructure(t, via, field)
			return
		}
		p := t.PkgPath()
		w.add(p, name, "type "+t.String()+", reached through "+via)
		for _, m := range methods(t) {
			mname := name + "." + m.Name
			w.add(p, mname, "method "+m.Type.String())
			if !w.refused(p, mname) {
				w.walkType(m.Type, p+"."+mname, false)
			}
		}
	}
	w.walkStructure(t, via, field)
}

// walkStructure walks what t is built of.
func (w *walker) walkStructure(t reflect.Type, via string, field bool) {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Chan:
		w.walkType(t.Elem(), via, field)
	case reflect.Map:
		w.walkType(t.Key(), via, field)
		w.walkType(t.Elem(), via, field)
	case reflect.Func:
		for i := range t.NumIn() {
			w.walkType(t.In(i), via, false)
		}
		for i := range t.NumOut() {
			w.walkType(t.Out(i), via, false)
		}
	case reflect.Struct:
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() || f.Anonymous {
				w.walkType(f.Type, via+" field "+f.Name, true)
			}
		}
	case reflect.Interface:
		// Its methods were recorded with the type; their signatures are
		// walked there.
	}
}

// methods returns the exported methods of t and *t, or of the interface
// t, with the receiver left out of their types.
func methods(t reflect.Type) []reflect.Method {
	var out []reflect.Method
	if t.Kind() == reflect.Interface {
		for i := range t.NumMethod() {
			if m := t.Method(i); m.IsExported() {
				out = append(out, m)
			}
		}
		return out
	}
	pt := reflect.PointerTo(t)
	for i := range pt.NumMethod() {
		m := pt.Method(i)
		in := make([]reflect.Type, m.Type.NumIn()-1)
		for j := range in {
			in[j] = m.Type.In(j + 1)
		}
		outs := make([]reflect.Type, m.Type.NumOut())
		for j := range outs {
			outs[j] = m.Type.Out(j)
		}
		m.Type = reflect.FuncOf(in, outs, m.Type.IsVariadic())
		out = append(out, m)
	}
	return out
}

func isExported(name string) bool {
	return name != "" && strings.ToUpper(name[:1]) == name[:1]
}

// generateExclusions reads the -exclude lists of generate.go: import path
// to the names left out of its table.
func generateExclusions(t *testing.T) map[string]map[string]bool {
	b, err := os.ReadFile("generate.go")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		args, ok := strings.CutPrefix(line, "//go:generate go tool yaegi extract ")
		if !ok {
			continue
		}
		fields := strings.Fields(args)
		var names, pkgs []string
		for i := 0; i < len(fields); i++ {
			switch fields[i] {
			case "-name":
				i++
			case "-exclude":
				i++
				for _, re := range strings.Split(fields[i], ",") {
					name := strings.TrimSuffix(strings.TrimPrefix(re, "^"), "$")
					if !isExported(name) || name != re[1:len(re)-1] {
						t.Fatalf("generate.go: -exclude %s: want ^Name$ entries, one symbol each", fields[i])
					}
					names = append(names, name)
				}
			default:
				pkgs = append(pkgs, fields[i])
			}
		}
		if len(names) > 0 && len(pkgs) != 1 {
			// -exclude matches names in every package of the line.
			t.Fatalf("generate.go: %q: give a package with -exclude a line of its own", line)
		}
		for _, p := range pkgs {
			for _, n := range names {
				if out[p] == nil {
					out[p] = map[string]bool{}
				}
				out[p][n] = true
			}
		}
	}
	return out
}
