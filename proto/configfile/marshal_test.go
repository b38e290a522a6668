package configfile

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// pem is a key as PEM: lines, and a final newline.
const pem = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\nAbCd+/=\n-----END PRIVATE KEY-----\n"

// fullConfig has every kind, secrets as placeholders, a package of two
// source files and a binary one, a PEM, int64s, maps, an optional bool set
// false, a double, a timestamp, and strings YAML finds awkward.
func fullConfig() *adminv1.Config {
	return &adminv1.Config{
		Version: 1,
		Security: []*adminv1.SecurityDefinition{
			{Name: "crm-token", Kind: "bearer", Token: "${WEFT_SECRET_CRM_TOKEN_TOKEN}"},
			{Name: "client-cert", Kind: "tls_client_cert", CertPem: strings.ReplaceAll(pem, "PRIVATE KEY", "CERTIFICATE"), KeyPem: "${WEFT_SECRET_CLIENT_CERT_KEY_PEM}"},
			{Name: "basic", Kind: "basic_auth", Username: "yes", Password: "${WEFT_SECRET_BASIC_PASSWORD}"},
			{Name: "jwt", Kind: "jwt", Algorithms: []string{"RS256", "ES256"}, PublicKeyPem: pem, LeewayMs: 1 << 40, Audience: "123"},
		},
		Outgoing: []*adminv1.OutgoingConnection{{
			Name: "crm", Address: "https://crm.example", Security: "crm-token", TimeoutMs: 5000, PoolSize: 3,
			Headers:       map[string]string{"X-Zeta": "z", "X-Alpha": "a", "X-10": "ten", "X-9": "nine", "true": "null", "Empty": ""},
			Active:        proto.Bool(false),
			CaBundlePem:   pem + pem,
			TlsSkipVerify: true,
		}},
		Channels: []*adminv1.Channel{
			{Name: "orders", Path: "/orders/{id}", Methods: []string{"POST", "GET"}, Service: "orders.place", Active: proto.Bool(true),
				RateLimit: 2.5, RateBurst: 10, MaxBodyBytes: 9007199254740993, SoapActions: map[string]string{"Place": "orders.place"}},
			{Name: "quiet", Path: "/quiet", Service: "quiet.run"},
		},
		Jobs: []*adminv1.Job{{
			Name: "sweep", Service: "orders.sweep", Type: "interval", Interval: &adminv1.JobInterval{Weeks: 1, Minutes: 5},
			StartAt: timestamppb.New(time.Date(2026, 3, 4, 5, 6, 7, 890, time.UTC)), Active: proto.Bool(true), Placement: "every",
			AgentLabels: map[string]string{"tier": "gold"}, Payload: `{"a": [1, 2], "b": "c: d"}`, Repeats: -1,
		}},
		Packages: []*adminv1.PackageSource{
			{Name: "orders", Files: []*adminv1.SourceFile{
				{Name: "orders.go", Content: []byte("package orders\n\nimport \"fmt\"\n\nfunc Place() {\n\tfmt.Println(\"placed\")\n}\n")},
				{Name: "util.go", Content: []byte("package orders\n\n// Ünïcode, tabs\tand ${NOT_A_VAR}\nconst x = 1")},
				{Name: "data.bin", Content: []byte{0xff, 0xfe, 0x00, 0x01}},
			}},
			{Name: "awkward", Files: []*adminv1.SourceFile{
				{Name: "trailing.go", Content: []byte("line with trailing space \nnext\n")},
				{Name: "crlf.go", Content: []byte("a\r\nb\r\n")},
				{Name: "lead.go", Content: []byte("  leading spaces\n\n\n")},
				{Name: "break.go", Content: []byte("\nstarts with a break")},
				{Name: "ls.go", Content: []byte("a\u2028b\u0085c\n")},
				{Name: "nul.go", Content: []byte("a\x00b\n")},
				{Name: "controls.go", Content: []byte("del\x7f c1\u0080\u009f bom\ufeff nonchars\uffff\ufffe\n")},
				{Name: "one.go", Content: []byte("no newline")},
				{Name: "empty.go"},
			}},
		},
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	for _, format := range []string{YAML, JSON} {
		t.Run(format, func(t *testing.T) {
			cfg := fullConfig()
			first, err := Marshal(cfg, format)
			if err != nil {
				t.Fatal(err)
			}
			again, err := Marshal(proto.Clone(cfg).(*adminv1.Config), format)
			if err != nil || !bytes.Equal(first, again) {
				t.Fatalf("a second Marshal differs (%v):\n%s\n---\n%s", err, first, again)
			}
			inDir(t, map[string]string{"weft." + format: string(first)})
			doc, err := Read("weft." + format)
			if err != nil {
				t.Fatalf("Read what Marshal wrote: %v\n%s", err, first)
			}
			if !proto.Equal(doc.Config, cfg) {
				t.Fatalf("read back\n%v\nwant\n%v\nfrom\n%s", doc.Config, cfg, first)
			}
			back, err := Marshal(doc.Config, format)
			if err != nil || !bytes.Equal(back, first) {
				t.Errorf("marshal → read → marshal differs (%v):\n%s\n---\n%s", err, first, back)
			}
		})
	}
}

func TestMarshalYAMLLayout(t *testing.T) {
	b, err := Marshal(fullConfig(), YAML)
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	for _, want := range []string{
		// Literal blocks for a PEM and for source, text for UTF-8 files.
		"  public_key_pem: |\n    -----BEGIN PRIVATE KEY-----\n    MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n",
		"  - name: orders.go\n    text: |\n      package orders\n\n      import \"fmt\"\n\n      func Place() {\n      \tfmt.Println(\"placed\")\n      }\n",
		"    text: |-\n      package orders\n",
		// Binary stays base64 content.
		"  - content: //4AAQ==\n    name: data.bin\n",
		// Sorted keys, lists at their key's indent, int64s as strings.
		"channels:\n- active: true\n  max_body_bytes: \"9007199254740993\"\n  methods:\n  - POST\n  - GET\n",
		"  headers:\n    Empty: \"\"\n    X-9: nine\n    X-10: ten\n    X-Alpha: a\n    X-Zeta: z\n    \"true\": \"null\"\n",
		"  leeway_ms: \"1099511627776\"\n",
		"  username: \"yes\"\n",
		"version: 1\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("YAML lacks\n%s\nin\n%s", want, out)
		}
	}
	if strings.Contains(out, "content: cGFja2Fn") {
		t.Errorf("YAML holds UTF-8 source as base64:\n%s", out)
	}
}

