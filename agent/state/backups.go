package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// DefaultBackups is how many backups a state directory keeps unless told
// otherwise.
const DefaultBackups = 100

const (
	backupDir    = "backups"
	backupSuffix = ".pb"
)

// Option adjusts a state directory.
type Option func(*Dir)

// WithBackups sets how many backups of replaced states the directory keeps;
// 0 keeps none, and a negative n makes Open fail.
func WithBackups(n int) Option {
	return func(d *Dir) { d.backups.limit = n }
}

// backups is the circular log of replaced states under <dir>/backups. Each
// backup is one file in the format of the last good snapshot, so copying
// it over snapshot.pb restores it; its metadata is in its name:
//
//	<seq>-r<revision>-by<replaced by revision>-t<replaced at, Unix ms>.pb
//
// such as 000123-r42-by43-t1772600767123.pb. seq counts up by one per
// backup and orders them; its id is <seq>-r<revision>.
type backups struct {
	limit int
	mu    sync.Mutex // one write and prune at a time
}

// Backup describes one backup of a replaced state.
type Backup struct {
	// ID names the backup in its directory, such as 000123-r42.
	ID string
	// Revision is the revision of the replaced state.
	Revision int64
	// ReplacedBy is the revision that replaced it.
	ReplacedBy int64
	// ReplacedAt is when it was replaced.
	ReplacedAt time.Time
	// Packages are the packages the state held, as name@version.
	Packages []string
	// Size is the backup's size on disk in bytes.
	Size int64
	// Err says why the backup cannot be read, such as a checksum mismatch;
	// nil for a sound backup. A damaged backup has no Packages.
	Err error

	seq  uint64
	name string // file name in the backups directory
}

// BackupLimit returns how many backups the directory keeps; 0 means none.
func (d *Dir) BackupLimit() int { return d.backups.limit }

// KeepBackup writes replaced, the full snapshot of a state that the state
// at revision replacedBy replaced at time at, as the newest backup, then
// deletes the oldest ones beyond the limit. It does nothing when the limit
// is 0.
func (d *Dir) KeepBackup(replaced *agentv1.Desired, replacedBy int64, at time.Time) (Backup, error) {
	if d.backups.limit <= 0 {
		return Backup{}, nil
	}
	d.backups.mu.Lock()
	defer d.backups.mu.Unlock()
	dir := d.backupPath()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Backup{}, fmt.Errorf("keep backup: %w", err)
	}
	list, err := d.scanBackups()
	if err != nil {
		return Backup{}, fmt.Errorf("keep backup: %w", err)
	}
	var seq uint64 = 1
	if len(list) > 0 {
		seq = list[0].seq + 1
	}
	b := Backup{
		Revision:   replaced.GetRevision(),
		ReplacedBy: replacedBy,
		ReplacedAt: time.UnixMilli(at.UnixMilli()),
		Packages:   packagesOf(replaced),
		seq:        seq,
	}
	b.ID = fmt.Sprintf("%06d-r%d", seq, b.Revision)
	b.name = fmt.Sprintf("%s-by%d-t%d%s", b.ID, replacedBy, b.ReplacedAt.UnixMilli(), backupSuffix)
	data, err := d.encode(replaced)
	if err != nil {
		return Backup{}, fmt.Errorf("keep backup %s: %w", b.ID, err)
	}
	if err := writeAtomic(filepath.Join(dir, b.name), data); err != nil {
		return Backup{}, fmt.Errorf("keep backup %s: %w", b.ID, err)
	}
	b.Size = int64(len(data))
	list = append([]Backup{b}, list...)
	if err := d.prune(list); err != nil {
		return b, fmt.Errorf("keep backup %s: %w", b.ID, err)
	}
	return b, nil
}

