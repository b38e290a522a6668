package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// base is the time of the first replacement in these tests.
var base = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// snap returns a snapshot at rev holding one package, hello, at version rev.
func snap(rev int64) *agentv1.Desired {
	return &agentv1.Desired{Revision: rev, Hash: fmt.Sprintf("h%d", rev), Packages: []*adminv1.Package{{
		Name: "hello", Version: rev, Sha256: "sha",
		Sources: []*adminv1.SourceFile{{Name: "hello.go", Content: []byte("package hello // " + strings.Repeat("x", int(rev)))}},
	}}}
}

func openDir(t *testing.T, path string, opts ...Option) *Dir {
	t.Helper()
	d, err := Open(path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// replace backs up revisions from..to, each replaced by the next, one
// minute apart.
func replace(t *testing.T, d *Dir, from, to int64) {
	t.Helper()
	for rev := from; rev <= to; rev++ {
		if _, err := d.KeepBackup(snap(rev), rev+1, base.Add(time.Duration(rev)*time.Minute)); err != nil {
			t.Fatalf("KeepBackup(r%d): %v", rev, err)
		}
	}
}

// revisions lists the revisions of list in order.
func revisions(list []Backup) []int64 {
	var out []int64
	for _, b := range list {
		out = append(out, b.Revision)
	}
	return out
}

func backupFiles(t *testing.T, d *Dir) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(d.Path(), backupDir))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestBackupsCircularLog(t *testing.T) {
	tests := []struct {
		name     string
		limit    int
		replaced int64 // revisions 1..replaced are replaced in turn
		want     []int64
	}{
		{"limit 3 over 5 replacements keeps the 3 newest", 3, 5, []int64{5, 4, 3}},
		{"under the limit keeps all", 10, 4, []int64{4, 3, 2, 1}},
		{"limit 1", 1, 3, []int64{3}},
		{"limit 0 keeps none", 0, 5, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := openDir(t, t.TempDir(), WithBackups(tt.limit))
			replace(t, d, 1, tt.replaced)
			list, err := d.Backups()
			if err != nil {
				t.Fatal(err)
			}
			if got := revisions(list); !slices.Equal(got, tt.want) {
				t.Fatalf("revisions = %v, want %v", got, tt.want)
			}
			if tt.limit == 0 {
				if _, err := os.Stat(filepath.Join(d.Path(), backupDir)); !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("limit 0 created the backups directory: %v", err)
				}
				return
			}
			if n := len(backupFiles(t, d)); n != len(tt.want) {
				t.Fatalf("%d files on disk, want %d: %v", n, len(tt.want), backupFiles(t, d))
			}
			for _, b := range list {
				wantAt := base.Add(time.Duration(b.Revision) * time.Minute)
				switch {
				case b.Err != nil:
					t.Errorf("%s: %v", b.ID, b.Err)
				case b.ReplacedBy != b.Revision+1 || !b.ReplacedAt.Equal(wantAt):
					t.Errorf("%s: replaced by r%d at %s, want r%d at %s", b.ID, b.ReplacedBy, b.ReplacedAt, b.Revision+1, wantAt)
				case !slices.Equal(b.Packages, []string{fmt.Sprintf("hello@%d", b.Revision)}):
					t.Errorf("%s: packages %v", b.ID, b.Packages)
				case b.Size <= 0:
					t.Errorf("%s: size %d", b.ID, b.Size)
				}
			}
		})
	}
}

func TestBackupIDsAndContent(t *testing.T) {
	d := openDir(t, t.TempDir(), WithBackups(2))
	replace(t, d, 1, 3)
	list, err := d.Backups()
	if err != nil {
		t.Fatal(err)
	}
	if got := []string{list[0].ID, list[1].ID}; !slices.Equal(got, []string{"000003-r3", "000002-r2"}) {
		t.Fatalf("ids = %v", got)
	}
	got, err := d.LoadBackup("000003-r3")
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, snap(3)) {
		t.Fatalf("LoadBackup = %v, want %v", got, snap(3))
	}
	if _, err := d.LoadBackup("000001-r1"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadBackup of a pruned backup: %v, want fs.ErrNotExist", err)
	}

	// A backup is a snapshot file: copied over snapshot.pb, it boots.
	b, err := os.ReadFile(filepath.Join(d.Path(), backupDir, list[1].name))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.Path(), fileName), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := d.Load(); err != nil || !proto.Equal(s, snap(2)) {
		t.Fatalf("Load of a restored backup = %v, %v", s, err)
	}
	if list[1].Size != int64(len(b)) {
		t.Fatalf("size = %d, the file has %d bytes", list[1].Size, len(b))
	}
}

