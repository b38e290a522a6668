package cli

import (
	"bufio"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// testFiles writes the files a command reads into a temporary directory
// and returns their paths by name.
type testFiles map[string]string

func writeTestFiles(t *testing.T, content map[string]string) testFiles {
	t.Helper()
	dir := t.TempDir()
	paths := testFiles{}
	for name, c := range content {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
		paths[name] = p
	}
	paths["missing"] = filepath.Join(dir, "missing.pem")
	return paths
}

// pemOf is a PEM block of the given type; weftctl checks only the type.
func pemOf(typ string) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: []byte("not a real " + typ)}))
}

// securityFiles are the files security tests read.
func securityFiles(t *testing.T) testFiles {
	return writeTestFiles(t, map[string]string{
		"pub.pem":     pemOf("PUBLIC KEY"),
		"cert.pem":    pemOf("CERTIFICATE") + pemOf("CERTIFICATE"),
		"key.pem":     pemOf("EC PRIVATE KEY"),
		"password":    "s3cret pass\n",
		"empty":       "",
		"not-pem.txt": "just text\n",
		"client.crt":  pemOf("CERTIFICATE"),
	})
}

func TestSecurityCreate(t *testing.T) {
	files := securityFiles(t)
	tests := []struct {
		name    string
		args    []string
		stdin   string
		want    *adminv1.SecurityDefinition
		wantErr string
	}{
		{
			name: "basic auth, password as a value",
			args: []string{"--kind", "basic_auth", "--username", "shop", "--password", "pw"},
			want: &adminv1.SecurityDefinition{Name: "d", Kind: "basic_auth", Username: "shop", Password: "pw"},
		},
		{
			name: "password from a file, final line break dropped",
			args: []string{"--kind", "basic_auth", "--username", "shop", "--password", "@" + files["password"]},
			want: &adminv1.SecurityDefinition{Name: "d", Kind: "basic_auth", Username: "shop", Password: "s3cret pass"},
		},
		{
			name:  "key from standard input",
			args:  []string{"--kind", "API_KEY", "--header", "X-Partner-Key", "--key", "-"},
			stdin: "k-123\r\nnext line\n",
			want:  &adminv1.SecurityDefinition{Name: "d", Kind: "api_key", Header: "X-Partner-Key", Key: "k-123"},
		},
		{
			name:  "last line of standard input without a line break",
			args:  []string{"--kind", "bearer", "--token", "-"},
			stdin: "tok",
			want:  &adminv1.SecurityDefinition{Name: "d", Kind: "bearer", Token: "tok"},
		},
		{
			name: "jwt with a public key file",
			args: []string{"--kind", "jwt", "--algorithms", "rs256,ES256", "--public-key-file", files["pub.pem"], "--issuer", "partner", "--audience", "weft", "--leeway", "30s"},
			want: &adminv1.SecurityDefinition{Name: "d", Kind: "jwt", Algorithms: []string{"RS256", "ES256"}, PublicKeyPem: strings.TrimSpace(pemOf("PUBLIC KEY")),
				Issuer: "partner", Audience: "weft", LeewayMs: 30000},
		},
		{
			name: "jwt with a secret and a JWKS URL",
			args: []string{"--kind", "jwt", "--algorithms", "HS256", "--secret", strings.Repeat("s", 32), "--jwks-url", "https://idp.example/jwks", "--issuer", "idp"},
			want: &adminv1.SecurityDefinition{Name: "d", Kind: "jwt", Algorithms: []string{"HS256"}, Secret: strings.Repeat("s", 32), JwksUrl: "https://idp.example/jwks", Issuer: "idp"},
		},
		{
			name: "oauth2 client credentials",
			args: []string{"--kind", "oauth2_client_credentials", "--token-url", "https://crm.example/token", "--client-id", "weft", "--client-secret", "@" + files["password"], "--scopes", "read, write"},
			want: &adminv1.SecurityDefinition{Name: "d", Kind: "oauth2_client_credentials", TokenUrl: "https://crm.example/token", ClientId: "weft",
				ClientSecret: "s3cret pass", Scopes: []string{"read", "write"}},
		},
		{
			name: "tls client certificate",
			args: []string{"--kind", "tls_client_cert", "--cert-file", files["cert.pem"], "--key-file", files["key.pem"]},
			want: &adminv1.SecurityDefinition{Name: "d", Kind: "tls_client_cert",
				CertPem: strings.TrimSpace(pemOf("CERTIFICATE") + pemOf("CERTIFICATE")), KeyPem: strings.TrimSpace(pemOf("EC PRIVATE KEY"))},
		},
		{name: "no kind", args: []string{"--username", "u"}, wantErr: `required flag(s) "kind" not set`},
		{name: "unknown kind", args: []string{"--kind", "digest"}, wantErr: `create security definition "d": --kind "digest": want one of basic_auth, api_key, jwt, bearer, oauth2_client_credentials, tls_client_cert`},
		{name: "flag of another kind", args: []string{"--kind", "basic_auth", "--username", "u", "--token", "t"}, wantErr: `--token does not apply to --kind basic_auth (it takes --username, --password)`},
		{name: "unknown algorithm", args: []string{"--kind", "jwt", "--algorithms", "HS256,none"}, wantErr: `--algorithms "none": want HS256, RS256, ES256`},
		{name: "negative leeway", args: []string{"--kind", "jwt", "--leeway", "-1s"}, wantErr: `--leeway -1s: must not be negative`},
		{name: "leeway not a duration", args: []string{"--kind", "jwt", "--leeway", "soon"}, wantErr: `invalid argument "soon" for "--leeway"`},
		{name: "secret file missing", args: []string{"--kind", "bearer", "--token", "@" + files["missing"]}, wantErr: `--token: open ` + files["missing"] + `: no such file or directory`},
		{name: "secret file not named", args: []string{"--kind", "bearer", "--token", "@"}, wantErr: `--token @: want @FILE`},
		{name: "secret file empty", args: []string{"--kind", "bearer", "--token", "@" + files["empty"]}, wantErr: `--token @` + files["empty"] + `: the file is empty`},
		{name: "standard input empty", args: []string{"--kind", "bearer", "--token", "-"}, wantErr: `--token -: read a line of standard input: EOF`},
		{name: "standard input blank line", args: []string{"--kind", "bearer", "--token", "-"}, stdin: "\n", wantErr: `--token -: the line read from standard input is empty`},
		{name: "public key file missing", args: []string{"--kind", "jwt", "--public-key-file", files["missing"]}, wantErr: `--public-key-file: open ` + files["missing"]},
		{name: "public key file not PEM", args: []string{"--kind", "jwt", "--public-key-file", files["not-pem.txt"]}, wantErr: `--public-key-file ` + files["not-pem.txt"] + `: holds no PEM PUBLIC KEY or CERTIFICATE block`},
		{name: "key file holds a certificate", args: []string{"--kind", "tls_client_cert", "--cert-file", files["cert.pem"], "--key-file", files["client.crt"]}, wantErr: `--key-file ` + files["client.crt"] + `: holds no PEM PRIVATE KEY block`},
		{name: "cert file holds a key", args: []string{"--kind", "tls_client_cert", "--cert-file", files["key.pem"]}, wantErr: `--cert-file ` + files["key.pem"] + `: holds no PEM CERTIFICATE block`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			stdout, _, err := e.runStdin(tt.stdin, append([]string{"security", "create", "d"}, tt.args...)...)
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
			if len(seen) != 1 {
				t.Fatalf("server saw %d requests, want 1", len(seen))
			}
			if got := seen[0].(*adminv1.CreateSecurityDefinitionRequest).GetDefinition(); !proto.Equal(got, tt.want) {
				t.Errorf("definition = %v\nwant %v", got, tt.want)
			}
			if want := "created security definition d (revision 21)\n"; stdout != want {
				t.Errorf("stdout = %q, want %q", stdout, want)
			}
		})
	}
}

