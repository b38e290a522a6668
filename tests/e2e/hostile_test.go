package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weft-dev/weft/controlplane/store/storetest"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	"github.com/weft-dev/weft/tests/testenv"
)

// hostileMark is put right before each place the door must report, in the
// sources of TestHostileAtTheDoor.
const hostileMark = "/*!*/"

// TestHostileAtTheDoor deploys, through weftctl, services that try every
// route the outside testers and the audit of the allow-list found to the
// host — files, standard input, the environment, processes, reflect and
// unsafe — and to goroutines the agent does not track (AfterFunc,
// WaitGroup.Go, a context whose methods the standard library would call
// on a goroutine of its own). Each is refused at
// the door with file:line:col and why, and nothing is stored: no package,
// no new revision for the agent.
func TestHostileAtTheDoor(t *testing.T) {
	cp := testenv.StartControlPlane(t, storetest.SQLite(t).DSN)
	testenv.StartAgent(t, cp, "agent-1") // whose state shows the revision
	const files = "is not allowed: it reads files on the agent"
	const untracked = "is not allowed: it runs a function on a goroutine the agent does not track"
	tests := []struct {
		name    string
		imports []string
		body    string // of the service's handler
		want    []string
		decls   string // after init
	}{
		{"read /etc/passwd with template.ParseFiles", []string{"text/template"},
			`t, err := template./*!*/ParseFiles("/etc/passwd")
		if err != nil {
			return nil, err
		}
		return map[string]any{"t": t.DefinedTemplates()}, nil`,
			[]string{"text/template.ParseFiles " + files}, ""},
		{"read the agent's snapshot with Template.ParseGlob, as a method value", []string{"text/template"},
			`parse := template.New("snapshot")./*!*/ParseGlob
		_, err := parse("/var/lib/weft/*")
		return nil, err`,
			[]string{"text/template.Template.ParseGlob " + files}, ""},
		{"read a file named in a template's text, the template being its own data", []string{"strings", "text/template"},
			`var b strings.Builder
		tmpl := template.Must(template.New("x").Parse(` + "`" + `{{with (.ParseFiles "/etc/passwd").Lookup "passwd"}}{{.Tree.Root}}{{end}}` + "`" + `))
		err := tmpl.Execute(&b, /*!*/tmpl)
		return map[string]any{"passwd": b.String()}, err`,
			[]string{"*template.Template cannot be converted to any: through it, a template or an interface could call text/template.Template.Parse"}, ""},
		{"read the agent's standard input", []string{"fmt"},
			`var line string
		_, err := fmt./*!*/Scanln(&line)
		return map[string]any{"line": line}, err`,
			[]string{"fmt.Scanln is not allowed: it reads the agent's standard input"}, ""},
		{"reach reflect through a JSON error", []string{"encoding/json"},
			`var e *json.UnmarshalTypeError
		if e != nil {
			return map[string]any{"methods": e./*!*/Type.NumMethod()}, nil
		}
		return nil, nil`,
			[]string{"encoding/json.UnmarshalTypeError.Type is not allowed: it is a reflect.Type"}, ""},
		{"reach unsafe pointers through sync/atomic", []string{"sync/atomic"},
			`return map[string]any{"p": atomic./*!*/LoadPointer(nil)}, nil`,
			[]string{"sync/atomic.LoadPointer is not allowed: it works on unsafe.Pointer"}, ""},
		{"read a file and the environment with os", []string{"os"},
			`b, _ := os.ReadFile("/etc/passwd")
		return map[string]any{"passwd": string(b), "env": os.Environ()}, nil`,
			[]string{`import "os" is not allowed`}, ""},
		{"spawn a process", []string{"os/exec"},
			`out, err := exec.Command("id").Output()
		return map[string]any{"id": string(out)}, err`,
			[]string{`import "os/exec" is not allowed`}, ""},
		{"call the kernel", []string{"syscall"},
			`return map[string]any{"pid": syscall.Getpid()}, nil`,
			[]string{`import "syscall" is not allowed`}, ""},
		{"open a connection of its own", []string{"net/http"},
			`resp, err := http.Get("http://169.254.169.254/")
		if err == nil {
			resp.Body.Close()
		}
		return nil, err`,
			[]string{`import "net/http" is not allowed`}, ""},
		{"start 4,001 goroutines with time.AfterFunc", []string{"time"},
			`for i := 0; i < 4001; i++ {
			time./*!*/AfterFunc(0, func() {})
		}
		return nil, nil`,
			[]string{"time.AfterFunc " + untracked}, ""},
		{"start goroutines with context.AfterFunc", []string{"context"},
			`context./*!*/AfterFunc(ctx.Context(), func() {})
		return nil, nil`,
			[]string{"context.AfterFunc " + untracked}, ""},
		{"start goroutines with sync.WaitGroup.Go, and through an interface", []string{"sync"},
			`var wg sync.WaitGroup
		wg./*!*/Go(func() {})
		var g interface{ Go(func()) } = /*!*/&wg
		g.Go(func() {})
		return nil, nil`,
			[]string{"sync.WaitGroup.Go is not allowed: it starts a goroutine the agent does not track",
				"*sync.WaitGroup cannot be converted to interface{Go(func())}"}, ""},
		{"have context.WithCancel run the service's code on a goroutine of its own", []string{"context", "time"},
			`c, cancel := context.WithCancel(/*!*/mine{})
		defer cancel()
		return map[string]any{"err": c.Err() != nil}, nil`,
			[]string{"mine cannot be converted to context.Context: it is a context.Context whose method Deadline is the package's own"},
			`type mine struct{}

func (mine) Deadline() (time.Time, bool) { return time.Time{}, false }
func (mine) Done() <-chan struct{}       { return nil }
func (mine) Err() error                  { panic("on a goroutine nobody recovers") }
func (mine) Value(any) any               { return nil }
`},
		{"start a goroutine with the go statement", nil,
			`/*!*/go func() {}()
		return nil, nil`,
			[]string{"the go statement is not allowed: start goroutines with ctx.Go"}, ""},
	}
	before := cp.DesiredRevision(t)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := fmt.Sprintf("hostile%d", i)
			imports := "\t\"github.com/weft-dev/weft/agent/sdk\"\n"
			for _, p := range tt.imports {
				imports = "\t" + fmt.Sprintf("%q", p) + "\n" + imports
			}
			src := fmt.Sprintf(`package %s

import (
%s)

func init() {
	sdk.Register(%q, func(ctx *sdk.Context, in map[string]any) (map[string]any, error) {
		%s
	})
}

%s`, name, imports, name+".run", tt.body, tt.decls)
			dir := filepath.Join(t.TempDir(), name)
			writeFile(t, filepath.Join(dir, name+".go"), src)
			want := hostileWant(name+".go", src, tt.imports, tt.want)
			r := testenv.Ctl(t, cp, "deploy", dir)
			if r.ExitCode == 0 {
				t.Fatalf("deploy: %s; want it refused", r)
			}
			for _, w := range want {
				if !strings.Contains(r.Stderr, w) {
					t.Errorf("deploy: %s\nwant %q in the answer", r, w)
				}
			}
			t.Logf("refused at the door:\n%s", strings.TrimSpace(r.Stderr))
		})
	}
	if after := cp.DesiredRevision(t); after != before {
		t.Errorf("the refused deploys moved the revision from %d to %d", before, after)
	}
	var list adminv1.ListPackagesResponse
	testenv.CtlJSON(t, cp, &list, "package", "list")
	if n := len(list.GetPackages()); n != 0 {
		t.Errorf("%d packages are stored after refused deploys: %v", n, list.GetPackages())
	}
}

// hostileWant returns want, each prefixed with the file:line:col of its
// mark in src; an import refusal is at its import's path instead.
func hostileWant(file, src string, imports, want []string) []string {
	var places []string
	line, col := 1, 1
	for i := 0; i < len(src); i++ {
		if strings.HasPrefix(src[i:], hostileMark) {
			places = append(places, fmt.Sprintf("%s:%d:%d: ", file, line, col+len(hostileMark)))
		}
		if src[i] == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	out := make([]string, 0, len(want))
	for _, w := range want {
		if strings.HasPrefix(w, "import ") {
			// The imports are the lines after "import (", in order.
			for j, p := range imports {
				if strings.Contains(w, fmt.Sprintf("%q", p)) {
					out = append(out, fmt.Sprintf("%s:%d:2: %s", file, 4+j, w))
				}
			}
			continue
		}
		if len(places) == 0 {
			out = append(out, w) // a broken test: it shows in the failure
			continue
		}
		out = append(out, places[0]+w)
		places = places[1:]
	}
	return out
}
