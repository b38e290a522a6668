package cli

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

const diskFull = "save snapshot of revision 7: write /var/lib/weft-agent/snapshot.pb: no space left on device; a restart without the control plane would serve an older state"

// TestAgentUnpersisted: an agent that serves a state it could not keep on
// disk shows a status of its own, and why, in list and get.
func TestAgentUnpersisted(t *testing.T) {
	e := newTestEnv(t, func(e *testEnv) {
		e.fleet.agents = []*adminv1.Agent{
			{
				Id: "berlin-1", SyncStatus: adminv1.SyncStatus_SYNC_STATUS_IN_SYNC, Connected: true,
				AppliedRevision: 7, DesiredRevision: 7, LastSeen: timestamppb.New(testNow.Add(-3 * time.Second)),
				NotPersisted: diskFull,
			},
			{
				Id: "paris-1", SyncStatus: adminv1.SyncStatus_SYNC_STATUS_FAILED, Connected: true,
				AppliedRevision: 6, DesiredRevision: 7, FailedRevision: 7, LastError: "boom",
				LastSeen: timestamppb.New(testNow.Add(-3 * time.Second)), NotPersisted: "disk full",
			},
		}
	})
	stdout, _, err := e.run("agent", "list")
	if err != nil {
		t.Fatal(err)
	}
	want := "ID        STATUS               APPLIED  DESIRED  CONNECTED  HTTP  LAST SEEN  ERROR\n" +
		"berlin-1  in-sync,unpersisted  7        7        yes        -     3s ago     not persisted: save snapshot of revision...\n" +
		"paris-1   failed,unpersisted   6        7        yes        -     3s ago     boom; not persisted: disk full\n"
	if stdout != want {
		t.Errorf("stdout =\n%s\nwant\n%s", stdout, want)
	}

	stdout, _, err = e.run("agent", "get", "berlin-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"status:            in-sync,unpersisted\n",
		"last error:        -\n",
		"not persisted:\n  " + diskFull + "\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("agent get: stdout lacks %q:\n%s", want, stdout)
		}
	}
}

// TestDeployWaitUnpersisted: --wait succeeds when the agents serve the
// deploy, but warns about each agent that could not keep it on disk.
func TestDeployWaitUnpersisted(t *testing.T) {
	tmp := t.TempDir()
	writeFiles(t, tmp, map[string]string{"hello.go": "package hello\n"})
	e := newTestEnv(t)
	st := statusOf("hello", 2, 7, agentState{"a1", stDeployed, true, 7, ""}, agentState{"a2", stDeployed, true, 7, ""})
	st.Agents[1].NotPersisted = diskFull
	e.packages.hist().script("hello", st)
	stdout, stderr, err := e.run("deploy", filepath.Join(tmp, "hello.go"), "--wait")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(stdout, "hello v2 deployed on 2 agents: a1, a2\n") {
		t.Errorf("stdout = %q", stdout)
	}
	if want := "warning: hello v2 is served but not kept on disk by agent a2: " + diskFull + "\n"; stderr != want {
		t.Errorf("stderr =\n%q\nwant\n%q", stderr, want)
	}

	stdout, _, err = e.run("deploy", "status", "hello@2")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "a2     deployed  yes        7        not persisted: save snapshot of revision 7: write /var/lib/weft-agent/snapshot.p...") {
		t.Errorf("deploy status: stdout =\n%s", stdout)
	}
}
