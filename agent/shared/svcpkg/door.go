package svcpkg

import (
	"fmt"
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"go/types"
	"regexp"
	"slices"
	"strings"

	"github.com/weft-dev/weft/agent/shared/symbols"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// Checked is what Check learns of a package without running any of it.
type Checked struct {
	// Services are the names the package registers, sorted, when its
	// source alone tells them; nil when Eval is set.
	Services []string
	// Eval says why only running the package's initialisation tells what
	// it registers, and whether that succeeds; "" when Services is the
	// answer.
	Eval string
}

// maxStaticData bounds what the package variables of a package Check
// answers for may take (their values, and the composite literals of their
// initialisers): beyond it, initialising them is an allocation worth
// measuring, which evaluation does under a memory limit.
const maxStaticData = 1 << 20

// Check judges src as the control plane's door does, without running any
// of it: the checks Load makes before the interpreter sees the code
// (syntax, imports, constructs the interpreter gets wrong), then a full
// type check against the symbols the interpreter offers, whose errors
// refuse the package.
//
// When the package's initialisation does nothing but register services —
// init functions made only of sdk.Register calls with constant names,
// handlers of the right shape that are functions of the package, and
// sdk.Timeout or sdk.SlowAfter options of constant durations; package
// variables whose initialisers call nothing and are small — Services holds
// their names and nothing needs running. Otherwise Eval says what does,
// and the caller learns the services by loading the package (Validate)
// where running it is safe: never in the control plane.
func Check(src *adminv1.PackageSource) (Checked, error) {
	// The type checker computes constants: bound them before it runs.
	// (What does not parse, or is not to load, check reports or skips.)
	fset := token.NewFileSet()
	byName := map[string]*ast.File{}
	var all []*ast.File
	for _, f := range src.GetFiles() {
		if !strings.HasSuffix(f.Name, ".go") || strings.HasSuffix(f.Name, "_test.go") || byName[f.Name] != nil {
			continue
		}
		if af, err := parser.ParseFile(fset, f.Name, f.Content, parser.SkipObjectResolution); err == nil {
			byName[f.Name] = af
			all = append(all, af)
		}
	}
	if probs := bigStrings(fset, all); len(probs) > 0 {
		return Checked{}, &LoadError{Problems: probs}
	}
	files, _, err := check(src)
	if err != nil {
		return Checked{}, err
	}
	parsed := make([]*ast.File, 0, len(files))
	for _, f := range files {
		af := byName[f.Name]
		if af == nil {
			return Checked{Eval: "the door lost one of its files"}, nil
		}
		parsed = append(parsed, af)
	}
	info, pkg, probs, ok := typeCheck(fset, parsed)
	if !ok {
		// A flaw of ours must not refuse a deploy: evaluating the package
		// judges it.
		return Checked{Eval: "the type check failed on it"}, nil
	}
	if len(probs) > 0 {
		return Checked{}, &LoadError{Problems: probs}
	}
	return staticInit(fset, parsed, info, pkg)
}

// typeCheck type-checks files against the symbols the interpreter offers
// and returns the problems Go would report (soft ones aside, which the
// interpreter runs). ok is false if the checker itself failed.
func typeCheck(fset *token.FileSet, files []*ast.File) (info *types.Info, pkg *types.Package, probs []Problem, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	info = &types.Info{
		Types: make(map[ast.Expr]types.TypeAndValue),
		Defs:  make(map[*ast.Ident]types.Object),
		Uses:  make(map[*ast.Ident]types.Object),
	}
	u := theUniverse()
	var errs []types.Error
	conf := types.Config{Importer: u, Error: func(err error) {
		if te, ok := err.(types.Error); ok && !te.Soft {
			errs = append(errs, te)
		}
	}}
	pkg, _ = conf.Check(files[0].Name.Name, fset, files, info)
	probs = typeProblems(files, info, u, errs)
	return info, pkg, probs, true
}

// statics judges a package's initialisation.
type statics struct {
	fset *token.FileSet
	info *types.Info
	pkg  *types.Package
	// The SDK's objects the registrations may use.
	register, timeout, slowAfter types.Object
	ctxPtr                       types.Type // *sdk.Context
	data                         int64      // the bytes counted against maxStaticData
	sizes                        types.Sizes
}

// staticInit returns the services the package registers when its
// initialisation only registers them (see Check), or why it must run.
func staticInit(fset *token.FileSet, files []*ast.File, info *types.Info, pkg *types.Package) (Checked, error) {
	sdkPkg := theUniverse().pkgs[symbols.SDKPath]
	if sdkPkg == nil {
		return Checked{Eval: "the SDK's symbols are missing"}, nil
	}
	scope := sdkPkg.Scope()
	s := &statics{
		fset: fset, info: info, pkg: pkg,
		register: scope.Lookup("Register"), timeout: scope.Lookup("Timeout"), slowAfter: scope.Lookup("SlowAfter"),
		sizes: types.SizesFor("gc", "amd64"),
	}
	if ctx := scope.Lookup("Context"); ctx != nil {
		s.ctxPtr = types.NewPointer(ctx.Type())
	}
	if s.register == nil || s.timeout == nil || s.slowAfter == nil || s.ctxPtr == nil {
		return Checked{Eval: "the SDK's symbols are missing"}, nil
	}

	uses := 0 // the identifiers that name sdk.Register
	for _, obj := range info.Uses {
		if obj == s.register {
			uses++
		}
	}
	if uses == 0 {
		// Nothing else can register a service.
		return Checked{}, &LoadError{Problems: []Problem{{Message: "package registers no services: call sdk.Register from an init function"}}}
	}
	var names []string
	for _, f := range files {
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv != nil || d.Name.Name != "init" || d.Body == nil {
					continue
				}
				for _, st := range d.Body.List {
					name, why := s.registration(st)
					if why != "" {
						return Checked{Eval: s.at(st.Pos(), why)}, nil
					}
					names = append(names, name)
				}
			case *ast.GenDecl:
				if d.Tok != token.VAR {
					continue
				}
				for _, spec := range d.Specs {
					if why := s.variables(spec.(*ast.ValueSpec)); why != "" {
						return Checked{Eval: s.at(spec.Pos(), why)}, nil
					}
				}
			}
		}
	}
	if len(names) != uses {
		return Checked{Eval: "sdk.Register is used outside the statements of an init function"}, nil
	}
	slices.Sort(names)
	if len(slices.Compact(slices.Clone(names))) != len(names) {
		// The interpreter's registrar says which, and where.
		return Checked{Eval: "a service name is registered twice"}, nil
	}
	return Checked{Services: names}, nil
}

