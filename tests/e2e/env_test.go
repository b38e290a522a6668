package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	"github.com/weft-dev/weft/tests/testenv"
)

// The example service and the channel the steps use.
const (
	examplePackage = "hello"
	exampleService = "hello.greet"
	channelName    = "hello"
	channelPath    = "/api/hello"
	adaInput       = `{"name":"Ada"}`
)

// env is the fleet of one backend's run and what the steps have done to it.
type env struct {
	cp      *testenv.ControlPlane
	agents  []*testenv.Agent
	example string // the example package directory

	rev      int64  // the current config revision
	version  int64  // the current version of the example package
	greeting string // what hello.greet answers Ada now
}

func newEnv(t *testing.T, dsn string) *env {
	cp := testenv.StartControlPlane(t, dsn)
	e := &env{
		cp:      cp,
		example: filepath.Join(testenv.ModuleRoot(t), "deploy", "examples", "hello"),
	}
	for i := 1; i <= 2; i++ {
		e.agents = append(e.agents, testenv.StartAgent(t, cp, fmt.Sprintf("agent-%d", i),
			testenv.WithArgs("--labels", fmt.Sprintf("site=e2e,n=%d", i))))
	}
	return e
}

// ids returns the ids of agents, or of every agent when none is given.
func (e *env) ids(agents ...*testenv.Agent) []string {
	if len(agents) == 0 {
		agents = e.agents
	}
	ids := make([]string, len(agents))
	for i, a := range agents {
		ids[i] = a.ID
	}
	return ids
}

var (
	deployedRE = regexp.MustCompile(`(?m)^deployed (\S+) v(\d+) sha256:[0-9a-f]+`)
	revisionRE = regexp.MustCompile(`(?m)^revision (\d+)$`)
)

// deploy deploys dir with weftctl, requires a new version of the example
// package, and returns the revision weftctl printed.
func (e *env) deploy(t *testing.T, dir string) int64 {
	t.Helper()
	res := testenv.Ctl(t, e.cp, "deploy", dir)
	if res.ExitCode != 0 {
		t.Fatalf("weftctl deploy %s: %s", dir, res)
	}
	m := deployedRE.FindStringSubmatch(res.Stdout)
	if m == nil || m[1] != examplePackage {
		t.Fatalf("weftctl deploy: want a line `deployed %s vN sha256:...`; got:\n%s", examplePackage, res.Stdout)
	}
	version, _ := strconv.ParseInt(m[2], 10, 64)
	if version != e.version+1 {
		t.Errorf("weftctl deploy: deployed %s v%d, want v%d", examplePackage, version, e.version+1)
	}
	if !strings.Contains(res.Stdout, "services: "+exampleService) {
		t.Errorf("weftctl deploy: output does not list the service %s:\n%s", exampleService, res.Stdout)
	}
	r := revisionRE.FindStringSubmatch(res.Stdout)
	if r == nil {
		t.Fatalf("weftctl deploy: no `revision N` line:\n%s", res.Stdout)
	}
	rev, _ := strconv.ParseInt(r[1], 10, 64)
	if rev <= e.rev {
		t.Fatalf("weftctl deploy: revision %d, want more than %d", rev, e.rev)
	}
	e.version = version
	return rev
}

// variant writes a copy of the example package into a new temporary
// directory, with its English greeting word replaced by word, and with extra
// files added (name -> content).
func (e *env) variant(t *testing.T, word string, extra map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), examplePackage)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(e.example)
	if err != nil {
		t.Fatal(err)
	}
	const english = `"en": "Hello"`
	replaced := false
	for _, ent := range entries {
		name := ent.Name()
		if ent.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(filepath.Join(e.example, name))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(src), english) {
			src = []byte(strings.Replace(string(src), english, fmt.Sprintf(`"en": %q`, word), 1))
			replaced = true
		}
		if err := os.WriteFile(filepath.Join(dir, name), src, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !replaced {
		t.Fatalf("the example in %s no longer holds %s; adapt this test's variant()", e.example, english)
	}
	for name, content := range extra {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// greetingOf decodes hello.greet's JSON output and returns its greeting.
func greetingOf(body []byte) (string, error) {
	var out struct {
		Greeting string `json:"greeting"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return "", fmt.Errorf("decode output %q: %w", body, err)
	}
	if out.Greeting == "" {
		return "", fmt.Errorf("output %q has no greeting", body)
	}
	return out.Greeting, nil
}

// wantGreeting POSTs Ada to the channel on each agent and requires a 200 JSON
// answer with greeting.
func (e *env) wantGreeting(t *testing.T, greeting string, agents ...*testenv.Agent) {
	t.Helper()
	if len(agents) == 0 {
		agents = e.agents
	}
	for _, a := range agents {
		resp := testenv.PostJSON(t, a.URL(channelPath), adaInput)
		if resp.Status != 200 {
			t.Errorf("%s: POST %s: %s; want 200", a.ID, channelPath, resp)
			continue
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s: POST %s: Content-Type %q; want application/json", a.ID, channelPath, ct)
		}
		got, err := greetingOf(resp.Body)
		if err != nil {
			t.Errorf("%s: POST %s: %v", a.ID, channelPath, err)
			continue
		}
		if got != greeting {
			t.Errorf("%s: POST %s: greeting %q; want %q", a.ID, channelPath, got, greeting)
		}
	}
}

// stored is what the control plane stores and the agents apply: what bad
// input must leave alone.
type stored struct {
	rev      int64
	packages *adminv1.ListPackagesResponse
	channels *adminv1.ListChannelsResponse
}

func (e *env) stored(t *testing.T) stored {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pkgs, err := e.cp.Packages().ListPackages(ctx, &adminv1.ListPackagesRequest{})
	if err != nil {
		t.Fatalf("ListPackages: %v", err)
	}
	chans, err := e.cp.Channels().ListChannels(ctx, &adminv1.ListChannelsRequest{})
	if err != nil {
		t.Fatalf("ListChannels: %v", err)
	}
	return stored{rev: e.cp.DesiredRevision(t), packages: pkgs, channels: chans}
}

// wantUnchanged requires the stored state to equal before, every agent to be
// in sync at its revision, and the channel to answer as before.
func (e *env) wantUnchanged(t *testing.T, before stored) {
	t.Helper()
	after := e.stored(t)
	if after.rev != before.rev {
		t.Errorf("revision moved from %d to %d", before.rev, after.rev)
	}
	if !proto.Equal(after.packages, before.packages) {
		t.Errorf("packages changed:\nbefore: %v\nafter:  %v", before.packages, after.packages)
	}
	if !proto.Equal(after.channels, before.channels) {
		t.Errorf("channels changed:\nbefore: %v\nafter:  %v", before.channels, after.channels)
	}
	for _, a := range e.agents {
		rec := a.Record(t)
		if !rec.GetConnected() || rec.GetAppliedRevision() != before.rev || rec.GetSyncStatus() != adminv1.SyncStatus_SYNC_STATUS_IN_SYNC {
			t.Errorf("agent no longer in sync at %d: %s", before.rev, testenv.DescribeAgent(rec))
		}
	}
	e.wantGreeting(t, e.greeting)
}

// step is one step of an end-to-end walk.
type step struct {
	name string
	run  func(t *testing.T)
}

// runSteps runs steps in order as subtests. The steps build on each other,
// so the first that fails ends the walk.
func runSteps(t *testing.T, steps []step) {
	t.Helper()
	for _, s := range steps {
		if !t.Run(s.name, s.run) {
			t.Fatalf("step %q failed; the later steps build on it", s.name)
		}
	}
}
