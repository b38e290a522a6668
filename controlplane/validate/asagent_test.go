package validate

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weft-dev/weft/proto/marks"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// filled is m with every field that is not output-only set to a value
// other than its default.
func filled[M proto.Message](m M) M {
	r := m.ProtoReflect()
	fields := r.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if marks.OutputOnly(fd) {
			continue
		}
		switch {
		case fd.IsMap():
			r.Mutable(fd).Map().Set(protoreflect.ValueOfString("k").MapKey(), protoreflect.ValueOfString("v"))
		case fd.IsList():
			r.Mutable(fd).List().Append(protoreflect.ValueOfString("v-" + string(fd.Name())))
		case fd.Kind() == protoreflect.StringKind:
			r.Set(fd, protoreflect.ValueOfString("v-"+string(fd.Name())))
		case fd.Kind() == protoreflect.BoolKind:
			r.Set(fd, protoreflect.ValueOfBool(true))
		case fd.Kind() == protoreflect.Int32Kind:
			r.Set(fd, protoreflect.ValueOfInt32(7))
		case fd.Kind() == protoreflect.Int64Kind:
			r.Set(fd, protoreflect.ValueOfInt64(7))
		case fd.Kind() == protoreflect.DoubleKind:
			r.Set(fd, protoreflect.ValueOfFloat64(2.5))
		case fd.Message() != nil && fd.Message().FullName() == "google.protobuf.Timestamp":
			r.Set(fd, protoreflect.ValueOfMessage(timestamppb.Now().ProtoReflect()))
		case fd.Message() != nil && fd.Message().FullName() == "weft.admin.v1.JobInterval":
			r.Set(fd, protoreflect.ValueOfMessage((&adminv1.JobInterval{Hours: 1}).ProtoReflect()))
		}
	}
	return m
}

// TestForAgentSetsEveryAgentField fills every field of each kind's API
// message and requires every field of the agent's message to be set: a
// field added to agent.proto that the API's message does not have under
// the same name and type fails here, rather than reaching agents empty.
func TestForAgentSetsEveryAgentField(t *testing.T) {
	for _, tt := range []struct {
		name string
		out  proto.Message
	}{
		{"channel", ChannelForAgent(filled(&adminv1.Channel{}))},
		{"outgoing connection", OutgoingForAgent(filled(&adminv1.OutgoingConnection{}))},
		{"security definition", SecurityForAgent(filled(&adminv1.SecurityDefinition{}))},
		{"job", JobAsAgent(filled(&adminv1.Job{}))},
	} {
		m := tt.out.ProtoReflect()
		fields := m.Descriptor().Fields()
		for i := range fields.Len() {
			if fd := fields.Get(i); !m.Has(fd) {
				t.Errorf("%s: the agent's %s is not set from the API's message", tt.name, fd.Name())
			}
		}
	}
}
