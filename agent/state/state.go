// Package state keeps an agent's last good snapshot on disk, so that an
// agent that restarts while the control plane is unreachable boots into
// what it served before. Writes are atomic (write, sync, rename) and the
// file carries a checksum, so a torn or corrupted file is detected, not
// served. The secrets of its security definitions are sealed with the
// directory's own key (KeyFile), in the snapshot and in every backup. When a swap succeeds the agent also keeps the state it replaced,
// in a circular log of backups (the last DefaultBackups unless told
// otherwise).
package state

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/weft-dev/weft/agent/shared/secrets"
	"github.com/weft-dev/weft/proto/marks"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

const (
	fileName = "snapshot.pb"
	// magic starts a snapshot file of format 2: a Desired (agent protocol
	// 2). Files of format 1 (magicV1) hold a Snapshot and are converted as
	// they are read (formatv1.go).
	magic   = "weft-snapshot-v2\n"
	magicV1 = "weft-snapshot-v1\n"
	// KeyFile is the file of the key that seals the secrets in the
	// snapshot and the backups, made (0600) when the directory has none.
	KeyFile = "secrets.key"
)

// Dir is an agent's state directory: the last good snapshot and the
// backups of the states it replaced.
type Dir struct {
	path    string
	backups backups
	box     *secrets.Box
}

// Open returns the state directory at path, creating it when missing. It
// keeps DefaultBackups backups unless an option says otherwise.
func Open(path string, opts ...Option) (*Dir, error) {
	d := &Dir{path: path, backups: backups{limit: DefaultBackups}}
	for _, o := range opts {
		o(d)
	}
	if d.backups.limit < 0 {
		return nil, fmt.Errorf("state dir %s: backups %d: must not be negative", path, d.backups.limit)
	}
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	key, err := secrets.LoadOrCreateKey(filepath.Join(path, KeyFile))
	if err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	if d.box, err = secrets.NewBox(key); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	return d, nil
}

// Path returns the directory's path.
func (d *Dir) Path() string { return d.path }

// Save writes s, which must carry every package's files, as the last good
// snapshot. A state directory removed under a running agent is made
// again, so that repairing a broken one is enough for the next Save.
func (d *Dir) Save(s *agentv1.Desired) error {
	b, err := d.encode(s)
	if err != nil {
		return fmt.Errorf("save snapshot of revision %d: %w", s.GetRevision(), err)
	}
	if err := os.MkdirAll(d.path, 0o700); err != nil {
		return fmt.Errorf("save snapshot of revision %d: state dir: %w", s.GetRevision(), err)
	}
	if err := writeAtomic(filepath.Join(d.path, fileName), b); err != nil {
		return fmt.Errorf("save snapshot of revision %d: %w", s.GetRevision(), err)
	}
	return nil
}

// Load reads the last good snapshot; nil when there is none.
func (d *Dir) Load() (*agentv1.Desired, error) {
	s, err := d.decode(filepath.Join(d.path, fileName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return s, err
}

// encode renders s in the snapshot file format: magic, the payload's
// sha256 in hex and a newline, then the payload: s with its secrets
// sealed.
func (d *Dir) encode(s *agentv1.Desired) ([]byte, error) {
	s, err := d.sealed(s)
	if err != nil {
		return nil, err
	}
	payload, err := proto.MarshalOptions{Deterministic: true}.Marshal(s)
	if err != nil {
		return nil, err
	}
	return d.encodePlain(payload)
}

// encodePlain frames payload, a marshalled snapshot, as a snapshot file.
func (d *Dir) encodePlain(payload []byte) ([]byte, error) {
	sum := sha256.Sum256(payload)
	var b bytes.Buffer
	b.WriteString(magic)
	b.WriteString(hex.EncodeToString(sum[:]))
	b.WriteByte('\n')
	b.Write(payload)
	return b.Bytes(), nil
}

// decode reads the snapshot file name, refusing one that is damaged, and
// opens its secrets. A missing file's error wraps fs.ErrNotExist.
func (d *Dir) decode(name string) (*agentv1.Desired, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("load snapshot: %w", err)
	}
	rest, ok := bytes.CutPrefix(b, []byte(magic))
	v1 := false
	if !ok {
		rest, v1 = bytes.CutPrefix(b, []byte(magicV1))
	}
	if (!ok && !v1) || len(rest) < 65 || rest[64] != '\n' {
		return nil, fmt.Errorf("load snapshot %s: not a snapshot file", name)
	}
	want, payload := string(rest[:64]), rest[65:]
	sum := sha256.Sum256(payload)
	if hex.EncodeToString(sum[:]) != want {
		return nil, fmt.Errorf("load snapshot %s: checksum mismatch; the file is damaged", name)
	}
	s := &agentv1.Desired{}
	if v1 {
		s, err = fromV1(payload)
	} else {
		err = proto.Unmarshal(payload, s)
	}
	if err != nil {
		return nil, fmt.Errorf("load snapshot %s: %w", name, err)
	}
	if err := d.open(s); err != nil {
		return nil, fmt.Errorf("load snapshot %s: %w", name, err)
	}
	return s, nil
}

// sealed returns a copy of s whose security definitions' secrets are
// sealed; s is left as it is.
func (d *Dir) sealed(s *agentv1.Desired) (*agentv1.Desired, error) {
	if len(s.GetSecurity()) == 0 {
		return s, nil
	}
	out := proto.CloneOf(s)
	return out, eachSecret(out, func(v string) (string, error) { return d.box.Seal([]byte(v)) })
}

// open opens the sealed secrets of s in place. A value not sealed is kept
// as it is: files written before secrets were sealed hold them in clear,
// until the next write.
func (d *Dir) open(s *agentv1.Desired) error {
	return eachSecret(s, func(v string) (string, error) {
		if !secrets.IsSealed(v) {
			return v, nil
		}
		b, err := d.box.Open(v)
		if err != nil {
			return v, fmt.Errorf("%w (was %s replaced?)", err, KeyFile)
		}
		return string(b), nil
	})
}

// eachSecret sets each secret of the security definitions of s to f(its
// value), and stops at the first error.
func eachSecret(s *agentv1.Desired, f func(string) (string, error)) error {
	for _, def := range s.GetSecurity() {
		var err error
		marks.ReplaceSecrets(def, func(_ protoreflect.FieldDescriptor, v string) string {
			if err != nil {
				return v
			}
			v, err = f(v)
			return v
		})
		if err != nil {
			return fmt.Errorf("the secrets of %q: %w", def.GetName(), err)
		}
	}
	return nil
}

// writeAtomic replaces name with b so that a reader sees the old or the new
// content, never a mix, even across a crash.
func writeAtomic(name string, b []byte) error {
	dir := filepath.Dir(name)
	f, err := os.CreateTemp(dir, filepath.Base(name)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op after the rename
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp, name); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the rename itself durable
		d.Close()
	}
	return nil
}
