package svcpkg

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"strconv"
	"strings"
)

// missingBuiltins are the builtins the interpreter lacks, with what to
// write instead.
var missingBuiltins = map[string]string{
	"min":   "compare with if",
	"max":   "compare with if",
	"clear": "delete a map's keys in a loop, or assign the zero value to a slice's elements",
}

// unsupported finds the constructs that compile with Go but that the
// interpreter runs differently or not at all, so a deploy is refused with
// their file:line instead of misbehaving on agents:
//
//   - range over an integer (Go 1.22) or a function (Go 1.23);
//   - a closure, or an address taken, of a loop variable: Go 1.22 gives
//     each iteration its own variable, the interpreter shares one;
//   - the builtins min, max and clear, which the interpreter lacks;
//   - the go statement: a goroutine the agent does not know of outlives
//     the package when a new version replaces it; ctx.Go is tracked;
//   - generic functions the interpreter cannot instantiate (see generics);
//   - what the audit of the symbol tables refuses (see refusedUses).
//
// It type-checks the package against the symbols the interpreter offers
// (see universe) and returns the type errors apart, for the caller to
// report or to leave to the interpreter; what has no type because of one
// is not judged.
func unsupported(fset *token.FileSet, files []*ast.File) (probs, typeErrs []Problem) {
	if len(files) == 0 {
		return nil, nil
	}
	var refused []Problem
	defer func() {
		// A flaw of ours must not refuse a deploy: the interpreter still
		// judges the code. What the audit refuses stays refused: the
		// interpreter would run a refused method.
		if recover() != nil {
			probs, typeErrs = refused, nil
		}
	}()
	info := &types.Info{
		Types:      make(map[ast.Expr]types.TypeAndValue),
		Defs:       make(map[*ast.Ident]types.Object),
		Uses:       make(map[*ast.Ident]types.Object),
		Instances:  make(map[*ast.Ident]types.Instance),
		Selections: make(map[*ast.SelectorExpr]*types.Selection),
	}
	u := theUniverse()
	var errs []types.Error
	conf := types.Config{Importer: u, Error: func(err error) {
		// Soft errors (an unused variable or import) are Go's, not the
		// interpreter's: it runs such code.
		if te, ok := err.(types.Error); ok && !te.Soft {
			errs = append(errs, te)
		}
	}}
	pkg, _ := conf.Check(files[0].Name.Name, fset, files, info)
	typeErrs = typeProblems(files, info, u, errs)
	refused = refusedUses(fset, files, info)
	typeErrs = withoutUndefined(typeErrs, refused)
	probs = append(probs, refused...)

	at := func(pos token.Pos, format string, args ...any) {
		probs = append(probs, problemAt(fset.Position(pos), fmt.Sprintf(format, args...)))
	}
	for _, f := range files {
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
			case *ast.GoStmt:
				at(n.Pos(), "the go statement is not allowed: start goroutines with ctx.Go, which the agent stops when it replaces the package")
			case *ast.FuncDecl:
				checkParamNames(at, n.Type, n.Body)
			case *ast.FuncLit:
				checkParamNames(at, n.Type, n.Body)
			case *ast.Ident:
				if b, ok := info.Uses[n].(*types.Builtin); ok && missingBuiltins[b.Name()] != "" {
					at(n.Pos(), "the builtin %s is not supported by the interpreter; %s", b.Name(), missingBuiltins[b.Name()])
				}
			}
			return true
		})
	}
	g := generics{info: info, pkg: pkg, u: u, at: at, decls: map[*types.Func]*ast.FuncDecl{}}
	g.check(files)
	return probs, typeErrs
}

// checkParamNames refuses unnamed parameters of a function that has local
// variables. Called from compiled code (a handler, a ctx.Go goroutine, a
// func handed to the standard library), such a function has its arguments
// stored over its locals by the interpreter: a panic (reflect.Set: value
// of type X is not assignable to type Y), or wrong values when the types
// agree. Without locals it runs right.
func checkParamNames(at func(token.Pos, string, ...any), ft *ast.FuncType, body *ast.BlockStmt) {
	if body == nil || ft.Params == nil || !declaresLocals(body) {
		return
	}
	for _, f := range ft.Params.List {
		if len(f.Names) == 0 {
			at(f.Pos(), "unnamed parameters of a function with local variables are not supported by the interpreter when the function is called from outside it; name them (_ for one you do not use)")
			return
		}
	}
}

