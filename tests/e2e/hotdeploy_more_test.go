package e2e

import (
	"encoding/base64"
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

// TestHotDeployMore walks what TestHotDeploy leaves out of hot deployment,
// on the same kind of fleet (newHotEnv): a package directory and a broken
// file dropped in the pickup directory, deploy show and status, rollback to
// a named version, undeploy with and without --force, a bare `for {}` that
// overruns again and again while its package's other services keep
// serving, and the Deploy RPC refusing with file:line.
func TestHotDeployMore(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			h := newHotEnv(t, b.DSN)
			runSteps(t, []step{
				{"a package directory dropped in reaches both agents", h.pickupDir},
				{"a broken file dropped in goes to .failed with its file:line", h.pickupFailed},
				{"deploy show and status, rollback --to", h.showStatusRollbackTo},
				{"undeploy is refused while a channel calls it, --force deactivates", h.undeploy},
				{"a bare for {} overruns every time; its package's other services serve", h.runawayAgain},
				{"the Deploy RPC refuses os/exec with file:line", h.rpcRefused},
			})
		})
	}
}

// awaitPickedUp waits until the pickup directory's sub (.deployed or
// .failed) holds entry under its time-stamped name, and returns its path.
func (h *hotEnv) awaitPickedUp(t *testing.T, sub, entry string) string {
	t.Helper()
	var path string
	testenv.Await(t, 10*time.Second, fmt.Sprintf("%s moves to %s", entry, sub), func() (bool, string) {
		m, _ := filepath.Glob(filepath.Join(h.pickup, sub, "*-"+entry))
		if len(m) == 1 {
			path = m[0]
		}
		_, err := os.Stat(filepath.Join(h.pickup, entry))
		return len(m) == 1 && os.IsNotExist(err), fmt.Sprintf("%s holds %v; the entry is still there: %t", sub, m, err == nil)
	})
	return path
}

func (h *hotEnv) pickupDir(t *testing.T) {
	// Written elsewhere and moved in whole, as a deploy script would.
	stage := filepath.Join(h.work, "stage", "dropdir")
	writeFile(t, filepath.Join(stage, "a.go"), serviceSource("dropdir", `return map[string]any{"from": from}, nil`))
	writeFile(t, filepath.Join(stage, "b.go"), "package dropdir\n\nconst from = \"dropdir\"\n")
	if err := os.Rename(stage, filepath.Join(h.pickup, "dropdir")); err != nil {
		t.Fatal(err)
	}
	h.awaitFrom(t, "dropdir.hi", "dropdir")
	if v := h.history(t, "dropdir"); len(v) != 1 || v[0].GetAuthor() != "pickup:dropdir" || len(v[0].GetFiles()) != 2 {
		t.Fatalf("history of dropdir = %v, want one version of two files by pickup:dropdir", v)
	}
	moved := h.awaitPickedUp(t, ".deployed", "dropdir")
	if _, err := os.Stat(filepath.Join(moved, "b.go")); err != nil {
		t.Fatalf("the deployed directory was not moved whole: %v", err)
	}
}

func (h *hotEnv) pickupFailed(t *testing.T) {
	before := h.cp.DesiredRevision(t)
	writeFile(t, filepath.Join(h.pickup, "cracked.go"), "package cracked\n\nfunc init() { x := }\n")
	moved := h.awaitPickedUp(t, ".failed", "cracked.go")
	why, err := os.ReadFile(moved + ".error")
	if err != nil {
		t.Fatalf("no error file next to the refused file: %v", err)
	}
	if !strings.Contains(string(why), "cracked.go:3:20:") {
		t.Fatalf("%s.error says %q; want the problem at cracked.go:3:20", filepath.Base(moved), why)
	}
	if after := h.cp.DesiredRevision(t); after != before {
		t.Fatalf("a refused pickup moved the revision from %d to %d", before, after)
	}
	if r := testenv.Ctl(t, h.cp, "deploy", "history", "cracked"); r.ExitCode == 0 || !strings.Contains(r.Stderr, "never been deployed") {
		t.Fatalf("deploy history cracked: %s; want it never deployed", r)
	}
}

// verse returns package verse, whose verse.hi answers {"from": word}.
func verse(word string) string {
	return serviceSource("verse", fmt.Sprintf(`return map[string]any{"from": %q}, nil`, word))
}

