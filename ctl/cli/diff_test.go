package cli

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// fakePlanner answers every plan with resp (or err), and records the
// requests.
type fakePlanner struct {
	adminv1.UnimplementedConfigServiceServer

	mu       sync.Mutex
	resp     *adminv1.PlanConfigResponse
	err      error
	requests []*adminv1.PlanConfigRequest
}

func (f *fakePlanner) PlanConfig(_ context.Context, req *adminv1.PlanConfigRequest) (*adminv1.PlanConfigResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, proto.Clone(req).(*adminv1.PlanConfigRequest))
	return f.resp, f.err
}

// sent returns the requests the fake received.
func (f *fakePlanner) sent() []*adminv1.PlanConfigRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

// newPlanEnv serves f and returns the address.
func newPlanEnv(t *testing.T, f *fakePlanner) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := grpc.NewServer()
	adminv1.RegisterConfigServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// diffFile is a config file with one secret placeholder, in a map value too.
const diffFile = `version: 1
security:
- kind: bearer
  name: crm-token
  token: ${WEFT_SECRET_CRM_TOKEN_TOKEN}
outgoing:
- address: https://crm.example
  name: crm
  security: crm-token
  timeout_ms: "3000"
  headers:
    X-Tenant: ${TENANT}
`

// writeFile writes content to name in a temporary directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// changedPlan is a plan with every action.
var changedPlan = &adminv1.PlanConfigResponse{Changes: true, Items: []*adminv1.PlanItem{
	{Kind: "security", Name: "crm-token", Action: "update", Changes: []*adminv1.FieldChange{{Field: "token", From: "(secret)", To: "(secret)"}}},
	{Kind: "outgoing", Name: "crm", Action: "update", Changes: []*adminv1.FieldChange{
		{Field: "timeout_ms", From: "5000", To: "3000"}, {Field: "method", From: `"GET"`}}},
	{Kind: "package", Name: "hello", Action: "unchanged"},
	{Kind: "channel", Name: "hello", Action: "create"},
	{Kind: "job", Name: "old", Action: "delete"},
}}

