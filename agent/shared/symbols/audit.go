package symbols

import (
	_ "embed"
	"fmt"
	"go/token"
	"strings"
	"sync"
)

// auditText is the audit of every symbol in the tables: see audit.txt for
// its form. TestAudit keeps it and the tables in step.
//
//go:embed audit.txt
var auditText string

// Audit is the parsed audit.txt: for every package of the tables, and every
// package services reach only through those packages' types, a verdict on
// each of its exported symbols and methods.
type Audit struct {
	Packages map[string]*AuditPackage // by import path
}

// AuditPackage is one package's part of the audit.
type AuditPackage struct {
	Path string
	// Reachable is true for a package services cannot import but whose
	// types they get from an allowed one (text/template/parse through
	// Template.Tree).
	Reachable bool
	Reason    string // why the package is allowed
	Line      int    // of its header in audit.txt
	Entries   map[string]*AuditEntry
}

// AuditEntry is the verdict on one symbol: "ParseFiles", or
// "Template.ParseFiles" for a method of Template or *Template.
type AuditEntry struct {
	Name    string
	Refused bool
	// Reason says why a refused symbol is refused, worded to follow
	// "<symbol> is not allowed: ". An allowed symbol has one only when its
	// package's reason does not cover it.
	Reason string
	Line   int
}

// TheAudit returns the parsed audit.txt. It panics if the file does not
// parse, which TestAudit rules out.
var TheAudit = sync.OnceValue(func() *Audit {
	a, err := ParseAudit(auditText)
	if err != nil {
		panic(err)
	}
	return a
})

// Refusal returns why the audit refuses name of the package at path, and
// whether it does. name is "Func", "Var", "Type", or "Type.Method".
func Refusal(path, name string) (reason string, refused bool) {
	p := TheAudit().Packages[path]
	if p == nil {
		return "", false
	}
	e := p.Entries[name]
	if e == nil || !e.Refused {
		return "", false
	}
	return e.Reason, true
}

// ParseAudit parses text in the form of audit.txt:
//
//	package <import path>: <why the package is allowed>
//		<Name>
//		<Name> allowed: <why>
//		<Name> refused: <why>
//		<Type>.<Method> ...
//	reachable <import path>: <why its types are safe to hold>
//
// Entries are indented with a tab; '#' starts a comment line.
func ParseAudit(text string) (*Audit, error) {
	a := &Audit{Packages: map[string]*AuditPackage{}}
	var cur *AuditPackage
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		fail := func(format string, args ...any) error {
			return fmt.Errorf("audit.txt:%d: %s", n, fmt.Sprintf(format, args...))
		}
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if !strings.HasPrefix(line, "\t") {
			kind, rest, _ := strings.Cut(line, " ")
			path, reason, ok := strings.Cut(rest, ": ")
			if (kind != "package" && kind != "reachable") || !ok || path == "" || strings.TrimSpace(reason) == "" {
				return nil, fail("want \"package <import path>: <why it is allowed>\" or \"reachable <import path>: <why>\", got %q", line)
			}
			if a.Packages[path] != nil {
				return nil, fail("package %s is already audited at line %d", path, a.Packages[path].Line)
			}
			cur = &AuditPackage{Path: path, Reachable: kind == "reachable", Reason: strings.TrimSpace(reason), Line: n, Entries: map[string]*AuditEntry{}}
			a.Packages[path] = cur
			continue
		}
		if cur == nil {
			return nil, fail("an entry before the first package line")
		}
		name, verdict, _ := strings.Cut(trimmed, " ")
		if !validName(name) {
			return nil, fail("%q is not a symbol (Name) or a method (Type.Method)", name)
		}
		e := &AuditEntry{Name: name, Line: n}
		if verdict = strings.TrimSpace(verdict); verdict != "" {
			v, reason, ok := strings.Cut(verdict, ": ")
			if !ok || (v != "allowed" && v != "refused") || strings.TrimSpace(reason) == "" {
				return nil, fail("after %s, want nothing, \"allowed: <why>\" or \"refused: <why>\", got %q", name, verdict)
			}
			e.Refused, e.Reason = v == "refused", strings.TrimSpace(reason)
		}
		if old := cur.Entries[name]; old != nil {
			return nil, fail("%s.%s is already classified at line %d", cur.Path, name, old.Line)
		}
		cur.Entries[name] = e
	}
	return a, nil
}

func validName(name string) bool {
	typ, method, isMethod := strings.Cut(name, ".")
	if !token.IsIdentifier(typ) || !token.IsExported(typ) {
		return false
	}
	return !isMethod || token.IsIdentifier(method) && token.IsExported(method)
}
