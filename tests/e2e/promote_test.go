package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/weft-dev/weft/controlplane/pickup"
	"github.com/weft-dev/weft/controlplane/store/storetest"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	"github.com/weft-dev/weft/tests/testenv"
)

// portalPassword is the secret of the basic auth definition of the
// promotion test's secured channel.
const portalPassword = "portal-pw-5e1d"

// promoteEnv is a promotion from dev to prod: two control planes with
// their own databases, an agent on prod, and the files of the test.
type promoteEnv struct {
	dev, prod *env
	agent     *testenv.Agent
	dir       string
	exported  string // dev's export, with source
	envFile   string // the prod secrets
}

// TestConfigPromote promotes the config of a dev control plane (SQLite) to
// a prod one (each backend) with the real weftctl: export from dev, import
// into prod, export from prod is byte for byte dev's; prod's agent serves
// it; a second import and a dry run change nothing; a broken reference, a
// bad field and a missing variable change nothing and name file:line;
// --prune removes only what the file lacks; include: joins files; and a
// third control plane imports the export from --config-dir at start and a
// file dropped in its pickup directory.
func TestConfigPromote(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			p := newPromoteEnv(t, b.DSN)
			runSteps(t, []step{
				{"export from dev, import into prod: one revision", p.importIntoProd},
				{"prod's agent serves the imported channels", p.prodServes},
				{"prod exports what dev exported, byte for byte", p.sameExport},
				{"a second import is a no-op", p.secondImport},
				{"a dry run changes nothing", p.dryRun},
				{"a broken reference, a bad field, a missing variable: nothing changes, file:line named", p.refused},
				{"--prune removes only what the file lacks", p.prune},
				{"include: joins another file", p.include},
				{"--config-dir at start and the pickup directory import config", p.autoImport},
			})
		})
	}
}

func newPromoteEnv(t *testing.T, prodDSN string) *promoteEnv {
	t.Helper()
	p := &promoteEnv{dev: newConfigE2E(t, storetest.SQLite(t).DSN), dir: t.TempDir()}
	p.dev.ctlOK(t, "security", "create", "portal", "--kind", "basic_auth", "--username", "ada", "--password", portalPassword)
	p.dev.ctlOK(t, "channel", "create", "secure", "--path", "/api/secure", "--service", exampleService, "--security", "portal")
	p.exported = filepath.Join(p.dir, "dev.yaml")
	p.dev.ctlOK(t, "export", "--include-source", "--file", p.exported)
	p.envFile = filepath.Join(p.dir, "prod.env")
	secrets := fmt.Sprintf("WEFT_SECRET_CRM_TOKEN_TOKEN=%s\nWEFT_SECRET_PORTAL_PASSWORD=%s\n", crmToken, portalPassword)
	if err := os.WriteFile(p.envFile, []byte(secrets), 0o600); err != nil {
		t.Fatal(err)
	}
	cp := testenv.StartControlPlane(t, prodDSN)
	p.agent = testenv.StartAgent(t, cp, "prod-1")
	p.prod = &env{cp: cp, agents: []*testenv.Agent{p.agent}}
	return p
}

// export is prod's export with source.
func (p *promoteEnv) export(t *testing.T) string {
	t.Helper()
	return p.prod.ctlOK(t, "export", "--include-source").Stdout
}

// write writes a file of the test and returns its path.
func (p *promoteEnv) write(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// edited is dev's export with old replaced by new, once; it fails when old
// is not there.
func (p *promoteEnv) edited(t *testing.T, old, new string) string {
	t.Helper()
	b := readExport(t, p.exported)
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("the export lacks %q:\n%s", old, b)
	}
	return string(bytes.Replace(b, []byte(old), []byte(new), 1))
}

// lineOf is the 1-based line of the first occurrence of s in content.
func lineOf(t *testing.T, content, s string) int {
	t.Helper()
	i := strings.Index(content, s)
	if i < 0 {
		t.Fatalf("%q not found", s)
	}
	return strings.Count(content[:i], "\n") + 1
}