func TestDiffExitCodes(t *testing.T) {
	file := writeFile(t, "weft.yaml", diffFile)
	env := map[string]string{"WEFT_SECRET_CRM_TOKEN_TOKEN": "t0k", "TENANT": "acme"}
	tests := []struct {
		name       string
		fake       *fakePlanner
		args       []string
		code       int
		wantOut    []string
		wantNotOut []string
		wantErr    string
	}{
		{"no changes", &fakePlanner{resp: &adminv1.PlanConfigResponse{Items: []*adminv1.PlanItem{{Kind: "package", Name: "hello", Action: "unchanged"}}}},
			[]string{"diff", file}, 0, []string{"no changes: 1 objects unchanged; revision 0\n"}, []string{"= package hello"}, ""},
		{"changes", &fakePlanner{resp: changedPlan}, []string{"diff", file}, 1, []string{
			"~ security crm-token: token changed (secret)\n",
			"~ outgoing crm: timeout_ms 5000 → 3000; method \"GET\" → (unset)\n",
			"+ channel hello\n",
			"- job old\n",
			"plan: 1 to create, 2 to update, 1 to delete, 1 unchanged; revision 0\n",
		}, []string{"= package hello"}, ""},
		{"-v lists the unchanged", &fakePlanner{resp: changedPlan}, []string{"diff", "-v", file}, 1,
			[]string{"= package hello\n"}, nil, ""},
		{"a refused config", &fakePlanner{err: status.Error(codes.InvalidArgument, `plan config: channel "x": path: is required`)},
			[]string{"diff", file}, 2, nil, nil, `channel "x": path: is required`},
		{"a missing file", &fakePlanner{}, []string{"diff", "/nonexistent/weft.yaml"}, 2, nil, nil, "/nonexistent/weft.yaml"},
		{"a bad flag", &fakePlanner{}, []string{"diff", "--nope", file}, 2, nil, nil, "--nope"},
		{"no file", &fakePlanner{}, []string{"diff"}, 2, nil, nil, "missing FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := withVar(env, "WEFT_ADDR", newPlanEnv(t, tt.fake))
			out, _, err := runApp(env, tt.args...)
			if got := ExitCode(err); got != tt.code {
				t.Fatalf("exit %d (%v), want %d\n%s", got, err, tt.code, out)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.wantNotOut {
				if strings.Contains(out, w) {
					t.Errorf("output has %q:\n%s", w, out)
				}
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("err = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// withVar is m with k set to v, m unchanged.
func withVar(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for mk, mv := range m {
		out[mk] = mv
	}
	return out
}

func TestDiffResolvesVariables(t *testing.T) {
	f := &fakePlanner{resp: &adminv1.PlanConfigResponse{}}
	addr := newPlanEnv(t, f)
	file := writeFile(t, "weft.yaml", diffFile)
	envFile := writeFile(t, "prod.env", "# secrets of prod\n\nWEFT_SECRET_CRM_TOKEN_TOKEN=from-file\nTENANT = \"acme corp\"\n")
	// The environment wins over the file.
	env := map[string]string{"WEFT_ADDR": addr, "WEFT_SECRET_CRM_TOKEN_TOKEN": "from-env"}
	if _, _, err := runApp(env, "diff", file, "--env-file", envFile, "--prune"); err != nil {
		t.Fatalf("diff: %v", err)
	}
	sent := f.sent()
	if len(sent) != 1 {
		t.Fatalf("sent %d plans, want 1", len(sent))
	}
	cfg := sent[0].GetConfig()
	if got := cfg.GetSecurity()[0].GetToken(); got != "from-env" {
		t.Errorf("token sent as %q, want the environment's from-env", got)
	}
	if got := cfg.GetOutgoing()[0].GetHeaders()["X-Tenant"]; got != "acme corp" {
		t.Errorf("header X-Tenant sent as %q, want the env file's acme corp", got)
	}
	if cfg.GetOutgoing()[0].GetTimeoutMs() != 3000 || !sent[0].GetPrune() {
		t.Errorf("sent %v, want timeout_ms 3000 and prune", sent[0])
	}
}

func TestDiffRefusesBadInput(t *testing.T) {
	tests := []struct {
		name, file, envFile string
		env                 map[string]string
		want                []string
	}{
		{"missing variables", diffFile, "", nil, []string{
			`weft.yaml:5: security "crm-token": token: variable WEFT_SECRET_CRM_TOKEN_TOKEN is not set`,
			`weft.yaml:12: outgoing "crm": headers["X-Tenant"]: variable TENANT is not set`,
		}},
		{"a variable set empty", diffFile, "TENANT=\nWEFT_SECRET_CRM_TOKEN_TOKEN=x\n", nil, []string{`weft.yaml:12: outgoing "crm": headers["X-Tenant"]: variable TENANT is not set`}},
		{"an unknown field", "version: 1\nchannels:\n- name: a\n  paht: /a\n", "", nil, []string{`weft.yaml:4: channel "a": unknown field "paht"`}},
		{"not YAML", "channels: [\n", "", nil, []string{"weft.yaml:1: not YAML or JSON"}},
		{"a bad env file line", diffFile, "# ok\nTENANT acme\n", nil, []string{"prod.env:2: want KEY=VALUE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakePlanner{resp: &adminv1.PlanConfigResponse{}}
			args := []string{"diff", writeFile(t, "weft.yaml", tt.file)}
			if tt.envFile != "" {
				args = append(args, "--env-file", writeFile(t, "prod.env", tt.envFile))
			}
			_, _, err := runApp(withVar(tt.env, "WEFT_ADDR", newPlanEnv(t, f)), args...)
			if code := ExitCode(err); code != 2 {
				t.Fatalf("exit %d (%v), want 2", code, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v\nwant it to contain %q", err, w)
				}
			}
			if n := len(f.sent()); n != 0 {
				t.Errorf("sent %d plans for a bad input, want none", n)
			}
		})
	}
}

func TestDiffJSON(t *testing.T) {
	f := &fakePlanner{resp: changedPlan}
	file := writeFile(t, "weft.json", `{"version": 1, "jobs": [{"name": "old", "service": "a.b", "type": "cron", "cron": "0 3 * * *"}]}`)
	out, _, err := runApp(map[string]string{"WEFT_ADDR": newPlanEnv(t, f)}, "diff", file, "-o", "json")
	if code := ExitCode(err); code != 1 {
		t.Fatalf("exit %d (%v), want 1", code, err)
	}
	var got struct {
		Items []struct {
			Kind, Name, Action string
		}
		Changes bool
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("-o json printed no JSON: %v\n%s", err, out)
	}
	if !got.Changes || len(got.Items) != len(changedPlan.GetItems()) || got.Items[4].Action != "delete" {
		t.Errorf("-o json printed %s", out)
	}
	if n := f.sent()[0].GetConfig().GetJobs()[0].GetName(); n != "old" {
		t.Errorf("the JSON file was sent with job %q", n)
	}
}
