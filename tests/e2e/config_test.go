package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"

	"github.com/weft-dev/weft/controlplane/store/storetest"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	"github.com/weft-dev/weft/tests/testenv"
)

// crmToken is the secret of the security definition the export test makes.
const crmToken = "crm-bearer-7f3a9c2e51"

// TestConfigExport exports a control plane holding one object of every
// kind with the real weftctl: two exports are byte for byte the same, the
// secret is a placeholder, --include-source carries the package's files and
// --kind keeps one kind.
func TestConfigExport(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			cp := testenv.StartControlPlane(t, b.DSN)
			e := &env{cp: cp, example: filepath.Join(testenv.ModuleRoot(t), "deploy", "examples", "hello")}
			e.ctlOK(t, "deploy", e.example)
			e.ctlOK(t, "security", "create", "crm-token", "--kind", "bearer", "--token", crmToken)
			e.ctlOK(t, "outgoing", "create", "crm", "--address", "https://crm.example", "--security", "crm-token")
			e.ctlOK(t, "channel", "create", channelName, "--path", channelPath, "--service", exampleService)
			e.ctlOK(t, "job", "create", "nightly", "--service", exampleService, "--type", "cron", "--cron", "0 3 * * *", "--payload", adaInput)
			dir := t.TempDir()

			runSteps(t, []step{
				{"two exports are byte-identical", func(t *testing.T) {
					first := filepath.Join(dir, "first.yaml")
					e.ctlOK(t, "export", "--file", first)
					second := e.ctlOK(t, "export").Stdout
					b := readExport(t, first)
					if !bytes.Equal(b, []byte(second)) {
						t.Fatalf("two exports differ:\n%s\n---\n%s", b, second)
					}
					cfg := parseExport(t, b)
					want := []string{"security/crm-token", "outgoing/crm", "channel/" + channelName, "job/nightly", "package/" + examplePackage}
					if got := exportedNames(cfg); !slices.Equal(got, want) {
						t.Errorf("exported %v, want %v", got, want)
					}
					for _, field := range []string{"created_at", "updated_at", "revision", "next_run_at"} {
						if bytes.Contains(b, []byte(field+":")) {
							t.Errorf("the export holds the output-only field %s:\n%s", field, b)
						}
					}
				}},
				{"the secret is a placeholder", func(t *testing.T) {
					b := readExport(t, filepath.Join(dir, "first.yaml"))
					if bytes.Contains(b, []byte(crmToken)) {
						t.Fatalf("the export holds the secret:\n%s", b)
					}
					if !bytes.Contains(b, []byte("token: ${WEFT_SECRET_CRM_TOKEN_TOKEN}\n")) {
						t.Errorf("the export lacks the placeholder ${WEFT_SECRET_CRM_TOKEN_TOKEN}:\n%s", b)
					}
					logs, err := os.ReadFile(cp.LogPath())
					if err != nil {
						t.Fatal(err)
					}
					if bytes.Contains(logs, []byte(crmToken)) {
						t.Errorf("the control plane logged the secret")
					}
				}},
				{"--include-source carries the package's files", func(t *testing.T) {
					plain := parseExport(t, readExport(t, filepath.Join(dir, "first.yaml")))
					if files := plain.GetPackages()[0].GetFiles(); len(files) != 0 {
						t.Errorf("without --include-source the package has %d files", len(files))
					}
					path := filepath.Join(dir, "source.json")
					e.ctlOK(t, "export", "--include-source", "--format", "json", "--file", path)
					cfg := &adminv1.Config{}
					if err := protojson.Unmarshal(readExport(t, path), cfg); err != nil {
						t.Fatalf("the JSON export does not decode as a Config: %v", err)
					}
					src, err := os.ReadFile(filepath.Join(e.example, "hello.go"))
					if err != nil {
						t.Fatal(err)
					}
					pkg := cfg.GetPackages()[0]
					if pkg.GetName() != examplePackage || len(pkg.GetFiles()) != 1 ||
						pkg.GetFiles()[0].GetName() != "hello.go" || !bytes.Equal(pkg.GetFiles()[0].GetContent(), src) {
						t.Errorf("package exported as %v, want %s with hello.go as deployed", pkg, examplePackage)
					}
				}},
				{"--kind channel holds only channels", func(t *testing.T) {
					cfg := parseExport(t, []byte(e.ctlOK(t, "export", "--kind", "channel").Stdout))
					if got := exportedNames(cfg); !slices.Equal(got, []string{"channel/" + channelName}) {
						t.Errorf("--kind channel exported %v", got)
					}
				}},
				{"an unknown kind or name is refused", func(t *testing.T) {
					for _, c := range []struct{ args []string }{
						{[]string{"export", "--kind", "channels"}},
						{[]string{"export", "--name", "nope"}},
					} {
						res := testenv.Ctl(t, cp, c.args...)
						if res.ExitCode == 0 || !strings.Contains(res.Stderr, c.args[2]) {
							t.Errorf("weftctl %s: %s\nwant a refusal naming %q", strings.Join(c.args, " "), res, c.args[2])
						}
					}
				}},
			})
		})
	}
}

// readExport reads an export file.
func readExport(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// parseExport decodes a YAML export as a Config, as an import will.
func parseExport(t *testing.T, b []byte) *adminv1.Config {
	t.Helper()
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		t.Fatalf("the export is not YAML: %v\n%s", err, b)
	}
	cfg := &adminv1.Config{}
	if err := protojson.Unmarshal(j, cfg); err != nil {
		t.Fatalf("the export does not decode as a Config: %v\n%s", err, b)
	}
	return cfg
}

// exportedNames lists every object of cfg as kind/name.
func exportedNames(cfg *adminv1.Config) []string {
	var out []string
	for _, d := range cfg.GetSecurity() {
		out = append(out, "security/"+d.GetName())
	}
	for _, c := range cfg.GetOutgoing() {
		out = append(out, "outgoing/"+c.GetName())
	}
	for _, c := range cfg.GetChannels() {
		out = append(out, "channel/"+c.GetName())
	}
	for _, j := range cfg.GetJobs() {
		out = append(out, "job/"+j.GetName())
	}
	for _, p := range cfg.GetPackages() {
		out = append(out, "package/"+p.GetName())
	}
	return out
}
