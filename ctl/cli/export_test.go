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
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// fakeConfig answers every export with config, and records the requests.
// The kind "bogus" is refused as the control plane refuses an unknown
// kind, and the name "nope" as one that names nothing. It answers every
// ListAudit with audit, recording those requests too.
type fakeConfig struct {
	adminv1.UnimplementedConfigServiceServer

	mu            sync.Mutex
	config        *adminv1.Config
	requests      []*adminv1.ExportConfigRequest
	audit         *adminv1.ListAuditResponse
	auditRequests []*adminv1.ListAuditRequest
}

func (f *fakeConfig) ExportConfig(_ context.Context, req *adminv1.ExportConfigRequest) (*adminv1.ExportConfigResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, proto.Clone(req).(*adminv1.ExportConfigRequest))
	if slices.Contains(req.GetKinds(), "bogus") {
		return nil, status.Error(codes.InvalidArgument, `export config: kinds[0]: unknown kind "bogus"`)
	}
	if slices.Contains(req.GetNames(), "nope") {
		return nil, status.Error(codes.NotFound, `export config: no object of any kind is named "nope"`)
	}
	return &adminv1.ExportConfigResponse{Config: f.config}, nil
}

// sent returns the requests the fake received.
func (f *fakeConfig) sent() []*adminv1.ExportConfigRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

func (f *fakeConfig) ListAudit(_ context.Context, req *adminv1.ListAuditRequest) (*adminv1.ListAuditResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.auditRequests = append(f.auditRequests, proto.Clone(req).(*adminv1.ListAuditRequest))
	if f.audit == nil {
		return &adminv1.ListAuditResponse{}, nil
	}
	return proto.Clone(f.audit).(*adminv1.ListAuditResponse), nil
}

// auditSent returns the ListAudit requests the fake received.
func (f *fakeConfig) auditSent() []*adminv1.ListAuditRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.auditRequests)
}

// exportConfig is a small config holding a secret placeholder, a map
// given out of key order, an int64, a timestamp and a package with source.
func exportConfig() *adminv1.Config {
	return &adminv1.Config{
		Version:  1,
		Security: []*adminv1.SecurityDefinition{{Name: "crm-token", Kind: "bearer", Token: "${WEFT_SECRET_CRM_TOKEN_TOKEN}"}},
		Outgoing: []*adminv1.OutgoingConnection{{
			Name: "crm", Address: "https://crm.example", Security: "crm-token", TimeoutMs: 5000,
			Headers: map[string]string{"X-Zeta": "z", "X-Alpha": "a"}, Active: proto.Bool(true),
		}},
		Channels: []*adminv1.Channel{{Name: "orders", Path: "/orders", Methods: []string{"POST"}, Service: "orders.place", Active: proto.Bool(true)}},
		Jobs: []*adminv1.Job{{
			Name: "sweep", Service: "orders.sweep", Type: "interval", Interval: &adminv1.JobInterval{Minutes: 5},
			StartAt: timestamppb.New(testNow), Active: proto.Bool(true), Placement: "every",
		}},
		Packages: []*adminv1.PackageSource{{Name: "orders", Files: []*adminv1.SourceFile{{Name: "orders.go", Content: []byte("package orders\n")}}}},
	}
}

// wantExportYAML is exportConfig as export writes it.
const wantExportYAML = `channels:
- active: true
  methods:
  - POST
  name: orders
  path: /orders
  service: orders.place
jobs:
- active: true
  interval:
    minutes: "5"
  name: sweep
  placement: every
  service: orders.sweep
  start_at: "2026-03-04T05:06:07Z"
  type: interval
outgoing:
- active: true
  address: https://crm.example
  headers:
    X-Alpha: a
    X-Zeta: z
  name: crm
  security: crm-token
  timeout_ms: "5000"
packages:
- files:
  - name: orders.go
    text: |
      package orders
  name: orders
security:
- kind: bearer
  name: crm-token
  token: ${WEFT_SECRET_CRM_TOKEN_TOKEN}
version: 1
`

// newExportEnv serves a fake config service and returns it and the
// address.
func newExportEnv(t *testing.T) (*fakeConfig, string) {
	t.Helper()
	f := &fakeConfig{config: exportConfig()}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := grpc.NewServer()
	adminv1.RegisterConfigServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return f, lis.Addr().String()
}

func TestExportYAML(t *testing.T) {
	f, addr := newExportEnv(t)
	env := map[string]string{"WEFT_ADDR": addr}
	first, _, err := runApp(env, "export")
	if err != nil {
		t.Fatal(err)
	}
	if first != wantExportYAML {
		t.Fatalf("export wrote\n%s\nwant\n%s", first, wantExportYAML)
	}
	again, _, err := runApp(env, "export", "--format", "YAML")
	if err != nil || again != first {
		t.Fatalf("a second export differs (%v):\n%s", err, again)
	}
	want := &adminv1.ExportConfigRequest{}
	for _, req := range f.sent() {
		if !proto.Equal(req, want) {
			t.Errorf("request %v, want %v", req, want)
		}
	}
}

