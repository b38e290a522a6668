// Package marks applies the marks on the fields of the admin API's objects
// (weft.options.v1: output_only, secret and agent_omit) to any message, so that each
// mark is handled by one rule for every kind of object, not by lists of
// field names kept beside the proto.
package marks

import (
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	optionsv1 "github.com/weft-dev/weft/proto/weft/options/v1"
)

// Redacted is what reads show for a secret that is set.
const Redacted = "••••••••"

// OutputOnly says whether fd is set by the control plane alone.
func OutputOnly(fd protoreflect.FieldDescriptor) bool {
	return proto.GetExtension(fd.Options(), optionsv1.E_OutputOnly).(bool)
}

// Secret says whether fd holds a credential.
func Secret(fd protoreflect.FieldDescriptor) bool {
	return proto.GetExtension(fd.Options(), optionsv1.E_Secret).(bool)
}

// AgentOmit says whether fd is kept for people and never sent to agents.
func AgentOmit(fd protoreflect.FieldDescriptor) bool {
	return proto.GetExtension(fd.Options(), optionsv1.E_AgentOmit).(bool)
}

// Fields are the fields of md that mark says are marked, in field order.
func Fields(md protoreflect.MessageDescriptor, mark func(protoreflect.FieldDescriptor) bool) []protoreflect.FieldDescriptor {
	var out []protoreflect.FieldDescriptor
	fields := md.Fields()
	for i := range fields.Len() {
		if fd := fields.Get(i); mark(fd) {
			out = append(out, fd)
		}
	}
	return out
}

// ClearOutputOnly clears m's output-only fields and returns m.
func ClearOutputOnly[M proto.Message](m M) M {
	r := m.ProtoReflect()
	for _, fd := range Fields(r.Descriptor(), OutputOnly) {
		r.Clear(fd)
	}
	return m
}

// Redact replaces each secret of m that is set with Redacted, and returns
// m.
func Redact[M proto.Message](m M) M {
	return ReplaceSecrets(m, func(protoreflect.FieldDescriptor, string) string { return Redacted })
}

// ReplaceSecrets sets each secret of m that is set to with(its field, its
// value), and returns m.
func ReplaceSecrets[M proto.Message](m M, with func(fd protoreflect.FieldDescriptor, value string) string) M {
	r := m.ProtoReflect()
	for _, fd := range Fields(r.Descriptor(), Secret) {
		if r.Has(fd) {
			r.Set(fd, protoreflect.ValueOfString(with(fd, r.Get(fd).String())))
		}
	}
	return m
}

// RedactedSecret is the first secret field of m whose value is Redacted
// (a read sent back as a write), or nil.
func RedactedSecret(m proto.Message) protoreflect.FieldDescriptor {
	r := m.ProtoReflect()
	for _, fd := range Fields(r.Descriptor(), Secret) {
		if r.Get(fd).String() == Redacted {
			return fd
		}
	}
	return nil
}
