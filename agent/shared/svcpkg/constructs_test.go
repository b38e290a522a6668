package svcpkg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/traefik/yaegi/interp"

	"github.com/weft-dev/weft/agent/shared/symbols"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

const constructsHeader = `package main

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
)

var _ = fmt.Sprint

`

// constructLine is the line of a case's first line of code.
var constructLine = strings.Count(constructsHeader, "\n") + 1

// TestConstructs checks the door against the interpreter itself: each case
// is refused at the door with the given problems exactly when the
// interpreter, running it unchecked, fails or gives another result than
// Go (want).
func TestConstructs(t *testing.T) {
	tests := []struct {
		name string
		code string   // declares func run() any
		want string   // what Go prints for run()
		errs []string // the problems at the door, as "line:col: message prefix"
	}{
		// Range over an integer or a function.
		{"range over an int literal", "func run() any {\n\tn := 0\n\tfor i := range 3 {\n\t\tn += i\n\t}\n\treturn n\n}", "3",
			[]string{"3:17: range over an integer is not supported"}},
		{"range over an int constant", "const k = 3\n\nfunc run() any {\n\tn := 0\n\tfor range k {\n\t\tn++\n\t}\n\treturn n\n}", "3",
			[]string{"5:12: range over an integer"}},
		{"range over an int64 variable", "func run() any {\n\tvar k int64 = 3\n\tn := 0\n\tfor range k {\n\t\tn++\n\t}\n\treturn n\n}", "3",
			[]string{"4:12: range over an integer"}},
		{"range over len", "func run() any {\n\ts := []int{1, 2}\n\tn := 0\n\tfor i := range len(s) {\n\t\tn += i\n\t}\n\treturn n\n}", "1",
			[]string{"4:17: range over an integer"}},
		{"range over a standard library result", "func run() any {\n\tn := 0\n\tfor range strings.Count(\"a,b\", \",\") {\n\t\tn++\n\t}\n\treturn n\n}", "1",
			[]string{"3:12: range over an integer"}},
		{"range over a function", "func run() any {\n\tseq := func(yield func(int) bool) { yield(1) }\n\tfor v := range seq {\n\t\treturn v\n\t}\n\treturn 0\n}", "1",
			[]string{"3:17: range over a function"}},
		{"range over a slice", "func run() any {\n\tn := 0\n\tfor i := range []int{5, 6} {\n\t\tn += i\n\t}\n\treturn n\n}", "1", nil},

		// Unnamed parameters of a function the interpreter hands to
		// compiled code: the argument lands in a local's slot.
		{"unnamed parameters of a func called from compiled code", "func run() any {\n\treturn slices.IndexFunc([]string{\"a\"}, func(string) bool {\n\t\tn := 1\n\t\treturn n == 1\n\t})\n}", "0",
			[]string{"2:46: unnamed parameters of a function with local variables are not supported"}},
		{"unnamed parameters, named result", "func run() any {\n\treturn slices.IndexFunc([]string{\"a\"}, func(string) (ok bool) {\n\t\tok = true\n\t\treturn\n\t})\n}", "0", nil},
		{"unnamed parameters, no locals", "func run() any {\n\treturn slices.IndexFunc([]string{\"a\"}, func(string) bool {\n\t\treturn true\n\t})\n}", "0", nil},
		{"blank parameter names", "func run() any {\n\treturn slices.IndexFunc([]string{\"a\"}, func(_ string) bool {\n\t\tn := 1\n\t\treturn n == 1\n\t})\n}", "0", nil},

		// Loop variables.
		{"closure of a for variable", "func run() any {\n\tvar fs []func() int\n\tfor i := 0; i < 3; i++ {\n\t\tfs = append(fs, func() int { return i })\n\t}\n\treturn []int{fs[0](), fs[1](), fs[2]()}\n}", "[0 1 2]",
			[]string{`4:39: the closure captures loop variable "i"`}},
		{"closure of a range variable", "func run() any {\n\tvar fs []func() int\n\tfor _, v := range []int{1, 2} {\n\t\tfs = append(fs, func() int { return v })\n\t}\n\treturn []int{fs[0](), fs[1]()}\n}", "[1 2]",
			[]string{`4:39: the closure captures loop variable "v"`}},
		{"deferred closure", "func run() any {\n\tvar s []int\n\tfunc() {\n\t\tfor i := 0; i < 3; i++ {\n\t\t\tdefer func() { s = append(s, i) }()\n\t\t}\n\t}()\n\treturn s\n}", "[2 1 0]",
			[]string{`5:33: the closure captures loop variable "i"`}},
		{"address of a range variable", "func run() any {\n\tvar ps []*int\n\tfor _, v := range []int{1, 2} {\n\t\tps = append(ps, &v)\n\t}\n\treturn []int{*ps[0], *ps[1]}\n}", "[1 2]",
			[]string{"4:19: &v takes the address of loop variable \"v\""}},
		{"address of a field of a range variable", "type P struct{ N int }\n\nfunc run() any {\n\tvar ps []*int\n\tfor _, v := range []P{{1}, {2}} {\n\t\tps = append(ps, &v.N)\n\t}\n\treturn []int{*ps[0], *ps[1]}\n}", "[1 2]",
			[]string{"6:19: &v.N takes the address of loop variable \"v\""}},
		{"address of an element of an array range variable", "func run() any {\n\tvar ps []*int\n\tfor _, v := range [][1]int{{1}, {2}} {\n\t\tps = append(ps, &v[0])\n\t}\n\treturn []int{*ps[0], *ps[1]}\n}", "[1 2]",
			[]string{"4:19: &v[0] takes the address of loop variable \"v\""}},
		{"address through a pointer range variable", "type P struct{ N int }\n\nfunc run() any {\n\tvar ps []*int\n\tfor _, v := range []*P{{1}, {2}} {\n\t\tps = append(ps, &v.N)\n\t}\n\treturn []int{*ps[0], *ps[1]}\n}", "[1 2]", nil},
		{"copied loop variable", "func run() any {\n\tvar fs []func() int\n\tfor i := 0; i < 3; i++ {\n\t\ti := i\n\t\tfs = append(fs, func() int { return i })\n\t}\n\treturn []int{fs[0](), fs[1](), fs[2]()}\n}", "[0 1 2]", nil},
		{"closure called on the spot", "func run() any {\n\tn := 0\n\tfor i := 0; i < 3; i++ {\n\t\tfunc() { n += i }()\n\t}\n\treturn n\n}", "3", nil},

		// Builtins the interpreter lacks.
		{"min and max", "func run() any {\n\treturn min(3, 1) + max(1, 2)\n}", "3",
			[]string{"2:9: the builtin min", "2:21: the builtin max"}},
		{"clear", "func run() any {\n\tm := map[string]int{\"a\": 1}\n\tclear(m)\n\treturn len(m)\n}", "0",
			[]string{"3:2: the builtin clear"}},

		// Generic functions of the package.
		{"inferred from typed arguments", maxFunc + "func run() any {\n\tx, y := 1, 2\n\treturn Max(x, y)\n}", "2", nil},
		{"inferred from untyped constants", maxFunc + "func run() any { return Max(1, 2) }", "2", nil},
		{"untyped constants of two kinds", maxFunc + "func run() any { return Max(1, 2.5) }", "2.5",
			[]string{"8:25: the interpreter cannot infer the type arguments of Max as Go does (it would take T to be int, not float64); write them: Max[float64](...)"}},
		{"grouped parameters", "func G[K comparable, V any](k1, k2 K, v V) V { return v }\n\nfunc run() any { return G(\"a\", \"b\", 1) }", "1",
			[]string{"3:25: the interpreter cannot infer the type arguments of G as Go does (it would take V to be string, not int)"}},
		{"grouped parameters, in order", "func G[K comparable, V any](k K, v1, v2 V) V { return v2 }\n\nfunc run() any { return G(\"a\", 1, 2) }", "2", nil},
		{"type parameters out of order", "func P[K comparable, V any](v V, k K) map[K]V { return map[K]V{k: v} }\n\nfunc run() any { return P(1, \"a\") }", "map[a:1]",
			[]string{"3:25: the interpreter cannot infer the type arguments of P as Go does (it would take K to be int, not string); write them: P[string, int](...)"}},
		{"result type of a function argument", mapFunc + "func run() any { return Map([]int{1}, func(x int) string { return \"x\" }) }", "[x]",
			[]string{"3:25: the interpreter cannot infer the type arguments of Map as Go does (it would take U to be int, not string)"}},
		{"result type that happens to agree", mapFunc + "func run() any { return Map([]int{1}, func(x int) int { return x + 1 }) }", "[2]", nil},
		{"result of a function only", "func Make[T any](f func() T) T { return f() }\n\nfunc run() any { return Make(func() int { return 7 }) }", "7", nil},
		{"variadic after a plain parameter", variadicFunc + "func run() any { return F(1, 2, 3) }", "3", nil},
		{"variadic arguments left out", variadicFunc + "func run() any { return F(1) }", "1",
			[]string{"3:25: the interpreter cannot infer the type arguments of F as Go does (it fails on a call that passes no variadic arguments)"}},
		{"variadic only", "func Sum[T int | float64](xs ...T) T {\n\tvar s T\n\tfor _, x := range xs {\n\t\ts += x\n\t}\n\treturn s\n}\n\nfunc run() any { return Sum(1, 2) }", "3",
			[]string{"9:25: the interpreter cannot infer the type arguments of Sum as Go does (it cannot tell T from the arguments); write them: Sum[int](...)"}},
		{"core type, in order", "func Has[S ~[]E, E comparable](s S, v E) bool { return len(s) > 0 && s[0] == v }\n\nfunc run() any { return Has([]int{1}, 1) }", "true", nil},
		{"core type only", "func First[S ~[]E, E any](s S) E { return s[0] }\n\nfunc run() any { return First([]int{4}) }", "4",
			[]string{"3:25: the interpreter cannot infer the type arguments of First as Go does (it cannot tell E from the arguments); write them: First[[]int, int](...)"}},
		{"array parameter", "func At[T any](a [2]T) T { return a[1] }\n\nfunc run() any { return At([2]int{4, 5}) }", "5",
			[]string{"3:25: the interpreter cannot infer the type arguments of At as Go does (it cannot tell T"}},
		{"struct parameter", "func Get[T any](b struct{ V T }) T { return b.V }\n\nfunc run() any { return Get(struct{ V int }{3}) }", "3", nil},
		{"generic type parameter", "type Box[T any] struct{ V T }\n\nfunc Get[T any](b Box[T]) T { return b.V }\n\nfunc run() any { return Get(Box[int]{V: 3}) }", "3",
			[]string{"5:25: the interpreter cannot infer the type arguments of Get as Go does (it would take T to be Box[int], not int)"}},
		{"pointer and map parameters", "func Keys[K comparable, V any](m map[K]V, p *V) int { return len(m) }\n\nfunc run() any {\n\tv := 1\n\treturn Keys(map[string]int{\"a\": v}, &v)\n}", "1", nil},
		{"generic calling generic", "func P[K comparable, V any](v V, k K) map[K]V { return map[K]V{k: v} }\n\nfunc W[A comparable, B any](a A, b B) map[A]B { return P(b, a) }\n\nfunc run() any { return W[string, int](\"k\", 1) }", "map[k:1]",
			[]string{"3:56: the interpreter cannot infer the type arguments of P as Go does (it would take K to be B, not A); write them: P[A, B](...)"}},
		{"all type arguments written", mapFunc + "func run() any { return Map[int, string]([]int{1}, func(int) string { return \"x\" }) }", "[x]", nil},
		{"some type arguments written", mapFunc + "func run() any { return Map[int]([]int{1}, func(int) string { return \"x\" }) }", "[x]",
			[]string{"3:25: the interpreter needs every type argument of Map written: Map[int, string]"}},
		{"instantiated as a value", idFunc + "func run() any {\n\tf := Id[int]\n\treturn f(1)\n}", "1", nil},
		{"inferred from an assignment", idFunc + "func run() any {\n\tvar f func(int) int = Id\n\treturn f(1)\n}", "1",
			[]string{"4:24: the interpreter cannot infer the type arguments of Id from where it is used; write them: Id[int]"}},
		{"at package level", idFunc + "var v = Id[int](1)\n\nfunc run() any { return v }", "1",
			[]string{"3:9: the generic Id is instantiated at package level"}},
		{"in a function literal at package level", idFunc + "var f = func() int { return Id(1) }\n\nfunc run() any { return f() }", "1", nil},

		// The interpreter's own cmp, maps and slices.
		{"slices.Contains", "func run() any { return slices.Contains(strings.Fields(\"a b\"), \"b\") }", "true", nil},
		{"slices.IndexFunc", "func run() any { return slices.IndexFunc([]int{1, 2}, func(x int) bool { return x == 2 }) }", "1", nil},
		{"slices.Equal", "func run() any { return slices.Equal(strings.Fields(\"a\"), []string{\"a\"}) }", "true",
			[]string{"1:32: the interpreter cannot infer the type arguments of slices.Equal as Go does (it cannot tell E from the arguments); write them: slices.Equal[[]string, string](...)"}},
		{"slices.Clone", "func run() any { return slices.Clone([]int{1}) }", "[1]",
			[]string{"1:32: the interpreter cannot infer the type arguments of slices.Clone as Go does (it cannot tell E"}},
		{"slices.Clone, written", "func run() any { return slices.Clone[[]int, int]([]int{1}) }", "[1]", nil},
		{"slices.Clone, half written", "func run() any { return slices.Clone[[]int]([]int{1}) }", "[1]",
			[]string{"1:32: the interpreter needs every type argument of slices.Clone written"}},
		{"slices.DeleteFunc", "func run() any { return slices.DeleteFunc([]int{1, 2}, func(x int) bool { return x == 1 }) }", "[2]",
			[]string{"1:32: slices.DeleteFunc is not supported by the interpreter: its source uses the builtin clear"}},
		{"maps.Clone", "func run() any { return maps.Clone(map[string]int{\"a\": 1}) }", "map[a:1]",
			[]string{"1:30: the interpreter cannot infer the type arguments of maps.Clone as Go does (it cannot tell K"}},
		{"maps.DeleteFunc", "func run() any {\n\tm := map[string]int{\"a\": 1}\n\tmaps.DeleteFunc(m, func(string, int) bool { return true })\n\treturn len(m)\n}", "0", nil},
		{"cmp.Compare", "func run() any { return cmp.Compare(1, 2) }", "-1", nil},
		{"cmp.Or", "func run() any { return cmp.Or(0, 3) }", "3",
			[]string{"1:29: the interpreter cannot infer the type arguments of cmp.Or as Go does (it cannot tell T"}},
		{"slices at package level", "var v = slices.Contains([]int{1}, 1)\n\nfunc run() any { return v }", "true",
			[]string{"1:16: the generic slices.Contains is instantiated at package level"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &adminv1.PackageSource{Name: "test", Files: []*adminv1.SourceFile{{Name: "a.go", Content: []byte(constructsHeader + tt.code + "\n")}}}
			_, _, err := check(src)
			var got []string
			if le := (*LoadError)(nil); errors.As(err, &le) {
				for _, p := range le.Problems {
					got = append(got, fmt.Sprintf("%d:%d: %s", p.Line-constructLine+1, p.Col, p.Message))
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.errs) {
				t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.errs, "\n"))
			}
			for i, w := range tt.errs {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("problem %d = %q, want it to start with %q", i, got[i], w)
				}
			}
			out, err := runUnchecked(constructsHeader + tt.code + "\n")
			switch {
			case len(tt.errs) == 0 && (err != nil || out != tt.want):
				t.Errorf("the door lets this in, but the interpreter gives %q, %v; Go gives %q", out, err, tt.want)
			case len(tt.errs) > 0 && err == nil && out == tt.want:
				t.Errorf("the door refuses this, but the interpreter runs it right (%q)", out)
			}
		})
	}
}

