package state

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

func TestSaveLoad(t *testing.T) {
	d, err := Open(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.Load()
	if err != nil || got != nil {
		t.Fatalf("Load of an empty dir = %v, %v; want nil, nil", got, err)
	}
	want := &agentv1.Desired{Revision: 7, Hash: "h", Packages: []*adminv1.Package{{Name: "p", Sources: []*adminv1.SourceFile{{Name: "a.go", Content: []byte("package p")}}}}}
	if err := d.Save(want); err != nil {
		t.Fatal(err)
	}
	got, err = d.Load()
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, want) {
		t.Fatalf("Load = %v, want %v", got, want)
	}
}

func TestLoadRefusesDamage(t *testing.T) {
	tests := []struct {
		name   string
		damage func([]byte) []byte
	}{
		{"flipped byte", func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b }},
		{"truncated", func(b []byte) []byte { return b[:len(b)-3] }},
		{"not a snapshot", func([]byte) []byte { return []byte("hello") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Save(&agentv1.Desired{Revision: 3, Hash: "abc"}); err != nil {
				t.Fatal(err)
			}
			name := filepath.Join(d.Path(), fileName)
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(name, tt.damage(b), 0o600); err != nil {
				t.Fatal(err)
			}
			if s, err := d.Load(); err == nil {
				t.Fatalf("Load of a damaged file = %v, nil; want an error", s)
			}
		})
	}
}

// breakDir replaces the directory path with a regular file, which stops
// every write under it with ENOTDIR, as a full or read-only disk would,
// even for root (the tests run as root, so permissions stop nothing).
func breakDir(t *testing.T, path string) {
	t.Helper()
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestSaveFailsOnABrokenDirAndRecovers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Save(&agentv1.Desired{Revision: 1, Hash: "h1"}); err != nil {
		t.Fatal(err)
	}
	breakDir(t, path)
	err = d.Save(&agentv1.Desired{Revision: 2, Hash: "h2"})
	if !errors.Is(err, syscall.ENOTDIR) || !strings.Contains(err.Error(), "revision 2") || !strings.Contains(err.Error(), path) {
		t.Fatalf("Save into a state dir that is a file = %v; want ENOTDIR naming revision 2 and %s", err, path)
	}
	if _, err := d.KeepBackup(&agentv1.Desired{Revision: 1}, 2, time.Now()); !errors.Is(err, syscall.ENOTDIR) {
		t.Fatalf("KeepBackup into a state dir that is a file = %v; want ENOTDIR", err)
	}

	// Removing the file is enough: Save makes the directory again.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := d.Save(&agentv1.Desired{Revision: 3, Hash: "h3"}); err != nil {
		t.Fatalf("Save after the repair: %v", err)
	}
	if got, err := d.Load(); err != nil || got.GetRevision() != 3 {
		t.Fatalf("Load after the repair = r%d, %v; want r3", got.GetRevision(), err)
	}
	if _, err := d.KeepBackup(&agentv1.Desired{Revision: 1}, 3, time.Now()); err != nil {
		t.Fatalf("KeepBackup after the repair: %v", err)
	}
}

func TestOpenUnderAFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(filepath.Join(file, "state")); !errors.Is(err, syscall.ENOTDIR) {
		t.Fatalf("Open under a regular file = %v; want ENOTDIR", err)
	}
}
