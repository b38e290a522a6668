package svcpkg

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/scanner"
	"go/token"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/weft-dev/weft/agent/shared/symbols"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// allowed is the set of import paths interpreted code may use.
var allowed = sync.OnceValue(func() map[string]bool {
	m := map[string]bool{}
	for key := range symbols.Symbols {
		m[path.Dir(key)] = true
	}
	for _, p := range symbols.Generic {
		m[p] = true
	}
	return m
})

// check parses every file of src before Yaegi sees it, so that all syntax
// errors and disallowed imports of all files are reported at once. It
// returns the files to load (sorted, without tests) and where sdk.Register
// is called with a literal name.
//
// A disallowed import does not end the check: the files are type-checked
// all the same, so that the one answer that refuses the package also holds
// its constructs the interpreter gets wrong and its type errors. Type errors
// are reported here only when the package is refused anyway; otherwise the
// interpreter, which has the last word on what it runs, reports them.
func check(src *adminv1.PackageSource) ([]*adminv1.SourceFile, positions, error) {
	var (
		probs []Problem
		files []*adminv1.SourceFile
		seen  = map[string]bool{}
	)
	for _, f := range src.GetFiles() {
		switch {
		case f.Name == "" || path.Base(f.Name) != f.Name || f.Name[0] == '.' || f.Name[0] == '_':
			probs = append(probs, Problem{File: f.Name, Message: "file name must be a plain base name, such as hello.go"})
		case !strings.HasSuffix(f.Name, ".go"):
			probs = append(probs, Problem{File: f.Name, Message: "not a Go file (name must end in .go)"})
		case seen[f.Name]:
			probs = append(probs, Problem{File: f.Name, Message: "file appears twice in the package"})
		case strings.HasSuffix(f.Name, "_test.go"):
			// Tests run with go test, never on agents.
		default:
			files = append(files, f)
		}
		seen[f.Name] = true
	}
	slices.SortFunc(files, func(a, b *adminv1.SourceFile) int { return strings.Compare(a.Name, b.Name) })
	if len(files) == 0 && len(probs) == 0 {
		probs = append(probs, Problem{Message: "package has no Go files"})
	}

	fset := token.NewFileSet()
	regs := positions{}
	pkgName := ""
	var parsed []*ast.File
	// whole says whether the parsed files are the package, all of one
	// package clause: only then does type-checking them mean anything.
	whole := len(probs) == 0
	for _, f := range files {
		af, err := parser.ParseFile(fset, f.Name, f.Content, parser.SkipObjectResolution)
		if err != nil {
			var list scanner.ErrorList
			whole = false
			if !errors.As(err, &list) {
				probs = append(probs, Problem{File: f.Name, Message: err.Error()})
				continue
			}
			for _, e := range list {
				probs = append(probs, problemAt(e.Pos, e.Msg))
			}
			continue
		}
		if pkgName == "" {
			pkgName = af.Name.Name
		} else if af.Name.Name != pkgName {
			whole = false
			probs = append(probs, problemAt(fset.Position(af.Name.Pos()),
				"package "+af.Name.Name+"; expected "+pkgName+" (all files must be in the same package)"))
		}
		sdkName := ""
		for _, spec := range af.Imports {
			p, _ := strconv.Unquote(spec.Path.Value)
			if !allowed()[p] {
				probs = append(probs, problemAt(fset.Position(spec.Path.Pos()), "import "+spec.Path.Value+" is not allowed"))
			}
			if p == symbols.SDKPath {
				sdkName = "sdk"
				if spec.Name != nil {
					sdkName = spec.Name.Name
				}
			}
		}
		findRegisters(fset, af, sdkName, regs)
		parsed = append(parsed, af)
	}
	if whole {
		gaps, typeErrs := unsupported(fset, parsed)
		probs = append(probs, gaps...)
		if len(probs) > 0 {
			probs = append(probs, typeErrs...)
		}
	}
	if len(probs) > 0 {
		slices.SortStableFunc(probs, func(a, b Problem) int {
			if c := strings.Compare(a.File, b.File); c != 0 {
				return c
			}
			if a.Line != b.Line {
				return a.Line - b.Line
			}
			return a.Col - b.Col
		})
		return nil, nil, &LoadError{Problems: probs}
	}
	return files, regs, nil
}

// findRegisters records the calls sdk.Register("literal", ...) of af in
// regs, so that a registration problem can point at its line. sdkName is
// the name the file imports the SDK under ("" if it does not).
func findRegisters(fset *token.FileSet, af *ast.File, sdkName string, regs positions) {
	if sdkName == "" || sdkName == "_" {
		return
	}
	ast.Inspect(af, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) == 0 {
			return true
		}
		switch fun := call.Fun.(type) {
		case *ast.SelectorExpr:
			if x, ok := fun.X.(*ast.Ident); !ok || x.Name != sdkName || fun.Sel.Name != "Register" {
				return true
			}
		case *ast.Ident:
			if sdkName != "." || fun.Name != "Register" {
				return true
			}
		default:
			return true
		}
		if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
			if name, err := strconv.Unquote(lit.Value); err == nil {
				regs[name] = append(regs[name], fset.Position(call.Pos()))
			}
		}
		return true
	})
}