func (p *promoteEnv) importIntoProd(t *testing.T) {
	res := p.prod.ctlOK(t, "import", p.exported, "--env-file", p.envFile)
	// 2 security definitions, 1 connection, 1 package, 2 channels, 1 job,
	// all in revision 1 of an empty database.
	for _, want := range []string{"+ security crm-token\n", "+ package hello\n", "+ channel secure\n", "+ job nightly\n",
		"imported: 7 created, 0 updated, 0 deleted, 0 unchanged; revision 1\n"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("weftctl import lacks %q:\n%s", want, res.Stdout)
		}
	}
	if strings.Contains(res.Stdout+res.Stderr, portalPassword) || strings.Contains(res.Stdout+res.Stderr, crmToken) {
		t.Error("weftctl import showed a secret")
	}
}

func (p *promoteEnv) prodServes(t *testing.T) {
	testenv.AwaitAgentsSynced(t, p.prod.cp, 1, time.Minute, p.agent.ID)
	code, _, body := do(t, "POST", p.agent.URL(channelPath), "application/json", adaInput, nil)
	if code != http.StatusOK || !strings.Contains(string(body), "Ada") {
		t.Errorf("POST %s on prod: %d %s", channelPath, code, body)
	}
	req, _ := http.NewRequest("POST", "/", nil)
	req.SetBasicAuth("ada", portalPassword)
	if code, _, body := do(t, "POST", p.agent.URL("/api/secure"), "application/json", adaInput, req.Header); code != http.StatusOK {
		t.Errorf("POST /api/secure with the imported password: %d %s", code, body)
	}
	if code, _, _ := do(t, "POST", p.agent.URL("/api/secure"), "application/json", adaInput, nil); code != http.StatusUnauthorized {
		t.Errorf("POST /api/secure without credentials: %d, want 401", code)
	}
}

func (p *promoteEnv) sameExport(t *testing.T) {
	if got, want := p.export(t), string(readExport(t, p.exported)); got != want {
		t.Fatalf("prod's export differs from dev's:\n%s\n--- dev\n%s", got, want)
	}
}

func (p *promoteEnv) secondImport(t *testing.T) {
	res := p.prod.ctlOK(t, "import", p.exported, "--env-file", p.envFile)
	if !strings.HasSuffix(res.Stdout, "no changes: 7 objects unchanged; revision 1\n") {
		t.Errorf("second import: %s\nwant no changes at revision 1", res)
	}
}

func (p *promoteEnv) dryRun(t *testing.T) {
	before := p.export(t)
	path := p.write(t, "dry.yaml", p.edited(t, "address: https://crm.example\n", "address: https://crm-prod.example\n"))
	res := p.prod.ctlOK(t, "import", path, "--env-file", p.envFile, "--dry-run")
	for _, want := range []string{`~ outgoing crm: address "https://crm.example" → "https://crm-prod.example"`,
		"dry run, nothing was changed: 0 to create, 1 to update, 0 to delete, 6 unchanged; revision 1"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("weftctl import --dry-run lacks %q:\n%s", want, res.Stdout)
		}
	}
	if after := p.export(t); after != before {
		t.Errorf("a dry run changed prod:\n%s", after)
	}
}

