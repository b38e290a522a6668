package runtime_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-dev/weft/agent/handler"
	"github.com/weft-dev/weft/agent/runtime"
	"github.com/weft-dev/weft/agent/sdk"
	"github.com/weft-dev/weft/agent/shared/svcpkg"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	"github.com/weft-dev/weft/tests/testenv"
)

// source builds a Source from name, content pairs.
func source(nameContent ...string) *adminv1.PackageSource {
	src := &adminv1.PackageSource{Name: "test"}
	for i := 0; i < len(nameContent); i += 2 {
		src.Files = append(src.Files, &adminv1.SourceFile{Name: nameContent[i], Content: []byte(nameContent[i+1])})
	}
	return src
}

// dirSource reads the non-test Go files of dir, as a deploy would send them.
func dirSource(t testing.TB, dir string) *adminv1.PackageSource {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	src := &adminv1.PackageSource{Name: filepath.Base(dir)}
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		src.Files = append(src.Files, &adminv1.SourceFile{Name: filepath.Base(p), Content: b})
	}
	return src
}

func load(t testing.TB, src *adminv1.PackageSource, opts ...svcpkg.Option) *runtime.Package {
	t.Helper()
	p, err := runtime.Load(context.Background(), src, opts...)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return p
}

func invoke(t testing.TB, p *runtime.Package, name, input string) ([]byte, error) {
	t.Helper()
	svc, ok := p.Services[name]
	if !ok {
		t.Fatalf("no service %q in %q", name, p.ServiceNames())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return runtime.Invoke(ctx, svc, sdk.NewContext(ctx, sdk.Request{Service: name}), []byte(input))
}

const header = "package svc\n\nimport \"github.com/weft-dev/weft/agent/sdk\"\n\n"

// service is a one-file package registering name with the given handler
// body, which sees in (a map) and ctx. The file imports the SDK and imports.
func service(name, body string, imports ...string) *adminv1.PackageSource {
	head := header
	if len(imports) > 0 {
		head = "package svc\n\nimport (\n\t\"github.com/weft-dev/weft/agent/sdk\"\n\t\"" + strings.Join(imports, "\"\n\t\"") + "\"\n)\n\n"
	}
	return source("svc.go", head+`func init() { sdk.Register("`+name+`", handle) }

func handle(ctx *sdk.Context, in map[string]any) (map[string]any, error) {
`+body+`
}
`)
}

func TestLoadHello(t *testing.T) {
	p := load(t, dirSource(t, "../../deploy/examples/hello"))
	if got := p.ServiceNames(); !slices.Equal(got, []string{"hello.greet"}) {
		t.Fatalf("services = %q", got)
	}
	tests := []struct {
		name, input string
		want        string
		wantStatus  int
	}{
		{"greet", `{"name":"World"}`, `{"greeting":"Hello, World!","language":"en"}`, 200},
		{"french", `{"name":"World","language":"fr"}`, `{"greeting":"Bonjour, World!","language":"fr"}`, 200},
		{"name required", `{}`, "", 400},
		{"name wrong type", `{"name":1}`, "", 400},
		{"unknown language", `{"name":"World","language":"xx"}`, "", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := invoke(t, p, "hello.greet", tt.input)
			if string(out) != tt.want || handler.Status(err) != tt.wantStatus {
				t.Fatalf("got %s, %v (status %d); want %s, %d", out, err, handler.Status(err), tt.want, tt.wantStatus)
			}
		})
	}
	var ie *handler.InputError
	if _, err := invoke(t, p, "hello.greet", `{}`); !errors.As(err, &ie) || ie.Err.Error() != `field "name" is required` {
		t.Errorf("missing name: %v", err)
	}
}

