package configfile

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// variablePattern finds a ${VAR} in a config file's string, or its
// escaped form $${VAR}.
var variablePattern = regexp.MustCompile(`\$?\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// Resolve replaces each ${VAR} in the strings of d.Config's objects
// (singular, in lists, in map values, in nested messages) by lookup's
// value, and each $${VAR} by the literal ${VAR} (export writes a literal
// ${ that way). Every variable lookup lacks is an error naming the
// field's file:line, the object, the field and the variable.
func (d *Doc) Resolve(lookup func(string) (string, bool)) error {
	return d.ResolveFrom(lookup, "in the environment or --env-file")
}

// ResolveFrom is Resolve, its errors saying where a variable was looked
// for (such as "in the environment or --env-file").
func (d *Doc) ResolveFrom(lookup func(string) (string, bool), where string) error {
	if d.Config == nil {
		return nil
	}
	var errs []error
	for _, k := range kinds {
		l := listOf(d.Config, k.list)
		for i := range l.Len() {
			errs = append(errs, d.resolveObject(k, i, l.Get(i).Message(), lookup, where)...)
		}
	}
	return errors.Join(errs...)
}

// resolveObject resolves object m, at index i of kind k's list, and
// returns an error for each variable lookup lacks, by line.
func (d *Doc) resolveObject(k kind, i int, m protoreflect.Message, lookup func(string) (string, bool), where string) []error {
	type missing struct {
		at  pos
		msg string
	}
	var found []missing
	label := k.label(nameOf(m))
	resolveMessage(m, "", lookup, func(field, variable string) {
		at, _ := d.position(fmt.Sprintf("%s[%d].%s", k.list, i, field))
		found = append(found, missing{at, fmt.Sprintf("%s: %s: variable %s is not set (%s)", label, field, variable, where)})
	})
	slices.SortFunc(found, func(a, b missing) int {
		return cmp.Or(cmp.Compare(a.at.line, b.at.line), cmp.Compare(a.msg, b.msg))
	})
	errs := make([]error, len(found))
	for j, f := range found {
		if at := f.at.String(); at != "" {
			errs[j] = fmt.Errorf("%s: %s", at, f.msg)
		} else {
			errs[j] = errors.New(f.msg)
		}
	}
	return errs
}

// resolveMessage resolves the strings of m in place: singular, in lists,
// in map values and in nested messages. missing is told of each variable
// lookup lacks, with the field's path under prefix.
func resolveMessage(m protoreflect.Message, prefix string, lookup func(string) (string, bool), missing func(field, variable string)) {
	resolve := func(path, s string) string {
		return variablePattern.ReplaceAllStringFunc(s, func(ref string) string {
			if strings.HasPrefix(ref, "$$") {
				return ref[1:]
			}
			name := ref[2 : len(ref)-1]
			v, ok := lookup(name)
			if !ok {
				missing(path, name)
				return ref
			}
			return v
		})
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		path := fieldPath(prefix, string(fd.Name()))
		switch {
		case fd.IsList():
			l := v.List()
			for i := range l.Len() {
				at := indexPath(path, i)
				switch fd.Kind() {
				case protoreflect.StringKind:
					l.Set(i, protoreflect.ValueOfString(resolve(at, l.Get(i).String())))
				case protoreflect.MessageKind:
					resolveMessage(l.Get(i).Message(), at, lookup, missing)
				}
			}
		case fd.IsMap():
			if fd.MapValue().Kind() != protoreflect.StringKind {
				return true
			}
			mp := v.Map()
			mp.Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				mp.Set(k, protoreflect.ValueOfString(resolve(keyPath(path, k.String()), mv.String())))
				return true
			})
		case fd.Kind() == protoreflect.StringKind:
			m.Set(fd, protoreflect.ValueOfString(resolve(path, v.String())))
		case fd.Kind() == protoreflect.MessageKind:
			resolveMessage(v.Message(), path, lookup, missing)
		}
		return true
	})
}
