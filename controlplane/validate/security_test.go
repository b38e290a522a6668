package validate

import (
	"strings"
	"testing"
	"time"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

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
