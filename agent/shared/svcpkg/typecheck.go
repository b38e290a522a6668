package svcpkg

import (
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"go/types"
	"path"
	"reflect"
	"strings"
	"sync"
	"unicode"

	"github.com/traefik/yaegi/stdlib/generic"

	"github.com/weft-dev/weft/agent/shared/symbols"
)

// universe is what the door's type checker knows of the packages
// interpreted code may import. It is built once and never changed after,
// so that concurrent checks can share it.
type universe struct {
	pkgs map[string]*types.Package // by import path
	// funcs are the function declarations of the generic packages, whose
	// parameter lists (grouped as written) the interpreter's inference
	// follows.
	funcs map[*types.Func]*ast.FuncDecl
	// broken are the generic packages' functions whose source the
	// interpreter cannot run, with why.
	broken map[*types.Func]string
}

// theUniverse builds the universe on first use: the packages of
// symbols.Symbols from their reflect types, and cmp, maps and slices
// type-checked from the interpreter's own sources of them (which are not
// Go's: some functions are missing, some use what the interpreter lacks).
var theUniverse = sync.OnceValue(func() *universe {
	c := &converter{pkgs: map[string]*types.Package{}, named: map[reflect.Type]*types.Named{}}
	for key, syms := range symbols.Symbols {
		c.addPackage(path.Dir(key), path.Base(key), syms)
	}
	u := &universe{pkgs: c.pkgs, funcs: map[*types.Func]*ast.FuncDecl{}, broken: map[*types.Func]string{}}
	u.addGeneric()
	for _, p := range u.pkgs {
		p.MarkComplete()
	}
	return u
})

// Import returns the package at p, or an empty one for a path the
// interpreter does not offer (the check reports those imports). The
// universe also holds packages that are not offered but whose types the
// offered ones use (reflect, net/http): importing one gets an empty one
// too, so that its uses are not reported beside the refused import.
func (u *universe) Import(p string) (*types.Package, error) {
	if pkg := u.pkgs[p]; pkg != nil && allowed()[p] {
		return pkg, nil
	}
	if p == "unsafe" {
		// Refused too, but its uses type-check as Go's own.
		return types.Unsafe, nil
	}
	pkg := types.NewPackage(p, assumedName(p))
	pkg.MarkComplete()
	return pkg, nil
}

// assumedName is the name a package at p is most likely declared with, as
// goimports guesses it: the last element, or the one before a major
// version ("example.com/yaml/v3" is yaml), without a "go-" prefix and cut
// at the first character that cannot be in a name ("yaml.v3" is yaml). An
// empty package of the right name keeps the code's uses of it from being
// reported as undefined names beside the refused import.
func assumedName(p string) string {
	base := path.Base(p)
	if len(base) > 1 && base[0] == 'v' && strings.Trim(base[1:], "0123456789") == "" && path.Dir(p) != "." {
		base = path.Base(path.Dir(p))
	}
	base = strings.TrimPrefix(base, "go-")
	if i := strings.IndexFunc(base, func(r rune) bool {
		return !(r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r))
	}); i >= 0 {
		base = base[:i]
	}
	return base
}

// addGeneric type-checks the interpreter's sources of its generic
// packages, in an order that has each import checked before it is needed.
func (u *universe) addGeneric() {
	fset := token.NewFileSet()
	var files []*ast.File
	for _, s := range generic.Sources {
		f, err := parser.ParseFile(fset, "", s, parser.SkipObjectResolution)
		if err == nil {
			files = append(files, f)
		}
	}
	for len(files) > 0 {
		progress := false
		for i := 0; i < len(files); i++ {
			f := files[i]
			if !u.importsReady(f) {
				continue
			}
			u.checkGeneric(fset, f)
			files = append(files[:i], files[i+1:]...)
			i--
			progress = true
		}
		if !progress {
			return
		}
	}
}

func (u *universe) importsReady(f *ast.File) bool {
	for _, spec := range f.Imports {
		p := strings.Trim(spec.Path.Value, `"`)
		if u.pkgs[p] == nil && p != "unsafe" {
			return false
		}
	}
	return true
}