func TestBackupsSurviveReopen(t *testing.T) {
	path := t.TempDir()
	replace(t, openDir(t, path, WithBackups(5)), 1, 5)

	// The sequence goes on across restarts, and a lower limit prunes at
	// the next backup.
	d := openDir(t, path, WithBackups(2))
	replace(t, d, 6, 6)
	list, err := d.Backups()
	if err != nil {
		t.Fatal(err)
	}
	if got := revisions(list); !slices.Equal(got, []int64{6, 5}) {
		t.Fatalf("revisions = %v, want [6 5]", got)
	}
	if list[0].ID != "000006-r6" {
		t.Fatalf("id = %s, want 000006-r6", list[0].ID)
	}

	// Limit 0 takes no more and leaves the old ones alone.
	d = openDir(t, path, WithBackups(0))
	replace(t, d, 7, 7)
	if list, err := d.Backups(); err != nil || !slices.Equal(revisions(list), []int64{6, 5}) {
		t.Fatalf("after limit 0: %v, %v", revisions(list), err)
	}
}

func TestBackupsIgnoreJunk(t *testing.T) {
	d := openDir(t, t.TempDir(), WithBackups(3))
	replace(t, d, 1, 1)
	dir := filepath.Join(d.Path(), backupDir)
	junk := []string{
		"README",
		"notes.pb",
		"000099-r1.pb",                           // too few parts
		"000099-r1-by2-t3-x.pb",                  // too many
		"x00099-r1-by2-t3.pb",                    // sequence not a number
		"000099-r-1-by2-t3.pb",                   // negative revision
		"000099-q1-by2-t3.pb",                    // wrong prefix
		"000099-r1-by2-t3.pb.bak",                // wrong suffix
		"000099-r1-by2-tnow.pb",                  // time not a number
		"000050-r1-by2-t3.pb.tmp-12345",          // left by a crash: removed
		"000098-r+1-by2-t3.pb",                   // signed
		"000097-r99999999999999999999-by2-t3.pb", // overflow
	}
	for _, name := range junk {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("junk"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "000100-r1-by2-t3.pb"), 0o700); err != nil {
		t.Fatal(err)
	}
	list, err := d.Backups()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != "000001-r1" || list[0].Err != nil {
		t.Fatalf("Backups = %+v, want only 000001-r1", list)
	}

	replace(t, d, 2, 4)
	list, err = d.Backups()
	if err != nil {
		t.Fatal(err)
	}
	if got := revisions(list); !slices.Equal(got, []int64{4, 3, 2}) {
		t.Fatalf("revisions = %v, want [4 3 2]", got)
	}
	files := backupFiles(t, d)
	for _, name := range junk {
		kept := slices.Contains(files, name)
		if tmp := strings.Contains(name, ".tmp-"); kept == tmp {
			t.Errorf("%s: kept = %v; want junk kept and crash leftovers removed", name, kept)
		}
	}
}

func TestBackupsListDamage(t *testing.T) {
	tests := []struct {
		name   string
		damage func([]byte) []byte
		want   string
	}{
		{"flipped byte", func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b }, "checksum mismatch"},
		{"truncated", func(b []byte) []byte { return b[:len(b)-3] }, "checksum mismatch"},
		{"not a snapshot", func([]byte) []byte { return []byte("hello") }, "not a snapshot file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := openDir(t, t.TempDir(), WithBackups(3))
			replace(t, d, 1, 3)
			list, err := d.Backups()
			if err != nil {
				t.Fatal(err)
			}
			name := filepath.Join(d.Path(), backupDir, list[1].name)
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(name, tt.damage(b), 0o600); err != nil {
				t.Fatal(err)
			}
			list, err = d.Backups()
			if err != nil {
				t.Fatal(err)
			}
			if got := revisions(list); !slices.Equal(got, []int64{3, 2, 1}) {
				t.Fatalf("revisions = %v; a damaged backup stays listed", got)
			}
			if list[1].Err == nil || !strings.Contains(list[1].Err.Error(), tt.want) || list[1].Packages != nil {
				t.Fatalf("damaged backup: err %v, packages %v; want %q and none", list[1].Err, list[1].Packages, tt.want)
			}
			if list[0].Err != nil || list[2].Err != nil {
				t.Fatalf("sound backups: %v, %v", list[0].Err, list[2].Err)
			}
			if _, err := d.LoadBackup(list[1].ID); err == nil {
				t.Fatal("LoadBackup of a damaged backup succeeded")
			}
			// The damaged one is pruned in its turn like any other.
			replace(t, d, 4, 5)
			if list, err = d.Backups(); err != nil || !slices.Equal(revisions(list), []int64{5, 4, 3}) {
				t.Fatalf("after two more: %v, %v", revisions(list), err)
			}
		})
	}
}

func TestOpenRefusesNegativeBackups(t *testing.T) {
	if _, err := Open(t.TempDir(), WithBackups(-1)); err == nil || !strings.Contains(err.Error(), "backups -1: must not be negative") {
		t.Fatalf("Open with -1 backups: %v", err)
	}
}

func TestBackupsOfEmptyDir(t *testing.T) {
	d := openDir(t, t.TempDir())
	if d.BackupLimit() != DefaultBackups {
		t.Fatalf("limit = %d, want %d", d.BackupLimit(), DefaultBackups)
	}
	list, err := d.Backups()
	if err != nil || len(list) != 0 {
		t.Fatalf("Backups = %v, %v; want none", list, err)
	}
}
