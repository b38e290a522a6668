package configfile

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// dollarForms are values holding every form of "$" and "${" a literal
// value may hold; the first ones went wrong before the rule was
// symmetric (export wrote $${order.id}, import kept it).
var dollarForms = []string{
	`{"note":"for ${order.id}"}`,
	"${5}", "${a-b}", "${}", "${ x }", "${x", "${", "${${X}}",
	"$${x}", "$$${x}", "$${", "$$", "$$5", "cost $", "$", "$$$",
	"$`{x}`", "${HOME}", "${WEFT_SECRET_X_TOKEN}", "a${b}c$${d}e$$f$",
	"{}", "$}", "}${", "", "plain",
}

// noVars is a lookup for values that must hold no variable.
func noVars(t *testing.T) func(string) (string, bool) {
	return func(name string) (string, bool) {
		t.Errorf("looked up %s", name)
		return "", false
	}
}

// read reads s by the escape rule with lookup, failing t on a problem.
func read(t *testing.T, s string, lookup func(string) (string, bool)) string {
	t.Helper()
	fail := func(msg string) { t.Errorf("reading %q: %s", s, msg) }
	return expand(s, lookup, fail, fail)
}

func TestEscapeReadsBack(t *testing.T) {
	for _, s := range dollarForms {
		if got := read(t, Escape(s), noVars(t)); got != s {
			t.Errorf("read(Escape(%q)) = %q (written %q)", s, got, Escape(s))
		}
	}
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"HOST": "crm.example", "X": "${Y}", "_a1": "ok"}
	lookup := func(name string) (string, bool) { v, ok := vars[name]; return v, ok }
	tests := []struct{ in, want string }{
		{"https://${HOST}/x", "https://crm.example/x"},
		{"$${HOST}", "${HOST}"},
		{"$${5}", "${5}"},         // read as ${5} whatever follows $${
		{"$${ x }", "${ x }"},     // likewise
		{"$$${HOST}", "$${HOST}"}, // a $, then the escape
		{"$$5 and $$", "$$5 and $$"},
		{"${X}", "${Y}"}, // a value is never read again
		{"${_a1}", "ok"},
		{"trailing $", "trailing $"},
		{"$${${HOST}}", "${crm.example}"},
	}
	for _, tt := range tests {
		if got := read(t, tt.in, lookup); got != tt.want {
			t.Errorf("read(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestExpandRefuses(t *testing.T) {
	const literal = "; write $${ for a literal ${"
	const notVar = " is not a variable (a letter or _, then letters, digits and _)" + literal
	tests := []struct {
		in   string
		want []string
	}{
		{"${5}", []string{`"${5}"` + notVar}},
		{"${}", []string{`"${}"` + notVar}},
		{"${ x }", []string{`"${ x }"` + notVar}},
		{"${a-b}", []string{`"${a-b}"` + notVar}},
		{`{"note":"for ${order.id}"}`, []string{`"${order.id}"` + notVar}},
		{"${x", []string{`"${x" has no closing }` + literal}},
		{"ok ${A} then ${1} and ${", []string{`"${1}"` + notVar, `"${" has no closing }` + literal}},
		{"${" + strings.Repeat("x", 50), []string{`"${` + strings.Repeat("x", 37) + `…" has no closing }` + literal}},
	}
	for _, tt := range tests {
		var got []string
		out := expand(tt.in, func(string) (string, bool) { return "v", true },
			func(name string) { t.Errorf("%q: unset %s", tt.in, name) },
			func(msg string) { got = append(got, msg) })
		if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
			t.Errorf("read(%q) problems\n%s\nwant\n%s", tt.in, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
		}
		if strings.Contains(tt.in, "${A}") && !strings.Contains(out, "ok v then ${1}") {
			t.Errorf("read(%q) = %q: want the good variable resolved, the bad text kept", tt.in, out)
		}
	}
}

func TestHasVariable(t *testing.T) {
	for s, want := range map[string]bool{
		"${WEFT_SECRET_A}": true, "x${a}y": true, "pa${ss": false, "${5}": false, "$${A}": false, "$$${A}": false, "": false,
	} {
		if got := HasVariable(s); got != want {
			t.Errorf("HasVariable(%q) = %v, want %v", s, got, want)
		}
	}
}

// A hand-written file with a "${" that is no variable is refused, naming
// file:line, the object, the field and the text, and saying how to write a
// literal ${; variables set elsewhere in it do not hide the problems.
func TestResolveRefusesBadReferences(t *testing.T) {
	inDir(t, map[string]string{"weft.yaml": `jobs:
- name: j
  service: s.run
  payload: '{"id":"${order.id}","ok":"$${order.id}"}'
outgoing:
- name: o
  address: https://${HOST}
  headers:
    X-A: ${ x }
`})
	doc, err := Read("weft.yaml")
	if err != nil {
		t.Fatal(err)
	}
	err = doc.Resolve(func(name string) (string, bool) { return "h", name == "HOST" })
	checkErrLines(t, err, []string{
		`weft.yaml:9: outgoing "o": headers["X-A"]: "${ x }" is not a variable (a letter or _, then letters, digits and _); write $${ for a literal ${`,
		`weft.yaml:4: job "j": payload: "${order.id}" is not a variable (a letter or _, then letters, digits and _); write $${ for a literal ${`,
	})
}

// TestEscapeStringsReadBack writes every string field of every kind (every
// field the Config's messages have, found by reflection, so that a field
// added later is covered too) holding each of dollarForms as export does,
// as YAML and JSON, and reads the file back: the same config, and the same
// bytes when written again.
func TestEscapeStringsReadBack(t *testing.T) {
	for _, format := range []string{YAML, JSON} {
		t.Run(format, func(t *testing.T) {
			want := &adminv1.Config{Version: 1}
			m := want.ProtoReflect()
			lists := m.Descriptor().Fields()
			for i := range lists.Len() {
				fd := lists.Get(i)
				if !fd.IsList() || fd.Message() == nil {
					continue
				}
				for j, form := range dollarForms {
					obj := m.Mutable(fd).List().AppendMutable().Message()
					fillStrings(obj, form, 0)
					// Names stay apart, as a file's objects must.
					obj.Set(obj.Descriptor().Fields().ByName("name"), protoreflect.ValueOfString(fmt.Sprintf("n%d%s", j, form)))
				}
			}
			written := proto.Clone(want).(*adminv1.Config)
			for _, k := range kinds {
				l := listOf(written, k.list)
				for i := range l.Len() {
					EscapeStrings(l.Get(i).Message())
				}
			}
			b, err := Marshal(written, format)
			if err != nil {
				t.Fatal(err)
			}
			inDir(t, map[string]string{"weft." + format: string(b)})
			doc, err := Read("weft." + format)
			if err != nil {
				t.Fatalf("read back: %v\n%s", err, b)
			}
			if err := doc.Resolve(noVars(t)); err != nil {
				t.Fatalf("resolve: %v", err)
			}
			if !proto.Equal(want, doc.Config) {
				t.Errorf("read back another config:\n%s\nwant\n%s", prototext.Format(doc.Config), prototext.Format(want))
			}
			// Written again, as a second export would be: the same bytes.
			again := proto.Clone(doc.Config).(*adminv1.Config)
			for _, k := range kinds {
				l := listOf(again, k.list)
				for i := range l.Len() {
					EscapeStrings(l.Get(i).Message())
				}
			}
			b2, err := Marshal(again, format)
			if err != nil {
				t.Fatal(err)
			}
			if string(b2) != string(b) {
				t.Errorf("written again, the file differs:\n%s\n---\n%s", b, b2)
			}
		})
	}
}

// fillStrings sets every string field of m, and of the messages in it, to
// s: singular, two list items, and a map value (under a key of its own).
func fillStrings(m protoreflect.Message, s string, depth int) {
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		switch {
		case fd.IsMap():
			if fd.MapKey().Kind() == protoreflect.StringKind && fd.MapValue().Kind() == protoreflect.StringKind {
				m.Mutable(fd).Map().Set(protoreflect.ValueOfString("k").MapKey(), protoreflect.ValueOfString(s))
			}
		case fd.IsList() && fd.Kind() == protoreflect.StringKind:
			l := m.Mutable(fd).List()
			l.Append(protoreflect.ValueOfString(s))
			l.Append(protoreflect.ValueOfString("2" + s))
		case fd.IsList() && fd.Message() != nil && depth < 3:
			fillStrings(m.Mutable(fd).List().AppendMutable().Message(), s, depth+1)
		case fd.Kind() == protoreflect.StringKind:
			m.Set(fd, protoreflect.ValueOfString(s))
		case fd.Message() != nil && !fd.IsList() && depth < 3 && fd.Message().FullName().Parent() == m.Descriptor().FullName().Parent():
			fillStrings(m.Mutable(fd).Message(), s, depth+1)
		}
	}
}

// FuzzEscape checks the escape rule both ways for any text: what Escape
// writes reads back as the text, with no variable looked up and no
// problem; a text without "${" is written as it is; and a text that reads
// with no variable and no problem is what Escape writes of what it reads,
// so a file that export could have written is written again byte for byte.
func FuzzEscape(f *testing.F) {
	for _, s := range dollarForms {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fail := func(msg string) { t.Errorf("reading Escape(%q) = %q: %s", s, Escape(s), msg) }
		looked := func(name string) (string, bool) { fail("looked up " + name); return "", false }
		if got := expand(Escape(s), looked, fail, fail); got != s {
			t.Errorf("read(Escape(%q)) = %q, written %q", s, got, Escape(s))
		}
		if !strings.Contains(s, "${") && Escape(s) != s {
			t.Errorf("Escape(%q) = %q: want a text without ${ as it is", s, Escape(s))
		}
		plain := true
		not := func(string) { plain = false }
		v := expand(s, func(string) (string, bool) { plain = false; return "", true }, not, not)
		if plain && Escape(v) != s {
			t.Errorf("%q reads as %q, which is written %q", s, v, Escape(v))
		}
	})
}