func TestLoadOrders(t *testing.T) {
	p := load(t, dirSource(t, "testdata/orders"))
	out, err := invoke(t, p, "orders.price", `{"customer":"c1","lines":[{"sku":"AB-1","quantity":2,"price":10}],
		"shipTo":{"street":"s","city":"c","country":"de"}}`)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte(`"total":29.63`)) {
		t.Errorf("output = %s", out)
	}
	if _, err := invoke(t, p, "orders.price", `{"customer":"c1","lines":[{"sku":"AB-1","quantity":2}],"shipTo":{}}`); err == nil ||
		!strings.Contains(err.Error(), `field "lines[0].price" is required`) {
		t.Errorf("missing nested field: %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		src  *adminv1.PackageSource
		opts []svcpkg.Option
		want []string // the problems, in order
	}{
		{
			name: "syntax errors in two files",
			src: source(
				"a.go", "package svc\n\nfunc f() {\n\tx :=\n}\n",
				"b.go", "package svc\n\nfunc g() int {\n\treturn 1 +\n}\n\nfunc h( {}\n",
			),
			want: []string{"a.go:5:1: expected operand, found '}'", "b.go:5:1: expected operand, found '}'", "b.go:7:12: expected ';', found 'EOF'"},
		},
		{
			name: "disallowed imports in two files",
			src: source(
				"a.go", "package svc\n\nimport (\n\t\"fmt\"\n\t\"os/exec\"\n)\n\nvar _ = fmt.Sprint\nvar _ = exec.Command\n",
				"b.go", "package svc\n\nimport \"unsafe\"\nimport nh \"net/http\"\n",
			),
			want: []string{`a.go:5:2: import "os/exec" is not allowed`, `b.go:3:8: import "unsafe" is not allowed`, `b.go:4:11: import "net/http" is not allowed`},
		},
		{
			// A refused import does not hide the rest: type errors,
			// undefined names, other refused imports and what the
			// interpreter runs differently, all in one answer. What the code
			// uses of the refused packages is not reported again.
			name: "refused imports with the package's other problems",
			src: source(
				"a.go", header+"import \"os/exec\"\n\nfunc init() { sdk.Register(\"x\", h) }\n\n"+
					"func h(ctx *sdk.Context, in map[string]any) (map[string]any, error) {\n"+
					"\tcmd := exec.Command(\"ls\")\n\treturn nil, cmd.Run()\n}\n",
				"b.go", "package svc\n\nimport (\n\t\"unsafe\"\n\n\t\"gopkg.in/yaml.v3\"\n\tgh \"github.com/example/helpers\"\n)\n\n"+
					"var _ = unsafe.Sizeof(0)\nvar _, _ = yaml.Marshal(1)\nvar _ = gh.Helper()\n\n"+
					"func f() int {\n\treturn \"one\"\n}\n\n"+
					"func g() {\n\t_ = notDeclared\n\tfor i := range 3 {\n\t\t_ = i\n\t}\n}\n",
			),
			want: []string{
				`a.go:5:8: import "os/exec" is not allowed`,
				`b.go:4:2: import "unsafe" is not allowed`,
				`b.go:6:2: import "gopkg.in/yaml.v3" is not allowed`,
				`b.go:7:5: import "github.com/example/helpers" is not allowed`,
				`b.go:15:9: cannot use "one" (untyped string constant) as int value in return statement`,
				`b.go:19:6: undefined: notDeclared`,
				`b.go:20:17: range over an integer is not supported by the interpreter`,
			},
		},
		{
			// What a dot import of a refused package declares is unknown:
			// no name is reported undefined.
			name: "refused dot import",
			src:  source("a.go", header+"import . \"os/exec\"\n\nfunc init() { sdk.Register(\"x\", nil); _ = Command(\"ls\") }\n"),
			want: []string{`a.go:5:10: import "os/exec" is not allowed`},
		},
		{
			// The interpreter reports type errors when nothing refuses the
			// package before it: one, as before.
			name: "type errors of a package the door lets through",
			src:  source("a.go", header+"func init() { sdk.Register(\"x\", nil) }\n", "b.go", "package svc\n\nfunc f() int {\n\treturn \"one\"\n}\n\nfunc g() { _ = notDeclared }\n"),
			want: []string{"b.go:4:9: cannot use"},
		},
		{
			name: "mixed package clauses",
			src:  source("a.go", "package svc\n", "b.go", "package other\n"),
			want: []string{"b.go:1:9: package other; expected svc"},
		},
		{
			name: "type error",
			src:  source("a.go", header+"func init() { sdk.Register(\"x\", nil) }\n", "b.go", "package svc\n\nfunc f() int {\n\treturn y\n}\n"),
			want: []string{"b.go:4:9: undefined: y"},
		},
		{
			name: "range over int",
			src:  service("x", "\tfor i := range 10 {\n\t\t_ = i\n\t}\n\treturn nil, nil"),
			want: []string{"svc.go:8:17: range over an integer is not supported"},
		},
		{
			name: "range over an int variable, and over a function",
			src: service("x", "\tn := 3\n\tfor range n {\n\t}\n"+
				"\tseq := func(yield func(int) bool) {}\n\tfor v := range seq {\n\t\t_ = v\n\t}\n\treturn nil, nil"),
			want: []string{"svc.go:9:12: range over an integer", "svc.go:12:17: range over a function"},
		},
		{
			name: "loop variables captured or addressed, min and max",
			src: service("x", "\tvar fs []func() int\n\tfor i := 0; i < 3; i++ {\n\t\tfs = append(fs, func() int { return i })\n\t}\n"+
				"\tvar ps []*int\n\tfor _, v := range []int{1, 2} {\n\t\tps = append(ps, &v)\n\t}\n"+
				"\tfor _, v := range []int{1} {\n\t\tv := v\n\t\tfs = append(fs, func() int { return v })\n\t}\n"+
				"\t_ = min(1, 2) + max(3, 4)\n\tgo func() {}()\n\treturn nil, nil"),
			want: []string{
				`svc.go:10:39: the closure captures loop variable "i"`,
				"svc.go:14:19: &v takes the address of loop variable \"v\"",
				"svc.go:20:6: the builtin min",
				"svc.go:20:18: the builtin max",
				"svc.go:21:2: the go statement is not allowed",
			},
		},
		{
			name: "generics the interpreter cannot instantiate",
			src: source("g.go", header+"func First[S ~[]E, E any](s S) E { return s[0] }\n\n"+
				"func Map[T, U any](s []T, f func(T) U) []U { return nil }\n\n"+
				"func Sum[T int | float64](xs ...T) T { return xs[0] }\n\n"+
				"var top = Sum[int]\n\n"+
				"func init() { sdk.Register(\"g.x\", handle) }\n\n"+
				"func handle(ctx *sdk.Context, in map[string]any) (map[string]any, error) {\n"+
				"\t_ = First([]int{1})\n\t_ = Map([]int{1}, func(int) string { return \"\" })\n\t_ = Sum(1, 2)\n"+
				"\t_ = First[[]int, int]([]int{1})\n\treturn nil, nil\n}\n"),
			want: []string{
				"g.go:11:11: the generic Sum is instantiated at package level",
				"g.go:16:6: the interpreter cannot infer the type arguments of First as Go does (it cannot tell E from the arguments); write them: First[[]int, int](...)",
				"g.go:17:6: the interpreter cannot infer the type arguments of Map as Go does (it would take U to be int, not string); write them: Map[int, string](...)",
				"g.go:18:6: the interpreter cannot infer the type arguments of Sum as Go does (it cannot tell T from the arguments); write them: Sum[int](...)",
			},
		},
		{
			name: "panic in init",
			src:  source("a.go", header+"func init() {\n\tpanic(\"boom\")\n}\n"),
			want: []string{"a.go:6:2: panic during initialisation: boom"},
		},
		{
			name: "runaway init",
			src:  source("a.go", header+"func init() {\n\tfor {\n\t}\n}\n"),
			opts: []svcpkg.Option{svcpkg.WithLoadTimeout(100 * time.Millisecond)},
			want: []string{"initialisation did not finish within 100ms"},
		},
		{
			name: "no services",
			src:  source("a.go", "package svc\n\nfunc f() {}\n"),
			want: []string{"package registers no services"},
		},
		{
			name: "duplicate service",
			src: source("a.go", header+`func init() {
	sdk.Register("x", h)
	sdk.Register("x", h)
}

func h(*sdk.Context, map[string]any) (map[string]any, error) { return nil, nil }
`),
			want: []string{`a.go:7:2: service "x" registered twice`},
		},
		{
			name: "bad handler shapes",
			src: source("a.go", header+`func init() {
	sdk.Register("good", func(*sdk.Context, map[string]any) (map[string]any, error) { return nil, nil })
	sdk.Register("bad.args", func(s string) (string, error) { return s, nil })
}
`, "b.go", header+`func init() { sdk.Register("bad.nil", nil) }
`),
			want: []string{`a.go:7:2: service "bad.args": handler must be a func(*sdk.Context, In) (Out, error)`, `b.go:5:15: service "bad.nil": handler must be`},
		},
		{
			name: "no files",
			src:  source(),
			want: []string{"package has no Go files"},
		},
		{
			name: "only tests",
			src:  source("a_test.go", "package svc\n"),
			want: []string{"package has no Go files"},
		},
		{
			name: "bad file names",
			src:  source("../a.go", "package svc\n", "a.txt", "x", "b.go", "package svc\n", "b.go", "package svc\n"),
			want: []string{"../a.go: file name must be", "a.txt: not a Go file", "b.go: file appears twice"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := runtime.Load(context.Background(), tt.src, tt.opts...)
			var le *svcpkg.LoadError
			if !errors.As(err, &le) {
				t.Fatalf("Load = %v, %v; want a *LoadError", p, err)
			}
			if len(le.Problems) != len(tt.want) {
				t.Fatalf("problems:\n%v\nwant %d of them", err, len(tt.want))
			}
			for i, w := range tt.want {
				if got := le.Problems[i].String(); !strings.HasPrefix(got, w) {
					t.Errorf("problem %d = %q, want it to start with %q", i, got, w)
				}
				if strings.Contains(le.Problems[i].String(), "weftsvc") {
					t.Errorf("problem %d = %q shows the interpreter's import path", i, le.Problems[i])
				}
			}
		})
	}
}

