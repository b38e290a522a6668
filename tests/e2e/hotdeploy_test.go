package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"

	"github.com/weft-dev/weft/controlplane/store/storetest"
	"github.com/weft-dev/weft/tests/testenv"
)

// TestHotDeploy walks the hot deployment acceptance list on every backend:
// every way in, deploy --wait, rollback, the agents' backup log, runaway and
// panicking services, and refusals at the door. One control plane (with a
// pickup directory and a sources list) and two agents serve all steps:
// agent-1 keeps 3 backups; agent-2 refuses packages over 4000 bytes, which
// is how one agent is made to NACK.
func TestHotDeploy(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			h := newHotEnv(t, b.DSN)
			runSteps(t, []step{
				{"every way in reaches both agents and history", h.waysIn},
				{"deploy --wait exits 0, or names the agent that refused", h.deployWait},
				{"rollback restores the old behaviour", h.rollback},
				{"the backup log keeps the configured count", h.backups},
				{"a runaway service gets 504 and a fixed version serves", h.runaway},
				{"a panicking service gets 500 and the agent stays up", h.panics},
				{"os/exec and range over int are refused at the door", h.refused},
			})
		})
	}
}

const agentPackageLimit = 4000

type hotEnv struct {
	cp     *testenv.ControlPlane
	agents []*testenv.Agent
	pickup string
	work   string
}

func newHotEnv(t *testing.T, dsn string) *hotEnv {
	h := &hotEnv{pickup: filepath.Join(t.TempDir(), "pickup"), work: t.TempDir()}
	list := filepath.Join(h.work, "services-sources.txt")
	writeFile(t, filepath.Join(h.work, "atstart", "atstart.go"), serviceSource("atstart", ""))
	writeFile(t, list, "# deployed when the control plane starts\n\natstart   # a comment at the end of a line\n")
	h.cp = testenv.StartControlPlane(t, dsn, testenv.WithArgs("--pickup-dir", h.pickup, "--pickup-interval", "200ms", "--sources", list))
	h.agents = []*testenv.Agent{
		testenv.StartAgent(t, h.cp, "agent-1", testenv.WithArgs("--backups", "3")),
		testenv.StartAgent(t, h.cp, "agent-2", testenv.WithArgs("--max-package-bytes", fmt.Sprint(agentPackageLimit))),
	}
	return h
}

