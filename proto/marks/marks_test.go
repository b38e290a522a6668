package marks

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func names(fds []protoreflect.FieldDescriptor) []string {
	var out []string
	for _, fd := range fds {
		out = append(out, string(fd.Name()))
	}
	return out
}

// TestMarkedFields pins which fields of each kind carry which mark: a new
// field is neither by default, so a secret or output-only field added
// without its mark fails here.
func TestMarkedFields(t *testing.T) {
	common := []string{"created_at", "updated_at", "revision"}
	for _, tt := range []struct {
		msg        proto.Message
		outputOnly []string
		secret     []string
	}{
		{&adminv1.Channel{}, common, nil},
		{&adminv1.OutgoingConnection{}, common, nil},
		{&adminv1.Job{}, append(slices.Clone(common), "next_run_at", "lease", "last_run"), nil},
		{&adminv1.SecurityDefinition{}, common, []string{"password", "key", "secret", "token", "client_secret", "key_pem"}},
	} {
		md := tt.msg.ProtoReflect().Descriptor()
		if got := names(Fields(md, OutputOnly)); !slices.Equal(got, tt.outputOnly) {
			t.Errorf("%s output-only fields %v, want %v", md.Name(), got, tt.outputOnly)
		}
		if got := names(Fields(md, Secret)); !slices.Equal(got, tt.secret) {
			t.Errorf("%s secret fields %v, want %v", md.Name(), got, tt.secret)
		}
	}
}

func TestClearOutputOnly(t *testing.T) {
	ch := &adminv1.Channel{Name: "c", Path: "/c", CreatedAt: timestamppb.Now(), UpdatedAt: timestamppb.Now(), Revision: 7}
	got := ClearOutputOnly(ch)
	if !proto.Equal(got, &adminv1.Channel{Name: "c", Path: "/c"}) {
		t.Fatalf("got %v", got)
	}
}

func TestRedact(t *testing.T) {
	d := Redact(&adminv1.SecurityDefinition{Name: "b", Kind: "basic_auth", Username: "u", Password: "pw", KeyPem: ""})
	want := &adminv1.SecurityDefinition{Name: "b", Kind: "basic_auth", Username: "u", Password: Redacted}
	if !proto.Equal(d, want) {
		t.Fatalf("got %v, want %v (an unset secret stays unset)", d, want)
	}
	if fd := RedactedSecret(d); fd == nil || fd.Name() != "password" {
		t.Fatalf("RedactedSecret = %v, want password", fd)
	}
	if fd := RedactedSecret(&adminv1.SecurityDefinition{Password: "pw"}); fd != nil {
		t.Fatalf("RedactedSecret of a real value = %v, want nil", fd.Name())
	}
}