func TestSecurityCreateOutput(t *testing.T) {
	for _, format := range []string{"json", "yaml"} {
		t.Run(format, func(t *testing.T) {
			e := newTestEnv(t)
			stdout, _, err := e.runStdin("pw\n", "security", "create", "shop", "--kind", "basic_auth", "--username", "shop", "--password", "-", "-o", format)
			if err != nil {
				t.Fatal(err)
			}
			var resp adminv1.CreateSecurityDefinitionResponse
			if err := unmarshalOutput(format, stdout, &resp); err != nil {
				t.Fatalf("%v\n%s", err, stdout)
			}
			if d := resp.GetDefinition(); d.GetPassword() != redacted || d.GetUsername() != "shop" || d.GetRevision() != 21 {
				t.Errorf("definition = %v", d)
			}
			if strings.Contains(stdout, "pw\n") || strings.Contains(stdout, `"pw"`) {
				t.Errorf("output shows the secret:\n%s", stdout)
			}
		})
	}
}

// unmarshalOutput parses -o json or -o yaml output into m.
func unmarshalOutput(format, out string, m proto.Message) error {
	b := []byte(out)
	if format == "yaml" {
		var err error
		if b, err = yamlToJSON(b); err != nil {
			return err
		}
	}
	return protojson.Unmarshal(b, m)
}