// declaresLocals says whether a function's body declares variables (not
// those of the closures in it, which have their own frames; named results
// do not count: the interpreter places them right).
func declaresLocals(body *ast.BlockStmt) bool {
	found := false
	ast.Inspect(body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.FuncLit:
			return false
		case *ast.AssignStmt:
			found = found || n.Tok == token.DEFINE
		case *ast.RangeStmt:
			found = found || n.Tok == token.DEFINE
		case *ast.DeclStmt:
			if g, ok := n.Decl.(*ast.GenDecl); ok && g.Tok == token.VAR {
				found = true
			}
		}
		return !found
	})
	return found
}

// typeProblems turns the type checker's errors into problems, leaving out
// the names it cannot find in a package the interpreter does not offer:
// that import is refused already, and what the code uses of it is not a
// second mistake.
func typeProblems(files []*ast.File, info *types.Info, u *universe, errs []types.Error) []Problem {
	// unsafe is Go's own package, which the type checker knows.
	offered := func(p string) bool { return p == "unsafe" || allowed()[p] }
	absent := map[token.Pos]bool{} // the selectors into packages not offered
	dotAbsent := false             // whether a package not offered is imported with "."
	for _, f := range files {
		for _, spec := range f.Imports {
			if p, _ := strconv.Unquote(spec.Path.Value); spec.Name != nil && spec.Name.Name == "." && !offered(p) {
				dotAbsent = true
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if id, ok := sel.X.(*ast.Ident); ok {
					if pn, ok := info.Uses[id].(*types.PkgName); ok && !offered(pn.Imported().Path()) {
						absent[sel.Sel.Pos()] = true
					}
				}
			}
			return true
		})
	}
	var probs []Problem
	for _, e := range errs {
		if absent[e.Pos] || dotAbsent && strings.HasPrefix(e.Msg, "undefined: ") {
			continue
		}
		probs = append(probs, problemAt(e.Fset.Position(e.Pos), e.Msg))
	}
	return probs
}

// generics finds the uses of generic functions that the interpreter gets
// wrong. Measured on Yaegi 0.16.1:
//
//   - at package level (a variable's initialiser, outside function
//     literals), any instantiation fails or computes wrong results;
//   - with some but not all type arguments written, it panics;
//   - a generic function used as a value without type arguments (Go
//     infers them from an assignment) is refused;
//   - in a call without type arguments, it infers them by walking the
//     declared parameters — one per group as written, "a, b T" counting
//     once, paired with the call's arguments by index — through pointers,
//     slices, channels, maps, unnamed structs and function types (not
//     arrays, not variadic parameters), collecting the argument's type at
//     each type parameter it meets, and then takes the i-th type collected
//     as the i-th type argument. Where that differs from what Go infers,
//     or finds too few, the call fails or, worse, runs with wrong types
//     (TestConstructs holds this model against the interpreter);
//   - some functions of its own cmp, maps and slices use what it lacks
//     (clear), so calling them fails.
type generics struct {
	info  *types.Info
	pkg   *types.Package
	u     *universe
	at    func(token.Pos, string, ...any)
	decls map[*types.Func]*ast.FuncDecl // the package's own functions
}