const (
	maxFunc      = "func Max[T int | float64](a, b T) T {\n\tif a > b {\n\t\treturn a\n\t}\n\treturn b\n}\n\n"
	mapFunc      = "func Map[T, U any](s []T, f func(T) U) (r []U) { for _, x := range s { r = append(r, f(x)) }; return }\n\n"
	variadicFunc = "func F[T any](x T, xs ...T) int { return 1 + len(xs) }\n\n"
	idFunc       = "func Id[T any](x T) T { return x }\n\n"
)

// runUnchecked runs src's run() in an interpreter set up as Load does, but
// without the door's check, and returns what it prints as.
func runUnchecked(src string) (out string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	var buf bytes.Buffer
	i := interp.New(interp.Options{Stdout: &buf, Stderr: &buf})
	if err := i.Use(symbols.Symbols); err != nil {
		return "", err
	}
	if _, err := i.EvalWithContext(context.Background(), src); err != nil {
		return "", err
	}
	v, err := i.EvalWithContext(context.Background(), "run()")
	if err != nil {
		return "", err
	}
	return fmt.Sprint(v.Interface()), nil
}

// TestConstructsAllAtOnce checks that every problem of every file comes
// back in one error, in file and line order.
func TestConstructsAllAtOnce(t *testing.T) {
	src := &adminv1.PackageSource{Name: "two", Files: []*adminv1.SourceFile{
		{Name: "b.go", Content: []byte("package svc\n\nfunc g() (n int) {\n\tfor i := range 4 {\n\t\tn = max(n, i)\n\t}\n\treturn\n}\n")},
		{Name: "a.go", Content: []byte("package svc\n\nfunc f() []func() int {\n\tvar fs []func() int\n\tfor i := 0; i < 2; i++ {\n\t\tfs = append(fs, func() int { return i })\n\t}\n\tgo f()\n\treturn fs\n}\n")},
	}}
	_, err := Load(context.Background(), src)
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("Load = %v, want a *LoadError", err)
	}
	want := []string{
		`a.go:6:39: the closure captures loop variable "i"`,
		"a.go:8:2: the go statement is not allowed",
		"b.go:4:17: range over an integer",
		"b.go:5:7: the builtin max",
	}
	if len(le.Problems) != len(want) {
		t.Fatalf("problems:\n%v\nwant %d", err, len(want))
	}
	for i, w := range want {
		if got := le.Problems[i].String(); !strings.HasPrefix(got, w) {
			t.Errorf("problem %d = %q, want it to start with %q", i, got, w)
		}
	}
}

// TestConstructsConcurrent checks packages concurrently, as a control
// plane validating several deploys does: they share the universe.
func TestConstructsConcurrent(t *testing.T) {
	src := &adminv1.PackageSource{Name: "c", Files: []*adminv1.SourceFile{{Name: "a.go", Content: []byte(constructsHeader +
		"func run() any { return slices.Equal(strings.Fields(\"a\"), []string{\"a\"}) }\n")}}}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, _, err := check(src); err == nil || !strings.Contains(err.Error(), "slices.Equal") {
				t.Errorf("check = %v, want the slices.Equal problem", err)
			}
		})
	}
	wg.Wait()
}