func (p *promoteEnv) refused(t *testing.T) {
	before := p.export(t)
	broken := p.edited(t, "service: hello.greet\n  start_at", "service: nope.run\n  start_at")
	bad := p.edited(t, "cron: 0 3 * * *", "cron: 61 3 * * *")
	exported := string(readExport(t, p.exported))
	cases := []struct {
		name, file, content string
		env                 []string
		want                string
	}{
		{"broken reference", "broken.yaml", broken, []string{"--env-file", p.envFile},
			fmt.Sprintf(`broken.yaml:%d: job "nightly": service: service "nope.run" is not deployed`, lineOf(t, broken, "service: nope.run"))},
		{"bad field", "bad.yaml", bad, []string{"--env-file", p.envFile},
			fmt.Sprintf(`bad.yaml:%d: job "nightly": cron:`, lineOf(t, bad, "cron: 61"))},
		{"missing variable", "noenv.yaml", exported, nil,
			fmt.Sprintf(`noenv.yaml:%d: security "crm-token": token: variable WEFT_SECRET_CRM_TOKEN_TOKEN is not set`,
				lineOf(t, exported, "token: ${WEFT_SECRET_CRM_TOKEN_TOKEN}"))},
	}
	for _, c := range cases {
		path := p.write(t, c.file, c.content)
		res := testenv.Ctl(t, p.prod.cp, append([]string{"import", path}, c.env...)...)
		if res.ExitCode == 0 || !strings.Contains(res.Stderr, c.want) {
			t.Errorf("%s: %s\nwant a refusal saying %q", c.name, res, c.want)
		}
	}
	if after := p.export(t); after != before {
		t.Errorf("a refused import changed prod:\n%s", after)
	}
}

func (p *promoteEnv) prune(t *testing.T) {
	p.prod.ctlOK(t, "outgoing", "create", "spare", "--address", "https://spare.example")
	p.prod.ctlOK(t, "channel", "create", "extra", "--path", "/api/extra", "--service", exampleService)
	res := p.prod.ctlOK(t, "import", p.exported, "--env-file", p.envFile, "--prune")
	for _, want := range []string{"- outgoing spare\n", "- channel extra\n", "imported: 0 created, 0 updated, 2 deleted, 7 unchanged"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("weftctl import --prune lacks %q:\n%s", want, res.Stdout)
		}
	}
	p.sameExport(t)
}

func (p *promoteEnv) include(t *testing.T) {
	root := p.write(t, "root.yaml", `include:
- dev.yaml
channels:
- name: extra
  path: /api/extra
  service: hello.greet
`)
	res := p.prod.ctlOK(t, "import", root, "--env-file", p.envFile, "--dry-run")
	if !strings.Contains(res.Stdout, "+ channel extra\n") || !strings.Contains(res.Stdout, "1 to create, 0 to update, 0 to delete, 7 unchanged") {
		t.Errorf("import of a file including the export: %s", res)
	}
}

func (p *promoteEnv) autoImport(t *testing.T) {
	configDir, pickupDir := filepath.Join(p.dir, "config.d"), filepath.Join(p.dir, "pickup")
	if err := os.MkdirAll(configDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(configDir, "weft.yaml"), readExport(t, p.exported), 0o644); err != nil {
		t.Fatal(err)
	}
	third := testenv.StartControlPlane(t, storetest.SQLite(t).DSN,
		testenv.WithArgs("--config-dir", configDir, "--pickup-dir", pickupDir, "--pickup-interval", "100ms"),
		testenv.WithEnv("WEFT_SECRET_CRM_TOKEN_TOKEN="+crmToken, "WEFT_SECRET_PORTAL_PASSWORD="+portalPassword))
	e := &env{cp: third}
	if got, want := e.ctlOK(t, "export", "--include-source").Stdout, string(readExport(t, p.exported)); got != want {
		t.Fatalf("the export of a control plane started with --config-dir differs from dev's:\n%s", got)
	}
	dropped := filepath.Join(pickupDir, "more.yaml")
	if err := os.WriteFile(dropped, []byte("channels:\n- name: dropped\n  path: /api/dropped\n  service: hello.greet\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.Await(t, 10*time.Second, "the pickup directory imports more.yaml", func() (bool, string) {
		res := testenv.Ctl(t, third, "channel", "get", "dropped")
		return res.ExitCode == 0, res.String()
	})
	testenv.Await(t, 5*time.Second, "more.yaml moves to "+pickup.DeployedDir, func() (bool, string) {
		moved, _ := filepath.Glob(filepath.Join(pickupDir, pickup.DeployedDir, "*-more.yaml"))
		return len(moved) == 1, fmt.Sprint(moved)
	})
}

