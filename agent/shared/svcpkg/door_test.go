package svcpkg_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/weft-dev/weft/agent/shared/svcpkg"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// TestCheck holds what the door learns of a package without running it:
// the services of a package whose initialisation only registers them,
// that a package needs evaluating otherwise, and the problems that refuse
// it. Where Check answers with services, Load (which runs the package)
// must agree.
func TestCheck(t *testing.T) {
	const handler = "\nfunc h(ctx *sdk.Context, in map[string]any) (map[string]any, error) { return in, nil }\n"
	tests := []struct {
		name     string
		src      *adminv1.PackageSource
		services []string // when the source tells them
		eval     string   // the start of why it must run
		problems []string // the refusal, one prefix per problem
	}{
		{name: "the example", src: dirSource(t, "../../../deploy/examples/hello"), services: []string{"hello.greet"}},
		{
			name: "literal registrations of every accepted kind",
			src: source("a.go", `package svc

import (
	"errors"
	"io"
	"regexp"
	"time"

	"github.com/weft-dev/weft/agent/sdk"
)

const prefix = "svc."

type In struct{ Name string }

type Out map[string]any

var (
	table   = map[string]int{"a": 1}
	list    = []string{"x", "y"}
	point   = &In{Name: "n"}
	eof     = io.EOF
	errGone = errors.New("gone")
	pattern = regexp.MustCompile("^[a-z]+$")
	helper  = func() int { return len(list) }
	limit   = 3 * time.Second
)

func init() {
	sdk.Register(prefix+"fn", Handle)
	sdk.Register("svc.lit", func(c *sdk.Context, in *In) (Out, error) { return nil, nil }, sdk.Timeout(2*time.Second))
}

func init() {
	sdk.Register("svc.opts", Handle, sdk.SlowAfter(time.Second), sdk.Timeout(0))
}

func Handle(c *sdk.Context, in In) (*In, error) { return &in, nil }
`),
			services: []string{"svc.fn", "svc.lit", "svc.opts"},
		},
		{name: "registration in a loop", src: source("a.go", header+"func init() {\n\tfor _, n := range []string{\"a\", \"b\"} {\n\t\tsdk.Register(n, h)\n\t}\n}\n"+handler),
			eval: "a.go:6: an init function runs more than sdk.Register calls"},
		{name: "init runs other code", src: source("a.go", header+"var n int\n\nfunc init() {\n\tsdk.Register(\"x\", h)\n\tn++\n}\n"+handler),
			eval: "a.go:9: an init function runs more than"},
		{name: "registration from a helper", src: source("a.go", header+"func init() { register() }\n\nfunc register() { sdk.Register(\"x\", h) }\n"+handler),
			eval: "a.go:5: an init function runs more than"},
		{name: "a variable initialised by a call", src: source("a.go", header+"import \"strings\"\n\nvar up = strings.ToUpper(\"x\")\n\nfunc init() { sdk.Register(\"x\", h) }\n"+handler),
			eval: "a.go:7: package variable up's initialiser calls a function"},
		{name: "a regexp that does not compile", src: source("a.go", header+"import \"regexp\"\n\nvar re = regexp.MustCompile(\"(\")\n\nfunc init() { sdk.Register(\"x\", h) }\n"+handler),
			eval: "a.go:7: package variable re's initialiser compiles a regular expression"},
		{name: "a large variable", src: source("a.go", header+"var buf [2 << 20]byte\n\nfunc init() { sdk.Register(\"x\", h) }\n"+handler),
			eval: "a.go:5: package variable buf is large"},
		{name: "a literal indexed far", src: source("a.go", header+"var buf = []byte{1 << 30: 1}\n\nfunc init() { sdk.Register(\"x\", h) }\n"+handler),
			eval: "a.go:5: package variable buf's initialiser sets elements by index"},
		{name: "a variable's field", src: source("a.go", header+"type T struct{ N int }\n\nvar p *T\n\nvar n = p.N\n\nfunc init() { sdk.Register(\"x\", h) }\n"+handler),
			eval: "a.go:9: package variable n's initialiser selects a field"},
		{name: "a handler of another shape", src: source("a.go", header+"func init() { sdk.Register(\"x\", func(s string) (string, error) { return s, nil }) }\n"),
			eval: "a.go:5: a handler is not"},
		{name: "a method value handler", src: source("a.go", header+"type S struct{}\n\nfunc (S) H(ctx *sdk.Context, in map[string]any) (map[string]any, error) { return in, nil }\n\nfunc init() { sdk.Register(\"x\", S{}.H) }\n"),
			eval: "a.go:9: a handler is not"},
		{name: "a name registered twice", src: source("a.go", header+"func init() {\n\tsdk.Register(\"x\", h)\n\tsdk.Register(\"x\", h)\n}\n"+handler),
			eval: "a service name is registered twice"},
		{name: "a name not constant", src: source("a.go", header+"var name = \"x\"\n\nfunc init() { sdk.Register(name, h) }\n"+handler),
			eval: "a.go:7: a service's name is not a constant"},
		{name: "options spread", src: source("a.go", header+"var opts []sdk.Option\n\nfunc init() { sdk.Register(\"x\", h, opts...) }\n"+handler),
			eval: "a.go:7: sdk.Register's arguments are not all written out"},
		{name: "a negative timeout", src: source("a.go", header+"func init() { sdk.Register(\"x\", h, sdk.Timeout(-1)) }\n"+handler),
			eval: "a.go:5: an option's duration is not a constant of zero or more"},
		{name: "sdk.Register as a value", src: source("a.go", header+"var reg = sdk.Register\n\nfunc init() { sdk.Register(\"x\", h) }\n"+handler),
			eval: "sdk.Register is used outside the statements of an init function"},
		{name: "no registration", src: source("a.go", "package svc\n\nfunc f() {}\n"), problems: []string{"package registers no services"}},
		{
			// Load leaves the type errors of a package nothing else
			// refuses to the interpreter, which reports one; the door
			// reports them all.
			name:     "type errors",
			src:      source("a.go", header+"func init() { sdk.Register(\"x\", nil) }\n", "b.go", "package svc\n\nfunc f() int {\n\treturn \"one\"\n}\n\nfunc g() { _ = notDeclared }\n"),
			problems: []string{`b.go:4:9: cannot use "one" (untyped string constant) as int value in return statement`, "b.go:7:16: undefined: notDeclared"},
		},
		{name: "a refused import", src: source("a.go", header+"import \"os\"\n\nfunc init() { sdk.Register(\"x\", h); _ = os.Args }\n"+handler),
			problems: []string{`a.go:5:8: import "os" is not allowed`}},
		{name: "a constant doubled until it is huge", src: source("a.go", header+doubling(40)+"func init() { sdk.Register(\"x\", h) }\n"+handler),
			problems: []string{"a.go:21:7: constant c16 may be longer than 1048576 bytes, the limit of a string constant"}},
		{name: "a sum of constants that is huge", src: source("a.go", header+doubling(15)+"var s = len("+strings.Repeat("c15+", 9)+"c15)\n\nfunc init() { sdk.Register(\"x\", h) }\n"+handler),
			problems: []string{"a.go:22:13: this sum may be longer than 1048576 bytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := svcpkg.Check(tt.src)
			if len(tt.problems) > 0 {
				var le *svcpkg.LoadError
				if !errors.As(err, &le) {
					t.Fatalf("Check = %+v, %v; want a *LoadError", got, err)
				}
				if len(le.Problems) != len(tt.problems) {
					t.Fatalf("problems:\n%v\nwant %d of them", err, len(tt.problems))
				}
				for i, w := range tt.problems {
					if p := le.Problems[i].String(); !strings.HasPrefix(p, w) {
						t.Errorf("problem %d = %q, want it to start with %q", i, p, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if !slices.Equal(got.Services, tt.services) || !strings.HasPrefix(got.Eval, tt.eval) || (tt.eval == "") != (got.Eval == "") {
				t.Fatalf("Check = %+v; want services %q, eval %q", got, tt.services, tt.eval)
			}
			if got.Eval == "" {
				names, err := svcpkg.Validate(context.Background(), tt.src)
				if err != nil || !slices.Equal(names, got.Services) {
					t.Fatalf("Validate = %q, %v; Check said %q", names, err, got.Services)
				}
			}
		})
	}
}

// doubling declares the string constants c0 (16 bytes) to cn, each twice
// the one before, one a line from the source's line 6.
func doubling(n int) string {
	var b strings.Builder
	b.WriteString("const c0 = \"0123456789abcdef\"\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "const c%d = c%d + c%d\n", i, i-1, i-1)
	}
	return b.String() + "\n"
}

// TestCheckDeployablePackages runs Check on every package the repository
// deploys (the examples and the test packages): none is refused, and where
// Check tells the services without running the package, Load agrees.
func TestCheckDeployablePackages(t *testing.T) {
	var dirs []string
	for _, pattern := range []string{"../../../deploy/examples/*", "../../runtime/testdata/*", "../../../tests/e2e/testdata/*"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, m...)
	}
	if len(dirs) < 5 {
		t.Fatalf("found only %q", dirs)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			src := dirSource(t, dir)
			got, err := svcpkg.Check(src)
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			names, err := svcpkg.Validate(context.Background(), src)
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if got.Eval != "" {
				t.Logf("needs evaluation: %s", got.Eval)
			} else if !slices.Equal(names, got.Services) {
				t.Fatalf("Check says %q, Validate %q", got.Services, names)
			}
		})
	}
}
