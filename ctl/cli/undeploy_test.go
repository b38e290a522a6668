package cli

import (
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func TestUndeploy(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    *adminv1.UndeployRequest // nil: nothing reaches the server
		stdout  string
		wantErr string
	}{
		{
			name:   "unused",
			args:   []string{"orders"},
			want:   &adminv1.UndeployRequest{Name: "orders"},
			stdout: "undeployed orders (services: orders.get), revision 10\n",
		},
		{
			name:    "in use, refused with the channels named once",
			args:    []string{"hello"},
			want:    &adminv1.UndeployRequest{Name: "hello"},
			wantErr: `undeploy "hello": package "hello" is used by channel "hello" (hello.greet); deactivate or delete it first, or undeploy --force`,
		},
		{
			name:   "forced",
			args:   []string{"hello", "--force"},
			want:   &adminv1.UndeployRequest{Name: "hello", Force: true},
			stdout: "undeployed hello (services: hello.greet, hello.part), revision 10\ndeactivated channels: hello\n",
		},
		{
			name:    "unknown",
			args:    []string{"nope"},
			want:    &adminv1.UndeployRequest{Name: "nope"},
			wantErr: `undeploy "nope": package "nope" has never been deployed`,
		},
		{name: "no package", wantErr: "missing PACKAGE (usage: weftctl undeploy PACKAGE [flags])"},
		{name: "two packages", args: []string{"a", "b"}, wantErr: `unexpected argument "b" (usage: weftctl undeploy PACKAGE [flags])`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			stdout, _, err := e.run(append([]string{"undeploy"}, tt.args...)...)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v\nwant %s", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			h := e.packages.hist()
			h.mu.Lock()
			reqs := h.undeploys
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

func TestUndeployJSON(t *testing.T) {
	e := newTestEnv(t)
	stdout, _, err := e.run("undeploy", "hello", "--force", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var got adminv1.UndeployResponse
	if err := protojson.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("stdout is not an UndeployResponse: %v\n%s", err, stdout)
	}
	if got.GetRevision() != 10 || len(got.GetDeactivatedChannels()) != 1 {
		t.Errorf("response = %v", &got)
	}
}