// dollars holds every form of "$" and "${" a literal value may hold: a
// "${" before a dotted name, a digit, a dash, nothing, spaces; an escaped
// one; "$$"; a "$" before a backquote; one without its "}"; and a
// trailing "$". Export writes each "${" as "$${", and import must read it
// back as it was, whatever follows.
const dollars = "for ${order.id} ${5} ${a-b} ${} ${ x } $${x} $$${y} $$ $`{z}` ${HOME} ${open $"

// dollarPayload is a job payload holding dollars, its first "${" early so
// that a plan, which cuts values at 80 characters, shows a change there.
const dollarPayload = `{"note":"for ${order.id}","name":"Ada","all":"` + dollars + `"}`

// dollarSecrets are the secrets of the dollar test's definitions; the JWT
// key holds a "${" that is no variable, which a secret may.
var dollarSecrets = map[string]string{
	"WEFT_SECRET_LIT_JWT_SECRET":     "hs256-key-${5}-$${x}-0123456789abcdef0123456789",
	"WEFT_SECRET_LIT_BASIC_PASSWORD": "pw-$$-${ x }",
	"WEFT_SECRET_LIT_KEY_KEY":        "key-${}-$",
}

// TestConfigPromoteDollars promotes, with the real weftctl, a config whose
// strings hold every form of "$" and "${" (job payloads, channel paths,
// outgoing addresses, path templates, SOAP actions and headers, security
// definitions' names, headers, users, issuers and audiences) from a dev
// control plane to an empty one: prod then holds every value as dev does,
// its export is dev's byte for byte, and diff exits 0 against both; a
// "${" text changed in prod or in the file makes diff exit 1 and show it;
// and a hand-written "${" that is no variable is refused, naming
// file:line, with nothing changed.
func TestConfigPromoteDollars(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			dev := newDollarDev(t)
			prod := &env{cp: testenv.StartControlPlane(t, b.DSN)}
			dir := t.TempDir()
			exported := filepath.Join(dir, "dev.yaml")
			envFile := filepath.Join(dir, "prod.env")
			var secrets strings.Builder
			for k, v := range dollarSecrets {
				fmt.Fprintf(&secrets, "%s=%s\n", k, v)
			}
			if err := os.WriteFile(envFile, []byte(secrets.String()), 0o600); err != nil {
				t.Fatal(err)
			}
			diff := func(t *testing.T, e *env, file string) testenv.Result {
				t.Helper()
				return testenv.Ctl(t, e.cp, "diff", file, "--env-file", envFile)
			}

			runSteps(t, []step{
				{"export from dev, import into an empty control plane", func(t *testing.T) {
					dev.ctlOK(t, "export", "--include-source", "--file", exported)
					res := prod.ctlOK(t, "import", exported, "--env-file", envFile)
					if !strings.Contains(res.Stdout, "imported: 7 created, 0 updated, 0 deleted, 0 unchanged") {
						t.Errorf("weftctl import: %s\nwant 7 objects created", res)
					}
				}},
				{"prod holds every value as dev does", func(t *testing.T) {
					sameObjects(t, dev.cp, prod.cp)
					job, err := adminv1.NewJobServiceClient(prod.cp.Conn()).GetJob(context.Background(), &adminv1.GetJobRequest{Name: "lit-job"})
					if err != nil {
						t.Fatal(err)
					}
					if got := job.GetJob().GetPayload(); got != dollarPayload {
						t.Errorf("prod's payload\n%s\nwant\n%s", got, dollarPayload)
					}
				}},
				{"prod's export is dev's, byte for byte", func(t *testing.T) {
					want := string(readExport(t, exported))
					if got := prod.ctlOK(t, "export", "--include-source").Stdout; got != want {
						t.Fatalf("prod's export differs from dev's:\n%s\n--- dev\n%s", got, want)
					}
				}},
				{"diff exits 0 against dev and prod", func(t *testing.T) {
					for name, e := range map[string]*env{"dev": dev, "prod": prod} {
						if res := diff(t, e, exported); res.ExitCode != 0 || !strings.Contains(res.Stdout, "no changes: 7 objects unchanged") {
							t.Errorf("weftctl diff of dev's export against %s: %s\nwant exit 0, no changes", name, res)
						}
					}
				}},
				{"a ${ text changed in prod: diff exits 1 and shows it", func(t *testing.T) {
					// One "$" more, deep in the payload: the plan shows the
					// values from a little before where they differ.
					changed := strings.Replace(dollarPayload, "${HOME}", "$${HOME}", 1)
					prod.ctlOK(t, "job", "update", "lit-job", "--payload", changed)
					res := diff(t, prod, exported)
					line, _, _ := strings.Cut(res.Stdout[strings.Index(res.Stdout, "~ job lit-job: payload ")+1:], "\n")
					from, to, _ := strings.Cut(line, " → ")
					if res.ExitCode != 1 || !strings.Contains(from, "$`{z}` $${HOME} ${open $") || !strings.Contains(to, "$`{z}` ${HOME} ${open $") {
						t.Errorf("weftctl diff after prod's payload changed: %s\nwant exit 1 and ~ job lit-job: payload …$${HOME}… → …${HOME}…", res)
					}
					prod.ctlOK(t, "job", "update", "lit-job", "--payload", dollarPayload)
					if res := diff(t, prod, exported); res.ExitCode != 0 {
						t.Errorf("weftctl diff after the payload was put back: %s\nwant exit 0", res)
					}
				}},
				{"a ${ text changed in the file: diff exits 1 and shows it", func(t *testing.T) {
					b := readExport(t, exported)
					// The audience "${5} $${x}" is written "$${5} $$${x}"; the
					// file now says "${5} ${x}" instead: one "$" less.
					const old, new = "audience: $${5} $$${x}\n", "audience: $${5} $${x}\n"
					if !bytes.Contains(b, []byte(old)) {
						t.Fatalf("the export lacks %q:\n%s", old, b)
					}
					path := filepath.Join(dir, "changed.yaml")
					if err := os.WriteFile(path, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644); err != nil {
						t.Fatal(err)
					}
					res := diff(t, prod, path)
					want := `~ security lit-jwt: audience "${5} $${x}" → "${5} ${x}"`
					if res.ExitCode != 1 || !strings.Contains(res.Stdout, want) {
						t.Errorf("weftctl diff of an edited file: %s\nwant exit 1 and %s", res, want)
					}
				}},
				{"a hand-written ${ that is no variable is refused at its line", func(t *testing.T) {
					before := prod.ctlOK(t, "export", "--include-source").Stdout
					content := "jobs:\n- name: lit-job\n  service: hello.greet\n  type: cron\n  cron: 0 3 * * *\n" +
						"  payload: '{\"id\":\"${order.id}\"}'\n"
					path := filepath.Join(dir, "hand.yaml")
					if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
						t.Fatal(err)
					}
					want := `hand.yaml:6: job "lit-job": payload: "${order.id}" is not a variable (a letter or _, then letters, digits and _); write $${ for a literal ${`
					for _, cmd := range []string{"import", "diff"} {
						res := testenv.Ctl(t, prod.cp, cmd, path)
						if res.ExitCode == 0 || res.ExitCode == 1 && cmd == "diff" || !strings.Contains(res.Stderr, want) {
							t.Errorf("weftctl %s of a file with ${order.id}: %s\nwant a refusal saying %s", cmd, res, want)
						}
					}
					if after := prod.ctlOK(t, "export", "--include-source").Stdout; after != before {
						t.Errorf("a refused import changed prod:\n%s", after)
					}
				}},
			})
		})
	}
}

