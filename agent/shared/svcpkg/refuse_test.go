package svcpkg

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strings"
	"testing"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// mark is put right before each place the door must report, in the
// sources of the refusal tests.
const mark = "/*!*/"

// marked returns "file:line:col: " of each mark in src, in order: the
// place of what follows it.
func marked(file, src string) []string {
	var out []string
	line, col := 1, 1
	for i := 0; i < len(src); i++ {
		if strings.HasPrefix(src[i:], mark) {
			out = append(out, fmt.Sprintf("%s:%d:%d: ", file, line, col+len(mark)))
		}
		if src[i] == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return out
}

// wantRefused loads src and requires exactly the problems want, at the
// marks of files, in order: nothing else (no "undefined" for a symbol the
// tables leave out).
func wantRefused(t *testing.T, src *adminv1.PackageSource, want []string) {
	t.Helper()
	var places []string // in the order of the problems: by file name
	for _, f := range slices.SortedFunc(slices.Values(src.GetFiles()), func(a, b *adminv1.SourceFile) int { return strings.Compare(a.Name, b.Name) }) {
		places = append(places, marked(f.Name, string(f.Content))...)
	}
	if len(places) != len(want) {
		t.Fatalf("the test has %d marks for %d problems", len(places), len(want))
	}
	_, err := Load(context.Background(), src)
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("Load = %v, want a *LoadError", err)
	}
	if len(le.Problems) != len(want) {
		t.Fatalf("problems:\n%v\nwant %d:\n%s", err, len(want), strings.Join(want, "\n"))
	}
	for i, w := range want {
		if got := le.Problems[i].String(); !strings.HasPrefix(got, places[i]+w) {
			t.Errorf("problem %d = %q, want it to start with %q", i, got, places[i]+w)
		}
	}
}

