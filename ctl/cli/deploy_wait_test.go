package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func TestDeployWait(t *testing.T) {
	tmp := t.TempDir()
	writeFiles(t, tmp, map[string]string{
		"hello/hello.go":   "package hello\n",
		"orders/orders.go": "package orders\n",
		"same/same.go":     "package same\n",
	})
	in := func(p string) string { return filepath.Join(tmp, p) }
	// The fake deploys every package as v2 at revision 7.
	hello := func(agents ...agentState) *adminv1.GetDeployStatusResponse { return statusOf("hello", 2, 7, agents...) }

	tests := []struct {
		name       string
		args       []string
		scripts    map[string][]*adminv1.GetDeployStatusResponse
		wantStatus []*adminv1.GetDeployStatusRequest // nil: not checked
		stdout     string                            // "": not checked
		wantErr    string
	}{
		{
			name: "every connected agent deploys it",
			args: []string{in("hello"), "--wait"},
			scripts: map[string][]*adminv1.GetDeployStatusResponse{"hello": {
				hello(agentState{"a1", stPending, true, 6, ""}, agentState{"a2", stPending, true, 6, ""}),
				hello(agentState{"a1", stDeployed, true, 7, ""}, agentState{"a2", stPending, true, 6, ""}),
				hello(agentState{"a1", stDeployed, true, 7, ""}, agentState{"a2", stDeployed, true, 8, ""},
					agentState{"away", stPending, false, 3, ""}, agentState{"gone-after", stDeployed, false, 7, ""}),
			}},
			wantStatus: []*adminv1.GetDeployStatusRequest{
				{Name: "hello", Version: 2}, {Name: "hello", Version: 2}, {Name: "hello", Version: 2},
			},
			stdout: "deployed hello v2 sha256:1a2b3c4d services: hello.greet\nrevision 7\n" +
				"hello v2 deployed on 2 agents: a1, a2\n" +
				"hello v2: not connected, will catch up when they connect: away\n",
		},
		{
			name: "one agent",
			args: []string{in("hello"), "--wait"},
			scripts: map[string][]*adminv1.GetDeployStatusResponse{"hello": {
				hello(agentState{"edge-1", stDeployed, true, 7, ""}),
			}},
			stdout: "deployed hello v2 sha256:1a2b3c4d services: hello.greet\nrevision 7\nhello v2 deployed on 1 agent: edge-1\n",
		},
		{
			name: "an agent refuses it",
			args: []string{in("hello"), "--wait"},
			scripts: map[string][]*adminv1.GetDeployStatusResponse{"hello": {
				hello(agentState{"a1", stPending, true, 6, ""}, agentState{"a2", stPending, true, 6, ""}),
				hello(agentState{"a1", stDeployed, true, 7, ""}, agentState{"a2", stFailed, true, 6, "hello.go:3:1: undefined: x"}),
			}},
			wantErr: "hello v2 failed on agent a2: hello.go:3:1: undefined: x",
		},
		{
			name: "two agents refuse it",
			args: []string{in("hello"), "--wait"},
			scripts: map[string][]*adminv1.GetDeployStatusResponse{"hello": {
				hello(agentState{"a1", stFailed, true, 6, "boom"}, agentState{"a2", stFailed, false, 6, ""}),
			}},
			wantErr: "hello v2 failed on 2 agents:\n  a1: boom\n  a2: (no message)",
		},
		{
			name: "timeout names the agents still pending",
			args: []string{in("hello"), "--wait", "--wait-timeout", "300ms"},
			scripts: map[string][]*adminv1.GetDeployStatusResponse{"hello": {
				hello(agentState{"a1", stDeployed, true, 7, ""}, agentState{"a2", stPending, true, 6, ""}, agentState{"a3", stPending, true, 5, ""}),
			}},
			wantErr: "--wait-timeout 300ms passed: hello v2 (revision 7) is still pending on a2 (at revision 6), a3 (at revision 5)",
		},
		{
			name: "no agent is connected",
			args: []string{in("hello"), "--wait"},
			scripts: map[string][]*adminv1.GetDeployStatusResponse{"hello": {
				hello(agentState{"away", stPending, false, 3, ""}),
			}},
			stdout: "deployed hello v2 sha256:1a2b3c4d services: hello.greet\nrevision 7\n" +
				"hello v2: no agent is connected; the deploy will reach agents when they connect\n",
		},
		{
			name: "unchanged is checked all the same",
			args: []string{in("same"), "--name", "same", "--wait"},
			scripts: map[string][]*adminv1.GetDeployStatusResponse{"same": {
				statusOf("same", 2, 7, agentState{"a1", stDeployed, true, 9, ""}),
			}},
			wantStatus: []*adminv1.GetDeployStatusRequest{{Name: "same", Version: 2}},
			stdout:     "unchanged same v2 sha256:1a2b3c4d (identical source, nothing deployed)\nrevision 7\nsame v2 deployed on 1 agent: a1\n",
		},
		{
			// The fake names both packages hello; each is waited for.
			name: "every package of the deploy",
			args: []string{in("hello"), in("orders"), "--wait"},
			scripts: map[string][]*adminv1.GetDeployStatusResponse{"hello": {
				hello(agentState{"a1", stPending, true, 6, ""}),
				hello(agentState{"a1", stDeployed, true, 7, ""}),
			}},
			wantStatus: []*adminv1.GetDeployStatusRequest{
				{Name: "hello", Version: 2}, {Name: "hello", Version: 2}, {Name: "hello", Version: 2},
			},
			stdout: "deployed hello v2 sha256:1a2b3c4d services: hello.greet\ndeployed hello v2 sha256:1a2b3c4d services: hello.greet\nrevision 7\n" +
				"hello v2 deployed on 1 agent: a1\nhello v2 deployed on 1 agent: a1\n",
		},
		{
			name:       "without --wait nothing is asked",
			args:       []string{in("hello")},
			wantStatus: []*adminv1.GetDeployStatusRequest{},
		},
		{
			name:    "a status error stops the wait",
			args:    []string{in("orders"), "--name", "orders", "--wait"},
			wantErr: `deploy status of "orders" v2: no status scripted`,
		},
		{
			name:    "bad wait timeout",
			args:    []string{in("hello"), "--wait", "--wait-timeout", "0s"},
			wantErr: "deploy: --wait-timeout 0s: must be positive",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			for name, answers := range tt.scripts {
				e.packages.hist().script(name, answers...)
			}
			stdout, _, err := e.run(append([]string{"deploy"}, tt.args...)...)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v\nwant %s", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if tt.stdout != "" && stdout != tt.stdout {
				t.Errorf("stdout =\n%s\nwant\n%s", stdout, tt.stdout)
			}
			if tt.wantStatus != nil {
				got := e.packages.hist().statusRequests()
				if len(got) != len(tt.wantStatus) {
					t.Fatalf("status requests = %v, want %v", got, tt.wantStatus)
				}
				for i := range got {
					if !proto.Equal(got[i], tt.wantStatus[i]) {
						t.Fatalf("status request %d = %v, want %v", i, got[i], tt.wantStatus[i])
					}
				}
			}
			if strings.Contains(tt.wantErr, "--wait-timeout 0s") && e.packages.deployCount() != 0 {
				t.Fatal("a deploy reached the server despite a bad --wait-timeout")
			}
		})
	}
}

func TestDeployWaitJSON(t *testing.T) {
	tmp := t.TempDir()
	writeFiles(t, tmp, map[string]string{"hello.go": "package hello\n"})
	e := newTestEnv(t)
	e.packages.hist().script("hello", statusOf("hello", 2, 7, agentState{"a1", stDeployed, true, 7, ""}))
	stdout, stderr, err := e.run("deploy", filepath.Join(tmp, "hello.go"), "--wait", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var got adminv1.DeployResponse
	if err := protojson.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("stdout is not a DeployResponse alone: %v\n%s", err, stdout)
	}
	if stderr != "hello v2 deployed on 1 agent: a1\n" {
		t.Errorf("stderr = %q", stderr)
	}
}
