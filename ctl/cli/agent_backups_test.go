package cli

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// fakeBackups are the backups fakeFleet.ListAgentBackups answers with, by
// agent; an agent missing here is not connected.
var fakeBackups = map[string]*adminv1.ListAgentBackupsResponse{
	"berlin-1": {Limit: 100, Backups: []*adminv1.Backup{
		{
			Id: "000012-r41", Revision: 41, ReplacedByRevision: 42, SizeBytes: 12_600,
			ReplacedAt: timestamppb.New(testNow.Add(-3 * time.Minute)),
			Packages:   []string{"hello@3", "orders@7"},
		},
		{
			Id: "000011-r40", Revision: 40, ReplacedByRevision: 41, SizeBytes: 812,
			ReplacedAt: timestamppb.New(testNow.Add(-2 * time.Hour)),
			Packages:   []string{"a-package-with-a-rather-long-name@12", "another-package-with-a-long-name@3", "third@1"},
		},
		{Id: "000010-r39", Revision: 39, ReplacedByRevision: 40, SizeBytes: 3 << 20, ReplacedAt: timestamppb.New(testNow.Add(-72 * time.Hour))},
	}},
	"paris-1": {Limit: 5},
	"oslo-1":  {Limit: 0},
}

func (f *fakeFleet) ListAgentBackups(_ context.Context, req *adminv1.ListAgentBackupsRequest) (*adminv1.ListAgentBackupsResponse, error) {
	resp, ok := fakeBackups[req.GetAgentId()]
	if !ok {
		return nil, status.Errorf(codes.FailedPrecondition, "list backups of agent %q: the agent is not connected (last seen 2026-03-04T04:06:07Z); its backups are read from the agent itself", req.GetAgentId())
	}
	return resp, nil
}

func TestAgentBackups(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantStdout string
		wantStderr string
		wantErr    string
	}{
		{
			name: "table, newest first",
			args: []string{"berlin-1"},
			wantStdout: "" +
				"ID          REVISION  REPLACED BY  REPLACED AT  PACKAGES                                                         SIZE\n" +
				"000012-r41  41        42           3m ago       hello@3,orders@7                                                 12.3 KiB\n" +
				"000011-r40  40        41           2h ago       a-package-with-a-rather-long-name@12,another-package-with-a-...  812 B\n" +
				"000010-r39  39        40           3d ago       -                                                                3.0 MiB\n",
		},
		{
			name:       "none yet",
			args:       []string{"paris-1"},
			wantStdout: "ID  REVISION  REPLACED BY  REPLACED AT  PACKAGES  SIZE\n",
			wantStderr: "no backups yet: agent paris-1 keeps the last 5 states it replaced\n",
		},
		{
			name:       "backups off",
			args:       []string{"oslo-1"},
			wantStdout: "ID  REVISION  REPLACED BY  REPLACED AT  PACKAGES  SIZE\n",
			wantStderr: "agent oslo-1 keeps no backups (it runs with --backups 0)\n",
		},
		{
			name:    "agent not connected",
			args:    []string{"rome-1"},
			wantErr: `list backups of agent "rome-1": the agent is not connected (last seen 2026-03-04T04:06:07Z); its backups are read from the agent itself`,
		},
		{name: "agent required", args: nil, wantErr: "missing AGENT (usage: weftctl agent backups AGENT [flags])"},
		{name: "one agent only", args: []string{"a", "b"}, wantErr: `unexpected argument "b" (usage: weftctl agent backups AGENT [flags])`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			stdout, stderr, err := e.run(append([]string{"agent", "backups"}, tt.args...)...)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if stdout != tt.wantStdout {
				t.Errorf("stdout =\n%s\nwant\n%s", stdout, tt.wantStdout)
			}
			if stderr != tt.wantStderr {
				t.Errorf("stderr = %q, want %q", stderr, tt.wantStderr)
			}
		})
	}
}

func TestAgentBackupsJSON(t *testing.T) {
	e := newTestEnv(t)
	stdout, stderr, err := e.run("agent", "backups", "berlin-1", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	if stderr != "" {
		t.Errorf("stderr = %q, want nothing", stderr)
	}
	var resp adminv1.ListAgentBackupsResponse
	if err := protojson.Unmarshal([]byte(stdout), &resp); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if resp.GetLimit() != 100 || len(resp.GetBackups()) != 3 || resp.GetBackups()[0].GetReplacedByRevision() != 42 {
		t.Errorf("json =\n%s", stdout)
	}
	// Scripts see proto field names, every field present even when empty.
	var raw struct {
		Backups []map[string]any `json:"backups"`
	}
	if err := json.Unmarshal([]byte(stdout), &raw); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"id": "000010-r39", "revision": "39", "replaced_by_revision": "40", "replaced_at": "2026-03-01T05:06:07Z",
		"packages": []any{}, "size_bytes": "3145728",
	}
	if got := raw.Backups[2]; !reflect.DeepEqual(got, want) {
		t.Errorf("last backup = %v, want %v", got, want)
	}
}

func TestHumanBytes(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {12_600, "12.3 KiB"},
		{5 << 20, "5.0 MiB"}, {3 << 30, "3.0 GiB"}, {2 << 40, "2.0 TiB"}, {5 << 50, "5120.0 TiB"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := humanBytes(tt.n); got != tt.want {
				t.Errorf("humanBytes(%d) = %q, want %q", tt.n, got, tt.want)
			}
		})
	}
}
