package validate

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"

	"github.com/weft-dev/weft/controlplane/store"
)

// TestSecurityForAgentCarriesEveryField sets every field of a definition
// and finds each in what agents get, and in what they build from it.
func TestSecurityForAgentCarriesEveryField(t *testing.T) {
	d := store.SecurityDefinition{CreatedAt: time.Now(), UpdatedAt: time.Now(), Revision: 3}
	v := reflect.ValueOf(&d).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString("v-" + v.Type().Field(i).Name)
		case reflect.Slice:
			f.Set(reflect.ValueOf([]string{"v-" + v.Type().Field(i).Name}))
		case reflect.Int32, reflect.Int64:
			if f.IsZero() {
				f.SetInt(7)
			}
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
	for i := range v.NumField() {
		name := v.Type().Field(i).Name
		if (v.Field(i).Kind() == reflect.String || v.Field(i).Kind() == reflect.Slice) && !strings.Contains(text, "v-"+name) {
			t.Errorf("store field %s does not reach the agent", name)
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
		d    store.SecurityDefinition
		want string
	}{
		{"introspection", store.SecurityDefinition{Name: "i", Kind: "bearer", IntrospectionURL: "https://idp/i", ClientID: "c", ClientSecret: "s", CacheSeconds: 60}, ""},
		{"client certificates", store.SecurityDefinition{Name: "m", Kind: "tls_client_cert", CAPEM: ca, AllowedSANs: []string{"*.acme.example"}}, ""},
		{"both", store.SecurityDefinition{Name: "i", Kind: "bearer", Token: "t", IntrospectionURL: "https://idp/i", ClientID: "c", ClientSecret: "s"}, "not both"},
		{"bad CA", store.SecurityDefinition{Name: "m", Kind: "tls_client_cert", CAPEM: ca + "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}, `ca_pem: PEM block 2 is "PUBLIC KEY", want CERTIFICATE`},
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
