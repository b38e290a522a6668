package svcpkg

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"slices"
	"strconv"
	"strings"

	"github.com/weft-dev/weft/agent/shared/symbols"
)

// refusedUses finds, in type-checked files, the uses of what the audit of
// the symbol tables refuses (symbols.TheAudit; see audit.txt there):
//
//   - a refused function, variable or type of an allowed package
//     (template.ParseFiles, time.AfterFunc), which the tables leave out: it
//     is reported as refused, with why, rather than as undefined;
//   - a refused method (Template.ParseGlob, WaitGroup.Go), called, taken as
//     a method value or a method expression, or promoted through an
//     embedded field;
//   - a field whose type is of package reflect or unsafe (the Type of
//     encoding/json's UnmarshalTypeError), which reaches any method and
//     memory of the agent;
//   - a value whose type reaches a refused method (through its method set,
//     exported fields, elements or results) converted to an interface, or
//     used as a type argument of a generic of the package: through an
//     interface, or as a template's data, the method could be called by
//     name;
//   - likewise, a context.Context of the package's own (see ownContext),
//     whose methods the standard library and the agent would call on
//     goroutines of their own.
//
// Each is a problem at its file:line:col. The check fails closed: a flaw
// of ours refuses the package rather than letting it through.
func refusedUses(fset *token.FileSet, files []*ast.File, info *types.Info) (probs []Problem) {
	defer func() {
		if r := recover(); r != nil {
			probs = []Problem{{Message: fmt.Sprintf("the check of the symbols this package uses failed (a flaw of Weft's; please report it): %v", r)}}
		}
	}()
	r := &refuser{fset: fset, info: info, u: theUniverse(), reaches: map[types.Type]*reach{}}
	for _, f := range files {
		r.file(f)
	}
	r.instances()
	// One problem per place and message, in source order.
	slices.SortFunc(r.probs, func(a, b Problem) int {
		if c := strings.Compare(a.File, b.File); c != 0 {
			return c
		}
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		if a.Col != b.Col {
			return a.Col - b.Col
		}
		return strings.Compare(a.Message, b.Message)
	})
	return slices.Compact(r.probs)
}

// withoutUndefined drops from typeErrs the "undefined" errors at the
// places where refused reports a refused symbol: the tables leave those
// symbols out, and the refusal says more than that they are missing.
func withoutUndefined(typeErrs, refused []Problem) []Problem {
	at := map[Problem]bool{}
	for _, p := range refused {
		at[Problem{File: p.File, Line: p.Line, Col: p.Col}] = true
	}
	return slices.DeleteFunc(typeErrs, func(p Problem) bool {
		return strings.HasPrefix(p.Message, "undefined: ") && at[Problem{File: p.File, Line: p.Line, Col: p.Col}]
	})
}

type refuser struct {
	fset  *token.FileSet
	info  *types.Info
	u     *universe
	probs []Problem
	// reaches remembers, per check, the types found to reach a refused
	// method. (What does not is not remembered: a cycle cut short may
	// have hidden the way.)
	reaches map[types.Type]*reach
}

// reach is how a type reaches a refused method.
type reach struct {
	method string // such as sync.WaitGroup.Go
	reason string // why it is refused
	via    string // the fields and methods in between, "" when it is the type's own
}

func (r *refuser) at(pos token.Pos, format string, args ...any) {
	r.probs = append(r.probs, problemAt(r.fset.Position(pos), fmt.Sprintf(format, args...)))
}