func TestTestFilesIgnored(t *testing.T) {
	src := service("x", "\treturn in, nil")
	src.Files = append(src.Files, &adminv1.SourceFile{Name: "svc_test.go", Content: []byte("package svc\n\nimport \"testing\"\n")})
	if names, err := svcpkg.Validate(context.Background(), src); err != nil || !slices.Equal(names, []string{"x"}) {
		t.Fatalf("Validate = %q, %v", names, err)
	}
}

func TestAllowedImports(t *testing.T) {
	var b strings.Builder
	b.WriteString("package svc\n\nimport (\n")
	for _, p := range []string{"bufio", "bytes", "cmp", "context", "errors", "fmt", "io", "maps", "math", "math/big",
		"math/bits", "math/rand", "slices", "sort", "strconv", "strings", "time", "unicode", "unicode/utf8",
		"unicode/utf16", "encoding/json", "encoding/xml", "encoding/base64", "encoding/hex", "encoding/csv",
		"crypto/sha256", "crypto/sha1", "crypto/sha512", "crypto/md5", "crypto/hmac", "hash", "hash/crc32",
		"regexp", "net/url", "path", "html", "sync", "sync/atomic", "container/list", "mime", "text/template",
		"log/slog"} {
		b.WriteString("\t_ \"" + p + "\"\n")
	}
	b.WriteString("\t\"github.com/weft-dev/weft/agent/sdk\"\n)\n\n")
	b.WriteString(`func init() { sdk.Register("x", h) }

func h(*sdk.Context, map[string]any) (map[string]any, error) { return nil, nil }
`)
	if _, err := svcpkg.Validate(context.Background(), source("a.go", b.String())); err != nil {
		t.Fatal(err)
	}
}

