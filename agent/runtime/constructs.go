package runtime

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"path"
)

// unsupported finds the constructs that compile with Go but that the
// interpreter runs differently or not at all, so a deploy is refused with
// their file:line instead of misbehaving on agents:
//
//   - range over an integer (Go 1.22) or a function (Go 1.23);
//   - a closure, or an address taken, of a loop variable: Go 1.22 gives
//     each iteration its own variable, the interpreter shares one;
//   - the builtins min and max, which the interpreter lacks;
//   - the go statement: a goroutine the agent does not know of outlives
//     the package when a new version replaces it; ctx.Go is tracked;
//   - generic functions the interpreter cannot instantiate: at package
//     level, or called with inferred type arguments where its inference
//     fails (see inferable).
//
// It type-checks the package with imports left empty: what depends on an
// imported package has no type and is not judged, the rest is.
func unsupported(fset *token.FileSet, files []*ast.File) []Problem {
	if len(files) == 0 {
		return nil
	}
	info := &types.Info{
		Types:     make(map[ast.Expr]types.TypeAndValue),
		Defs:      make(map[*ast.Ident]types.Object),
		Uses:      make(map[*ast.Ident]types.Object),
		Instances: make(map[*ast.Ident]types.Instance),
	}
	conf := types.Config{Importer: emptyImporter{}, Error: func(error) {}}
	_, _ = conf.Check(files[0].Name.Name, fset, files, info) // errors are Yaegi's to report

	var probs []Problem
	at := func(pos token.Pos, format string, args ...any) {
		probs = append(probs, problemAt(fset.Position(pos), fmt.Sprintf(format, args...)))
	}
	for _, f := range files {
		for _, d := range f.Decls {
			if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.VAR {
				ast.Inspect(g, func(n ast.Node) bool {
					if id, ok := n.(*ast.Ident); ok {
						if _, inst := info.Instances[id]; inst {
							at(id.Pos(), "the generic %s is instantiated at package level, which the interpreter cannot do; use it inside a function", id.Name)
						}
					}
					return true
				})
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.RangeStmt:
				if t := info.Types[n.X].Type; t != nil {
					switch u := t.Underlying().(type) {
					case *types.Basic:
						if u.Info()&types.IsInteger != 0 {
							at(n.X.Pos(), "range over an integer is not supported by the interpreter; write for i := 0; i < n; i++")
						}
					case *types.Signature:
						at(n.X.Pos(), "range over a function is not supported by the interpreter; call the function with a yield func instead")
					}
				}
				if n.Tok == token.DEFINE {
					checkLoopVars(info, at, n.Body, n.Key, n.Value)
				}
			case *ast.ForStmt:
				if init, ok := n.Init.(*ast.AssignStmt); ok && init.Tok == token.DEFINE {
					checkLoopVars(info, at, n.Body, init.Lhs...)
				}
			case *ast.CallExpr:
				if id, ok := n.Fun.(*ast.Ident); ok {
					if why := inferable(info, id); why != "" {
						at(id.Pos(), "the interpreter cannot infer the type arguments of %s (%s); write them: %s[...](...)", id.Name, why, id.Name)
					}
				}
			case *ast.GoStmt:
				at(n.Pos(), "the go statement is not allowed: start goroutines with ctx.Go, which the agent stops when it replaces the package")
			case *ast.Ident:
				if b, ok := info.Uses[n].(*types.Builtin); ok && (b.Name() == "min" || b.Name() == "max") {
					at(n.Pos(), "the builtin %s is not supported by the interpreter; compare with if", b.Name())
				}
			}
			return true
		})
	}
	return probs
}

