package store

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
	"gorm.io/gorm"

	"github.com/weft-dev/weft/proto/marks"
)

// A kind of config object is stored as its API message, the one
// definition of the kind: its table has the columns every kind has (id,
// name, created_at, updated_at, revision), spec, which holds the
// deterministic encoding of the message without its output-only fields,
// and the few columns that queries and uniqueness need (a kind's keys),
// written from the message with it. Reads fill the output-only fields
// from the columns. A kind with secrets (marks.Secret) keeps each sealed in
// its spec, so that no spec holds a secret in clear, and reads open them.
// Nothing here knows a kind: each is a kind value.

// object is the API message of a kind.
type object interface {
	proto.Message
	GetName() string
}

// kind describes how one kind of object is stored.
type kind[M object] struct {
	table string // such as weft_channels
	word  string // the kind in messages, such as "channel"
	// keys are the columns besides spec and those every kind has, from
	// the message.
	keys func(M) map[string]any
	// note, when set, is what replacing old by m tells the audit trail
	// besides the update, or "".
	note func(old, m M) string
	// seal and open, when set, turn each secret of a message (its fields
	// marked secret) into what the spec holds and back; "" stays "". name
	// is the object's, field the secret's. A kind with secrets gets them
	// from the store, which holds the keys (sqlStore.securities).
	seal, open func(name, field, value string) (string, error)
}

// withSecrets sets each secret of m that is set to with(its name, the
// field's, the value).
func withSecrets(m object, with func(name, field, value string) (string, error)) error {
	r := m.ProtoReflect()
	for _, fd := range marks.Fields(r.Descriptor(), marks.Secret) {
		if !r.Has(fd) {
			continue
		}
		v, err := with(m.GetName(), string(fd.Name()), r.Get(fd).String())
		if err != nil {
			return err
		}
		r.Set(fd, protoreflect.ValueOfString(v))
	}
	return nil
}

// objectRow holds the columns every kind has.
type objectRow struct {
	ID        int64
	Name      string
	Spec      []byte
	CreatedAt time.Time
	UpdatedAt time.Time
	Revision  int64
}

const objectColumns = "id, name, spec, created_at, updated_at, revision"

// encodeSpec is m as its spec column holds it: deterministic, without its
// output-only fields.
func encodeSpec(m proto.Message) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(marks.ClearOutputOnly(proto.Clone(m)))
}

// decode is the message of row, its output-only fields filled.
func (k kind[M]) decode(row *objectRow) (M, error) {
	var zero M
	m := zero.ProtoReflect().New().Interface().(M)
	if err := proto.Unmarshal(row.Spec, m); err != nil {
		return zero, fmt.Errorf("decode %s %q: %w", k.word, row.Name, err)
	}
	if k.open != nil {
		if err := withSecrets(m, k.open); err != nil {
			return zero, err
		}
	}
	r := m.ProtoReflect()
	fields := r.Descriptor().Fields()
	for name, t := range map[protoreflect.Name]time.Time{"created_at": row.CreatedAt, "updated_at": row.UpdatedAt} {
		if fd := fields.ByName(name); fd != nil {
			r.Set(fd, protoreflect.ValueOfMessage(timestamppb.New(t.UTC()).ProtoReflect()))
		}
	}
	if fd := fields.ByName("revision"); fd != nil {
		r.Set(fd, protoreflect.ValueOfInt64(row.Revision))
	}
	return m, nil
}

// get reads the object name: its row and its message.
func (k kind[M]) get(tx *gorm.DB, name string) (*objectRow, M, error) {
	var row objectRow
	var zero M
	err := tx.Table(k.table).Select(objectColumns).Where("name = ?", name).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, zero, fmt.Errorf("%s %q does not exist: %w", k.word, name, ErrNotFound)
	}
	if err != nil {
		return nil, zero, fmt.Errorf("read %s %q: %w", k.word, name, err)
	}
	m, err := k.decode(&row)
	return &row, m, err
}