// serviceSource is a package pkg registering pkg.hi, which answers
// {"from": pkg, "v": version} unless body says otherwise.
func serviceSource(pkg, body string) string {
	if body == "" {
		body = fmt.Sprintf(`return map[string]any{"from": %q}, nil`, pkg)
	}
	return fmt.Sprintf(`package %s

import "github.com/weft-dev/weft/agent/sdk"

func init() {
	sdk.Register(%q, func(ctx *sdk.Context, in map[string]any) (map[string]any, error) {
		%s
	})
}
`, pkg, pkg+".hi", body)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ctl runs weftctl and fails the test unless it exits 0.
func (h *hotEnv) ctl(t *testing.T, args ...string) testenv.Result {
	t.Helper()
	r := testenv.Ctl(t, h.cp, args...)
	if r.ExitCode != 0 {
		t.Fatalf("weftctl %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// awaitFrom waits until service answers with "from": want on every agent.
func (h *hotEnv) awaitFrom(t *testing.T, service, want string) {
	t.Helper()
	for _, a := range h.agents {
		testenv.Await(t, 10*time.Second, fmt.Sprintf("%s on %s answers %q", service, a.ID, want), func() (bool, string) {
			r := testenv.Ctl(t, h.cp, "invoke", service, "--agent", a.ID)
			var out struct {
				From string `json:"from"`
			}
			if r.ExitCode != 0 || json.Unmarshal([]byte(r.Stdout), &out) != nil {
				return false, r.String()
			}
			return out.From == want, r.Stdout
		})
	}
}

// history returns the deploy history as weftctl's JSON shows it.
func (h *hotEnv) history(t *testing.T, pkg string) []*adminv1.Package {
	t.Helper()
	var resp adminv1.ListPackageVersionsResponse
	if r := testenv.CtlJSON(t, h.cp, &resp, "deploy", "history", pkg); r.ExitCode != 0 {
		t.Fatalf("deploy history %s: %s", pkg, r)
	}
	return resp.GetVersions()
}

func (h *hotEnv) waysIn(t *testing.T) {
	// The sources list was deployed at start.
	h.awaitFrom(t, "atstart.hi", "atstart")
	if v := h.history(t, "atstart"); len(v) != 1 || !strings.HasPrefix(v[0].GetAuthor(), "sources:") {
		t.Fatalf("history of atstart = %v, want one version by sources:...", v)
	}

	// A file, and several packages (a directory and a file) at once.
	file := filepath.Join(h.work, "single.go")
	writeFile(t, file, serviceSource("single", ""))
	h.ctl(t, "deploy", file)
	h.awaitFrom(t, "single.hi", "single")

	writeFile(t, filepath.Join(h.work, "multi1", "multi1.go"), serviceSource("multi1", ""))
	writeFile(t, filepath.Join(h.work, "multi1", "multi1_test.go"), "package multi1\n")
	writeFile(t, filepath.Join(h.work, "multi2.go"), serviceSource("multi2", ""))
	before := h.cp.DesiredRevision(t)
	h.ctl(t, "deploy", filepath.Join(h.work, "multi1"), filepath.Join(h.work, "multi2.go"))
	if after := h.cp.DesiredRevision(t); after != before+1 {
		t.Fatalf("a deploy of two packages moved the revision from %d to %d, want one step", before, after)
	}
	h.awaitFrom(t, "multi1.hi", "multi1")
	h.awaitFrom(t, "multi2.hi", "multi2")

	// A file dropped in the pickup directory, with no other action.
	writeFile(t, filepath.Join(h.pickup, "dropped.go"), serviceSource("dropped", ""))
	h.awaitFrom(t, "dropped.hi", "dropped")
	if v := h.history(t, "dropped"); len(v) != 1 || v[0].GetAuthor() != "pickup:dropped.go" {
		t.Fatalf("history of dropped = %v, want one version by pickup:dropped.go", v)
	}
	testenv.Await(t, 10*time.Second, "dropped.go moves to .deployed", func() (bool, string) {
		m, _ := filepath.Glob(filepath.Join(h.pickup, ".deployed", "*-dropped.go"))
		return len(m) == 1, fmt.Sprint(m)
	})

	// A sources list through weftctl.
	writeFile(t, filepath.Join(h.work, "listed", "listed.go"), serviceSource("listed", ""))
	list := filepath.Join(h.work, "more-sources.txt")
	writeFile(t, list, "# through weftctl\nlisted\t# a comment at the end of a line\n")
	h.ctl(t, "deploy", "--sources", list)
	h.awaitFrom(t, "listed.hi", "listed")

	// The Deploy RPC with the source bytes, as a script would send them.
	body := fmt.Sprintf(`{"packages":[{"files":[{"name":"viarpc.go","content":%q}]}]}`,
		base64.StdEncoding.EncodeToString([]byte(serviceSource("viarpc", ""))))
	if r := h.cp.Grpcurl(t, "-d", body, h.cp.Addr, "weft.admin.v1.PackageService/Deploy"); r.ExitCode != 0 {
		t.Fatalf("grpcurl Deploy: %s", r)
	}
	h.awaitFrom(t, "viarpc.hi", "viarpc")

	for _, pkg := range []string{"single", "multi1", "multi2", "listed", "viarpc"} {
		if v := h.history(t, pkg); len(v) != 1 || v[0].GetAuthor() != "admin" {
			t.Errorf("history of %s = %v, want one version by admin (the token weftctl and grpcurl send)", pkg, v)
		}
	}
}

func (h *hotEnv) deployWait(t *testing.T) {
	dir := filepath.Join(h.work, "waited")
	writeFile(t, filepath.Join(dir, "waited.go"), serviceSource("waited", ""))
	r := h.ctl(t, "deploy", dir, "--wait", "--wait-timeout", "20s")
	if !strings.Contains(r.Stdout, "deployed on 2 agents") {
		t.Fatalf("deploy --wait: %s; want `deployed on 2 agents`", r)
	}

	// agent-2 takes no package over its limit: it refuses, agent-1 applies.
	big := filepath.Join(h.work, "big")
	writeFile(t, filepath.Join(big, "big.go"), serviceSource("big", "")+"\n// "+strings.Repeat("padding ", agentPackageLimit/8)+"\n")
	r = testenv.Ctl(t, h.cp, "deploy", big, "--wait", "--wait-timeout", "20s")
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, "agent-2") || !strings.Contains(r.Stderr, "max-package-bytes") {
		t.Fatalf("deploy --wait of a package agent-2 refuses: %s; want a non-zero exit naming agent-2 and why", r)
	}
	// --wait stops at the first refusal; agent-1 applies it all the same.
	testenv.Await(t, 10*time.Second, "deploy status big: agent-1 deployed, agent-2 failed", func() (bool, string) {
		var status adminv1.GetDeployStatusResponse
		testenv.CtlJSON(t, h.cp, &status, "deploy", "status", "big")
		states := map[string]adminv1.DeployState{}
		for _, a := range status.GetAgents() {
			states[a.GetAgentId()] = a.GetState()
		}
		return states["agent-1"] == adminv1.DeployState_DEPLOY_STATE_DEPLOYED && states["agent-2"] == adminv1.DeployState_DEPLOY_STATE_FAILED, fmt.Sprint(states)
	})

	// Undeploying it brings agent-2 back in step.
	h.ctl(t, "undeploy", "big")
	testenv.AwaitAgentsSynced(t, h.cp, h.cp.DesiredRevision(t), time.Minute, "agent-1", "agent-2")
}

func (h *hotEnv) rollback(t *testing.T) {
	dir := filepath.Join(h.work, "roll")
	writeFile(t, filepath.Join(dir, "roll.go"), serviceSource("roll", `return map[string]any{"from": "old"}, nil`))
	h.ctl(t, "deploy", dir, "--wait")
	writeFile(t, filepath.Join(dir, "roll.go"), serviceSource("roll", `return map[string]any{"from": "new"}, nil`))
	h.ctl(t, "deploy", dir, "--wait")
	h.awaitFrom(t, "roll.hi", "new")

	r := h.ctl(t, "rollback", "roll", "--wait")
	if !strings.Contains(r.Stdout, "content of v1") {
		t.Fatalf("rollback: %s", r)
	}
	h.awaitFrom(t, "roll.hi", "old")
	if v := h.history(t, "roll"); len(v) != 3 || v[0].GetSha256() != v[2].GetSha256() {
		t.Fatalf("history after rollback = %v, want v3 with v1's content", v)
	}
}

func (h *hotEnv) backups(t *testing.T) {
	dir := filepath.Join(h.work, "churn")
	for i := range 5 {
		writeFile(t, filepath.Join(dir, "churn.go"), serviceSource("churn", fmt.Sprintf(`return map[string]any{"from": "churn-%d"}, nil`, i)))
		h.ctl(t, "deploy", dir, "--wait")
	}
	var resp adminv1.ListAgentBackupsResponse
	if r := testenv.CtlJSON(t, h.cp, &resp, "agent", "backups", "agent-1"); r.ExitCode != 0 {
		t.Fatalf("agent backups: %s", r)
	}
	if resp.GetLimit() != 3 || len(resp.GetBackups()) != 3 {
		t.Fatalf("agent-1 keeps %d backups (limit %d), want 3 of 3: %v", len(resp.GetBackups()), resp.GetLimit(), resp.GetBackups())
	}
	if b := resp.GetBackups(); b[0].GetRevision() <= b[2].GetRevision() {
		t.Fatalf("backups are not newest first: %v", b)
	}
}

func (h *hotEnv) runaway(t *testing.T) {
	dir := filepath.Join(h.work, "loopy")
	writeFile(t, filepath.Join(dir, "loopy.go"), serviceSource("loopy", "n := 0\n\t\tfor {\n\t\t\tn++\n\t\t}"))
	h.ctl(t, "deploy", dir, "--wait")
	h.ctl(t, "channel", "create", "loopy", "--path", "/api/loopy", "--service", "loopy.hi", "--timeout", "1s")
	testenv.AwaitAgentsSynced(t, h.cp, h.cp.DesiredRevision(t), time.Minute, "agent-1", "agent-2")

	for _, a := range h.agents {
		pid := a.PID()
		start := time.Now()
		resp := testenv.PostJSON(t, a.URL("/api/loopy"), `{}`)
		took := time.Since(start)
		if resp.Status != 504 {
			t.Fatalf("%s: runaway service: %s; want 504", a.ID, resp)
		}
		t.Logf("%s: runaway service answered 504 after %v (its deadline is 1s; BenchmarkRunaways measures the lateness)", a.ID, took)
		if !a.Running() || a.PID() != pid {
			t.Fatalf("%s: the agent did not survive a runaway service", a.ID)
		}
	}
	writeFile(t, filepath.Join(dir, "loopy.go"), serviceSource("loopy", `return map[string]any{"from": "fixed"}, nil`))
	h.ctl(t, "deploy", dir, "--wait")
	for _, a := range h.agents {
		if resp := testenv.PostJSON(t, a.URL("/api/loopy"), `{}`); resp.Status != 200 || !strings.Contains(string(resp.Body), "fixed") {
			t.Fatalf("%s: fixed version: %s; want 200 from it", a.ID, resp)
		}
	}
}

func (h *hotEnv) panics(t *testing.T) {
	dir := filepath.Join(h.work, "boom")
	writeFile(t, filepath.Join(dir, "boom.go"), serviceSource("boom", `panic("boom")`))
	h.ctl(t, "deploy", dir, "--wait")
	h.ctl(t, "channel", "create", "boom", "--path", "/api/boom", "--service", "boom.hi")
	testenv.AwaitAgentsSynced(t, h.cp, h.cp.DesiredRevision(t), time.Minute, "agent-1", "agent-2")
	for _, a := range h.agents {
		pid := a.PID()
		resp := testenv.PostJSON(t, a.URL("/api/boom"), `{}`)
		var body struct {
			Error string `json:"error"`
			CID   string `json:"cid"`
		}
		if resp.Status != 500 || json.Unmarshal(resp.Body, &body) != nil || body.CID == "" || body.CID != resp.Header.Get("X-Weft-CID") {
			t.Fatalf("%s: panicking service: %s; want 500 with the cid in the body and header", a.ID, resp)
		}
		// The panic's value is the service's inside: the caller reads a
		// generic message with the CID, under which the agent logged it.
		if want := "the service failed; see the agent log, cid " + body.CID; body.Error != want {
			t.Errorf("%s: panic error %q, want %q", a.ID, body.Error, want)
		}
		if !a.Running() || a.PID() != pid || h.cp.Agent(t, a.ID).GetPid() != int64(pid) {
			t.Fatalf("%s: the agent restarted or stopped after a panic", a.ID)
		}
	}
}

func (h *hotEnv) refused(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string // of the package directory deployed
		want  []string          // each in the one answer
	}{
		{"os/exec", map[string]string{"bad.go": "package bad\n\nimport (\n\t\"os/exec\"\n\n\t\"github.com/weft-dev/weft/agent/sdk\"\n)\n\nfunc init() { _ = exec.Command; sdk.Register(\"bad.x\", nil) }\n"},
			[]string{`bad.go:4:2: import "os/exec" is not allowed`}},
		{"range over int", map[string]string{"bad.go": serviceSource("bad", "n := 0\n\t\tfor i := range 10 {\n\t\t\tn += i\n\t\t}\n\t\treturn map[string]any{\"n\": n}, nil")},
			[]string{"bad.go:8:18: range over an integer"}},
		// A refused import does not hide the package's other problems.
		{"refused import and a type error in another file", map[string]string{
			"bad.go":   "package bad\n\nimport (\n\t\"os/exec\"\n\n\t\"github.com/weft-dev/weft/agent/sdk\"\n)\n\nfunc init() { _ = exec.Command; sdk.Register(\"bad.x\", nil) }\n",
			"other.go": "package bad\n\nfunc count() int {\n\treturn \"three\"\n}\n",
		}, []string{`bad.go:4:2: import "os/exec" is not allowed`, `other.go:4:9: cannot use "three"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.cp.DesiredRevision(t)
			dir := filepath.Join(t.TempDir(), "bad")
			for name, src := range tt.files {
				writeFile(t, filepath.Join(dir, name), src)
			}
			r := testenv.Ctl(t, h.cp, "deploy", dir)
			for _, want := range tt.want {
				if r.ExitCode == 0 || !strings.Contains(r.Stderr, want) {
					t.Fatalf("deploy: %s; want a non-zero exit with %q", r, want)
				}
			}
			if after := h.cp.DesiredRevision(t); after != before {
				t.Fatalf("a refused deploy moved the revision from %d to %d", before, after)
			}
		})
	}
}
