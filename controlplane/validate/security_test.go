package validate

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/weft-dev/weft/proto/marks"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// TestSecurityForAgentCarriesEveryField sets every field of a definition
// and finds each in what agents get, and in what they build from it.
func TestSecurityForAgentCarriesEveryField(t *testing.T) {
	d := &adminv1.SecurityDefinition{}
	r := d.ProtoReflect()
	fields := r.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		switch {
		case marks.OutputOnly(fd):
		case fd.IsList():
			r.Mutable(fd).List().Append(protoreflect.ValueOfString("v-" + string(fd.Name())))
		case fd.Kind() == protoreflect.StringKind:
			r.Set(fd, protoreflect.ValueOfString("v-"+string(fd.Name())))
		case fd.Kind() == protoreflect.Int32Kind:
			r.Set(fd, protoreflect.ValueOfInt32(7))
		case fd.Kind() == protoreflect.Int64Kind:
			r.Set(fd, protoreflect.ValueOfInt64(7))
		}
	}
	p := SecurityForAgent(d)
	m := p.ProtoReflect()
	for i := range m.Descriptor().Fields().Len() {
		fd := m.Descriptor().Fields().Get(i)
		if !m.Has(fd) {
			t.Errorf("the agent's snapshot lacks %s", fd.Name())
		}
	}
	// Every string the store holds reaches the agent.
	text := prototext.Format(p)
	for i := range fields.Len() {
		fd := fields.Get(i)
		// A description is for people: agents have no use for it.
		if fd.Kind() == protoreflect.StringKind && fd.Name() != "description" && !strings.Contains(text, "v-"+string(fd.Name())) {
			t.Errorf("field %s does not reach the agent", fd.Name())
		}
	}
	def := SecurityAsAgent(d)
	dv := reflect.ValueOf(def)
	for i := range dv.NumField() {
		if dv.Field(i).IsZero() {
			t.Errorf("secdef.Definition.%s is not set from the store", dv.Type().Field(i).Name)
		}
	}
}

func TestInboundSecurityDefinition(t *testing.T) {
	ca, _ := clientCert(t, time.Now().Add(-time.Hour))
	tests := []struct {
		name string
		d    *adminv1.SecurityDefinition
		want string
	}{
		{"introspection", &adminv1.SecurityDefinition{Name: "i", Kind: "bearer", IntrospectionUrl: "https://idp/i", ClientId: "c", ClientSecret: "s", CacheSeconds: 60}, ""},
		{"client certificates", &adminv1.SecurityDefinition{Name: "m", Kind: "tls_client_cert", CaPem: ca, AllowedSans: []string{"*.acme.example"}}, ""},
		{"both", &adminv1.SecurityDefinition{Name: "i", Kind: "bearer", Token: "t", IntrospectionUrl: "https://idp/i", ClientId: "c", ClientSecret: "s"}, "not both"},
		{"bad CA", &adminv1.SecurityDefinition{Name: "m", Kind: "tls_client_cert", CaPem: ca + "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}, `ca_pem: PEM block 2 is "PUBLIC KEY", want CERTIFICATE`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := SecurityDefinition(tt.d)
			if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("SecurityDefinition = %v, want %q", err, tt.want)
			}
		})
	}
}
