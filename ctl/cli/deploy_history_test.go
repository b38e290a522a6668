package cli

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// localTime renders testNow minus d as deploy history does.
func localTime(d time.Duration) string {
	return testNow.Add(-d).In(time.Local).Format(historyTime)
}

func TestDeployHistory(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    *adminv1.ListPackageVersionsRequest
		stdout  string
		wantErr string
	}{
		{
			name: "every package",
			args: nil,
			want: &adminv1.ListPackageVersionsRequest{},
			stdout: "" +
				"PACKAGE  VERSION  SHA256    AUTHOR  SIZE     REVISION  DEPLOYED AT          SERVICES\n" +
				fmt.Sprintf("hello    2        2b2b2b2b  local   2.0 KiB  7         %s  hello.greet,hello.part\n", localTime(time.Hour)) +
				fmt.Sprintf("orders   1        0f0f0f0f  pickup  812 B    5         %s  orders.get\n", localTime(2*time.Hour)) +
				fmt.Sprintf("hello    1        1a1a1a1a  local   100 B    3         %s  hello.greet\n", localTime(3*time.Hour)),
		},
		{
			name: "one package, limited",
			args: []string{"hello", "--limit", "1"},
			want: &adminv1.ListPackageVersionsRequest{Name: "hello", Limit: 1},
			stdout: "" +
				"PACKAGE  VERSION  SHA256    AUTHOR  SIZE     REVISION  DEPLOYED AT          SERVICES\n" +
				fmt.Sprintf("hello    2        2b2b2b2b  local   2.0 KiB  7         %s  hello.greet,hello.part\n", localTime(time.Hour)),
		},
		{
			name:    "unknown package, message once",
			args:    []string{"nope"},
			want:    &adminv1.ListPackageVersionsRequest{Name: "nope"},
			wantErr: `deploy history of "nope": package "nope" has never been deployed`,
		},
		{name: "negative limit", args: []string{"--limit", "-1"}, wantErr: "--limit -1: must not be negative"},
		{name: "two packages", args: []string{"a", "b"}, wantErr: `unexpected argument "b" (usage: weftctl deploy history [PACKAGE] [flags])`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			stdout, _, err := e.run(append([]string{"deploy", "history"}, tt.args...)...)
			if tt.wantErr != "" {
				// The operation is named once, though both sides name it.
				if err == nil || !strings.HasSuffix(err.Error(), tt.wantErr) || strings.Count(err.Error(), "deploy history") != 1 {
					t.Fatalf("error = %v, want it to end with %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			h := e.packages.hist()
			h.mu.Lock()
			reqs := h.historyReqs
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
				t.Errorf("stdout =\n%s\nwant\n%s", stdout, tt.stdout)
			}
		})
	}
}

func TestDeployHistoryJSON(t *testing.T) {
	e := newTestEnv(t)
	stdout, _, err := e.run("deploy", "history", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var got adminv1.ListPackageVersionsResponse
	if err := protojson.Unmarshal([]byte(stdout), &got); err != nil || len(got.GetVersions()) != 3 {
		t.Fatalf("stdout is not the history: %v\n%s", err, stdout)
	}
}

func TestDeployShow(t *testing.T) {
	tests := []struct {
		name    string
		arg     string
		stdout  string
		wantErr string
	}{
		{
			name:   "current, two files",
			arg:    "hello",
			stdout: "// ==> hello.go <==\npackage hello // v2\n\n// ==> util.go <==\npackage hello\n\nfunc util() {}\n",
		},
		{
			name:   "a version, file without a final newline",
			arg:    "hello@1",
			stdout: "// ==> hello.go <==\npackage hello // v1\n",
		},
		{name: "v prefix", arg: "orders@v1", stdout: "// ==> orders.go <==\npackage orders\n"},
		{name: "unknown version", arg: "hello@9", wantErr: `get package "hello" v9: package "hello" has no version 9`},
		{name: "bad version", arg: "hello@x", wantErr: `deploy show: "hello@x": version "x": want a version number such as 3 or v3`},
		{name: "zero version", arg: "hello@0", wantErr: `version "0": want a version number`},
		{name: "no name", arg: "@3", wantErr: `deploy show: "@3": want PACKAGE or PACKAGE@VERSION`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			stdout, _, err := e.run("deploy", "show", tt.arg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if stdout != tt.stdout {
				t.Errorf("stdout =\n%q\nwant\n%q", stdout, tt.stdout)
			}
		})
	}
}

func TestDeployShowJSON(t *testing.T) {
	e := newTestEnv(t)
	stdout, _, err := e.run("deploy", "show", "hello@1", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var got adminv1.GetPackageResponse
	if err := protojson.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("stdout is not a GetPackageResponse: %v\n%s", err, stdout)
	}
	if got.GetCurrent() || got.GetPackage().GetVersion() != 1 || string(got.GetSources()[0].GetContent()) != "package hello // v1" {
		t.Errorf("response = %v", &got)
	}
}

func TestDeployStatus(t *testing.T) {
	answer := statusOf("hello", 2, 7,
		agentState{"berlin-1", stDeployed, true, 7, ""},
		agentState{"oslo-1", stFailed, true, 6, "hello.go:3:1: undefined: x\nand more"},
		agentState{"paris-1", stPending, false, 4, ""},
	)
	const table = "" +
		"package hello v2 sha256:1a2b3c4d, revision 7\n" +
		"AGENT     STATE     CONNECTED  APPLIED  ERROR\n" +
		"berlin-1  deployed  yes        7        -\n" +
		"oslo-1    failed    yes        6        hello.go:3:1: undefined: x...\n" +
		"paris-1   pending   no         4        -\n"
	tests := []struct {
		name    string
		args    []string
		script  string // package name the answer is scripted for
		want    *adminv1.GetDeployStatusRequest
		stdout  string
		wantErr string
	}{
		{name: "current", args: []string{"hello"}, script: "hello", want: &adminv1.GetDeployStatusRequest{Name: "hello"}, stdout: table},
		{name: "a version", args: []string{"hello@v2"}, script: "hello", want: &adminv1.GetDeployStatusRequest{Name: "hello", Version: 2}, stdout: table},
		{name: "the last deploy", args: nil, script: "", want: &adminv1.GetDeployStatusRequest{}, stdout: table},
		{name: "unknown", args: []string{"nope@3"}, script: "hello", want: &adminv1.GetDeployStatusRequest{Name: "nope", Version: 3},
			wantErr: `deploy status of "nope" v3: no status scripted`},
		{name: "bad ref", args: []string{"hello@"}, wantErr: `deploy status: "hello@": version ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			e.packages.hist().script(tt.script, answer)
			stdout, _, err := e.run(append([]string{"deploy", "status"}, tt.args...)...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			reqs := e.packages.hist().statusRequests()
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
				t.Errorf("stdout =\n%s\nwant\n%s", stdout, tt.stdout)
			}
		})
	}
}
