package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/weft-dev/weft/controlplane/store/storetest"
	"github.com/weft-dev/weft/proto/configfile"
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
			e := newConfigE2E(t, b.DSN)
			cp := e.cp
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
					doc, err := configfile.Read(path)
					if err != nil {
						t.Fatalf("the JSON export does not read as a config: %v", err)
					}
					cfg := doc.Config
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

// newConfigE2E starts a control plane holding one object of every kind,
// made with the real weftctl: the example package, a bearer definition
// whose token is crmToken, a connection using it, a channel and a job.
func newConfigE2E(t *testing.T, dsn string) *env {
	t.Helper()
	cp := testenv.StartControlPlane(t, dsn)
	e := &env{cp: cp, example: filepath.Join(testenv.ModuleRoot(t), "deploy", "examples", "hello")}
	e.ctlOK(t, "deploy", e.example)
	e.ctlOK(t, "security", "create", "crm-token", "--kind", "bearer", "--token", crmToken)
	e.ctlOK(t, "outgoing", "create", "crm", "--address", "https://crm.example", "--security", "crm-token")
	e.ctlOK(t, "channel", "create", channelName, "--path", channelPath, "--service", exampleService)
	e.ctlOK(t, "job", "create", "nightly", "--service", exampleService, "--type", "cron", "--cron", "0 3 * * *", "--payload", adaInput)
	return e
}

// TestConfigDiff compares an export with the live control plane with the
// real weftctl: unchanged it exits 0, with the secret from the environment
// or an env file; a changed field exits 1 and names it; a missing variable
// exits 2 and names it; and nothing in the control plane changes.
func TestConfigDiff(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			e := newConfigE2E(t, b.DSN)
			dir := t.TempDir()
			file := filepath.Join(dir, "weft.yaml")
			e.ctlOK(t, "export", "--file", file)
			before := e.ctlOK(t, "export").Stdout
			revBefore := liveRevision(t, e.cp)
			secretVar := "WEFT_SECRET_CRM_TOKEN_TOKEN=" + crmToken

			runSteps(t, []step{
				{"the export matches, the secret from the environment", func(t *testing.T) {
					res := testenv.CtlEnv(t, e.cp, []string{secretVar}, "diff", file, "-v")
					if res.ExitCode != 0 || !strings.Contains(res.Stdout, "no changes: 5 objects unchanged") ||
						!strings.Contains(res.Stdout, "= security crm-token\n") {
						t.Fatalf("weftctl diff of the export: %s\nwant exit 0 and every object unchanged", res)
					}
				}},
				{"the secret from an env file", func(t *testing.T) {
					envFile := filepath.Join(dir, "prod.env")
					if err := os.WriteFile(envFile, []byte("# prod\n"+secretVar+"\n"), 0o600); err != nil {
						t.Fatal(err)
					}
					if res := testenv.Ctl(t, e.cp, "diff", file, "--env-file", envFile); res.ExitCode != 0 {
						t.Fatalf("weftctl diff --env-file: %s\nwant exit 0", res)
					}
				}},
				{"a changed field and secret exit 1, naming them", func(t *testing.T) {
					b := readExport(t, file)
					changed := bytes.Replace(b, []byte("address: https://crm.example\n"), []byte("address: https://crm2.example\n"), 1)
					if bytes.Equal(changed, b) {
						t.Fatalf("the export lacks the connection's address:\n%s", b)
					}
					path := filepath.Join(dir, "changed.yaml")
					if err := os.WriteFile(path, changed, 0o644); err != nil {
						t.Fatal(err)
					}
					res := testenv.CtlEnv(t, e.cp, []string{"WEFT_SECRET_CRM_TOKEN_TOKEN=another-token"}, "diff", path)
					for _, want := range []string{
						`~ security crm-token: token changed (secret)`,
						`~ outgoing crm: address "https://crm.example" → "https://crm2.example"`,
						"plan: 0 to create, 2 to update, 0 to delete, 3 unchanged",
					} {
						if !strings.Contains(res.Stdout, want) {
							t.Errorf("weftctl diff of a changed file lacks %q", want)
						}
					}
					if res.ExitCode != 1 || strings.Contains(res.Stdout+res.Stderr, "another-token") || strings.Contains(res.Stdout+res.Stderr, crmToken) {
						t.Errorf("weftctl diff of a changed file: %s\nwant exit 1 and no secret shown", res)
					}
				}},
				{"a missing variable exits 2, naming it", func(t *testing.T) {
					res := testenv.Ctl(t, e.cp, "diff", file)
					if res.ExitCode != 2 || !strings.Contains(res.Stderr, `security "crm-token": token: variable WEFT_SECRET_CRM_TOKEN_TOKEN is not set`) {
						t.Errorf("weftctl diff without the variable: %s\nwant exit 2 naming it", res)
					}
				}},
				{"nothing changed", func(t *testing.T) {
					if after := e.ctlOK(t, "export").Stdout; after != before {
						t.Errorf("the export changed after diffs:\n%s\n---\n%s", before, after)
					}
					if after := liveRevision(t, e.cp); after != revBefore {
						t.Errorf("the newest object revision is %d after diffs, was %d", after, revBefore)
					}
				}},
			})
		})
	}
}

// liveRevision is the newest revision of any object of cp: a write of one
// would raise it.
func liveRevision(t *testing.T, cp *testenv.ControlPlane) int64 {
	t.Helper()
	ctx := context.Background()
	var revs []int64
	chs, err := cp.Channels().ListChannels(ctx, &adminv1.ListChannelsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range chs.GetChannels() {
		revs = append(revs, c.GetRevision())
	}
	defs, err := adminv1.NewSecurityServiceClient(cp.Conn()).ListSecurityDefinitions(ctx, &adminv1.ListSecurityDefinitionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range defs.GetDefinitions() {
		revs = append(revs, d.GetRevision())
	}
	conns, err := adminv1.NewOutgoingServiceClient(cp.Conn()).ListOutgoingConnections(ctx, &adminv1.ListOutgoingConnectionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range conns.GetConnections() {
		revs = append(revs, c.GetRevision())
	}
	jobs, err := adminv1.NewJobServiceClient(cp.Conn()).ListJobs(ctx, &adminv1.ListJobsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs.GetJobs() {
		revs = append(revs, j.GetRevision())
	}
	return slices.Max(revs)
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
	var v any
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatalf("the export is not YAML: %v\n%s", err, b)
	}
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
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