func (h *hotEnv) showStatusRollbackTo(t *testing.T) {
	dir := filepath.Join(h.work, "verse")
	for _, word := range []string{"one", "two", "three"} {
		writeFile(t, filepath.Join(dir, "verse.go"), verse(word))
		h.ctl(t, "deploy", dir, "--wait")
	}
	h.awaitFrom(t, "verse.hi", "three")

	if r := h.ctl(t, "deploy", "show", "verse@1"); r.Stdout != "// ==> verse.go <==\n"+verse("one") {
		t.Fatalf("deploy show verse@1 printed:\n%s\nwant verse.go of v1", r.Stdout)
	}
	if r := testenv.Ctl(t, h.cp, "deploy", "show", "verse@9"); r.ExitCode == 0 || !strings.Contains(r.Stderr, "no version 9") {
		t.Fatalf("deploy show verse@9: %s; want a refusal naming the missing version", r)
	}

	var status adminv1.GetDeployStatusResponse
	testenv.CtlJSON(t, h.cp, &status, "deploy", "status", "verse")
	if status.GetPackage().GetVersion() != 3 || len(status.GetAgents()) != 2 {
		t.Fatalf("deploy status verse = %v; want v3 on two agents", &status)
	}
	for _, a := range status.GetAgents() {
		if a.GetState() != adminv1.DeployState_DEPLOY_STATE_DEPLOYED {
			t.Errorf("deploy status verse: %s is %s, want deployed", a.GetAgentId(), a.GetState())
		}
	}

	h.ctl(t, "rollback", "verse", "--to", "1", "--wait")
	h.awaitFrom(t, "verse.hi", "one")
	if v := h.history(t, "verse"); len(v) != 4 || v[0].GetVersion() != 4 || v[0].GetSha256() != v[3].GetSha256() {
		t.Fatalf("history after rollback --to 1 = %v, want v4 with v1's content", v)
	}
}

func (h *hotEnv) undeploy(t *testing.T) {
	h.ctl(t, "channel", "create", "verse", "--path", "/api/verse", "--service", "verse.hi")
	testenv.AwaitAgentsSynced(t, h.cp, h.cp.DesiredRevision(t), time.Minute, "agent-1", "agent-2")
	for _, a := range h.agents {
		if resp := testenv.PostJSON(t, a.URL("/api/verse"), `{}`); resp.Status != 200 {
			t.Fatalf("%s: POST /api/verse: %s; want 200", a.ID, resp)
		}
	}

	before := h.cp.DesiredRevision(t)
	if r := testenv.Ctl(t, h.cp, "undeploy", "verse"); r.ExitCode == 0 || !strings.Contains(r.Stderr, `channel "verse"`) {
		t.Fatalf("undeploy verse while channel verse calls it: %s; want a refusal naming the channel", r)
	}
	if after := h.cp.DesiredRevision(t); after != before {
		t.Fatalf("a refused undeploy moved the revision from %d to %d", before, after)
	}

	if r := h.ctl(t, "undeploy", "verse", "--force"); !strings.Contains(r.Stdout, "deactivated channels: verse") {
		t.Fatalf("undeploy verse --force: %s; want it to say it deactivated channel verse", r)
	}
	testenv.AwaitAgentsSynced(t, h.cp, h.cp.DesiredRevision(t), time.Minute, "agent-1", "agent-2")
	for _, a := range h.agents {
		if resp := testenv.PostJSON(t, a.URL("/api/verse"), `{}`); resp.Status != 404 {
			t.Errorf("%s: POST /api/verse after undeploy --force: %s; want 404", a.ID, resp)
		}
		if r := testenv.Ctl(t, h.cp, "invoke", "verse.hi", "--agent", a.ID); r.ExitCode == 0 {
			t.Errorf("%s: verse.hi still runs after undeploy: %s", a.ID, r)
		}
	}
	if v := h.history(t, "verse"); len(v) != 4 {
		t.Fatalf("history after undeploy = %v, want its 4 versions kept", v)
	}
}