func (g *generics) check(files []*ast.File) {
	var (
		calls    = map[*ast.Ident]*ast.CallExpr{} // the function called, by its name
		explicit = map[*ast.Ident]int{}           // type arguments written
		topLevel = map[*ast.Ident]bool{}          // in a package variable's initialiser
	)
	for _, f := range files {
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if fn, ok := g.info.Defs[d.Name].(*types.Func); ok && d.Recv == nil {
					g.decls[fn] = d
				}
			case *ast.GenDecl:
				if d.Tok == token.VAR {
					ast.Inspect(d, func(n ast.Node) bool {
						if id, ok := n.(*ast.Ident); ok {
							topLevel[id] = true
						}
						_, lit := n.(*ast.FuncLit)
						return !lit
					})
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				if id, k := funcName(n.Fun); id != nil {
					calls[id], explicit[id] = n, k
				}
			case *ast.IndexExpr, *ast.IndexListExpr:
				if id, k := funcName(n.(ast.Expr)); id != nil {
					explicit[id] = k
				}
			}
			return true
		})
	}
	for id, inst := range g.info.Instances {
		fn, ok := g.info.Uses[id].(*types.Func)
		if !ok || !valid(inst.TypeArgs) {
			continue // a generic type, or one the checker could not type
		}
		sig := fn.Type().(*types.Signature)
		name := fn.Name()
		if fn.Pkg() != g.pkg && fn.Pkg() != nil {
			name = fn.Pkg().Name() + "." + name
		}
		want := name + "[" + g.typeList(inst.TypeArgs) + "]"
		switch n := explicit[id]; {
		case g.u.broken[fn] != "":
			g.at(id.Pos(), "%s is not supported by the interpreter: %s", name, g.u.broken[fn])
		case topLevel[id]:
			g.at(id.Pos(), "the generic %s is instantiated at package level, which the interpreter cannot do; use it inside a function", name)
		case n == sig.TypeParams().Len():
		case n > 0:
			g.at(id.Pos(), "the interpreter needs every type argument of %s written: %s", name, want)
		case calls[id] == nil:
			g.at(id.Pos(), "the interpreter cannot infer the type arguments of %s from where it is used; write them: %s", name, want)
		default:
			if why := g.misinfers(fn, sig, calls[id], inst.TypeArgs); why != "" {
				g.at(id.Pos(), "the interpreter cannot infer the type arguments of %s as Go does (%s); write them: %s(...)", name, why, want)
			}
		}
	}
}

// funcName returns the identifier that names the function in e (f,
// pkg.f, f[T], (f)), and how many type arguments e writes.
func funcName(e ast.Expr) (*ast.Ident, int) {
	n := 0
	e = ast.Unparen(e)
	switch x := e.(type) {
	case *ast.IndexExpr:
		n, e = 1, ast.Unparen(x.X)
	case *ast.IndexListExpr:
		n, e = len(x.Indices), ast.Unparen(x.X)
	}
	switch x := e.(type) {
	case *ast.Ident:
		return x, n
	case *ast.SelectorExpr:
		return x.Sel, n
	}
	return nil, 0
}

// misinfers says how the interpreter's inference for call of fn differs
// from Go's (targs), or "" when it agrees or cannot be judged.
func (g *generics) misinfers(fn *types.Func, sig *types.Signature, call *ast.CallExpr, targs *types.TypeList) string {
	decl := g.decls[fn]
	if decl == nil {
		decl = g.u.funcs[fn]
	}
	if decl == nil || len(call.Args) == 1 && g.isTuple(call.Args[0]) {
		return ""
	}
	var got []types.Type // the types the interpreter collects, in order
	param := 0
	for i, field := range decl.Type.Params.List {
		if param >= sig.Params().Len() {
			return ""
		}
		pt := sig.Params().At(param).Type()
		param += max(1, len(field.Names))
		if _, variadic := field.Type.(*ast.Ellipsis); variadic {
			if i >= len(call.Args) {
				return "it fails on a call that passes no variadic arguments"
			}
			continue
		}
		if i >= len(call.Args) {
			return ""
		}
		at := g.info.Types[call.Args[i]].Type
		if u := g.untyped(call.Args[i]); u != nil {
			at = u // the checker records the type Go converted it to
		}
		if at == nil || !valid1(at) {
			return ""
		}
		collect(pt, types.Default(at), &got)
	}
	tps := sig.TypeParams()
	for i := range tps.Len() {
		tp := tps.At(i).Obj().Name()
		switch {
		case i >= len(got) || got[i] == nil:
			return fmt.Sprintf("it cannot tell %s from the arguments", tp)
		case !types.Identical(got[i], targs.At(i)):
			return fmt.Sprintf("it would take %s to be %s, not %s", tp, g.typeString(got[i]), g.typeString(targs.At(i)))
		}
	}
	return ""
}