// prune deletes the backups of list (newest first) beyond the limit, and
// temporary files that a crash left behind.
func (d *Dir) prune(list []Backup) error {
	var errs []error
	if len(list) > d.backups.limit {
		for _, b := range list[d.backups.limit:] {
			if err := os.Remove(filepath.Join(d.backupPath(), b.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("delete the old backup %s: %w", b.ID, err))
			}
		}
	}
	entries, err := os.ReadDir(d.backupPath())
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, e := range entries {
		// writeAtomic's temporary files; none is being written now.
		if e.Type().IsRegular() && strings.Contains(e.Name(), backupSuffix+".tmp-") {
			_ = os.Remove(filepath.Join(d.backupPath(), e.Name()))
		}
	}
	return errors.Join(errs...)
}

// Backups lists the backups on disk, newest first. Files that are not
// backups are ignored; a damaged backup is listed with Err set.
func (d *Dir) Backups() ([]Backup, error) {
	d.backups.mu.Lock()
	defer d.backups.mu.Unlock()
	list, err := d.scanBackups()
	if err != nil {
		return nil, fmt.Errorf("list backups: %w", err)
	}
	for i := range list {
		b := &list[i]
		s, err := d.decode(filepath.Join(d.backupPath(), b.name))
		if err != nil {
			b.Err = err
			continue
		}
		b.Packages = packagesOf(s)
	}
	return list, nil
}

// LoadBackup reads the full snapshot kept by the backup with the given id.
func (d *Dir) LoadBackup(id string) (*agentv1.Desired, error) {
	d.backups.mu.Lock()
	defer d.backups.mu.Unlock()
	list, err := d.scanBackups()
	if err != nil {
		return nil, fmt.Errorf("load backup %s: %w", id, err)
	}
	for _, b := range list {
		if b.ID == id {
			return d.decode(filepath.Join(d.backupPath(), b.name))
		}
	}
	return nil, fmt.Errorf("load backup %s: %w", id, fs.ErrNotExist)
}

// scanBackups lists the backups by their names, newest first, without
// reading them.
func (d *Dir) scanBackups() ([]Backup, error) {
	entries, err := os.ReadDir(d.backupPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var list []Backup
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, ok := parseBackupName(e.Name())
		if !ok {
			continue
		}
		if info, err := e.Info(); err == nil {
			b.Size = info.Size()
		}
		list = append(list, b)
	}
	slices.SortFunc(list, func(a, b Backup) int {
		switch {
		case a.seq > b.seq:
			return -1
		case a.seq < b.seq:
			return 1
		}
		return strings.Compare(b.name, a.name)
	})
	return list, nil
}

// parseBackupName reads a backup's metadata from its file name; false for
// a name that is not a backup's.
func parseBackupName(name string) (Backup, bool) {
	base, ok := strings.CutSuffix(name, backupSuffix)
	if !ok {
		return Backup{}, false
	}
	parts := strings.Split(base, "-")
	if len(parts) != 4 {
		return Backup{}, false
	}
	seq, err1 := strconv.ParseUint(parts[0], 10, 64)
	rev, ok2 := cutInt(parts[1], "r")
	by, ok3 := cutInt(parts[2], "by")
	ms, ok4 := cutInt(parts[3], "t")
	if err1 != nil || !ok2 || !ok3 || !ok4 {
		return Backup{}, false
	}
	return Backup{
		ID:         parts[0] + "-" + parts[1],
		Revision:   rev,
		ReplacedBy: by,
		ReplacedAt: time.UnixMilli(ms),
		seq:        seq,
		name:       name,
	}, true
}

// cutInt parses s as prefix followed by a non-negative decimal number.
func cutInt(s, prefix string) (int64, bool) {
	digits, ok := strings.CutPrefix(s, prefix)
	if !ok || digits == "" || digits[0] == '+' || digits[0] == '-' {
		return 0, false
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	return n, err == nil
}

// packagesOf lists a snapshot's packages as name@version.
func packagesOf(s *agentv1.Desired) []string {
	out := make([]string, 0, len(s.GetPackages()))
	for _, p := range s.GetPackages() {
		out = append(out, fmt.Sprintf("%s@%d", p.GetName(), p.GetVersion()))
	}
	return out
}

func (d *Dir) backupPath() string { return filepath.Join(d.path, backupDir) }