// newDollarDev starts a dev control plane (SQLite) whose objects, made
// with the real weftctl, hold dollars, or as much of it as each field
// allows (a channel's path takes "$" but not "{"; a header name is a
// token): the example package, three security definitions, a connection,
// a channel and a job.
func newDollarDev(t *testing.T) *env {
	t.Helper()
	e := &env{cp: testenv.StartControlPlane(t, storetest.SQLite(t).DSN), example: filepath.Join(testenv.ModuleRoot(t), "deploy", "examples", "hello")}
	e.ctlOK(t, "deploy", e.example)
	e.ctlOK(t, "security", "create", "lit-jwt", "--kind", "jwt", "--algorithms", "HS256",
		"--secret", dollarSecrets["WEFT_SECRET_LIT_JWT_SECRET"], "--issuer", "https://iss.example/"+dollars, "--audience", "${5} $${x}")
	e.ctlOK(t, "security", "create", "lit-basic", "--kind", "basic_auth", "--username", "ada "+dollars,
		"--password", dollarSecrets["WEFT_SECRET_LIT_BASIC_PASSWORD"])
	e.ctlOK(t, "security", "create", "lit-key", "--kind", "api_key", "--header", "X-Key-$$-$",
		"--key", dollarSecrets["WEFT_SECRET_LIT_KEY_KEY"])
	e.ctlOK(t, "outgoing", "create", "lit-out", "--address", "https://crm.example/v1/${tenant}/$$",
		"--path", "/cost$/$$/{id}/$", "--format", "soap11", "--soap-action", "urn:"+strings.ReplaceAll(dollars, "`", ""),
		"--header", "X-Note="+dollars, "--header", "X-$$-Cost$=$")
	e.ctlOK(t, "channel", "create", "lit-ch", "--path", "/api/cost$/$$/{id}/$", "--service", exampleService, "--security", "lit-basic")
	e.ctlOK(t, "job", "create", "lit-job", "--service", exampleService, "--type", "cron", "--cron", "0 3 * * *", "--payload", dollarPayload)
	return e
}