func (h *hotEnv) runawayAgain(t *testing.T) {
	const timeout = time.Second
	dir := filepath.Join(h.work, "spin")
	writeFile(t, filepath.Join(dir, "spin.go"), `package spin

import "github.com/weft-dev/weft/agent/sdk"

func init() {
	sdk.Register("spin.loop", func(ctx *sdk.Context, in map[string]any) (map[string]any, error) {
		for {
		}
	})
	sdk.Register("spin.ok", func(ctx *sdk.Context, in map[string]any) (map[string]any, error) {
		return map[string]any{"from": "spin"}, nil
	})
}
`)
	h.ctl(t, "deploy", dir, "--wait")
	h.ctl(t, "channel", "create", "spin", "--path", "/api/spin", "--service", "spin.loop", "--timeout", timeout.String())
	h.ctl(t, "channel", "create", "spin-ok", "--path", "/api/spin-ok", "--service", "spin.ok")
	testenv.AwaitAgentsSynced(t, h.cp, h.cp.DesiredRevision(t), time.Minute, "agent-1", "agent-2")

	// The agents run at once: each overrun takes the channel's deadline.
	for _, a := range h.agents {
		t.Run(a.ID, func(t *testing.T) {
			t.Parallel()
			pid := a.PID()
			h.wantSpinOK(t, a)
			live := h.inventory(t, a)
			for i := 1; i <= 2; i++ {
				start := time.Now()
				resp := testenv.PostJSON(t, a.URL("/api/spin"), `{}`)
				// How late the 504 comes is BenchmarkRunaways' to measure.
				if took := time.Since(start); resp.Status != 504 {
					t.Fatalf("call %d of for {}: %s after %v; want 504", i, resp, took)
				}
				// The package gets a fresh interpreter, which serves its
				// other service, and the runaway call stops.
				loaded := loadedAt(live, "spin")
				testenv.Await(t, 10*time.Second, "spin gets a fresh interpreter and the runaway stops", func() (bool, string) {
					now := h.inventory(t, a)
					return loadedAt(now, "spin").After(loaded) && now.GetGoroutines() <= live.GetGoroutines(),
						fmt.Sprintf("spin loaded at %v (before: %v), %d goroutines (before: %d)", loadedAt(now, "spin"), loaded, now.GetGoroutines(), live.GetGoroutines())
				})
				live = h.inventory(t, a)
				h.wantSpinOK(t, a)
			}
			if !a.Running() || a.PID() != pid {
				t.Fatalf("the agent did not survive for {}")
			}
		})
	}
}

// wantSpinOK requires spin.ok to answer 200 on a through its channel.
func (h *hotEnv) wantSpinOK(t *testing.T, a *testenv.Agent) {
	t.Helper()
	if resp := testenv.PostJSON(t, a.URL("/api/spin-ok"), `{}`); resp.Status != 200 || !strings.Contains(string(resp.Body), `"spin"`) {
		t.Fatalf("POST /api/spin-ok: %s; want 200 from spin.ok", resp)
	}
}

// inventory asks the control plane for what agent a runs now.
func (h *hotEnv) inventory(t *testing.T, a *testenv.Agent) *adminv1.AgentInventory {
	t.Helper()
	var resp adminv1.GetAgentResponse
	testenv.CtlJSON(t, h.cp, &resp, "agent", "get", a.ID)
	if resp.GetInventory() == nil {
		t.Fatalf("agent get %s: no inventory: %s", a.ID, resp.GetInventoryError())
	}
	return resp.GetInventory()
}

// loadedAt returns when the agent loaded package pkg, zero when it runs none.
func loadedAt(inv *adminv1.AgentInventory, pkg string) time.Time {
	for _, p := range inv.GetPackages() {
		if p.GetName() == pkg {
			return p.GetLoadedAt().AsTime()
		}
	}
	return time.Time{}
}

func (h *hotEnv) rpcRefused(t *testing.T) {
	before := h.cp.DesiredRevision(t)
	src := "package rpcbad\n\nimport (\n\t\"os/exec\"\n\n\t\"github.com/weft-dev/weft/agent/sdk\"\n)\n\nfunc init() { _ = exec.Command; sdk.Register(\"rpcbad.x\", nil) }\n"
	body := fmt.Sprintf(`{"packages":[{"files":[{"name":"rpcbad.go","content":%q}]}]}`, base64.StdEncoding.EncodeToString([]byte(src)))
	r := h.cp.Grpcurl(t, "-d", body, h.cp.Addr, "weft.admin.v1.PackageService/Deploy")
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, `rpcbad.go:4:2: import "os/exec" is not allowed`) {
		t.Fatalf("grpcurl Deploy of os/exec: %s; want a refusal at rpcbad.go:4:2", r)
	}
	if after := h.cp.DesiredRevision(t); after != before {
		t.Fatalf("a refused Deploy RPC moved the revision from %d to %d", before, after)
	}
}