// untyped returns the type of e if it is an untyped constant, nil if not.
func (g *generics) untyped(e ast.Expr) types.Type {
	switch e := ast.Unparen(e).(type) {
	case *ast.BasicLit:
		kinds := map[token.Token]types.BasicKind{token.INT: types.UntypedInt, token.FLOAT: types.UntypedFloat,
			token.IMAG: types.UntypedComplex, token.CHAR: types.UntypedRune, token.STRING: types.UntypedString}
		return types.Typ[kinds[e.Kind]]
	case *ast.Ident:
		if c, ok := g.info.Uses[e].(*types.Const); ok {
			if b, ok := c.Type().(*types.Basic); ok && b.Info()&types.IsUntyped != 0 {
				return b
			}
		}
	case *ast.UnaryExpr:
		if e.Op != token.AND && e.Op != token.ARROW {
			return g.untyped(e.X)
		}
	case *ast.BinaryExpr:
		switch e.Op {
		case token.EQL, token.NEQ, token.LSS, token.LEQ, token.GTR, token.GEQ, token.LAND, token.LOR:
			if g.untyped(e.X) != nil && g.untyped(e.Y) != nil {
				return types.Typ[types.UntypedBool]
			}
			return nil
		case token.SHL, token.SHR:
			return g.untyped(e.X)
		}
		x, y := g.untyped(e.X), g.untyped(e.Y)
		if x == nil || y == nil {
			return nil
		}
		// The later kind wins: int < rune < float < complex.
		if x.(*types.Basic).Kind() > y.(*types.Basic).Kind() {
			return x
		}
		return y
	}
	return nil
}

// collect walks param, a parameter's declared type, beside arg, the type of
// the argument the interpreter pairs with it, as the interpreter does, and
// appends to got the part of arg found at each type parameter (nil where
// arg has another shape).
func collect(param, arg types.Type, got *[]types.Type) {
	var a types.Type
	if arg != nil {
		a = arg.Underlying()
	}
	switch p := param.(type) {
	case *types.TypeParam:
		*got = append(*got, arg)
	case *types.Pointer:
		x, _ := a.(*types.Pointer)
		collect(p.Elem(), elem(x), got)
	case *types.Slice:
		x, _ := a.(*types.Slice)
		collect(p.Elem(), elem(x), got)
	case *types.Chan:
		x, _ := a.(*types.Chan)
		collect(p.Elem(), elem(x), got)
	case *types.Map:
		x, _ := a.(*types.Map)
		var k, v types.Type
		if x != nil {
			k, v = x.Key(), x.Elem()
		}
		collect(p.Key(), k, got)
		collect(p.Elem(), v, got)
	case *types.Struct:
		x, _ := a.(*types.Struct)
		for i := range p.NumFields() {
			var f types.Type
			if x != nil && i < x.NumFields() {
				f = x.Field(i).Type()
			}
			collect(p.Field(i).Type(), f, got)
		}
	case *types.Signature:
		x, _ := a.(*types.Signature)
		if x == nil {
			return
		}
		for i := range min(p.Params().Len(), x.Params().Len()) {
			if p.Variadic() && i == p.Params().Len()-1 {
				break // not walked
			}
			collect(p.Params().At(i).Type(), x.Params().At(i).Type(), got)
		}
		for i := range min(p.Results().Len(), x.Results().Len()) {
			collect(p.Results().At(i).Type(), x.Results().At(i).Type(), got)
		}
	case *types.Named:
		// A generic type's instance, such as Box[T]: the interpreter takes
		// the whole argument for the type parameter, which is wrong.
		if p.TypeArgs().Len() > 0 && mentionsTypeParam(p) {
			*got = append(*got, arg)
		}
	}
}

// elem returns the element type of x, nil for a nil x.
func elem(x interface{ Elem() types.Type }) types.Type {
	switch x := x.(type) {
	case *types.Pointer:
		if x != nil {
			return x.Elem()
		}
	case *types.Slice:
		if x != nil {
			return x.Elem()
		}
	case *types.Chan:
		if x != nil {
			return x.Elem()
		}
	}
	return nil
}

