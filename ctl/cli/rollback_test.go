package cli

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func TestRollback(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		script  []*adminv1.GetDeployStatusResponse
		want    *adminv1.RollbackRequest // nil: nothing reaches the server
		stdout  string
		wantErr string
	}{
		{
			name:   "the version before",
			args:   []string{"hello"},
			want:   &adminv1.RollbackRequest{Name: "hello"},
			stdout: "rolled back hello to the content of v1 as v3, revision 9\n",
		},
		{
			name:   "to a version",
			args:   []string{"hello", "--to", "v1"},
			want:   &adminv1.RollbackRequest{Name: "hello", ToVersion: 1},
			stdout: "rolled back hello to the content of v1 as v3, revision 9\n",
		},
		{
			name:   "and wait",
			args:   []string{"hello", "--to", "1", "--wait"},
			script: []*adminv1.GetDeployStatusResponse{statusOf("hello", 3, 9, agentState{"a1", stDeployed, true, 9, ""})},
			want:   &adminv1.RollbackRequest{Name: "hello", ToVersion: 1},
			stdout: "rolled back hello to the content of v1 as v3, revision 9\nhello v3 deployed on 1 agent: a1\n",
		},
		{
			name:    "and wait for a refusal",
			args:    []string{"hello", "--wait"},
			script:  []*adminv1.GetDeployStatusResponse{statusOf("hello", 3, 9, agentState{"a1", stFailed, true, 8, "x.go:1:1: bad"})},
			want:    &adminv1.RollbackRequest{Name: "hello"},
			stdout:  "rolled back hello to the content of v1 as v3, revision 9\n",
			wantErr: "hello v3 failed on agent a1: x.go:1:1: bad",
		},
		{
			name:    "refused, message once",
			args:    []string{"hello", "--to", "2"},
			want:    &adminv1.RollbackRequest{Name: "hello", ToVersion: 2},
			wantErr: `rollback "hello": hello v2 is the current version; there is nothing to roll back`,
		},
		{
			name:    "unknown version",
			args:    []string{"hello", "--to", "9"},
			want:    &adminv1.RollbackRequest{Name: "hello", ToVersion: 9},
			wantErr: `rollback "hello": package "hello" has no version 9 (it has v1 to v2)`,
		},
		{name: "bad version", args: []string{"hello", "--to", "latest"}, wantErr: `rollback "hello": --to: version "latest": want a version number such as 3 or v3`},
		{name: "no package", args: nil, wantErr: "missing PACKAGE (usage: weftctl rollback PACKAGE [flags])"},
		{name: "bad wait timeout", args: []string{"hello", "--wait-timeout", "-1s"}, wantErr: `rollback "hello": --wait-timeout -1s: must be positive`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			h := e.packages.hist()
			h.script("hello", tt.script...)
			stdout, _, err := e.run(append([]string{"rollback"}, tt.args...)...)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v\nwant %s", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			h.mu.Lock()
			reqs := h.rollbacks
			h.mu.Unlock()
			if tt.want == nil {
				if len(reqs) != 0 {
					t.Fatalf("requests = %v, want none", reqs)
				}
				return
			}
			if len(reqs) != 1 || !proto.Equal(reqs[0], tt.want) {
				t.Fatalf("requests = %v, want %v", reqs, tt.want)
			}
			if stdout != tt.stdout {
				t.Errorf("stdout = %q, want %q", stdout, tt.stdout)
			}
		})
	}
}

func TestRollbackJSON(t *testing.T) {
	e := newTestEnv(t)
	stdout, _, err := e.run("rollback", "hello", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var got adminv1.RollbackResponse
	if err := protojson.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("stdout is not a RollbackResponse: %v\n%s", err, stdout)
	}
	if got.GetRestoredVersion() != 1 || got.GetPackage().GetVersion() != 3 || !strings.Contains(stdout, `"restored_version"`) {
		t.Errorf("response = %v", &got)
	}
}
