package validate

import (
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// asAgent sets in dst, a message of the agent stream, every field that src,
// the API's message of the same kind, has set under the same name and of
// the same type, and returns dst. The agent's message is the API's without
// what agents have no use for (output-only fields, descriptions), spelled
// for them where a type differs (a job's times and payload, which the
// caller sets), so that a field agents need is one line in agent.proto
// rather than one more line of mapping here.
func asAgent[M proto.Message](src proto.Message, dst M) M {
	s, d := src.ProtoReflect(), dst.ProtoReflect()
	sfields := s.Descriptor().Fields()
	dfields := d.Descriptor().Fields()
	for i := range dfields.Len() {
		dfd := dfields.Get(i)
		sfd := sfields.ByName(dfd.Name())
		if sfd == nil || !sameType(sfd, dfd) || !s.Has(sfd) {
			continue
		}
		d.Set(dfd, s.Get(sfd))
	}
	return dst
}

// sameType says whether a value of field a can be set in field b.
func sameType(a, b protoreflect.FieldDescriptor) bool {
	switch {
	case a.IsMap() || b.IsMap():
		return a.IsMap() && b.IsMap() && sameType(a.MapKey(), b.MapKey()) && sameType(a.MapValue(), b.MapValue())
	case a.Kind() != b.Kind() || a.IsList() != b.IsList():
		return false
	case a.Message() != nil:
		return a.Message().FullName() == b.Message().FullName()
	}
	return true
}