func TestMarshalJSONLayout(t *testing.T) {
	b, err := Marshal(fullConfig(), JSON)
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	for _, want := range []string{
		"{\n  \"version\": 1,\n  \"security\": [\n    {\n      \"name\": \"crm-token\",",
		"\"name\": \"orders.go\",\n          \"text\": \"package orders\\n\\nimport \\\"fmt\\\"",
		"\"content\": \"//4AAQ==\"",
		"\"timeout_ms\": \"5000\"",
		"\"path\": \"/orders/{id}\"",
		"\"payload\": \"{\\\"a\\\": [1, 2], \\\"b\\\": \\\"c: d\\\"}\"",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("JSON lacks\n%s\nin\n%s", want, out)
		}
	}
	if !strings.HasSuffix(out, "}\n") || !json.Valid(b) {
		t.Errorf("not JSON with a final newline:\n%s", out)
	}
}

func TestMarshalEmptyAndRefusals(t *testing.T) {
	for format, want := range map[string]string{YAML: "{}\n", JSON: "{}\n"} {
		for _, cfg := range []*adminv1.Config{nil, {}} {
			if got := mustMarshal(t, cfg, format); got != want {
				t.Errorf("Marshal(%v, %s) = %q, want %q", cfg, format, got, want)
			}
		}
	}
	if _, err := Marshal(fullConfig(), "xml"); err == nil || !strings.Contains(err.Error(), `format "xml": want yaml or json`) {
		t.Errorf("Marshal as xml: err = %v", err)
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "weft.yaml")
	if err := os.WriteFile(path, []byte("old content"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("new content\n")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "new content\n" {
		t.Errorf("file holds %q, %v", b, err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("file mode %v, %v; want 0644", st.Mode().Perm(), err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the directory holds %d entries, want only the file (no temporary files left)", len(entries))
	}
	missing := filepath.Join(dir, "no-such-dir", "weft.yaml")
	if err := WriteFile(missing, nil); err == nil || !strings.Contains(err.Error(), "write "+missing) {
		t.Errorf("a file in a missing directory: err = %v, want one naming the file", err)
	}
}

func TestSummary(t *testing.T) {
	tests := []struct {
		cfg  *adminv1.Config
		want string
	}{
		{nil, "no objects"},
		{&adminv1.Config{Version: 1}, "no objects"},
		{fullConfig(), "4 security definitions, 1 outgoing connection, 2 channels, 1 job, 2 packages"},
		{&adminv1.Config{Jobs: []*adminv1.Job{{}, {}}, Security: []*adminv1.SecurityDefinition{{}}}, "1 security definition, 2 jobs"},
	}
	for _, tt := range tests {
		if got := Summary(tt.cfg); got != tt.want {
			t.Errorf("Summary = %q, want %q", got, tt.want)
		}
	}
}

func TestJSONToYAML(t *testing.T) {
	tests := []struct {
		name, json, want string
	}{
		{"keys sorted, lists at their key's indent", `{"b":[1,2.5],"a":{"d":"x","c":true}}`, "a:\n  c: true\n  d: x\nb:\n- 1\n- 2.5\n"},
		{"strings YAML would read otherwise quoted", `{"r":"22","y":"yes","z":null}`, "r: \"22\"\n\"y\": \"yes\"\nz: null\n"},
		{"multi-line strings as literal blocks", `{"pem":"a\nb\n"}`, "pem: |\n  a\n  b\n"},
		{"empty", `{}`, "{}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := JSONToYAML([]byte(tt.json))
			if err != nil || string(got) != tt.want {
				t.Errorf("JSONToYAML(%s) = %q, %v; want %q", tt.json, got, err, tt.want)
			}
		})
	}
	if _, err := JSONToYAML([]byte(`{"a":`)); err == nil {
		t.Errorf("JSONToYAML of broken JSON: no error")
	}
}