func TestStdlib(t *testing.T) {
	p := load(t, service("x", `	words := strings.Fields(in["text"].(string))
	sort.Strings(words)
	sum := sha256.Sum256([]byte(strings.Join(words, " ")))
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(words); err != nil {
		return nil, err
	}
	return map[string]any{
		"sorted":   words,
		"hash":     hex.EncodeToString(sum[:4]),
		"json":     strings.TrimSpace(buf.String()),
		"contains": slices.Contains(words, "b"),
		"big":      new(big.Int).Exp(big.NewInt(2), big.NewInt(70), nil).String(),
		"wrapped":  errors.Is(fmt.Errorf("wrap: %w", io.EOF), io.EOF),
	}, nil`, "bytes", "crypto/sha256", "encoding/hex", "encoding/json", "errors", "fmt", "io", "math/big", "slices", "sort", "strings"))
	out, err := invoke(t, p, "x", `{"text":"c a b"}`)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"big":"1180591620717411303424","contains":true,"hash":"0e9f6403","json":"[\"a\",\"b\",\"c\"]","sorted":["a","b","c"],"wrapped":true}`
	if string(out) != want {
		t.Errorf("output = %s\nwant     %s", out, want)
	}
}

func TestInvokeDeadline(t *testing.T) {
	p := load(t, service("spin", "\tfor {\n\t}"))
	svc := p.Services["spin"]
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := runtime.Invoke(ctx, svc, sdk.NewContext(ctx, sdk.Request{}), nil)
	if !errors.Is(err, runtime.ErrDeadline) || !errors.Is(err, context.DeadlineExceeded) || handler.Status(err) != 504 {
		t.Fatalf("Invoke = %v, want ErrDeadline (504)", err)
	}
}

func TestClose(t *testing.T) {
	p := load(t, service("spin", "\tif in[\"spin\"] == true {\n\t\tfor {\n\t\t}\n\t}\n\treturn in, nil"))
	svc := p.Services["spin"]
	if out, err := svc.Invoke(nil, []byte(`{"a":1}`)); err != nil || string(out) != `{"a":1}` {
		t.Fatalf("before Close: %s, %v", out, err)
	}
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		close(started)
		_, err := svc.Invoke(nil, []byte(`{"spin":true}`))
		done <- err
	}()
	<-started
	// The goroutine may not have entered the loop yet; Close must end the
	// call either way.
	p.Close()
	select {
	case err := <-done:
		if !errors.Is(err, handler.ErrClosed) {
			t.Errorf("spinning call = %v, want ErrClosed", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("a spinning call did not end after Close")
	}
	_, err := svc.Invoke(nil, []byte(`{"a":1}`))
	if !errors.Is(err, handler.ErrClosed) || handler.Status(err) != 503 {
		t.Fatalf("after Close: %v, want ErrClosed (503)", err)
	}
}

func TestInvokeCancel(t *testing.T) {
	p := load(t, service("spin", "\tfor {\n\t}"))
	defer p.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := runtime.Invoke(ctx, p.Services["spin"], nil, nil)
	if !errors.Is(err, context.Canceled) || errors.Is(err, runtime.ErrDeadline) {
		t.Fatalf("Invoke = %v, want context.Canceled", err)
	}
}

func TestHandlerPanics(t *testing.T) {
	tests := []struct {
		name, body string
		imports    []string
		want       string
	}{
		{"string", "\tpanic(\"boom\")", nil, "panic: boom"},
		{"error", "\tpanic(errors.New(\"bad\"))", []string{"errors"}, "panic: bad"},
		{"nil map", "\tvar m map[string]int\n\tm[\"a\"] = 1\n\treturn nil, nil", nil, "panic: "},
		{"index", "\ts := []int{}\n\t_ = s[len(in)+3]\n\treturn nil, nil", nil, "panic: "},
		{"register late", "\tsdk.Register(\"late\", handle)\n\treturn nil, nil", nil, "called after the package was loaded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := load(t, service("x", tt.body, tt.imports...))
			_, err := invoke(t, p, "x", `{}`)
			var pe *handler.PanicError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), tt.want) || handler.Status(err) != 500 {
				t.Fatalf("Invoke = %v, want a *PanicError containing %q", err, tt.want)
			}
			if out, err := invoke(t, p, "x", `{}`); err == nil {
				t.Fatalf("second call = %s, want the same panic", out)
			}
		})
	}
}

func TestHandlerErrors(t *testing.T) {
	p := load(t, service("x", `	if in["missing"] == true {
		return nil, sdk.Errorf(404, "no such thing %v", in["id"])
	}
	return nil, errors.New("plain")`, "errors"))
	tests := []struct {
		input, want string
		status      int
	}{
		{`{"missing":true,"id":7}`, "no such thing 7", 404},
		{`{}`, "plain", 500},
	}
	for _, tt := range tests {
		_, err := invoke(t, p, "x", tt.input)
		var he *handler.HandlerError
		if !errors.As(err, &he) || he.Err.Error() != tt.want || handler.Status(err) != tt.status {
			t.Errorf("Invoke(%s) = %v (status %d), want %q %d", tt.input, err, handler.Status(err), tt.want, tt.status)
		}
	}
}

func TestConcurrentCalls(t *testing.T) {
	p := load(t, service("x", `	ctx.SetHeader("X-N", fmt.Sprint(in["n"]))
	return map[string]any{"n": in["n"], "cid": ctx.CID()}, nil`, "fmt"))
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := sdk.NewContext(context.Background(), sdk.Request{CID: "c" + string(rune('0'+i%10))})
			out, err := runtime.Invoke(context.Background(), p.Services["x"], c, []byte(`{"n":`+string(rune('0'+i%10))+`}`))
			if err != nil {
				errs <- err
				return
			}
			want := `{"cid":"c` + string(rune('0'+i%10)) + `","n":` + string(rune('0'+i%10)) + `}`
			if string(out) != want || c.Response().Header.Get("X-N") != string(rune('0'+i%10)) {
				errs <- errors.New("got " + string(out) + ", want " + want)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestPackageVarsArePrivate(t *testing.T) {
	load(t, source("a.go", header+`import (
	"io"
	"time"
)

func init() {
	io.EOF = nil
	time.Local = nil
	sdk.Register("x", func(*sdk.Context, map[string]any) (map[string]any, error) { return nil, nil })
}
`))
	if io.EOF == nil || time.Local == nil {
		t.Fatal("a service changed the agent's package variables")
	}
}

func TestOutputIsLogged(t *testing.T) {
	var logs testenv.LogBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	p := load(t, service("x", "\tfmt.Println(\"hello from\", \"service\")\n\treturn nil, nil", "fmt"), svcpkg.WithLogger(logger))
	if _, err := invoke(t, p, "x", ""); err != nil {
		t.Fatal(err)
	}
	if got := logs.String(); !strings.Contains(got, `line="hello from service"`) || !strings.Contains(got, "stream=stdout") {
		t.Errorf("logs = %q", got)
	}
}

func TestLoadContextCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := runtime.Load(ctx, service("x", "\treturn nil, nil"))
	var le *svcpkg.LoadError
	if !errors.Is(err, context.Canceled) || errors.As(err, &le) {
		t.Fatalf("Load = %v, want context.Canceled and no *LoadError", err)
	}
}