// file checks the uses in f, and the conversions to interfaces.
func (r *refuser) file(f *ast.File) {
	dotted := map[string]bool{} // packages imported with "."
	for _, spec := range f.Imports {
		if p, err := strconv.Unquote(spec.Path.Value); err == nil && spec.Name != nil && spec.Name.Name == "." {
			dotted[p] = true
		}
	}
	var stack []ast.Node          // the enclosing nodes, for the function a return is in
	sels := map[*ast.Ident]bool{} // the names after a dot, which are no package's
	ast.Inspect(f, func(n ast.Node) bool {
		if n == nil {
			stack = stack[:len(stack)-1]
			return true
		}
		stack = append(stack, n)
		switch n := n.(type) {
		case *ast.SelectorExpr:
			sels[n.Sel] = true
			r.selector(n)
		case *ast.Ident:
			if sels[n] || n == f.Name {
				break
			}
			switch obj := r.info.Uses[n]; {
			case obj != nil && obj.Pkg() != nil && r.u.pkgs[obj.Pkg().Path()] == obj.Pkg() && obj.Parent() == obj.Pkg().Scope():
				// A dot-imported name the tables still hold.
				if reason, refused := symbols.Refusal(obj.Pkg().Path(), n.Name); refused {
					r.at(n.Pos(), "%s.%s is not allowed: %s", obj.Pkg().Path(), n.Name, reason)
				}
			case obj == nil && r.info.Defs[n] == nil:
				// An undefined name: one of a dot-imported package that the
				// tables leave out, when the audit refuses it.
				for p := range dotted {
					if reason, refused := symbols.Refusal(p, n.Name); refused {
						r.at(n.Pos(), "%s.%s is not allowed: %s", p, n.Name, reason)
					}
				}
			}
		case *ast.CallExpr:
			r.call(n)
		case *ast.AssignStmt:
			if n.Tok == token.ASSIGN || n.Tok == token.DEFINE {
				r.assign(n.Lhs, n.Rhs)
			}
		case *ast.ValueSpec:
			if n.Type != nil {
				lhs := make([]ast.Expr, len(n.Names))
				for i, id := range n.Names {
					lhs[i] = id
				}
				r.assign(lhs, n.Values)
			}
		case *ast.ReturnStmt:
			if sig := r.enclosing(stack); sig != nil {
				r.spread(n.Results, func(i int) types.Type {
					if i < sig.Results().Len() {
						return sig.Results().At(i).Type()
					}
					return nil
				})
			}
		case *ast.CompositeLit:
			r.composite(n)
		case *ast.SendStmt:
			if ch, ok := coreType(r.info.TypeOf(n.Chan)).(*types.Chan); ok {
				r.convert(n.Value, r.info.TypeOf(n.Value), ch.Elem())
			}
		case *ast.IndexExpr:
			if m, ok := coreType(r.info.TypeOf(n.X)).(*types.Map); ok {
				r.convert(n.Index, r.info.TypeOf(n.Index), m.Key())
			}
		case *ast.RangeStmt:
			if n.Tok == token.ASSIGN {
				key, val := rangeTypes(r.info.TypeOf(n.X))
				if n.Key != nil {
					r.convert(n.Key, key, r.lhsType(n.Key))
				}
				if n.Value != nil {
					r.convert(n.Value, val, r.lhsType(n.Value))
				}
			}
		}
		return true
	})
}

// selector checks a qualified name, a method or a field.
func (r *refuser) selector(sel *ast.SelectorExpr) {
	if id, ok := sel.X.(*ast.Ident); ok {
		if pn, ok := r.info.Uses[id].(*types.PkgName); ok {
			p := pn.Imported().Path()
			if reason, refused := symbols.Refusal(p, sel.Sel.Name); refused {
				r.at(sel.Sel.Pos(), "%s.%s is not allowed: %s", p, sel.Sel.Name, reason)
			}
			return
		}
	}
	s := r.info.Selections[sel]
	if s == nil {
		return
	}
	switch s.Kind() {
	case types.MethodVal, types.MethodExpr:
		if fn, ok := s.Obj().(*types.Func); ok {
			if name, reason, refused := refusedMethod(fn); refused {
				r.at(sel.Sel.Pos(), "%s is not allowed: %s", name, reason)
			}
		}
	case types.FieldVal:
		if t := reflective(s.Obj().Type()); t != "" {
			r.at(sel.Sel.Pos(), "%s is not allowed: it is a %s, and reflect reaches any method, and through unsafe pointers any memory, of the agent",
				fieldName(s), t)
		}
	}
}

// refusedMethod returns the name of fn, a method, and whether and why the
// audit refuses it.
func refusedMethod(fn *types.Func) (name, reason string, refused bool) {
	fn = fn.Origin()
	sig, ok := fn.Type().(*types.Signature)
	if !ok || sig.Recv() == nil {
		return "", "", false
	}
	n := namedOf(sig.Recv().Type())
	if n == nil || n.Obj().Pkg() == nil {
		return "", "", false
	}
	p, typ := n.Obj().Pkg().Path(), n.Obj().Name()
	reason, refused = symbols.Refusal(p, typ+"."+fn.Name())
	return p + "." + typ + "." + fn.Name(), reason, refused
}

// namedOf returns the named type t is, or points to, or nil.
func namedOf(t types.Type) *types.Named {
	if p, ok := types.Unalias(t).(*types.Pointer); ok {
		t = p.Elem()
	}
	n, _ := types.Unalias(t).(*types.Named)
	if n != nil {
		n = n.Origin()
	}
	return n
}