func (s *statics) at(pos token.Pos, why string) string {
	p := s.fset.Position(pos)
	return fmt.Sprintf("%s:%d: %s", p.Filename, p.Line, why)
}

// registration returns the service name an init function's statement
// registers, or why it is not a registration known without running it.
func (s *statics) registration(st ast.Stmt) (name, why string) {
	es, ok := st.(*ast.ExprStmt)
	if !ok {
		return "", "an init function runs more than sdk.Register calls"
	}
	call, ok := ast.Unparen(es.X).(*ast.CallExpr)
	if !ok || s.callee(call) != s.register {
		return "", "an init function runs more than sdk.Register calls"
	}
	if call.Ellipsis.IsValid() || len(call.Args) < 2 {
		return "", "sdk.Register's arguments are not all written out"
	}
	v := s.info.Types[call.Args[0]].Value
	if v == nil || v.Kind() != constant.String || constant.StringVal(v) == "" {
		return "", "a service's name is not a constant"
	}
	if !s.handler(call.Args[1]) {
		return "", "a handler is not a function of the package of a handler's shape"
	}
	for _, opt := range call.Args[2:] {
		oc, ok := ast.Unparen(opt).(*ast.CallExpr)
		if !ok || len(oc.Args) != 1 || (s.callee(oc) != s.timeout && s.callee(oc) != s.slowAfter) {
			return "", "an option is not sdk.Timeout or sdk.SlowAfter"
		}
		if d := s.info.Types[oc.Args[0]].Value; d == nil || constant.Sign(d) < 0 {
			return "", "an option's duration is not a constant of zero or more"
		}
	}
	return constant.StringVal(v), ""
}

// callee returns the object a call calls by name, or nil.
func (s *statics) callee(call *ast.CallExpr) types.Object {
	switch fun := ast.Unparen(call.Fun).(type) {
	case *ast.Ident:
		return s.info.Uses[fun]
	case *ast.SelectorExpr:
		return s.info.Uses[fun.Sel]
	}
	return nil
}

