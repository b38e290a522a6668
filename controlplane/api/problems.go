package api

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// problem is one thing wrong with a config, at its path in the config,
// such as channels[3].service; the path is empty for a problem of no
// single place (a live object the config leaves as it is).
type problem struct {
	path string
	err  error
}

// problems collects every problem of a config, so that one answer names
// them all.
type problems struct{ l []problem }

// add notes err at path.
func (ps *problems) add(path string, err error) {
	ps.l = append(ps.l, problem{path, err})
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

// status is nil without problems; else INVALID_ARGUMENT with every
// problem in the message, one a line, and as a field violation of a
// google.rpc.BadRequest detail whose field is the path in the request
// (config.channels[3].service), for a client to point at its file.
func (ps *problems) status(what string) error {
	if !ps.any() {
		return nil
	}
	errs := make([]error, len(ps.l))
	br := &errdetails.BadRequest{}
	for i, p := range ps.l {
		errs[i] = p.err
		field := "config"
		if p.path != "" {
			field += "." + p.path
		}
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: field, Description: p.err.Error()})
	}
	st := status.Newf(codes.InvalidArgument, "%s: %v", what, errors.Join(errs...))
	if withDetails, err := st.WithDetails(br); err == nil {
		st = withDetails
	}
	return st.Err()
}

// listFields are the Config's list fields by kind.
var listFields = map[string]protoreflect.Name{
	kindSecurity: "security", kindOutgoing: "outgoing", kindChannel: "channels", kindJob: "jobs", kindPackage: "packages",
}

// itemPath is the path of the object at index i of kind's list.
func itemPath(kind string, i int) string {
	return fmt.Sprintf("%s[%d]", listFields[kind], i)
}

// validateNames are the words validate names some kinds by, in errors
// that name the object already.
var validateNames = map[string]string{kindOutgoing: "outgoing connection", kindJob: "job"}

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
