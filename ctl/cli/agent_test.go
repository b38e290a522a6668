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
				EnrolledBy: "jt-1", CertificateExpiresAt: timestamppb.New(testNow.Add(72 * time.Hour)),
			},
			{
				Id: "paris-1", SyncStatus: adminv1.SyncStatus_SYNC_STATUS_FAILED, Connected: true,
				AppliedRevision: 6, DesiredRevision: 7, FailedRevision: 7,
				LastSeen:  timestamppb.New(testNow.Add(-5 * time.Minute)),
				LastError: "package hello: hello.go:12:3: undefined: fmt.Sprintfz and a lot more text\nsecond line",
			},
			{Id: "rome-1", SyncStatus: adminv1.SyncStatus_SYNC_STATUS_DISCONNECTED, AppliedRevision: 2, DesiredRevision: 7},
		}
		e.fleet.inventories = map[string]*adminv1.AgentInventory{
			"berlin-1": {
				AppliedRevision: 7, Goroutines: 42, HeapBytes: 3 << 20, SysBytes: 12 << 20,
				StartedAt: timestamppb.New(testNow.Add(-2 * time.Hour)),
				Packages: []*adminv1.LoadedPackage{{
					Name: "hello", Version: 3, Sha256: "1a2b3c4d5e6f", Services: []string{"hello.greet"},
					MemoryBytes: 2048, LoadedAt: timestamppb.New(testNow.Add(-time.Hour)),
				}},
				RecentErrors: []string{"boom"},
				Workers: []*adminv1.AgentWorker{
					{
						Index: 1, Pid: 5001, StartedAt: timestamppb.New(testNow.Add(-90 * time.Minute)),
						HeapBytes: 1536 << 10, Goroutines: 17, MemoryLimitBytes: 256 << 20,
					},
					{
						Index: 2, Pid: 5002, StartedAt: timestamppb.New(testNow.Add(-45 * time.Second)), Restarts: 3,
						LastExit: "killed: out of memory", HeapBytes: 900, Goroutines: 9, MemoryLimitBytes: 256 << 20,
					},
					{Index: 3, Restarts: 1, LastExit: "exit status 2", MemoryLimitBytes: 256 << 20},
				},
			},
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
		"\nlive: the agent is not connected\n",
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
	for _, want := range []string{
		"\nlive: revision 7, 42 goroutines, heap 3.0 MiB, 12.0 MiB from the system, up 2h0m0s\n\n",
		"\nrecent errors, newest first:\n  boom\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("agent get berlin-1: stdout lacks %q:\n%s", want, stdout)
		}
	}
	// The workers come last; a worker being replaced has no process to show.
	workers := "\n\nWORKER  PID        UP       RESTARTS  HEAP     GOROUTINES  CAP        LAST EXIT\n" +
		"1       5001       1h30m0s  0         1.5 MiB  17          256.0 MiB  -\n" +
		"2       5002       45s      3         900 B    9           256.0 MiB  killed: out of memory\n" +
		"3       replacing  -        1         -        -           256.0 MiB  exit status 2\n"
	if !strings.HasSuffix(stdout, workers) {
		t.Errorf("agent get berlin-1: stdout does not end with the workers%s\ngot:\n%s", workers, stdout)
	}

	stdout, _, err = e.run("agent", "get", "berlin-1", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var resp adminv1.GetAgentResponse
	if err := protojson.Unmarshal([]byte(stdout), &resp); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if ws := resp.GetInventory().GetWorkers(); len(ws) != 3 || ws[1].GetPid() != 5002 || ws[1].GetLastExit() != "killed: out of memory" ||
		ws[1].GetRestarts() != 3 || ws[1].GetMemoryLimitBytes() != 256<<20 || !ws[1].GetStartedAt().AsTime().Equal(testNow.Add(-45*time.Second)) {
		t.Errorf("json workers = %v", ws)
	}
	if !strings.Contains(stdout, `"workers"`) || !strings.Contains(stdout, `"memory_limit_bytes"`) {
		t.Errorf("want proto field names for the workers:\n%s", stdout)
	}
	_, _, err = e.run("agent", "get", "oslo-1")
	if err == nil || err.Error() != `get agent "oslo-1": agent "oslo-1" not found` {
		t.Errorf("error = %v", err)
	}
}
