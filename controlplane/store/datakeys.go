package store

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"

	"github.com/weft-dev/weft/agent/shared/secrets"
)

// Secrets are sealed by envelope encryption. The key file (--secrets-key)
// holds the key-encryption key: it seals the data keys kept in
// weft_data_keys, and the data keys seal the secret values. A value sealed
// with data key 3 is stored as "k3:" followed by what secrets.Box.Seal
// makes ("v1:..."); a value in the plain "v1:..." form is sealed with the
// key file's key itself. Both forms open.
//
// Until the first rotation there is no data key, and values are sealed
// in the v1 form with the key file's key, as before data keys existed: a
// database written by an older build opens unchanged, needs no migration
// at start, and replicas of an older build sharing it keep reading every
// value until an operator rotates, which is to be done once every
// replica runs a build that knows data keys.
//
// RotateKey makes a new data key and re-seals every value with it, in the
// transaction that retires the older keys. Replicas that did not rotate
// learn of the new key without a restart: a value naming a key they do
// not hold loads it from the table, and every config change reads the
// newest key under the revision lock before it seals anything (see
// useNewestKey), so no replica seals with a retired key once a rotation
// has committed. The key check in weft_meta stays sealed with the key
// file's key: it checks that key.

// dataKeyRow is a data key, sealed with the key file's key.
type dataKeyRow struct {
	ID        int64      `gorm:"primaryKey;autoIncrement"`
	SealedKey string     `gorm:"column:sealed_key;size:255;not null"`
	CreatedAt time.Time  `gorm:"not null;precision:3"`
	RetiredAt *time.Time `gorm:"precision:3"` // NULL: seals new values; else kept only to open old ones
}

func (dataKeyRow) TableName() string { return "weft_data_keys" }

// KeyRotation is what RotateKey did.
type KeyRotation struct {
	// KeyID is the new data key, which seals every value from now on.
	KeyID int64
	// Resealed counts the values re-sealed with it.
	Resealed int64
	// Retired are the data keys it retired, Deleted those it deleted:
	// keys retired by an earlier rotation, which no value names any more.
	Retired, Deleted []int64
	// At is when the rotation was made.
	At time.Time
}

// keyLoadTimeout bounds the read of a data key a value names and the
// store does not hold yet.
const keyLoadTimeout = 30 * time.Second

// keyring holds the data keys a store has opened. It is safe for
// concurrent use.
type keyring struct {
	mu    sync.RWMutex
	boxes map[int64]*secrets.Box
	// current is the data key new values are sealed with; 0 for none
	// yet: they are sealed with the key file's key.
	current int64
	// load makes concurrent misses of one key read it once.
	load sync.Mutex
}

// get returns the data key id, if held.
func (k *keyring) get(id int64) (*secrets.Box, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	b, ok := k.boxes[id]
	return b, ok
}

// put holds the data key id, which must be committed: ids of rolled back
// keys may be given again.
func (k *keyring) put(id int64, b *secrets.Box) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.boxes == nil {
		k.boxes = map[int64]*secrets.Box{}
	}
	k.boxes[id] = b
}

// use makes id the key new values are sealed with, unless a newer one is
// already: ids grow with every rotation.
func (k *keyring) use(id int64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.current = max(k.current, id)
}

// sealer returns the data key new values are sealed with: its id and
// box, or 0 and nil for the key file's key.
func (k *keyring) sealer() (int64, *secrets.Box) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.current == 0 {
		return 0, nil
	}
	return k.current, k.boxes[k.current]
}

// sealValue seals plain with the current data key, or with the key
// file's key before the first rotation. The caller checks that a key is
// configured.
func (s *sqlStore) sealValue(plain []byte) (string, error) {
	id, b := s.keys.sealer()
	if b == nil {
		return s.box.Seal(plain)
	}
	return sealWith(id, b, plain)
}

// sealWith seals plain with data key id.
func sealWith(id int64, b *secrets.Box, plain []byte) (string, error) {
	sealed, err := b.Seal(plain)
	if err != nil {
		return "", err
	}
	return "k" + strconv.FormatInt(id, 10) + ":" + sealed, nil
}

// openValue opens a value sealed by sealValue, with any data key, loading
// one the store does not hold yet (another replica made it). The caller
// checks that a key is configured. Its errors wrap those of
// secrets.Box.Open.
func (s *sqlStore) openValue(stored string) ([]byte, error) {
	id, rest, ok, err := splitKeyID(stored)
	if err != nil {
		return nil, err
	}
	if !ok {
		return s.box.Open(stored)
	}
	b, err := s.dataKey(id)
	if err != nil {
		return nil, err
	}
	return b.Open(rest)
}

// splitKeyID splits "kID:rest"; ok is false for a value of another form
// (sealed with the key file's key).
func splitKeyID(stored string) (id int64, rest string, ok bool, err error) {
	if !strings.HasPrefix(stored, "k") {
		return 0, stored, false, nil
	}
	idText, rest, found := strings.Cut(stored[1:], ":")
	id, perr := strconv.ParseInt(idText, 10, 64)
	if !found || perr != nil || id <= 0 {
		return 0, "", false, fmt.Errorf("open secret: %w: want k<data key id>: or v1: before the sealed value", secrets.ErrDamaged)
	}
	return id, rest, true, nil
}

