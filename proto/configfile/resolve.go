package configfile

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// Resolve reads the strings of d.Config's objects (singular, in lists, in
// map values, in nested messages) by the escape rule (see Escape): each
// ${NAME} becomes lookup's value and each $${ a literal ${. Every variable
// lookup lacks, and every ${ that is not a variable (${5}, ${ x }, an
// unclosed ${), is an error naming the field's file:line, the object, the
// field and the text.
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
// returns an error for each variable lookup lacks and each reference that
// is not a variable, by line.
func (d *Doc) resolveObject(k kind, i int, m protoreflect.Message, lookup func(string) (string, bool), where string) []error {
	type located struct {
		at  pos
		msg string
	}
	var found []located
	label := k.label(nameOf(m))
	eachString(m, "", func(field, s string) string {
		add := func(msg string) {
			at, _ := d.position(fmt.Sprintf("%s[%d].%s", k.list, i, field))
			found = append(found, located{at, fmt.Sprintf("%s: %s: %s", label, field, msg)})
		}
		unset := func(name string) { add(fmt.Sprintf("variable %s is not set (%s)", name, where)) }
		return expand(s, lookup, unset, add)
	})
	slices.SortFunc(found, func(a, b located) int {
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