func TestSecurityUpdateMask(t *testing.T) {
	files := securityFiles(t)
	tests := []struct {
		name     string
		flags    []string
		stdin    string
		wantMask []string
		want     *adminv1.SecurityDefinition
		wantErr  string
	}{
		{name: "password only", flags: []string{"--password", "new"}, wantMask: []string{"password"}, want: &adminv1.SecurityDefinition{Name: "d", Password: "new"}},
		{name: "password from standard input", flags: []string{"--password", "-"}, stdin: "from-stdin\n", wantMask: []string{"password"}, want: &adminv1.SecurityDefinition{Name: "d", Password: "from-stdin"}},
		{name: "password from a file", flags: []string{"--password", "@" + files["password"]}, wantMask: []string{"password"}, want: &adminv1.SecurityDefinition{Name: "d", Password: "s3cret pass"}},
		{name: "user name keeps the password", flags: []string{"--username", "ada"}, wantMask: []string{"username"}, want: &adminv1.SecurityDefinition{Name: "d", Username: "ada"}},
		{name: "audience cleared", flags: []string{"--audience", ""}, wantMask: []string{"audience"}, want: &adminv1.SecurityDefinition{Name: "d"}},
		{name: "scopes cleared", flags: []string{"--scopes", ""}, wantMask: []string{"scopes"}, want: &adminv1.SecurityDefinition{Name: "d", Scopes: []string{}}},
		{
			name:     "jwt fields",
			flags:    []string{"--leeway", "1m", "--issuer", "i", "--algorithms", "es256", "--public-key-file", files["pub.pem"]},
			wantMask: []string{"algorithms", "issuer", "leeway_ms", "public_key_pem"},
			want:     &adminv1.SecurityDefinition{Name: "d", Algorithms: []string{"ES256"}, Issuer: "i", LeewayMs: 60000, PublicKeyPem: strings.TrimSpace(pemOf("PUBLIC KEY"))},
		},
		{
			name:     "kind change with its fields",
			flags:    []string{"--kind", "bearer", "--token", "-"},
			stdin:    "t-1\n",
			wantMask: []string{"kind", "token"},
			want:     &adminv1.SecurityDefinition{Name: "d", Kind: "bearer", Token: "t-1"},
		},
		{
			name:     "several secrets read lines in flag order",
			flags:    []string{"--client-secret", "-", "--password", "-"},
			stdin:    "first\nsecond\n",
			wantMask: []string{"password", "client_secret"},
			want:     &adminv1.SecurityDefinition{Name: "d", Password: "first", ClientSecret: "second"},
		},
		{
			name:     "certificate and key",
			flags:    []string{"--key-file", files["key.pem"], "--cert-file", files["cert.pem"]},
			wantMask: []string{"cert_pem", "key_pem"},
			want:     &adminv1.SecurityDefinition{Name: "d", CertPem: strings.TrimSpace(pemOf("CERTIFICATE") + pemOf("CERTIFICATE")), KeyPem: strings.TrimSpace(pemOf("EC PRIVATE KEY"))},
		},
		{name: "nothing to change", wantErr: `update security definition "d": nothing to change`},
		{name: "secret file missing", flags: []string{"--password", "@" + files["missing"]}, wantErr: files["missing"]},
		{name: "kind with a flag it does not take", flags: []string{"--kind", "api_key", "--password", "x"}, wantErr: `--password does not apply to --kind api_key`},
		{name: "unknown kind", flags: []string{"--kind", "x"}, wantErr: `--kind "x": want one of`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, func(e *testEnv) {
				e.security.put(&adminv1.SecurityDefinition{Name: "d", Kind: "basic_auth", Username: "u", Password: "p", Revision: 3})
			})
			stdout, _, err := e.runStdin(tt.stdin, append([]string{"security", "update", "d"}, tt.flags...)...)
			req, sent := updateSent[*adminv1.UpdateSecurityDefinitionRequest](t, err, e.security.requestsSeen(), tt.wantErr, tt.wantMask)
			if !sent {
				return
			}
			if !proto.Equal(req.GetDefinition(), tt.want) {
				t.Errorf("definition = %v\nwant %v", req.GetDefinition(), tt.want)
			}
			if want := "updated security definition d (revision 21)\n"; stdout != want {
				t.Errorf("stdout = %q, want %q", stdout, want)
			}
		})
	}
}