// inferable says why the interpreter would fail to infer the type arguments
// of a call of the generic function id, or "" when it copes (or id is not
// generic, or its type arguments are written out). Measured on the
// interpreter: inference fails for variadic functions, for a type
// parameter constrained by another (S ~[]E), and for a type parameter
// that the arguments give only as a function's result.
func inferable(info *types.Info, id *ast.Ident) string {
	fn, ok := info.Uses[id].(*types.Func)
	if !ok {
		return ""
	}
	sig, ok := fn.Type().(*types.Signature)
	if !ok || sig.TypeParams().Len() == 0 {
		return ""
	}
	tps := sig.TypeParams()
	if sig.Variadic() {
		return "it is variadic"
	}
	for i := 0; i < tps.Len(); i++ {
		for j := 0; j < tps.Len(); j++ {
			if mentions(tps.At(i).Constraint(), tps.At(j), false) {
				return fmt.Sprintf("the constraint of %s uses %s", tps.At(i).Obj().Name(), tps.At(j).Obj().Name())
			}
		}
	}
	for j := 0; j < tps.Len(); j++ {
		direct := false
		for k := 0; k < sig.Params().Len(); k++ {
			direct = direct || mentions(sig.Params().At(k).Type(), tps.At(j), true)
		}
		if !direct {
			return fmt.Sprintf("the arguments give %s only as a function's result", tps.At(j).Obj().Name())
		}
	}
	return ""
}

// mentions reports whether t refers to tp. With skipResults, the results
// of function types do not count.
func mentions(t types.Type, tp *types.TypeParam, skipResults bool) bool {
	switch t := t.(type) {
	case *types.TypeParam:
		return t == tp
	case *types.Pointer:
		return mentions(t.Elem(), tp, skipResults)
	case *types.Slice:
		return mentions(t.Elem(), tp, skipResults)
	case *types.Array:
		return mentions(t.Elem(), tp, skipResults)
	case *types.Map:
		return mentions(t.Key(), tp, skipResults) || mentions(t.Elem(), tp, skipResults)
	case *types.Chan:
		return mentions(t.Elem(), tp, skipResults)
	case *types.Signature:
		for i := 0; i < t.Params().Len(); i++ {
			if mentions(t.Params().At(i).Type(), tp, skipResults) {
				return true
			}
		}
		if !skipResults {
			for i := 0; i < t.Results().Len(); i++ {
				if mentions(t.Results().At(i).Type(), tp, skipResults) {
					return true
				}
			}
		}
	case *types.Named:
		for i := 0; i < t.TypeArgs().Len(); i++ {
			if mentions(t.TypeArgs().At(i), tp, skipResults) {
				return true
			}
		}
	case *types.Interface:
		for i := 0; i < t.NumEmbeddeds(); i++ {
			if mentions(t.EmbeddedType(i), tp, skipResults) {
				return true
			}
		}
	case *types.Union:
		for i := 0; i < t.Len(); i++ {
			if mentions(t.Term(i).Type(), tp, skipResults) {
				return true
			}
		}
	}
	return false
}

// checkLoopVars reports closures in body that use a variable the loop
// declares, and addresses taken of one: both would share one variable
// across iterations in the interpreter.
func checkLoopVars(info *types.Info, at func(token.Pos, string, ...any), body *ast.BlockStmt, decls ...ast.Expr) {
	vars := map[types.Object]string{}
	for _, d := range decls {
		if id, ok := d.(*ast.Ident); ok && id.Name != "_" {
			if obj := info.Defs[id]; obj != nil {
				vars[obj] = id.Name
			}
		}
	}
	if len(vars) == 0 || body == nil {
		return
	}
	ast.Inspect(body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.FuncLit:
			reported := map[types.Object]bool{}
			ast.Inspect(n.Body, func(m ast.Node) bool {
				id, ok := m.(*ast.Ident)
				if !ok {
					return true
				}
				if obj := info.Uses[id]; obj != nil && vars[obj] != "" && !reported[obj] {
					reported[obj] = true
					at(id.Pos(), "the closure captures loop variable %q, which the interpreter shares across iterations (Go 1.22 would not); copy it first: %s := %s", vars[obj], vars[obj], vars[obj])
				}
				return true
			})
			return false
		case *ast.UnaryExpr:
			if id, ok := n.X.(*ast.Ident); ok && n.Op == token.AND {
				if obj := info.Uses[id]; obj != nil && vars[obj] != "" {
					at(n.Pos(), "&%s takes the address of a loop variable, which the interpreter shares across iterations (Go 1.22 would not); copy it first: %s := %s", vars[obj], vars[obj], vars[obj])
				}
			}
		}
		return true
	})
}

// emptyImporter imports every package as an empty one, so the type checker
// runs with no standard library at hand (agents may have none).
type emptyImporter struct{}

func (emptyImporter) Import(p string) (*types.Package, error) {
	pkg := types.NewPackage(p, path.Base(p))
	pkg.MarkComplete()
	return pkg, nil
}