// dataKey returns data key id, reading it from the table when the store
// does not hold it: one read for concurrent callers. It reads on a
// connection of its own (keyReads), so it may be called inside a
// transaction, however many others hold the pool's connections: the key
// was committed before any value naming it.
func (s *sqlStore) dataKey(id int64) (*secrets.Box, error) {
	if b, ok := s.keys.get(id); ok {
		return b, nil
	}
	s.keys.load.Lock()
	defer s.keys.load.Unlock()
	if b, ok := s.keys.get(id); ok {
		return b, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), keyLoadTimeout)
	defer cancel()
	var rows []dataKeyRow
	if err := s.keyReads.WithContext(ctx).Where("id = ?", id).Limit(1).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("read data key k%d: %w", id, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("open secret: data key k%d does not exist: %w", id, secrets.ErrWrongKey)
	}
	return s.holdDataKey(&rows[0])
}

// holdDataKey opens a committed data key's row with the key file's key
// and holds the key.
func (s *sqlStore) holdDataKey(r *dataKeyRow) (*secrets.Box, error) {
	if b, ok := s.keys.get(r.ID); ok {
		return b, nil
	}
	b, err := s.openDataKey(r)
	if err != nil {
		return nil, err
	}
	s.keys.put(r.ID, b)
	return b, nil
}

// openDataKey opens a data key's row with the key file's key.
func (s *sqlStore) openDataKey(r *dataKeyRow) (*secrets.Box, error) {
	key, err := s.box.Open(r.SealedKey)
	if err != nil {
		return nil, fmt.Errorf("open data key k%d: %w (is the secrets key the one it was stored with?)", r.ID, err)
	}
	b, err := secrets.NewBox(key)
	if err != nil {
		return nil, fmt.Errorf("open data key k%d: %w", r.ID, err)
	}
	return b, nil
}

// loadDataKeys opens every data key at Open, and seals with the newest.
func (s *sqlStore) loadDataKeys(ctx context.Context) error {
	if s.box == nil {
		return nil
	}
	var rows []dataKeyRow
	if err := s.w.WithContext(ctx).Order("id").Find(&rows).Error; err != nil {
		return fmt.Errorf("read the data keys: %w", err)
	}
	for i := range rows {
		if _, err := s.holdDataKey(&rows[i]); err != nil {
			return err
		}
		if rows[i].RetiredAt == nil {
			s.keys.use(rows[i].ID)
		}
	}
	return nil
}

// useNewestKey makes the store seal with the newest data key tx sees.
// change calls it under the revision lock, which RotateKey holds too: a
// change either commits before a rotation, whose transaction then
// re-seals what it wrote, or starts after it and seals with its key.
func (s *sqlStore) useNewestKey(tx *gorm.DB) error {
	if s.box == nil {
		return nil
	}
	var rows []dataKeyRow
	if err := tx.Where("retired_at IS NULL").Order("id DESC").Limit(1).Find(&rows).Error; err != nil {
		return fmt.Errorf("read the newest data key: %w", err)
	}
	if len(rows) == 0 {
		return nil // none yet: the key file's key seals
	}
	if _, err := s.holdDataKey(&rows[0]); err != nil {
		return err
	}
	s.keys.use(rows[0].ID)
	return nil
}

// RotateKey makes a new data key and re-seals every sealed value with it,
// in one transaction that holds the revision lock but does not move the
// revision. See the comment at the top of this file.
func (s *sqlStore) RotateKey(ctx context.Context) (KeyRotation, error) {
	if s.box == nil {
		return KeyRotation{}, errors.New("rotate the secrets key: no secrets key configured")
	}
	key := make([]byte, secrets.KeySize)
	if _, err := rand.Read(key); err != nil {
		return KeyRotation{}, fmt.Errorf("rotate the secrets key: %w", err)
	}
	box, err := secrets.NewBox(key)
	if err != nil {
		return KeyRotation{}, fmt.Errorf("rotate the secrets key: %w", err)
	}
	sealedKey, err := s.box.Seal(key)
	if err != nil {
		return KeyRotation{}, fmt.Errorf("rotate the secrets key: seal the data key: %w", err)
	}
	var out KeyRotation
	err = s.write(ctx, func(tx *gorm.DB) error {
		var err error
		out, err = s.rotate(ctx, tx, box, sealedKey)
		return err
	})
	if err != nil {
		return KeyRotation{}, err
	}
	// Only now that it is committed: a rolled back key's id may be given
	// to another.
	s.keys.put(out.KeyID, box)
	s.keys.use(out.KeyID)
	return out, nil
}

