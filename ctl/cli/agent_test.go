package cli

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func agentsEnv(t *testing.T) *testEnv {
	return newTestEnv(t, func(e *testEnv) {
		e.fleet.agents = []*adminv1.Agent{
			{
				Id: "berlin-1", SyncStatus: adminv1.SyncStatus_SYNC_STATUS_IN_SYNC, Connected: true,
				AppliedRevision: 7, DesiredRevision: 7, HttpAddress: "10.0.0.1:8080",
				LastSeen: timestamppb.New(testNow.Add(-3 * time.Second)),
				Labels:   map[string]string{"site": "berlin", "env": "prod"}, Pid: 4242,
			},
			{
				Id: "paris-1", SyncStatus: adminv1.SyncStatus_SYNC_STATUS_FAILED, Connected: true,
				AppliedRevision: 6, DesiredRevision: 7, FailedRevision: 7,
				LastSeen:  timestamppb.New(testNow.Add(-5 * time.Minute)),
				LastError: "package hello: hello.go:12:3: undefined: fmt.Sprintfz and a lot more text\nsecond line",
			},
			{Id: "rome-1", SyncStatus: adminv1.SyncStatus_SYNC_STATUS_DISCONNECTED, AppliedRevision: 2, DesiredRevision: 7},
		}
	})
}

func TestAgentList(t *testing.T) {
	e := agentsEnv(t)
	stdout, _, err := e.run("agent", "list")
	if err != nil {
		t.Fatal(err)
	}
	want := "ID        STATUS        APPLIED  DESIRED  CONNECTED  HTTP           LAST SEEN  ERROR\n" +
		"berlin-1  in-sync       7        7        yes        10.0.0.1:8080  3s ago     -\n" +
		"paris-1   failed        6        7        yes        -              5m ago     package hello: hello.go:12:3: undefined:...\n" +
		"rome-1    disconnected  2        7        no         -              never      -\n"
	if stdout != want {
		t.Errorf("stdout =\n%s\nwant\n%s", stdout, want)
	}

	stdout, _, err = e.run("agent", "list", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var resp adminv1.ListAgentsResponse
	if err := protojson.Unmarshal([]byte(stdout), &resp); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if len(resp.GetAgents()) != 3 || resp.GetAgents()[1].GetSyncStatus() != adminv1.SyncStatus_SYNC_STATUS_FAILED {
		t.Errorf("json =\n%s", stdout)
	}
	if !strings.Contains(stdout, `"last_error"`) || !strings.Contains(stdout, `"failed_revision"`) {
		t.Errorf("want proto field names, zero values included:\n%s", stdout)
	}
}

func TestAgentGet(t *testing.T) {
	e := agentsEnv(t)
	stdout, _, err := e.run("agent", "get", "paris-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"id:                paris-1\n",
		"status:            failed\n",
		"failed revision:   7\n",
		"last seen:         ", "(5m ago)",
		"last error:\n  package hello: hello.go:12:3: undefined: fmt.Sprintfz and a lot more text\n  second line\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	stdout, _, err = e.run("agent", "get", "berlin-1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "labels:            env=prod,site=berlin\n") || !strings.Contains(stdout, "last error:        -\n") {
		t.Errorf("stdout =\n%s", stdout)
	}
	_, _, err = e.run("agent", "get", "oslo-1")
	if err == nil || err.Error() != `get agent "oslo-1": agent "oslo-1" not found` {
		t.Errorf("error = %v", err)
	}
}