// sameObjects checks that two control planes hold the same security
// definitions (redacted), connections, channels and jobs, leaving aside
// what each keeps for itself (times, revisions, a job's next firing).
func sameObjects(t *testing.T, a, b *testenv.ControlPlane) {
	t.Helper()
	ctx := context.Background()
	list := func(cp *testenv.ControlPlane) []proto.Message {
		var out []proto.Message
		defs, err := adminv1.NewSecurityServiceClient(cp.Conn()).ListSecurityDefinitions(ctx, &adminv1.ListSecurityDefinitionsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range defs.GetDefinitions() {
			out = append(out, d)
		}
		conns, err := adminv1.NewOutgoingServiceClient(cp.Conn()).ListOutgoingConnections(ctx, &adminv1.ListOutgoingConnectionsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range conns.GetConnections() {
			out = append(out, c)
		}
		chs, err := cp.Channels().ListChannels(ctx, &adminv1.ListChannelsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range chs.GetChannels() {
			out = append(out, c)
		}
		jobs, err := adminv1.NewJobServiceClient(cp.Conn()).ListJobs(ctx, &adminv1.ListJobsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs.GetJobs() {
			out = append(out, j)
		}
		for _, m := range out {
			r := m.ProtoReflect()
			for _, n := range []protoreflect.Name{"created_at", "updated_at", "revision", "next_run_at", "lease", "last_run"} {
				if fd := r.Descriptor().Fields().ByName(n); fd != nil {
					r.Clear(fd)
				}
			}
		}
		return out
	}
	got, want := list(b), list(a)
	if len(got) != len(want) {
		t.Fatalf("%d objects, want %d", len(got), len(want))
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Errorf("differs:\n%s\nwant\n%s", prototext.Format(got[i]), prototext.Format(want[i]))
		}
	}
}
