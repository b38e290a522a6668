package configplan

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// Problem is one thing wrong with a config, at its path in the config,
// such as channels[3].service; the path is empty for a problem of no
// single place (a live object the config leaves as it is).
type Problem struct {
	Path string
	Err  error
}

// Problems is the error of a config that cannot be planned: every
// problem of it, so that one answer names them all.
type Problems []Problem

// Error is every problem's message, one a line.
func (ps Problems) Error() string {
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p.Err
	}
	return errors.Join(errs...).Error()
}

// problems collects the problems of a config.
type problems struct{ l Problems }

// add notes err at path.
func (ps *problems) add(path string, err error) {
	ps.l = append(ps.l, Problem{path, err})
}

// object notes err about the object name at index i of kind's list, at
// the field the error starts with when it names one of the object's.
func (ps *problems) object(kind string, i int, name string, err error) {
	path := itemPath(kind, i)
	if f := leadingField(kind, name, err); f != "" {
		path += "." + f
	}
	ps.add(path, objectError(kind, name, err))
}

// any reports whether a problem was noted.
func (ps *problems) any() bool { return len(ps.l) > 0 }

// err is nil without problems, else the Problems.
func (ps *problems) err() error {
	if !ps.any() {
		return nil
	}
	return ps.l
}

// listFields are the Config's list fields by kind.
var listFields = map[string]protoreflect.Name{
	KindSecurity: "security", KindOutgoing: "outgoing", KindChannel: "channels", KindJob: "jobs", KindPackage: "packages",
}

// itemPath is the path of the object at index i of kind's list.
func itemPath(kind string, i int) string {
	return fmt.Sprintf("%s[%d]", listFields[kind], i)
}

// validateNames are the words validate names some kinds by, in errors
// that name the object already.
var validateNames = map[string]string{KindOutgoing: "outgoing connection", KindJob: "job"}

// objectError names the object an error is about, unless validate named
// it already.
func objectError(kind, name string, err error) error {
	if long, ok := validateNames[kind]; ok && strings.HasPrefix(err.Error(), fmt.Sprintf("%s %q: ", long, name)) {
		return err
	}
	return fmt.Errorf("%s %q: %w", kind, name, err)
}

// leadingWord is a field name, maybe with an index, at the start of an
// error such as "cron: end of range" or "service is required".
var leadingWord = regexp.MustCompile(`^([a-z][a-z0-9_]*)(\[[^\]]*\])?[: ]`)

// leadingField is the field of kind's message err starts with (after the
// object's name, when validate put it first), or "".
func leadingField(kind, name string, err error) string {
	msg := err.Error()
	if long, ok := validateNames[kind]; ok {
		msg = strings.TrimPrefix(msg, fmt.Sprintf("%s %q: ", long, name))
	}
	m := leadingWord.FindStringSubmatch(msg)
	if m == nil {
		return ""
	}
	cfg := (&adminv1.Config{}).ProtoReflect().Descriptor()
	obj := cfg.Fields().ByName(listFields[kind]).Message()
	if obj.Fields().ByName(protoreflect.Name(m[1])) == nil {
		return ""
	}
	return m[1] + m[2]
}