// handler reports whether e is a function literal or a function of the
// package with the shape handlersig.Check accepts:
// func(*sdk.Context, In) (Out, error), In and Out structs, pointers to
// structs or maps with string keys.
func (s *statics) handler(e ast.Expr) bool {
	switch e := ast.Unparen(e).(type) {
	case *ast.FuncLit:
	case *ast.Ident:
		fn, ok := s.info.Uses[e].(*types.Func)
		if !ok || fn.Pkg() != s.pkg || fn.Type().(*types.Signature).TypeParams().Len() > 0 {
			return false
		}
	default:
		return false
	}
	sig, ok := s.info.TypeOf(e).(*types.Signature)
	if !ok || sig.Variadic() || sig.Params().Len() != 2 || sig.Results().Len() != 2 {
		return false
	}
	return types.Identical(sig.Params().At(0).Type(), s.ctxPtr) &&
		types.Identical(sig.Results().At(1).Type(), types.Universe.Lookup("error").Type()) &&
		dataType(sig.Params().At(1).Type()) && dataType(sig.Results().At(0).Type())
}

// dataType mirrors handlersig.DataType, the rule for input and output types.
func dataType(t types.Type) bool {
	if p, ok := t.Underlying().(*types.Pointer); ok {
		t = p.Elem()
	}
	switch u := t.Underlying().(type) {
	case *types.Struct:
		return true
	case *types.Map:
		b, ok := u.Key().Underlying().(*types.Basic)
		return ok && b.Info()&types.IsString != 0
	}
	return false
}

// variables says why initialising spec's variables needs running, or "".
func (s *statics) variables(spec *ast.ValueSpec) string {
	for _, n := range spec.Names {
		if obj := s.info.Defs[n]; obj != nil && !s.count(obj.Type(), 1) {
			return "package variable " + n.Name + " is large"
		}
	}
	for _, v := range spec.Values {
		if why := s.inert(v); why != "" {
			return "package variable " + spec.Names[0].Name + "'s initialiser " + why
		}
	}
	return ""
}

// count adds n values of type t to the data counted, and reports whether
// it stays within maxStaticData.
func (s *statics) count(t types.Type, n int64) bool {
	size := s.sizes.Sizeof(t)
	if size < 0 || n < 0 || size > maxStaticData || n > maxStaticData {
		return false
	}
	s.data += size * n
	return s.data <= maxStaticData
}

// inert says why evaluating e may run code, fail or allocate much, or ""
// when it cannot: constants, function literals (declared, not called),
// names, qualified names, composite literals of such, and the calls
// pureCall knows.
func (s *statics) inert(e ast.Expr) string {
	if tv, ok := s.info.Types[e]; ok && tv.Value != nil {
		return ""
	}
	switch e := e.(type) {
	case *ast.ParenExpr:
		return s.inert(e.X)
	case *ast.FuncLit, *ast.Ident:
		return ""
	case *ast.SelectorExpr:
		if id, ok := e.X.(*ast.Ident); ok {
			if _, ok := s.info.Uses[id].(*types.PkgName); ok {
				return ""
			}
		}
		return "selects a field or method"
	case *ast.UnaryExpr:
		if _, ok := ast.Unparen(e.X).(*ast.CompositeLit); ok && e.Op == token.AND {
			return s.inert(e.X)
		}
		return "computes a value"
	case *ast.CompositeLit:
		return s.composite(e)
	case *ast.CallExpr:
		return s.pureCall(e)
	}
	return "computes a value"
}

// pureCall says why calling e at initialisation may fail or run code, or
// "" for the calls package variables are most often initialised with and
// whose outcome the door can know: errors.New and regexp.MustCompile of a
// constant (which the door compiles: the regexp package bounds the work).
func (s *statics) pureCall(call *ast.CallExpr) string {
	if len(call.Args) != 1 || call.Ellipsis.IsValid() {
		return "calls a function"
	}
	arg := s.info.Types[call.Args[0]].Value
	if arg == nil || arg.Kind() != constant.String {
		return "calls a function"
	}
	u := theUniverse()
	lookup := func(pkg, name string) types.Object {
		if p := u.pkgs[pkg]; p != nil {
			return p.Scope().Lookup(name)
		}
		return nil
	}
	var err error
	switch fn := s.callee(call); {
	case fn == nil:
		return "calls a function"
	case fn == lookup("errors", "New"):
	case fn == lookup("regexp", "MustCompile"):
		_, err = regexp.Compile(constant.StringVal(arg))
	case fn == lookup("regexp", "MustCompilePOSIX"):
		_, err = regexp.CompilePOSIX(constant.StringVal(arg))
	default:
		return "calls a function"
	}
	if err != nil {
		return "compiles a regular expression that does not compile"
	}
	return ""
}

