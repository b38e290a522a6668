package cli

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func TestSecurityCreateInbound(t *testing.T) {
	files := securityFiles(t)
	tests := []struct {
		name    string
		args    []string
		stdin   string
		want    *adminv1.SecurityDefinition
		wantErr string
	}{
		{
			name: "bearer checked by introspection",
			args: []string{"--kind", "bearer", "--introspection-url", "https://idp.example/introspect", "--client-id", "weft",
				"--client-secret", "-", "--scopes", "orders:write,orders:read", "--audience", "weft", "--cache-seconds", "120"},
			stdin: "intro-secret\n",
			want: &adminv1.SecurityDefinition{Name: "d", Kind: "bearer", IntrospectionUrl: "https://idp.example/introspect", ClientId: "weft",
				ClientSecret: "intro-secret", Scopes: []string{"orders:write", "orders:read"}, Audience: "weft", CacheSeconds: 120},
		},
		{
			name: "client certificates checked against CAs",
			args: []string{"--kind", "tls_client_cert", "--ca-file", files["cert.pem"], "--allowed-subjects", "acme, beta",
				"--allowed-sans", "*.partners.example", "--allowed-sans", "billing@acme.example"},
			want: &adminv1.SecurityDefinition{Name: "d", Kind: "tls_client_cert", CaPem: strings.TrimSpace(pemOf("CERTIFICATE") + pemOf("CERTIFICATE")),
				AllowedSubjects: []string{"acme", "beta"}, AllowedSans: []string{"*.partners.example", "billing@acme.example"}},
		},
		{name: "CA file holds a key", args: []string{"--kind", "tls_client_cert", "--ca-file", files["key.pem"]},
			wantErr: `--ca-file ` + files["key.pem"] + `: holds no PEM CERTIFICATE block`},
		{name: "introspection for oauth2", args: []string{"--kind", "oauth2_client_credentials", "--introspection-url", "https://idp.example/i"},
			wantErr: `--introspection-url does not apply to --kind oauth2_client_credentials`},
		{name: "SAN rules for bearer", args: []string{"--kind", "bearer", "--allowed-sans", "a"},
			wantErr: `--allowed-sans does not apply to --kind bearer (it takes --token, --introspection-url, --client-id, --client-secret, --scopes, --audience, --cache-seconds)`},
		{name: "negative cache", args: []string{"--kind", "bearer", "--cache-seconds", "-1"}, wantErr: `--cache-seconds -1: must not be negative`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			_, _, err := e.runStdin(tt.stdin, append([]string{"security", "create", "d"}, tt.args...)...)
			seen := e.security.requestsSeen()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				if len(seen) != 0 {
					t.Fatalf("a refused flag reached the server: %v", seen)
				}
				return
			}
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			if got := seen[0].(*adminv1.CreateSecurityDefinitionRequest).GetDefinition(); !proto.Equal(got, tt.want) {
				t.Errorf("definition = %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestSecurityUpdateInboundMask(t *testing.T) {
	files := securityFiles(t)
	e := newTestEnv(t, func(e *testEnv) {
		e.security.put(&adminv1.SecurityDefinition{Name: "d", Kind: "tls_client_cert", CaPem: pemOf("CERTIFICATE"), Revision: 3})
	})
	_, _, err := e.run("security", "update", "d", "--allowed-sans", "", "--ca-file", files["client.crt"], "--allowed-subjects", "acme")
	req, sent := updateSent[*adminv1.UpdateSecurityDefinitionRequest](t, err, e.security.requestsSeen(), "", []string{"allowed_subjects", "allowed_sans", "ca_pem"})
	if !sent {
		return
	}
	want := &adminv1.SecurityDefinition{Name: "d", CaPem: strings.TrimSpace(pemOf("CERTIFICATE")), AllowedSubjects: []string{"acme"}, AllowedSans: []string{}}
	if !proto.Equal(req.GetDefinition(), want) {
		t.Errorf("definition = %v\nwant %v", req.GetDefinition(), want)
	}
}

func TestSecurityReadInbound(t *testing.T) {
	e := newTestEnv(t, func(e *testEnv) {
		e.security.put(&adminv1.SecurityDefinition{Name: "idp", Kind: "bearer", IntrospectionUrl: "https://idp.example/i", ClientId: "weft",
			ClientSecret: "cs", Scopes: []string{"orders:write"}, Audience: "weft", Revision: 4})
		e.security.put(&adminv1.SecurityDefinition{Name: "mtls", Kind: "tls_client_cert", CaPem: pemOf("CERTIFICATE") + pemOf("CERTIFICATE"),
			AllowedSubjects: []string{"acme"}, AllowedSans: []string{"*.partners.example"}, Revision: 5})
	})
	stdout, _, err := e.run("security", "list")
	if err != nil {
		t.Fatal(err)
	}
	want := "NAME  KIND             IDENTITY                                                                        SECRETS                 REVISION\n" +
		"idp   bearer           introspects at https://idp.example/i as weft scopes orders:write audience weft  client_secret=••••••••  4\n" +
		"mtls  tls_client_cert  client certificates from 2 CAs subjects acme sans *.partners.example            -                       5\n"
	if stdout != want {
		t.Errorf("stdout =\n%s\nwant\n%s", stdout, want)
	}
	stdout, _, err = e.run("security", "get", "idp")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"introspection url:  https://idp.example/i\n", "cache:              1m0s\n", "client secret:      ••••••••\n", "scopes:             orders:write\n"} {
		if !strings.Contains(stdout, line) {
			t.Errorf("get idp lacks %q:\n%s", line, stdout)
		}
	}
	stdout, _, err = e.run("security", "get", "mtls")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"CA certificates:   2\n", "allowed subjects:  acme\n", "allowed sans:      *.partners.example\n"} {
		if !strings.Contains(stdout, line) {
			t.Errorf("get mtls lacks %q:\n%s", line, stdout)
		}
	}
}
