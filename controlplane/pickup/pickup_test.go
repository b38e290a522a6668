package pickup

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// recorder is a Deployer that keeps what it was asked and refuses packages
// whose source says "broken".
type recorder struct{ reqs []*adminv1.DeployRequest }

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
	w, err := NewWatcher(dir, rec, time.Hour, slog.New(slog.DiscardHandler))
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
	write(t, filepath.Join(dir, "list.txt"), "# services\n\nsvc\none.go\n")
	srcs, err := ReadSources(filepath.Join(dir, "list.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) != 2 || srcs[0].GetFiles()[0].GetName() != "a.go" || srcs[1].GetFiles()[0].GetName() != "one.go" {
		t.Fatalf("sources = %v", srcs)
	}

	write(t, filepath.Join(dir, "bad.txt"), "svc\nmissing\nlist.txt\n")
	_, err = ReadSources(filepath.Join(dir, "bad.txt"))
	if err == nil || !strings.Contains(err.Error(), "bad.txt:2:") || !strings.Contains(err.Error(), "bad.txt:3:") {
		t.Fatalf("ReadSources of a bad list = %v, want errors naming lines 2 and 3", err)
	}
	write(t, filepath.Join(dir, "empty.txt"), "# nothing\n")
	if _, err := ReadSources(filepath.Join(dir, "empty.txt")); err == nil {
		t.Fatal("an empty list was accepted")
	}
}