// list reads every object sorted by name.
func (k kind[M]) list(tx *gorm.DB) ([]M, error) {
	var rows []objectRow
	if err := tx.Table(k.table).Select(objectColumns).Order("name").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("read %ss: %w", k.word, err)
	}
	out := make([]M, 0, len(rows))
	for i := range rows {
		m, err := k.decode(&rows[i])
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// columns are the columns of m but id, name and the times.
func (k kind[M]) columns(m M, rev int64) (map[string]any, error) {
	if k.seal != nil {
		m = proto.CloneOf(m)
		if err := withSecrets(m, k.seal); err != nil {
			return nil, err
		}
	}
	spec, err := encodeSpec(m)
	if err != nil {
		return nil, fmt.Errorf("encode %s %q: %w", k.word, m.GetName(), err)
	}
	cols := k.keys(m)
	cols["spec"], cols["revision"] = spec, rev
	return cols, nil
}

// insert writes the new object m at revision rev and returns it as stored.
func (k kind[M]) insert(tx *gorm.DB, rev int64, m M) (M, error) {
	var zero M
	cols, err := k.columns(m, rev)
	if err != nil {
		return zero, err
	}
	t := now()
	cols["name"], cols["created_at"], cols["updated_at"] = m.GetName(), t, t
	if err := tx.Table(k.table).Create(cols).Error; err != nil {
		return zero, fmt.Errorf("create %s %q: %w", k.word, m.GetName(), err)
	}
	return k.decode(&objectRow{Name: m.GetName(), Spec: cols["spec"].([]byte), CreatedAt: t, UpdatedAt: t, Revision: rev})
}

// replace writes m over its stored row at revision rev and returns it as
// stored.
func (k kind[M]) replace(tx *gorm.DB, rev int64, row *objectRow, m M) (M, error) {
	var zero M
	cols, err := k.columns(m, rev)
	if err != nil {
		return zero, err
	}
	t := now()
	cols["updated_at"] = t
	if err := tx.Table(k.table).Where("id = ?", row.ID).Updates(cols).Error; err != nil {
		return zero, fmt.Errorf("update %s %q: %w", k.word, m.GetName(), err)
	}
	return k.decode(&objectRow{ID: row.ID, Name: row.Name, Spec: cols["spec"].([]byte), CreatedAt: row.CreatedAt, UpdatedAt: t, Revision: rev})
}

// same reports whether a and b are equal but for their output-only
// fields: an update from a to b changes nothing.
func (k kind[M]) same(a, b M) bool {
	return proto.Equal(marks.ClearOutputOnly(proto.Clone(a)), marks.ClearOutputOnly(proto.Clone(b)))
}

// put creates m, or replaces the stored object of its name when they
// differ, counting what it did in t.
func (k kind[M]) put(tx *gorm.DB, rev int64, m M, t *tally) error {
	what := fmt.Sprintf("%s %q", k.word, m.GetName())
	row, old, err := k.get(tx, m.GetName())
	if errors.Is(err, ErrNotFound) {
		t.created = append(t.created, what)
		_, err = k.insert(tx, rev, m)
		return err
	}
	if err != nil || k.same(old, m) {
		return err
	}
	t.updated = append(t.updated, what)
	if k.note != nil {
		if n := k.note(old, m); n != "" {
			t.notes = append(t.notes, n)
		}
	}
	_, err = k.replace(tx, rev, row, m)
	return err
}

// delete removes the object name.
func (k kind[M]) delete(tx *gorm.DB, name string) error {
	row, _, err := k.get(tx, name)
	if err != nil {
		return err
	}
	if err := tx.Exec("DELETE FROM "+k.table+" WHERE id = ?", row.ID).Error; err != nil {
		return fmt.Errorf("delete %s %q: %w", k.word, name, err)
	}
	return nil
}

// hashes adds the content hash of every object to out, under auditKind:
// the sha256 of its spec, which no write changes but a change of the
// object.
func (k kind[M]) hashes(tx *gorm.DB, auditKind string, out map[objectKey]string) error {
	var rows []objectRow
	if err := tx.Table(k.table).Select("name, spec").Find(&rows).Error; err != nil {
		return fmt.Errorf("audit: read %ss: %w", k.word, err)
	}
	for _, r := range rows {
		sum := sha256.Sum256(r.Spec)
		out[objectKey{auditKind, r.Name}] = hex.EncodeToString(sum[:])
	}
	return nil
}

// reseal writes each secret of every object anew as with(what, stored)
// says, what naming the secret for errors; the spec of an object without
// secrets stays as it is. read reads the rows (it may lock them), tx
// writes them.
func (k kind[M]) reseal(read, tx *gorm.DB, with func(what, stored string) (string, error)) error {
	var rows []objectRow
	if err := read.Table(k.table).Select(objectColumns).Order("id").Find(&rows).Error; err != nil {
		return fmt.Errorf("read %ss: %w", k.word, err)
	}
	for _, row := range rows {
		var zero M
		m := zero.ProtoReflect().New().Interface().(M)
		if err := proto.Unmarshal(row.Spec, m); err != nil {
			return fmt.Errorf("decode %s %q: %w", k.word, row.Name, err)
		}
		n := 0
		err := withSecrets(m, func(name, field, stored string) (string, error) {
			n++
			return with(fmt.Sprintf("%s of %s %q", field, k.word, name), stored)
		})
		if err != nil {
			return err
		}
		if n == 0 {
			continue
		}
		spec, err := encodeSpec(m)
		if err != nil {
			return fmt.Errorf("encode %s %q: %w", k.word, row.Name, err)
		}
		if err := tx.Table(k.table).Where("id = ?", row.ID).Update("spec", spec).Error; err != nil {
			return fmt.Errorf("%s %q: %w", k.word, row.Name, err)
		}
	}
	return nil
}