func (u *universe) checkGeneric(fset *token.FileSet, f *ast.File) {
	name := f.Name.Name
	info := &types.Info{
		Types: make(map[ast.Expr]types.TypeAndValue),
		Defs:  make(map[*ast.Ident]types.Object),
		Uses:  make(map[*ast.Ident]types.Object),
	}
	conf := types.Config{Importer: u, Error: func(error) {}}
	pkg, _ := conf.Check(name, fset, []*ast.File{f}, info)
	if pkg == nil {
		return
	}
	u.pkgs[name] = pkg
	// What the interpreter lacks inside a function breaks it, and the
	// functions that call it.
	calls := map[*types.Func][]*types.Func{} // callee -> callers
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Recv != nil {
			continue
		}
		fn, _ := info.Defs[fd.Name].(*types.Func)
		if fn == nil {
			continue
		}
		u.funcs[fn] = fd
		ast.Inspect(fd, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.Ident:
				if b, ok := info.Uses[n].(*types.Builtin); ok && missingBuiltins[b.Name()] != "" && u.broken[fn] == "" {
					u.broken[fn] = "its source uses the builtin " + b.Name()
				}
				if callee, ok := info.Uses[n].(*types.Func); ok && callee.Pkg() == pkg && callee != fn {
					calls[callee] = append(calls[callee], fn)
				}
			case *ast.RangeStmt:
				if t := info.Types[n.X].Type; t != nil && u.broken[fn] == "" {
					if b, ok := t.Underlying().(*types.Basic); ok && b.Info()&types.IsInteger != 0 {
						u.broken[fn] = "its source ranges over an integer"
					}
				}
			}
			return true
		})
	}
	var spread func(fn *types.Func)
	spread = func(fn *types.Func) {
		for _, caller := range calls[fn] {
			if u.broken[caller] == "" {
				u.broken[caller] = "it calls " + fn.Name() + ", which the interpreter cannot run"
				spread(caller)
			}
		}
	}
	var direct []*types.Func
	for fn := range u.broken {
		if fn.Pkg() == pkg {
			direct = append(direct, fn)
		}
	}
	for _, fn := range direct {
		spread(fn)
	}
}

// converter turns the reflect types of a symbol table into go/types ones.
type converter struct {
	pkgs  map[string]*types.Package
	named map[reflect.Type]*types.Named
}

// pkg returns the package at p, creating it (named name, or after p's last
// element) on first use.
func (c *converter) pkg(p, name string) *types.Package {
	if pkg := c.pkgs[p]; pkg != nil {
		return pkg
	}
	if name == "" {
		name = path.Base(p)
	}
	pkg := types.NewPackage(p, name)
	c.pkgs[p] = pkg
	return pkg
}

// addPackage declares the symbols of one package of the table in its
// scope. Yaegi's tables hold a type as a nil pointer to it, a variable as
// an addressable value, a function as a func value and a constant as its
// value (a constant.Value when untyped).
func (c *converter) addPackage(p, name string, syms map[string]reflect.Value) {
	pkg := c.pkg(p, name)
	for sym, v := range syms {
		if strings.HasPrefix(sym, "_") || !v.IsValid() || pkg.Scope().Lookup(sym) != nil {
			continue // interface wrappers, and symbols already declared
		}
		var obj types.Object
		switch {
		case v.CanAddr():
			obj = types.NewVar(token.NoPos, pkg, sym, c.typ(v.Type()))
		case v.Kind() == reflect.Pointer && v.IsNil():
			t := v.Type().Elem()
			if t.Name() == sym && t.PkgPath() == p {
				obj = c.typ(t).(*types.Named).Obj()
			} else {
				obj = types.NewTypeName(token.NoPos, pkg, sym, c.typ(t)) // an alias
			}
		case v.Kind() == reflect.Func:
			obj = types.NewFunc(token.NoPos, pkg, sym, c.signature(v.Type(), nil))
		default:
			obj = c.constant(pkg, sym, v)
		}
		if obj != nil {
			pkg.Scope().Insert(obj)
		}
	}
}