// reflective names the type of package reflect or unsafe that t is made
// of, not counting what named types of other packages are made of, or "".
func reflective(t types.Type) string {
	switch t := types.Unalias(t).(type) {
	case *types.Named:
		if pkg := t.Obj().Pkg(); pkg != nil && pkg.Path() == "reflect" {
			return "reflect." + t.Obj().Name()
		}
	case *types.Basic:
		if t.Kind() == types.UnsafePointer {
			return "unsafe.Pointer"
		}
	case *types.Pointer:
		return reflective(t.Elem())
	case *types.Slice:
		return reflective(t.Elem())
	case *types.Array:
		return reflective(t.Elem())
	case *types.Chan:
		return reflective(t.Elem())
	case *types.Map:
		if s := reflective(t.Key()); s != "" {
			return s
		}
		return reflective(t.Elem())
	case *types.Signature:
		for _, tuple := range []*types.Tuple{t.Params(), t.Results()} {
			for v := range tuple.Variables() {
				if s := reflective(v.Type()); s != "" {
					return s
				}
			}
		}
	case *types.Struct:
		for f := range t.Fields() {
			if s := reflective(f.Type()); s != "" {
				return s
			}
		}
	}
	return ""
}

// fieldName names the field a selection selects as path.Type.Field, with
// the type that declares it (which, for a promoted field, is not the one
// selected from).
func fieldName(s *types.Selection) string {
	t := s.Recv()
	idx := s.Index()
	for _, i := range idx[:len(idx)-1] {
		st, ok := derefStruct(t)
		if !ok {
			break
		}
		t = st.Field(i).Type()
	}
	name := s.Obj().Name()
	if n := namedOf(t); n != nil && n.Obj().Pkg() != nil {
		return n.Obj().Pkg().Path() + "." + n.Obj().Name() + "." + name
	}
	return "the field " + name
}

func derefStruct(t types.Type) (*types.Struct, bool) {
	if p, ok := t.Underlying().(*types.Pointer); ok {
		t = p.Elem()
	}
	st, ok := t.Underlying().(*types.Struct)
	return st, ok
}

// coreType is t's underlying type, or that of its type parameter's core
// type when all of its types share one.
func coreType(t types.Type) types.Type {
	if t == nil {
		return nil
	}
	if tp, ok := types.Unalias(t).(*types.TypeParam); ok {
		var core types.Type
		ok := true
		iface := tp.Constraint().Underlying().(*types.Interface)
		for term := range iface.EmbeddedTypes() {
			u := term.Underlying()
			if union, isUnion := u.(*types.Union); isUnion {
				for term := range union.Terms() {
					if core == nil {
						core = term.Type().Underlying()
					} else if !types.Identical(core, term.Type().Underlying()) {
						ok = false
					}
				}
				continue
			}
			if core == nil {
				core = u
			} else if !types.Identical(core, u) {
				ok = false
			}
		}
		if !ok {
			return nil
		}
		return core
	}
	return t.Underlying()
}

// enclosing returns the signature of the innermost function in stack.
func (r *refuser) enclosing(stack []ast.Node) *types.Signature {
	for i := len(stack) - 1; i >= 0; i-- {
		switch fn := stack[i].(type) {
		case *ast.FuncLit:
			sig, _ := r.info.TypeOf(fn).(*types.Signature)
			return sig
		case *ast.FuncDecl:
			if obj := r.info.Defs[fn.Name]; obj != nil {
				sig, _ := obj.Type().(*types.Signature)
				return sig
			}
			return nil
		}
	}
	return nil
}

// lhsType returns the type of what e, the left side of an assignment,
// stands for, or nil for the blank identifier.
func (r *refuser) lhsType(e ast.Expr) types.Type {
	if id, ok := ast.Unparen(e).(*ast.Ident); ok {
		if id.Name == "_" {
			return nil
		}
		if obj := r.info.Defs[id]; obj != nil {
			return obj.Type()
		}
		if obj := r.info.Uses[id]; obj != nil {
			return obj.Type()
		}
	}
	return r.info.TypeOf(e)
}

// assign checks the values rhs assigned to lhs.
func (r *refuser) assign(lhs, rhs []ast.Expr) {
	r.spread(rhs, func(i int) types.Type {
		if i < len(lhs) {
			return r.lhsType(lhs[i])
		}
		return nil
	})
}

// spread checks values assigned to the targets whose types target gives
// by position, a single call's results spread over them.
func (r *refuser) spread(values []ast.Expr, target func(i int) types.Type) {
	if len(values) == 1 {
		if tuple, ok := r.info.TypeOf(values[0]).(*types.Tuple); ok {
			for i := range tuple.Len() {
				r.convert(values[0], tuple.At(i).Type(), target(i))
			}
			return
		}
	}
	for i, v := range values {
		r.convert(v, r.info.TypeOf(v), target(i))
	}
}