// TestRefusedRoutes checks each route the audit refuses (see
// symbols/audit.txt): refused at the door with file:line:col and why, by
// name rather than as undefined, however it is reached.
func TestRefusedRoutes(t *testing.T) {
	const files = "it reads files on the agent"
	const goroutine = "it starts a goroutine the agent does not track"
	tests := []struct {
		name    string
		imports string
		body    string // of a function of the package; other declarations may follow it
		want    []string
	}{
		{"template.ParseFiles", `"text/template"`,
			`_, _ = template./*!*/ParseFiles("/etc/passwd")`,
			[]string{"text/template.ParseFiles is not allowed: " + files}},
		{"template.ParseGlob and ParseFS", `"text/template"`,
			"_, _ = template./*!*/ParseGlob(\"/etc/*\")\n\t_, _ = template./*!*/ParseFS(nil, \"*\")",
			[]string{"text/template.ParseGlob is not allowed: " + files, "text/template.ParseFS is not allowed: it reads files on the agent"}},
		{"Template.ParseFiles called", `"text/template"`,
			`_, _ = template.New("passwd")./*!*/ParseFiles("/etc/passwd")`,
			[]string{"text/template.Template.ParseFiles is not allowed: " + files}},
		{"Template.ParseGlob as a method value", `"text/template"`,
			"tmpl := template.New(\"x\")\n\tparse := tmpl./*!*/ParseGlob\n\t_, _ = parse(\"/etc/*\")",
			[]string{"text/template.Template.ParseGlob is not allowed: " + files}},
		{"Template.ParseFS as a method expression", `"text/template"`,
			`_ = (*template.Template)./*!*/ParseFS`,
			[]string{"text/template.Template.ParseFS is not allowed: it reads files on the agent"}},
		{"time.AfterFunc", `"time"`,
			`time./*!*/AfterFunc(time.Second, func() {})`,
			[]string{"time.AfterFunc is not allowed: it runs a function on a goroutine the agent does not track"}},
		{"context.AfterFunc", `"context"`,
			`context./*!*/AfterFunc(context.Background(), func() {})`,
			[]string{"context.AfterFunc is not allowed: it runs a function on a goroutine the agent does not track"}},
		{"AfterFunc through a dot import", `. "time"`,
			`/*!*/AfterFunc(Second, func() {})`,
			[]string{"time.AfterFunc is not allowed"}},
		{"WaitGroup.Go called, as a method value and as a method expression", `"sync"`,
			"var wg sync.WaitGroup\n\twg./*!*/Go(func() {})\n\tstart := wg./*!*/Go\n\tstart(func() {})\n\t(*sync.WaitGroup)./*!*/Go(&wg, func() {})",
			[]string{"sync.WaitGroup.Go is not allowed: " + goroutine, "sync.WaitGroup.Go is not allowed", "sync.WaitGroup.Go is not allowed"}},
		{"WaitGroup.Go promoted through an embedded field", `"sync"`,
			"var p pool\n\tp./*!*/Go(func() {})\n}\n\ntype pool struct {\n\tsync.WaitGroup\n",
			[]string{"sync.WaitGroup.Go is not allowed"}},
		{"WaitGroup.Go through an interface", `"sync"`,
			"var wg sync.WaitGroup\n\tvar g goer = /*!*/&wg\n\tg.Go(func() {})\n}\n\ntype goer interface {\n\tGo(func())\n",
			[]string{"*sync.WaitGroup cannot be converted to goer: through it, a template or an interface could call sync.WaitGroup.Go by name, which is not allowed: " + goroutine}},
		{"WaitGroup.Go through a generic", `"sync"`,
			"var wg sync.WaitGroup\n\t/*!*/start(&wg)\n}\n\nfunc start[G interface{ Go(func()) }](g G) {\n\tg.Go(func() {})\n",
			[]string{"*sync.WaitGroup cannot be a type argument of start"}},
		{"a template calling ParseGlob on itself by name", "\"bytes\"\n\t\"text/template\"",
			"var b bytes.Buffer\n\ttmpl := template.Must(template.New(\"x\").Parse(`{{.ParseGlob \"/etc/*\"}}`))\n\t_ = tmpl.Execute(&b, /*!*/tmpl)",
			[]string{"*template.Template cannot be converted to any: through it, a template or an interface could call text/template.Template.Parse"}}, // ParseFS, ParseFiles or ParseGlob
		{"a template reaching a template in its data", "\"bytes\"\n\t\"text/template\"",
			"var b bytes.Buffer\n\ttmpl := template.New(\"x\")\n\t_ = tmpl.Execute(&b, /*!*/data{T: tmpl})\n}\n\ntype data struct {\n\tT *template.Template\n",
			[]string{"data cannot be converted to any: through it (its field T), a template or an interface could call text/template.Template.Parse"}},
		{"a func returning a template, as data", `"text/template"`,
			`var fn any = /*!*/template.New; _ = fn`,
			[]string{"func(string) *template.Template cannot be converted to any: through it (its result)"}},
		{"a context of the package's own, whose methods context.WithCancel calls on a goroutine", "\"context\"\n\t\"time\"",
			"_, cancel := context.WithCancel(/*!*/mine{})\n\tcancel()\n}\n\ntype mine struct{}\n\n" +
				"func (mine) Deadline() (time.Time, bool) { return time.Time{}, false }\nfunc (mine) Done() <-chan struct{} { return nil }\n" +
				"func (mine) Err() error { return nil }\nfunc (mine) Value(any) any { return nil",
			[]string{"mine cannot be converted to context.Context: it is a context.Context whose method Deadline is the package's own"}},
		{"fmt.Scan", `"fmt"`,
			"var s string\n\t_, _ = fmt./*!*/Scan(&s)\n\t_, _ = fmt./*!*/Scanln(&s)",
			[]string{"fmt.Scan is not allowed: it reads the agent's standard input", "fmt.Scanln is not allowed"}},
		{"a reflect.Type from a JSON error", "\"encoding/json\"\n\t\"errors\"",
			"var ute *json.UnmarshalTypeError\n\tif errors.As(json.Unmarshal([]byte(`1`), new(string)), &ute) {\n\t\t_ = ute./*!*/Type.Method(0)\n\t}",
			[]string{"encoding/json.UnmarshalTypeError.Type is not allowed: it is a reflect.Type"}},
		{"a reflect.Value from a JSON error", "\"encoding/json\"",
			"var e json.UnsupportedValueError\n\t_ = e./*!*/Value",
			[]string{"encoding/json.UnsupportedValueError.Value is not allowed: it is a reflect.Value"}},
		{"unsafe pointers through sync/atomic", `"sync/atomic"`,
			`_ = atomic./*!*/LoadPointer`,
			[]string{"sync/atomic.LoadPointer is not allowed: it works on unsafe.Pointer"}},
		{"a *log.Logger, whose Fatal exits the agent", `"log/slog"`,
			`_ = slog./*!*/NewLogLogger(slog.Default().Handler(), slog.LevelInfo)`,
			[]string{"log/slog.NewLogLogger is not allowed"}},
		{"state the whole agent shares", "\"log/slog\"\n\t\"math/rand\"\n\t\"mime\"",
			"slog./*!*/SetDefault(slog.Default())\n\trand./*!*/Seed(1)\n\t_ = mime./*!*/AddExtensionType(\".x\", \"text/x\")",
			[]string{"log/slog.SetDefault is not allowed", "math/rand.Seed is not allowed", "mime.AddExtensionType is not allowed"}},
		{"the go statement", "",
			"/*!*/go func() {}()",
			[]string{"the go statement is not allowed: start goroutines with ctx.Go"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "package svc\n\nimport (\n\t" + tt.imports + "\n)\n\nfunc f() {\n\t" + tt.body + "\n}\n"
			if tt.imports == "" {
				src = "package svc\n\nfunc f() {\n\t" + tt.body + "\n}\n"
			}
			wantRefused(t, &adminv1.PackageSource{Name: "hostile", Files: []*adminv1.SourceFile{{Name: "a.go", Content: []byte(src)}}}, tt.want)
		})
	}
}

