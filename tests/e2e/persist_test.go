package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"

	"github.com/weft-dev/weft/controlplane/store/storetest"
	"github.com/weft-dev/weft/tests/testenv"
)

// persistTimeout bounds the wait for an agent to write its state again
// once its state directory is repaired: it retries with a backoff that
// grows to 30 s, and the directory is broken for a few seconds only.
const persistTimeout = 60 * time.Second

// TestAgentStateNotPersisted: an agent whose state directory cannot be
// written serves a deploy and says so, with the reason, in agent list,
// agent get, deploy --wait and its log; once the directory is repaired it
// writes the state without another deploy and the flag clears; a restart
// while the control plane is down then serves the newest deploy.
func TestAgentStateNotPersisted(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			cp := testenv.StartControlPlane(t, b.DSN)
			agent := testenv.StartAgent(t, cp, "edge-1")
			h := &hotEnv{cp: cp, agents: []*testenv.Agent{agent}, work: t.TempDir()}
			src := filepath.Join(h.work, "disk", "disk.go")
			deploy := func(word string, args ...string) testenv.Result {
				t.Helper()
				writeFile(t, src, serviceSource("disk", fmt.Sprintf(`return map[string]any{"from": %q}, nil`, word)))
				return h.ctl(t, append([]string{"deploy", filepath.Dir(src), "--wait"}, args...)...)
			}

			r := deploy("one")
			if strings.Contains(r.Stderr, "warning") {
				t.Fatalf("deploy --wait into a sound state dir warns: %s", r)
			}
			h.ctl(t, "channel", "create", "disk", "--path", "/disk", "--service", "disk.hi", "--method", "POST")

			// A path component that is a file stops every write with
			// ENOTDIR, even for root, as a full or read-only disk would.
			// The directory moves away in one step: the agent may be
			// writing in it.
			if err := os.Rename(agent.StateDir, agent.StateDir+".moved"); err != nil {
				t.Fatal(err)
			}
			writeFile(t, agent.StateDir, "not a directory")
			r = deploy("two")
			rev := cp.DesiredRevision(t)
			if want := "warning: disk v2 is served but not kept on disk by agent edge-1: "; !strings.Contains(r.Stderr, want) || !strings.Contains(r.Stderr, "not a directory") {
				t.Errorf("deploy --wait into a broken state dir: want %q and the reason on stderr; got %s", want, r)
			}
			h.awaitFrom(t, "disk.hi", "two")

			rec := agent.Record(t)
			why := rec.GetNotPersisted()
			if rec.GetSyncStatus() != adminv1.SyncStatus_SYNC_STATUS_IN_SYNC || rec.GetAppliedRevision() != rev ||
				!strings.Contains(why, fmt.Sprintf("save snapshot of revision %d", rev)) || !strings.Contains(why, "not a directory") {
				t.Errorf("agent record: %s not_persisted=%q; want in sync at %d, not persisted with the reason", testenv.DescribeAgent(rec), why, rev)
			}
			r = h.ctl(t, "agent", "list")
			if line := agentLine(r.Stdout, agent.ID); !strings.Contains(line, " in-sync,unpersisted ") || !strings.Contains(line, "not persisted: ") {
				t.Errorf("agent list: want %s in-sync,unpersisted with the reason in ERROR; got:\n%s", agent.ID, r.Stdout)
			}
			r = h.ctl(t, "agent", "get", agent.ID)
			if !strings.Contains(r.Stdout, "not persisted:\n  "+why+"\n") {
				t.Errorf("agent get: want the whole reason %q; got:\n%s", why, r.Stdout)
			}
			testenv.Await(t, 10*time.Second, "the agent log says why the state is not on disk", func() (bool, string) {
				log, err := os.ReadFile(agent.LogPath())
				s := string(log)
				return err == nil && strings.Contains(s, "cannot keep the served state on disk") && strings.Contains(s, "not a directory"), lastLines(s, 5)
			})

			// Repaired: the agent writes the state on its own and the flag
			// clears, with no deploy to prompt it.
			if err := os.Remove(agent.StateDir); err != nil {
				t.Fatal(err)
			}
			repaired := time.Now()
			testenv.Await(t, persistTimeout, "the not-persisted flag clears", func() (bool, string) {
				a := agent.Record(t)
				return a.GetNotPersisted() == "" && a.GetSyncStatus() == adminv1.SyncStatus_SYNC_STATUS_IN_SYNC,
					testenv.DescribeAgent(a) + " not_persisted=" + a.GetNotPersisted()
			})
			t.Logf("the flag cleared %v after the repair", time.Since(repaired).Round(time.Millisecond))
			if r = h.ctl(t, "agent", "list"); !strings.Contains(agentLine(r.Stdout, agent.ID), " in-sync ") {
				t.Errorf("agent list after the repair: want %s in-sync; got:\n%s", agent.ID, r.Stdout)
			}
			if log, _ := os.ReadFile(agent.LogPath()); !strings.Contains(string(log), "the served state is on disk again") {
				t.Errorf("the agent log does not say the state is on disk again:\n%s", lastLines(string(log), 10))
			}

			// What was written is what a restart without the control plane
			// serves. The agent's identity stayed in the directory that
			// moved away (the agent writes it only when it enrolls or
			// renews): put it back, as an operator repairing the disk would.
			agent.Stop(t)
			cp.Stop(t)
			if err := os.Rename(filepath.Join(agent.StateDir+".moved", "identity"), filepath.Join(agent.StateDir, "identity")); err != nil {
				t.Fatal(err)
			}
			wantBootServes(t, agent, "two")
		})
	}
}

// agentLine returns the line of a weftctl agent list table for id.
func agentLine(table, id string) string {
	for _, l := range strings.Split(table, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == id {
			return l
		}
	}
	return ""
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// wantBootServes starts the stopped agent again, from its state directory,
// with no control plane to reach, and waits until its /disk channel
// answers "from": want.
func wantBootServes(t *testing.T, agent *testenv.Agent, want string) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "agent-offline.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(testenv.Binary(t, testenv.AgentBinary),
		"--id", agent.ID, "--controlplane", testenv.ClosedAddr(t), "--http", agent.HTTPAddr, "--state-dir", agent.StateDir)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(logPath)
			t.Logf("log of the agent started without a control plane:\n%s", lastLines(string(log), 40))
		}
	}()
	testenv.Await(t, 30*time.Second, fmt.Sprintf("the agent booted from disk answers %q", want), func() (bool, string) {
		resp, err := testenv.Post(t.Context(), agent.URL("/disk"), "{}")
		if err != nil {
			return false, err.Error()
		}
		var out struct {
			From string `json:"from"`
		}
		if resp.Status != 200 || json.Unmarshal(resp.Body, &out) != nil {
			return false, resp.String()
		}
		return out.From == want, resp.String()
	})
}