// call checks the arguments of a call, or the operand of a conversion.
func (r *refuser) call(call *ast.CallExpr) {
	tv, ok := r.info.Types[call.Fun]
	if !ok {
		return
	}
	if tv.IsType() {
		if len(call.Args) == 1 {
			r.convert(call.Args[0], r.info.TypeOf(call.Args[0]), tv.Type)
		}
		return
	}
	sig, ok := coreType(tv.Type).(*types.Signature)
	if !ok {
		return
	}
	params := sig.Params()
	r.spread(call.Args, func(i int) types.Type {
		switch {
		case sig.Variadic() && i >= params.Len()-1:
			last := params.At(params.Len() - 1).Type()
			if call.Ellipsis.IsValid() {
				return last
			}
			if s, ok := coreType(last).(*types.Slice); ok {
				return s.Elem()
			}
		case i < params.Len():
			return params.At(i).Type()
		}
		return nil
	})
}

// composite checks the elements of a composite literal.
func (r *refuser) composite(lit *ast.CompositeLit) {
	t := coreType(r.info.TypeOf(lit))
	if p, ok := t.(*types.Pointer); ok {
		t = p.Elem().Underlying()
	}
	for i, el := range lit.Elts {
		kv, _ := el.(*ast.KeyValueExpr)
		val := el
		if kv != nil {
			val = kv.Value
		}
		var target types.Type
		switch t := t.(type) {
		case *types.Struct:
			if kv != nil {
				if id, ok := kv.Key.(*ast.Ident); ok {
					for f := range t.Fields() {
						if f.Name() == id.Name {
							target = f.Type()
						}
					}
				}
			} else if i < t.NumFields() {
				target = t.Field(i).Type()
			}
		case *types.Slice:
			target = t.Elem()
		case *types.Array:
			target = t.Elem()
		case *types.Map:
			if kv != nil {
				r.convert(kv.Key, r.info.TypeOf(kv.Key), t.Key())
			}
			target = t.Elem()
		}
		r.convert(val, r.info.TypeOf(val), target)
	}
}

// rangeTypes returns the types of the key and value a range over a value
// of type t yields.
func rangeTypes(t types.Type) (key, val types.Type) {
	switch u := coreType(t).(type) {
	case *types.Slice:
		return types.Typ[types.Int], u.Elem()
	case *types.Array:
		return types.Typ[types.Int], u.Elem()
	case *types.Pointer:
		if a, ok := u.Elem().Underlying().(*types.Array); ok {
			return types.Typ[types.Int], a.Elem()
		}
	case *types.Map:
		return u.Key(), u.Elem()
	case *types.Chan:
		return u.Elem(), nil
	}
	return nil, nil
}

// convert checks a value of type src, written at e, that becomes a value
// of type target: a conversion to an interface of a value that reaches a
// refused method is refused.
func (r *refuser) convert(e ast.Expr, src, target types.Type) {
	if src == nil || target == nil || !types.IsInterface(target) || types.IsInterface(src) {
		// A type parameter counts as an interface here: what it stands
		// for is checked where the generic is instantiated.
		return
	}
	if why := r.danger(src); why != "" {
		r.at(e.Pos(), "%s cannot be converted to %s: %s", r.typeString(src), r.typeString(target), why)
	}
}

// danger says why a value of type t must not be held in an interface, or
// "".
func (r *refuser) danger(t types.Type) string {
	if rc := r.reach(t, map[types.Type]bool{}); rc != nil {
		return rc.explain()
	}
	if m := r.ownContext(t); m != "" {
		return fmt.Sprintf("it is a context.Context whose method %s is the package's own, which context.WithCancel and the like, "+
			"and the agent, call on goroutines the agent does not track; derive contexts from ctx.Context()", m)
	}
	return ""
}

// ownContext returns the name of a method of context.Context that t, or
// *t, implements with a method of the package (not one promoted from an
// embedded context of the standard library), or "". A parent context not
// of the standard library makes context.WithCancel start a goroutine that
// waits on its Done and calls its Err and Value.
func (r *refuser) ownContext(t types.Type) string {
	ctxPkg := r.u.pkgs["context"]
	if ctxPkg == nil {
		return ""
	}
	obj := ctxPkg.Scope().Lookup("Context")
	if obj == nil {
		return ""
	}
	iface, ok := obj.Type().Underlying().(*types.Interface)
	if !ok {
		return ""
	}
	for _, tt := range []types.Type{t, types.NewPointer(t)} {
		if !types.Implements(tt, iface) {
			continue
		}
		ms := types.NewMethodSet(tt)
		for m := range iface.Methods() {
			if sel := ms.Lookup(m.Pkg(), m.Name()); sel != nil && sel.Obj().Pkg() != nil && r.u.pkgs[sel.Obj().Pkg().Path()] != sel.Obj().Pkg() {
				return m.Name()
			}
		}
	}
	return ""
}