func TestExportJSON(t *testing.T) {
	_, addr := newExportEnv(t)
	env := map[string]string{"WEFT_ADDR": addr}
	for _, args := range [][]string{{"export", "--format", "json"}, {"-o", "json", "export"}, {"export", "-o", "json", "--format", "json"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, _, err := runApp(env, args...)
			if err != nil {
				t.Fatal(err)
			}
			// Two-space indent, proto field names, only set fields.
			for _, line := range []string{"{\n  \"version\": 1,\n  \"security\": [\n    {\n      \"name\": \"crm-token\",",
				`"token": "${WEFT_SECRET_CRM_TOKEN_TOKEN}"`, `"timeout_ms": "5000"`} {
				if !strings.Contains(out, line) {
					t.Errorf("JSON lacks %q:\n%s", line, out)
				}
			}
			if strings.Contains(out, `"created_at"`) || strings.Contains(out, `"revision"`) || !strings.HasSuffix(out, "}\n") {
				t.Errorf("JSON holds unset fields or lacks its final newline:\n%s", out)
			}
			var back map[string]any
			if err := json.Unmarshal([]byte(out), &back); err != nil {
				t.Fatalf("not JSON: %v", err)
			}
		})
	}
}

func TestExportFlags(t *testing.T) {
	f, addr := newExportEnv(t)
	env := map[string]string{"WEFT_ADDR": addr}
	if _, _, err := runApp(env, "export", "--kind", "channel", "--kind", "job,security", "--name", "orders", "--name", "crm,sweep", "--include-source"); err != nil {
		t.Fatal(err)
	}
	want := &adminv1.ExportConfigRequest{
		Kinds: []string{"channel", "job", "security"}, Names: []string{"orders", "crm", "sweep"}, IncludeSource: true,
	}
	if got := f.sent(); len(got) != 1 || !proto.Equal(got[0], want) {
		t.Fatalf("requests %v, want %v", got, want)
	}
}

func TestExportFile(t *testing.T) {
	_, addr := newExportEnv(t)
	env := map[string]string{"WEFT_ADDR": addr}
	dir := t.TempDir()
	path := filepath.Join(dir, "weft.yaml")
	if err := os.WriteFile(path, []byte("old content"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := runApp(env, "export", "--file", path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "wrote " + path + ": 1 security definition, 1 outgoing connection, 1 channel, 1 job, 1 package\n"; out != want {
		t.Errorf("stdout %q, want %q", out, want)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != wantExportYAML {
		t.Fatalf("file holds (%v)\n%s\nwant\n%s", err, b, wantExportYAML)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("file mode %v, %v; want 0644", st.Mode().Perm(), err)
	}
	if _, _, err := runApp(env, "export", "-f", path, "--format", "json"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); !strings.HasPrefix(string(b), "{\n") {
		t.Errorf("-f did not replace the file with JSON:\n%s", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the directory holds %d entries, want only the export (no temporary files left)", len(entries))
	}

	stdout, _, err := runApp(env, "export", "--file", "-")
	if err != nil || stdout != wantExportYAML {
		t.Errorf("--file - wrote %q, %v; want the export on stdout", stdout, err)
	}

	missing := filepath.Join(dir, "no-such-dir", "weft.yaml")
	_, _, err = runApp(env, "export", "--file", missing)
	if err == nil || !strings.Contains(err.Error(), "write "+missing) {
		t.Errorf("export into a missing directory: err = %v, want one naming the file", err)
	}
}

func TestExportRefusals(t *testing.T) {
	f, addr := newExportEnv(t)
	env := map[string]string{"WEFT_ADDR": addr}
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		want string
		sent bool // whether the request reaches the control plane
	}{
		{"bad format", []string{"export", "--format", "xml"}, `--format "xml": want yaml or json`, false},
		{"formats disagree", []string{"-o", "yaml", "export", "--format", "json"}, "--format json and --output yaml disagree", false},
		{"extra argument", []string{"export", "weft.yaml"}, `unexpected argument "weft.yaml"`, false},
		{"unknown kind", []string{"export", "--kind", "bogus", "--file", filepath.Join(dir, "a.yaml")}, `export config: kinds[0]: unknown kind "bogus"`, true},
		{"unknown name", []string{"export", "--name", "nope", "--file", filepath.Join(dir, "b.yaml")}, `no object of any kind is named "nope"`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(f.sent())
			_, _, err := runApp(env, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
			if sent := len(f.sent()) > before; sent != tt.sent {
				t.Errorf("request sent = %v, want %v", sent, tt.sent)
			}
		})
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a refused export left %d files", len(entries))
	}
}