func (s *statics) composite(lit *ast.CompositeLit) string {
	t := s.info.TypeOf(lit)
	if t == nil {
		return "has a literal of unknown type"
	}
	if p, ok := t.Underlying().(*types.Pointer); ok {
		t = p.Elem()
	}
	switch u := t.Underlying().(type) {
	case *types.Slice:
		if !s.count(u.Elem(), int64(len(lit.Elts))) {
			return "is large"
		}
	case *types.Map:
		if !s.count(u.Key(), int64(len(lit.Elts))) || !s.count(u.Elem(), int64(len(lit.Elts))) {
			return "is large"
		}
	default:
		if !s.count(t, 1) {
			return "is large"
		}
	}
	_, indexed := t.Underlying().(*types.Slice)
	if _, ok := t.Underlying().(*types.Array); ok {
		indexed = true
	}
	for _, el := range lit.Elts {
		if kv, ok := el.(*ast.KeyValueExpr); ok {
			if indexed {
				// An index sets the length: [...]byte{1 << 30: 0}.
				return "sets elements by index"
			}
			if _, field := t.Underlying().(*types.Struct); !field {
				if why := s.inert(kv.Key); why != "" {
					return why
				}
			}
			el = kv.Value
		}
		if why := s.inert(el); why != "" {
			return why
		}
	}
	return ""
}

// maxConstString bounds a string constant. Go's constants have no size
// limit, and the type checker builds them: doubling one forty times asks
// it for a terabyte, in the process that checks the package.
const maxConstString = 1 << 20

// bigStrings finds the string constants (named, or an expression of
// them) that may exceed maxConstString. It runs before the type checker,
// so it cannot know what a name stands for: it takes the largest constant
// declared under that name anywhere in the package, which overestimates
// at worst.
func bigStrings(fset *token.FileSet, files []*ast.File) []Problem {
	decls := map[string][]ast.Expr{} // the constants' expressions, by name
	var names []*ast.Ident           // in source order
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			gd, ok := n.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				return true
			}
			var last []ast.Expr // a spec without values repeats the previous ones
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				if len(vs.Values) > 0 {
					last = vs.Values
				}
				for i, name := range vs.Names {
					if i < len(last) {
						decls[name.Name] = append(decls[name.Name], last[i])
						names = append(names, name)
					}
				}
			}
			return true
		})
	}
	const (
		inProgress = 1
		done       = 2
	)
	var (
		named = map[string]int64{}
		state = map[string]int{}
		sums  = map[ast.Expr]int64{}
	)
	var size func(e ast.Expr) int64
	size = func(e ast.Expr) int64 {
		switch e := e.(type) {
		case *ast.BasicLit:
			if e.Kind == token.STRING {
				return int64(len(e.Value))
			}
		case *ast.Ident:
			switch state[e.Name] {
			case inProgress:
				return 0 // a cycle, which the type checker reports
			case done:
				return named[e.Name]
			}
			state[e.Name] = inProgress
			var n int64
			for _, x := range decls[e.Name] {
				n = max(n, size(x))
			}
			named[e.Name], state[e.Name] = n, done
			return n
		case *ast.ParenExpr:
			return size(e.X)
		case *ast.BinaryExpr:
			if e.Op != token.ADD {
				return 0
			}
			n, ok := sums[e]
			if !ok {
				n = min(size(e.X)+size(e.Y), 1<<40)
				sums[e] = n
			}
			return n
		case *ast.CallExpr:
			// A conversion, such as string(c).
			if len(e.Args) == 1 {
				return size(e.Args[0])
			}
		}
		return 0
	}
	for _, name := range names {
		if size(name) > maxConstString {
			// The first says it; those built on it would repeat it.
			return []Problem{problemAt(fset.Position(name.Pos()), fmt.Sprintf(
				"constant %s may be longer than %d bytes, the limit of a string constant", name.Name, maxConstString))}
		}
	}
	var probs []Problem
	// An expression of constants under the limit may exceed it.
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			if b, ok := n.(*ast.BinaryExpr); ok && size(b) > maxConstString {
				probs = append(probs, problemAt(fset.Position(b.Pos()), fmt.Sprintf(
					"this sum may be longer than %d bytes, the limit of a string constant", maxConstString)))
				return false
			}
			return true
		})
	}
	return probs
}