// rotate is RotateKey's transaction: it stores the data key box (sealed
// as sealedKey), re-seals every value with it, retires the other keys,
// deletes those retired earlier, and audits it all.
func (s *sqlStore) rotate(ctx context.Context, tx *gorm.DB, box *secrets.Box, sealedKey string) (KeyRotation, error) {
	// Config changes, which seal, wait for the rotation; under REPEATABLE
	// READ the reads below see every change committed before.
	if _, err := s.lockRevision(tx); err != nil {
		return KeyRotation{}, err
	}
	before, err := objectHashes(tx)
	if err != nil {
		return KeyRotation{}, err
	}
	var keys []dataKeyRow
	if err := s.locked(tx).Order("id").Find(&keys).Error; err != nil {
		return KeyRotation{}, fmt.Errorf("rotate the secrets key: read the data keys: %w", err)
	}
	for i := range keys {
		if _, err := s.holdDataKey(&keys[i]); err != nil {
			return KeyRotation{}, fmt.Errorf("rotate the secrets key: %w", err)
		}
	}
	at := now()
	row := dataKeyRow{SealedKey: sealedKey, CreatedAt: at}
	if err := tx.Create(&row).Error; err != nil {
		return KeyRotation{}, fmt.Errorf("rotate the secrets key: store the data key: %w", err)
	}
	out := KeyRotation{KeyID: row.ID, At: at}
	reseal := func(what, stored string) (string, error) {
		plain, err := s.openValue(stored)
		if err != nil {
			return "", fmt.Errorf("rotate the secrets key: open %s: %w", what, err)
		}
		sealed, err := sealWith(row.ID, box, plain)
		if err != nil {
			return "", fmt.Errorf("rotate the secrets key: seal %s: %w", what, err)
		}
		out.Resealed++
		return sealed, nil
	}

	if err := securityDefs.reseal(s.locked(tx), tx, reseal); err != nil {
		return KeyRotation{}, fmt.Errorf("rotate the secrets key: %w", err)
	}

	var cas []caRow
	if err := s.locked(tx).Find(&cas).Error; err != nil {
		return KeyRotation{}, fmt.Errorf("rotate the secrets key: read the CA: %w", err)
	}
	for i := range cas {
		sealed, err := reseal("the CA's key", cas[i].KeyPEM)
		if err != nil {
			return KeyRotation{}, err
		}
		if err := tx.Model(&caRow{}).Where("id = ?", cas[i].ID).Update("key_pem", sealed).Error; err != nil {
			return KeyRotation{}, fmt.Errorf("rotate the secrets key: the CA: %w", err)
		}
	}

	// Every value is now sealed with the new key, and no change can seal
	// with another until this commits (useNewestKey), so no value names
	// an older key. Those retired by an earlier rotation go: a key
	// retired now is kept for one more rotation, for reads that began
	// before this one and load it late. Deleting never frees the highest
	// id, so no id is given again.
	for _, k := range keys {
		if k.RetiredAt != nil {
			out.Deleted = append(out.Deleted, k.ID)
		} else {
			out.Retired = append(out.Retired, k.ID)
		}
	}
	if len(out.Deleted) > 0 {
		if err := tx.Where("id IN ?", out.Deleted).Delete(&dataKeyRow{}).Error; err != nil {
			return KeyRotation{}, fmt.Errorf("rotate the secrets key: delete data keys: %w", err)
		}
	}
	if len(out.Retired) > 0 {
		if err := tx.Model(&dataKeyRow{}).Where("id IN ?", out.Retired).Update("retired_at", dbTime(at)).Error; err != nil {
			return KeyRotation{}, fmt.Errorf("rotate the secrets key: retire data keys: %w", err)
		}
	}

	if err := s.auditRotation(ctx, tx, out, before); err != nil {
		return KeyRotation{}, err
	}
	return out, nil
}

// auditRotation writes the audit entries of a rotation: one for the new
// data key, and one for each security definition whose stored row it
// re-sealed, so that each definition's hashes keep chaining.
func (s *sqlStore) auditRotation(ctx context.Context, tx *gorm.DB, r KeyRotation, before map[objectKey]string) error {
	after, err := objectHashes(tx)
	if err != nil {
		return err
	}
	author := authorOf(ctx)
	name := "k" + strconv.FormatInt(r.KeyID, 10)
	var changes []trustChange
	for _, c := range auditChanges(0, r.At, author, before, after) {
		changes = append(changes, trustChange{kind: c.Kind, name: c.Name, action: AuditResealed,
			before: c.HashBefore, after: c.HashAfter, summary: "secrets re-sealed with data key " + name})
	}
	content, err := contentHash(struct {
		ID        int64
		CreatedAt time.Time
	}{r.KeyID, dbTime(r.At)})
	if err != nil {
		return err
	}
	summary := fmt.Sprintf("data key %s made; %d secret values re-sealed with it", name, r.Resealed)
	if len(r.Retired) > 0 {
		summary += "; retired " + keyNames(r.Retired)
	}
	if len(r.Deleted) > 0 {
		summary += "; deleted " + keyNames(r.Deleted)
	}
	changes = append(changes, trustChange{kind: AuditKindSecretsKey, name: name, action: AuditRotated,
		after: content, summary: summary})
	return auditTrust(tx, author, changes...)
}

// keyNames names data keys: "k1, k2".
func keyNames(ids []int64) string {
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = "k" + strconv.FormatInt(id, 10)
	}
	return strings.Join(names, ", ")
}