// mentionsTypeParam reports whether the instance n has a type parameter
// among its type arguments, at any depth.
func mentionsTypeParam(n *types.Named) bool {
	for i := range n.TypeArgs().Len() {
		if hasTypeParam(n.TypeArgs().At(i)) {
			return true
		}
	}
	return false
}

func hasTypeParam(t types.Type) bool {
	switch t := t.(type) {
	case *types.TypeParam:
		return true
	case *types.Pointer:
		return hasTypeParam(t.Elem())
	case *types.Slice:
		return hasTypeParam(t.Elem())
	case *types.Array:
		return hasTypeParam(t.Elem())
	case *types.Chan:
		return hasTypeParam(t.Elem())
	case *types.Map:
		return hasTypeParam(t.Key()) || hasTypeParam(t.Elem())
	case *types.Named:
		return mentionsTypeParam(t)
	}
	return false
}

func (g *generics) isTuple(e ast.Expr) bool {
	_, ok := g.info.Types[e].Type.(*types.Tuple)
	return ok
}

func (g *generics) typeString(t types.Type) string {
	return types.TypeString(t, func(p *types.Package) string {
		if p == g.pkg {
			return ""
		}
		return p.Name()
	})
}

func (g *generics) typeList(l *types.TypeList) string {
	s := make([]string, l.Len())
	for i := range l.Len() {
		s[i] = g.typeString(l.At(i))
	}
	return strings.Join(s, ", ")
}

// valid reports whether every type of l is known.
func valid(l *types.TypeList) bool {
	for i := range l.Len() {
		if !valid1(l.At(i)) {
			return false
		}
	}
	return true
}

// valid1 reports whether t is known, invalid types being where the
// checker lacked something (a type error, for the interpreter to report).
func valid1(t types.Type) bool {
	return !strings.Contains(types.TypeString(t, nil), "invalid type")
}

// addressed returns the variable whose memory &e points into: v for &v,
// &v.field of a struct v and &v[i] of an array v; nil for anything else
// (through a pointer, a slice or a map, &e points elsewhere).
func addressed(info *types.Info, e ast.Expr) *ast.Ident {
	for {
		switch x := ast.Unparen(e).(type) {
		case *ast.Ident:
			return x
		case *ast.SelectorExpr:
			if s := info.Selections[x]; s == nil || s.Kind() != types.FieldVal || s.Indirect() {
				return nil
			}
			if t := info.Types[x.X].Type; t == nil || isPointer(t) {
				return nil
			}
			e = x.X
		case *ast.IndexExpr:
			t := info.Types[x.X].Type
			if t == nil {
				return nil
			}
			if _, array := t.Underlying().(*types.Array); !array {
				return nil
			}
			e = x.X
		default:
			return nil
		}
	}
}

func isPointer(t types.Type) bool {
	_, ok := t.Underlying().(*types.Pointer)
	return ok
}

// checkLoopVars reports closures in body that use a variable the loop
// declares, and addresses taken of one: both would share one variable
// across iterations in the interpreter. A function literal called on the
// spot (not deferred) cannot outlive the iteration; the closures inside it
// still count.
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
	deferred := map[*ast.FuncLit]bool{}
	onTheSpot := map[*ast.FuncLit]bool{}
	ast.Inspect(body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.DeferStmt:
			if lit, ok := ast.Unparen(n.Call.Fun).(*ast.FuncLit); ok {
				deferred[lit] = true
			}
		case *ast.CallExpr:
			if lit, ok := ast.Unparen(n.Fun).(*ast.FuncLit); ok && !deferred[lit] {
				onTheSpot[lit] = true
			}
		case *ast.FuncLit:
			if onTheSpot[n] {
				return true
			}
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
			if id := addressed(info, n.X); id != nil && n.Op == token.AND {
				if obj := info.Uses[id]; obj != nil && vars[obj] != "" {
					at(n.Pos(), "%s takes the address of loop variable %q, which the interpreter shares across iterations (Go 1.22 would not); copy it first: %s := %s", types.ExprString(n), vars[obj], vars[obj], vars[obj])
				}
			}
		}
		return true
	})
}