// constant declares the constant sym with value v, or returns nil for a
// value it does not understand.
func (c *converter) constant(pkg *types.Package, sym string, v reflect.Value) types.Object {
	if cv, ok := v.Interface().(constant.Value); ok {
		kinds := map[constant.Kind]types.BasicKind{
			constant.Bool: types.UntypedBool, constant.String: types.UntypedString, constant.Int: types.UntypedInt,
			constant.Float: types.UntypedFloat, constant.Complex: types.UntypedComplex,
		}
		k, ok := kinds[cv.Kind()]
		if !ok {
			return nil
		}
		return types.NewConst(token.NoPos, pkg, sym, types.Typ[k], cv)
	}
	var cv constant.Value
	switch v.Kind() {
	case reflect.Bool:
		cv = constant.MakeBool(v.Bool())
	case reflect.String:
		cv = constant.MakeString(v.String())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		cv = constant.MakeInt64(v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		cv = constant.MakeUint64(v.Uint())
	case reflect.Float32, reflect.Float64:
		cv = constant.MakeFloat64(v.Float())
	default:
		return nil
	}
	return types.NewConst(token.NoPos, pkg, sym, c.typ(v.Type()), cv)
}

var basicKinds = map[reflect.Kind]types.BasicKind{
	reflect.Bool: types.Bool, reflect.Int: types.Int, reflect.Int8: types.Int8, reflect.Int16: types.Int16,
	reflect.Int32: types.Int32, reflect.Int64: types.Int64, reflect.Uint: types.Uint, reflect.Uint8: types.Uint8,
	reflect.Uint16: types.Uint16, reflect.Uint32: types.Uint32, reflect.Uint64: types.Uint64,
	reflect.Uintptr: types.Uintptr, reflect.Float32: types.Float32, reflect.Float64: types.Float64,
	reflect.Complex64: types.Complex64, reflect.Complex128: types.Complex128, reflect.String: types.String,
	reflect.UnsafePointer: types.UnsafePointer,
}

// typ returns the go/types type of t.
func (c *converter) typ(t reflect.Type) types.Type {
	if t.Name() == "" || t.Kind() == reflect.UnsafePointer {
		return c.structure(t)
	}
	if t.PkgPath() == "" { // predeclared
		if t == reflect.TypeFor[error]() {
			return types.Universe.Lookup("error").Type()
		}
		return c.structure(t)
	}
	if n := c.named[t]; n != nil {
		return n
	}
	pkg := c.pkg(t.PkgPath(), "")
	n := types.NewNamed(types.NewTypeName(token.NoPos, pkg, t.Name(), nil), nil, nil)
	c.named[t] = n
	n.SetUnderlying(c.structure(t))
	if t.Kind() != reflect.Interface {
		// Methods with a value receiver are in t's method set, those with
		// a pointer receiver only in *t's. Unexported methods are not seen.
		value := map[string]bool{}
		for i := range t.NumMethod() {
			m := t.Method(i)
			value[m.Name] = true
			n.AddMethod(types.NewFunc(token.NoPos, pkg, m.Name, c.signature(m.Type, types.NewVar(token.NoPos, pkg, "", n))))
		}
		pt := reflect.PointerTo(t)
		for i := range pt.NumMethod() {
			if m := pt.Method(i); !value[m.Name] {
				n.AddMethod(types.NewFunc(token.NoPos, pkg, m.Name, c.signature(m.Type, types.NewVar(token.NoPos, pkg, "", types.NewPointer(n)))))
			}
		}
	}
	return n
}

// structure returns the type of t's structure, ignoring its name.
func (c *converter) structure(t reflect.Type) types.Type {
	if k, ok := basicKinds[t.Kind()]; ok {
		return types.Typ[k]
	}
	switch t.Kind() {
	case reflect.Pointer:
		return types.NewPointer(c.typ(t.Elem()))
	case reflect.Slice:
		return types.NewSlice(c.typ(t.Elem()))
	case reflect.Array:
		return types.NewArray(c.typ(t.Elem()), int64(t.Len()))
	case reflect.Map:
		return types.NewMap(c.typ(t.Key()), c.typ(t.Elem()))
	case reflect.Chan:
		dir := map[reflect.ChanDir]types.ChanDir{reflect.BothDir: types.SendRecv, reflect.SendDir: types.SendOnly, reflect.RecvDir: types.RecvOnly}[t.ChanDir()]
		return types.NewChan(dir, c.typ(t.Elem()))
	case reflect.Func:
		return c.signature(t, nil)
	case reflect.Struct:
		fields := make([]*types.Var, t.NumField())
		tags := make([]string, t.NumField())
		for i := range t.NumField() {
			f := t.Field(i)
			var pkg *types.Package
			if f.PkgPath != "" {
				pkg = c.pkg(f.PkgPath, "")
			}
			fields[i] = types.NewField(token.NoPos, pkg, f.Name, c.typ(f.Type), f.Anonymous)
			tags[i] = string(f.Tag)
		}
		return types.NewStruct(fields, tags)
	case reflect.Interface:
		var methods []*types.Func
		for i := range t.NumMethod() {
			m := t.Method(i)
			var pkg *types.Package
			if m.PkgPath != "" {
				pkg = c.pkg(m.PkgPath, "")
			}
			methods = append(methods, types.NewFunc(token.NoPos, pkg, m.Name, c.signature(m.Type, nil)))
		}
		return types.NewInterfaceType(methods, nil).Complete()
	}
	return types.Typ[types.Invalid]
}

// signature returns the signature of the func type t. With recv, t is a
// method's type whose first parameter is the receiver.
func (c *converter) signature(t reflect.Type, recv *types.Var) *types.Signature {
	first := 0
	if recv != nil {
		first = 1
	}
	var params, results []*types.Var
	for i := first; i < t.NumIn(); i++ {
		params = append(params, types.NewParam(token.NoPos, nil, "", c.typ(t.In(i))))
	}
	for i := range t.NumOut() {
		results = append(results, types.NewParam(token.NoPos, nil, "", c.typ(t.Out(i))))
	}
	return types.NewSignatureType(recv, nil, nil, types.NewTuple(params...), types.NewTuple(results...), t.IsVariadic())
}