func TestSecurityReadAndDelete(t *testing.T) {
	e := newTestEnv(t, func(e *testEnv) {
		e.security.put(&adminv1.SecurityDefinition{Name: "crm", Kind: "oauth2_client_credentials", TokenUrl: "https://crm.example/token",
			ClientId: "weft", ClientSecret: "cs", Scopes: []string{"read", "write"}, Revision: 4})
		e.security.put(&adminv1.SecurityDefinition{Name: "partner", Kind: "jwt", Algorithms: []string{"RS256"}, Issuer: "partner", Audience: "weft",
			PublicKeyPem: "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----", LeewayMs: 30000, Revision: 5,
			CreatedAt: timestamppb.New(testNow.Add(-2 * time.Hour)), UpdatedAt: timestamppb.New(testNow.Add(-90 * time.Second))})
		e.security.put(&adminv1.SecurityDefinition{Name: "shop", Kind: "basic_auth", Username: "shop", Password: "pw", Revision: 6})
		e.security.put(&adminv1.SecurityDefinition{Name: "in-use", Kind: "api_key", Key: "k", Revision: 7})
	})

	t.Run("list table", func(t *testing.T) {
		stdout, _, err := e.run("security", "list")
		if err != nil {
			t.Fatal(err)
		}
		want := "NAME     KIND                       IDENTITY                                  SECRETS                 REVISION\n" +
			"crm      oauth2_client_credentials  client weft at https://crm.example/token  client_secret=••••••••  4\n" +
			"in-use   api_key                    header X-API-Key                          key=••••••••            7\n" +
			"partner  jwt                        alg RS256 issuer partner audience weft    -                       5\n" +
			"shop     basic_auth                 user shop                                 password=••••••••       6\n"
		if stdout != want {
			t.Errorf("stdout =\n%s\nwant\n%s", stdout, want)
		}
	})
	for _, format := range []string{"json", "yaml"} {
		t.Run("list "+format, func(t *testing.T) {
			stdout, _, err := e.run("security", "list", "-o", format)
			if err != nil {
				t.Fatal(err)
			}
			var resp adminv1.ListSecurityDefinitionsResponse
			if err := unmarshalOutput(format, stdout, &resp); err != nil {
				t.Fatalf("%v\n%s", err, stdout)
			}
			if len(resp.GetDefinitions()) != 4 || resp.GetDefinitions()[3].GetPassword() != redacted {
				t.Errorf("definitions = %v", resp.GetDefinitions())
			}
			if !strings.Contains(stdout, "client_secret") || !strings.Contains(stdout, "public_key_pem") {
				t.Errorf("want proto field names:\n%s", stdout)
			}
		})
	}
	t.Run("get table", func(t *testing.T) {
		stdout, _, err := e.run("security", "get", "partner")
		if err != nil {
			t.Fatal(err)
		}
		want := "name:        partner\n" +
			"kind:        jwt\n" +
			"algorithms:  RS256\n" +
			"public key:  -----BEGIN PUBLIC KEY----- …\n" +
			"issuer:      partner\n" +
			"audience:    weft\n" +
			"leeway:      30s\n" +
			"revision:    5\n" +
			"created:     " + testNow.Add(-2*time.Hour).Local().Format(time.RFC3339) + " (2h ago)\n" +
			"updated:     " + testNow.Add(-90*time.Second).Local().Format(time.RFC3339) + " (1m ago)\n"
		if stdout != want {
			t.Errorf("stdout =\n%s\nwant\n%s", stdout, want)
		}
		stdout, _, err = e.run("security", "get", "shop")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(stdout, "password:  ••••••••\n") {
			t.Errorf("want the redacted password:\n%s", stdout)
		}
	})
	t.Run("get yaml", func(t *testing.T) {
		stdout, _, err := e.run("security", "get", "crm", "-o", "yaml")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"definition:\n", "  client_secret: ••••••••\n", "  scopes:\n  - read\n  - write\n", "  token_url: https://crm.example/token\n"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("stdout lacks %q:\n%s", want, stdout)
			}
		}
	})
	t.Run("get missing", func(t *testing.T) {
		_, _, err := e.run("security", "get", "nope")
		if err == nil || err.Error() != `get security definition "nope": security definition "nope" not found` || status.Code(err) != codes.NotFound {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("delete in use", func(t *testing.T) {
		_, _, err := e.run("security", "delete", "in-use")
		if err == nil || !strings.Contains(err.Error(), `used by channel "orders"`) {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("delete", func(t *testing.T) {
		stdout, _, err := e.run("security", "delete", "shop")
		if err != nil {
			t.Fatal(err)
		}
		if want := "deleted security definition shop (revision 21)\n"; stdout != want {
			t.Errorf("stdout = %q, want %q", stdout, want)
		}
		stdout, _, err = e.run("security", "delete", "crm", "-o", "yaml")
		if err != nil || stdout != "revision: \"22\"\n" {
			t.Errorf("yaml = %q (%v)", stdout, err)
		}
	})
}

func TestSecretValue(t *testing.T) {
	in := bufio.NewReader(strings.NewReader("one\ntwo"))
	for _, want := range []string{"one", "two"} {
		got, err := secretValue("password", "-", in)
		if err != nil || got != want {
			t.Fatalf("secretValue = %q, %v; want %q", got, err, want)
		}
	}
	if _, err := secretValue("password", "-", in); err == nil {
		t.Fatal("read past the end of standard input")
	}
	if got, err := secretValue("password", "plain-@-value", in); err != nil || got != "plain-@-value" {
		t.Fatalf("literal = %q, %v", got, err)
	}
}