// TestRefusedAllAtOnce checks that the routes the outside testers found
// all come back in one answer, each at its file:line:col.
func TestRefusedAllAtOnce(t *testing.T) {
	files := `package hostile

import (
	"text/template"

	"github.com/weft-dev/weft/agent/sdk"
)

func init() {
	sdk.Register("hostile.read", func(ctx *sdk.Context, in map[string]any) (map[string]any, error) {
		if _, err := template./*!*/ParseFiles("/etc/passwd"); err != nil {
			return nil, err
		}
		t := template.New("snapshot")
		parse := t./*!*/ParseGlob
		_, err := parse("/var/lib/weft/*")
		return map[string]any{"name": t.Name()}, err
	})
}
`
	spawn := `package hostile

import (
	"context"
	"sync"
	"time"
)

func spawn(n int) {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		time./*!*/AfterFunc(0, func() {})
		context./*!*/AfterFunc(context.Background(), func() {})
		wg./*!*/Go(func() {})
	}
}
`
	wantRefused(t, &adminv1.PackageSource{Name: "hostile", Files: []*adminv1.SourceFile{{Name: "spawn.go", Content: []byte(spawn)}, {Name: "files.go", Content: []byte(files)}}}, []string{
		"text/template.ParseFiles is not allowed: it reads files on the agent",
		"text/template.Template.ParseGlob is not allowed: it reads files on the agent",
		"time.AfterFunc is not allowed: it runs a function on a goroutine the agent does not track",
		"context.AfterFunc is not allowed: it runs a function on a goroutine the agent does not track",
		"sync.WaitGroup.Go is not allowed: it starts a goroutine the agent does not track",
	})
}