func (rc *reach) explain() string {
	via := ""
	if rc.via != "" {
		via = " (" + rc.via + ")"
	}
	return fmt.Sprintf("through it%s, a template or an interface could call %s by name, which is not allowed: %s",
		via, rc.method, rc.reason)
}

// instances checks the type arguments of the package's own generics: in
// its body, a type argument may be converted to an interface unseen.
func (r *refuser) instances() {
	for id, inst := range r.info.Instances {
		obj := r.info.Uses[id]
		if obj == nil || obj.Pkg() == nil || r.u.pkgs[obj.Pkg().Path()] == obj.Pkg() {
			continue // the standard library's generics call no method by name
		}
		for ta := range inst.TypeArgs.Types() {
			if types.IsInterface(ta) {
				continue
			}
			if why := r.danger(ta); why != "" {
				r.at(id.Pos(), "%s cannot be a type argument of %s: %s", r.typeString(ta), id.Name, why)
			}
		}
	}
}

// typeString writes t with the package's own names unqualified, and the
// empty interface as any.
func (r *refuser) typeString(t types.Type) string {
	if iface, ok := types.Unalias(t).(*types.Interface); ok && iface.Empty() {
		return "any"
	}
	return types.TypeString(t, func(p *types.Package) string {
		if r.u.pkgs[p.Path()] == p {
			return p.Name()
		}
		return ""
	})
}

// reach says whether, and how, a value of type t reaches a refused
// method: in its method set or its pointer's, or through its exported (or
// embedded) fields, its elements, its results, or its exported methods'
// results, which is what a template can follow by name. seen cuts cycles.
func (r *refuser) reach(t types.Type, seen map[types.Type]bool) *reach {
	t = types.Unalias(t)
	if rc := r.reaches[t]; rc != nil {
		return rc
	}
	if seen[t] {
		return nil
	}
	seen[t] = true
	rc := r.reachOf(t, seen)
	if rc != nil {
		r.reaches[t] = rc
	}
	return rc
}

func (r *refuser) reachOf(t types.Type, seen map[types.Type]bool) *reach {
	via := func(rc *reach, step string) *reach {
		if rc == nil {
			return nil
		}
		out := *rc
		if out.via == "" {
			out.via = step
		} else {
			out.via = step + ", " + out.via
		}
		return &out
	}
	switch t := t.(type) {
	case *types.Named:
		if pkg := t.Obj().Pkg(); pkg != nil && (pkg.Path() == "reflect" || pkg.Path() == "unsafe") {
			return nil // refused where it is selected
		}
		if types.IsInterface(t) {
			return nil // what it holds was checked when it was put in
		}
		ms := types.NewMethodSet(types.NewPointer(t))
		var results []*types.Selection
		for sel := range ms.Methods() {
			fn, ok := sel.Obj().(*types.Func)
			if !ok {
				continue
			}
			if name, reason, refused := refusedMethod(fn); refused {
				return &reach{method: name, reason: reason}
			}
			if fn.Exported() {
				results = append(results, sel)
			}
		}
		for _, sel := range results {
			sig := sel.Obj().Type().(*types.Signature)
			for v := range sig.Results().Variables() {
				if rc := r.reach(v.Type(), seen); rc != nil {
					return via(rc, "its method "+sel.Obj().Name())
				}
			}
		}
		return r.reach(t.Underlying(), seen)
	case *types.Pointer:
		return r.reach(t.Elem(), seen)
	case *types.Slice:
		return r.reach(t.Elem(), seen)
	case *types.Array:
		return r.reach(t.Elem(), seen)
	case *types.Chan:
		return r.reach(t.Elem(), seen)
	case *types.Map:
		if rc := r.reach(t.Key(), seen); rc != nil {
			return rc
		}
		return r.reach(t.Elem(), seen)
	case *types.Struct:
		for f := range t.Fields() {
			if f.Exported() || f.Embedded() {
				if rc := r.reach(f.Type(), seen); rc != nil {
					return via(rc, "its field "+f.Name())
				}
			}
		}
	case *types.Signature:
		for v := range t.Results().Variables() {
			if rc := r.reach(v.Type(), seen); rc != nil {
				return via(rc, "its result")
			}
		}
	}
	return nil
}
