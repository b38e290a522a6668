package configfile

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// The escape rule of a config file's strings, read left to right:
//
//   - "$${" is a literal "${", whatever follows it;
//   - "${NAME}", NAME a letter or _ then letters, digits and _, is the
//     variable NAME;
//   - any other "${" (${5}, ${}, ${ x }, ${a-b}, a "${" without its "}")
//     is an error: a hand-written file says what it means, and nothing is
//     guessed;
//   - every other byte, "$" and "$$" included, is itself.
//
// Escape writes each "${" of a value as "$${", so that reading gives back
// any value exactly: the rule and Escape are each other's inverse, which
// FuzzEscape checks.

// Escape is s as a config file writes it: each "${" as "$${", so that
// reading the file gives s back whatever s holds.
func Escape(s string) string { return strings.ReplaceAll(s, "${", "$${") }

// EscapeStrings writes every string of m as a config file holds it (see
// Escape): the strings Resolve reads, singular, in lists, in map values
// and in nested messages. Map keys and bytes are written as they are, as
// Resolve reads them as they are.
func EscapeStrings(m protoreflect.Message) {
	eachString(m, "", func(_, s string) string { return Escape(s) })
}

// HasVariable reports whether s holds a ${NAME} that reading a config
// file would resolve, leaving aside the escaped "$${".
func HasVariable(s string) bool {
	found := false
	expand(s, func(string) (string, bool) { found = true; return "", true }, func(string) {}, func(string) {})
	return found
}

// maxShownRef bounds the text of a bad reference an error quotes.
const maxShownRef = 40

// expand reads s by the escape rule: "$${" becomes "${", and each
// ${NAME} lookup's value (the value as it is, never read again). unset is
// told of each variable lookup lacks, and bad of each "${" that is not a
// variable, with why; each is left as written.
func expand(s string, lookup func(string) (string, bool), unset, bad func(string)) string {
	if !strings.Contains(s, "${") {
		return s
	}
	var b strings.Builder
	for {
		j := strings.Index(s, "${")
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		// Nothing before j is part of a reference, so a "$" just before
		// it starts "$${": a literal "${".
		if j > 0 && s[j-1] == '$' {
			b.WriteString(s[:j-1])
			b.WriteString("${")
			s = s[j+2:]
			continue
		}
		b.WriteString(s[:j])
		s = s[j:]
		end := strings.IndexByte(s, '}')
		if end < 0 {
			bad(fmt.Sprintf("%s has no closing }; write $${ for a literal ${", quoteRef(s)))
			b.WriteString(s)
			return b.String()
		}
		ref, name := s[:end+1], s[2:end]
		s = s[end+1:]
		if !isVarName(name) {
			bad(fmt.Sprintf("%s is not a variable (a letter or _, then letters, digits and _); write $${ for a literal ${", quoteRef(ref)))
			b.WriteString(ref)
			continue
		}
		v, ok := lookup(name)
		if !ok {
			unset(name)
			b.WriteString(ref)
			continue
		}
		b.WriteString(v)
	}
}

// quoteRef quotes the text of a reference for an error, cut to
// maxShownRef characters.
func quoteRef(ref string) string {
	if r := []rune(ref); len(r) > maxShownRef {
		ref = string(r[:maxShownRef-1]) + "…"
	}
	return fmt.Sprintf("%q", ref)
}

// isVarName reports whether name is a variable's name: a letter or _,
// then letters, digits and _.
func isVarName(name string) bool {
	if name == "" {
		return false
	}
	for i, c := range []byte(name) {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// eachString replaces each string of m by f's answer: singular, in lists,
// in map values and in nested messages; f is given the field's path under
// prefix (files[0].name, headers["X-Tenant"]). Map keys and bytes are
// left alone.
func eachString(m protoreflect.Message, prefix string, f func(path, s string) string) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		path := fieldPath(prefix, string(fd.Name()))
		switch {
		case fd.IsList():
			l := v.List()
			for i := range l.Len() {
				at := indexPath(path, i)
				switch fd.Kind() {
				case protoreflect.StringKind:
					l.Set(i, protoreflect.ValueOfString(f(at, l.Get(i).String())))
				case protoreflect.MessageKind, protoreflect.GroupKind:
					eachString(l.Get(i).Message(), at, f)
				}
			}
		case fd.IsMap():
			mp := v.Map()
			switch fd.MapValue().Kind() {
			case protoreflect.StringKind:
				mp.Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
					mp.Set(k, protoreflect.ValueOfString(f(keyPath(path, k.String()), mv.String())))
					return true
				})
			case protoreflect.MessageKind, protoreflect.GroupKind:
				mp.Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
					eachString(mv.Message(), keyPath(path, k.String()), f)
					return true
				})
			}
		case fd.Kind() == protoreflect.StringKind:
			m.Set(fd, protoreflect.ValueOfString(f(path, v.String())))
		case fd.Kind() == protoreflect.MessageKind, fd.Kind() == protoreflect.GroupKind:
			eachString(v.Message(), path, f)
		}
		return true
	})
}