// TestAllowedRoutes checks that what the audit allows, next to what it
// refuses, loads: templates from strings with data, a WaitGroup counted
// by hand, timers, JSON errors examined, goroutines through ctx.Go.
func TestAllowedRoutes(t *testing.T) {
	src := `package fine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"text/template"
	"time"

	"github.com/weft-dev/weft/agent/sdk"
)

type report struct {
	Name  string
	Items []string
	mu    sync.Mutex
	wg    sync.WaitGroup
}

var page = template.Must(template.New("page").Funcs(template.FuncMap{"upper": func(s string) string { return s }}).
	Parse("{{.Name}}: {{range .Items}}{{upper .}} {{end}}"))

func init() {
	sdk.Register("fine.run", func(ctx *sdk.Context, in map[string]any) (map[string]any, error) {
		r := &report{Name: "r", Items: []string{"a", "b"}}
		var b bytes.Buffer
		if err := page.Execute(&b, r); err != nil {
			return nil, err
		}
		var wg sync.WaitGroup
		wg.Add(1)
		if err := ctx.Go(func(gctx context.Context) {
			defer wg.Done()
			t := time.NewTimer(time.Millisecond)
			defer t.Stop()
			select {
			case <-t.C:
			case <-gctx.Done():
			}
		}); err != nil {
			wg.Done()
		}
		wg.Wait()
		var ute *json.UnmarshalTypeError
		err := json.Unmarshal([]byte("1"), new(string))
		field := ""
		if errors.As(err, &ute) {
			field = ute.Value
		}
		var n int
		_, _ = fmt.Sscan("42", &n)
		wgs := []*sync.WaitGroup{&wg}
		tctx, cancel := context.WithTimeout(ctx.Context(), time.Second)
		defer cancel()
		return map[string]any{"page": b.String(), "field": field, "n": n, "found": slices.Contains(wgs, &wg),
			"at": fmt.Sprint(time.Now().Year() > 2000), "err": tctx.Err() == nil}, nil
	})
}
`
	if _, _, err := check(&adminv1.PackageSource{Name: "fine", Files: []*adminv1.SourceFile{{Name: "fine.go", Content: []byte(src)}}}); err != nil {
		t.Fatalf("check: %v", err)
	}
	p, err := Load(context.Background(), &adminv1.PackageSource{Name: "fine", Files: []*adminv1.SourceFile{{Name: "fine.go", Content: []byte(src)}}})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	defer p.Stop()
	if _, ok := p.Services["fine.run"]; !ok {
		t.Fatalf("services = %v", p.ServiceNames())
	}
}

// TestRefusedCheckFailsClosed checks that a flaw in the check refuses the
// package instead of letting it through.
func TestRefusedCheckFailsClosed(t *testing.T) {
	// A nil Info makes the walk panic.
	fset := token.NewFileSet()
	af := mustParse(t, fset, "a.go", "package x\n\nfunc f() { _ = 1 }\n")
	probs := refusedUses(fset, af, nil)
	if len(probs) != 1 || !strings.Contains(probs[0].Message, "failed") {
		t.Fatalf("refusedUses with a broken Info = %v; want one problem saying the check failed", probs)
	}
}

func mustParse(t *testing.T, fset *token.FileSet, name, src string) []*ast.File {
	t.Helper()
	f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	return []*ast.File{f}
}

// TestRefusedImportAlone checks that a refused import of a package whose
// types the allowed ones use (net/http for sdk's headers, reflect for
// encoding/json's errors) is reported alone, not with its uses as
// undefined.
func TestRefusedImportAlone(t *testing.T) {
	src := "package svc\n\nimport (\n\t/*!*/\"net/http\"\n\t/*!*/\"reflect\"\n)\n\nfunc f() {\n\t_, _ = http.Get(\"http://169.254.169.254/\")\n\t_ = reflect.TypeOf(1)\n}\n"
	wantRefused(t, &adminv1.PackageSource{Name: "imports", Files: []*adminv1.SourceFile{{Name: "a.go", Content: []byte(src)}}}, []string{
		`import "net/http" is not allowed`, `import "reflect" is not allowed`,
	})
}
