package store

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"
)

// keyCheckText is what the key check seals.
const keyCheckText = "weft secrets key check"

// ErrWrongSecretsKey means the store was opened with a secrets key other
// than the one its secrets are sealed with.
var ErrWrongSecretsKey = errors.New("the secrets key is not the one this database's secrets are sealed with")

// checkKey makes sure the store's secrets box holds the database's key: the
// first store opened with a key seals a known text into the meta row, and
// every later one must open it. Replicas racing on a fresh database agree
// on the first writer's key.
func (s *sqlStore) checkKey(ctx context.Context) error {
	if s.box == nil {
		return nil
	}
	read := func() (string, error) {
		var m metaRow
		if err := s.w.WithContext(ctx).Where("id = ?", metaID).Take(&m).Error; err != nil {
			return "", fmt.Errorf("read the secrets key check: %w", err)
		}
		return m.KeyCheck, nil
	}
	check, err := read()
	if err != nil {
		return err
	}
	if check == "" {
		sealed, err := s.box.Seal([]byte(keyCheckText))
		if err != nil {
			return fmt.Errorf("seal the secrets key check: %w", err)
		}
		// Only where none is set yet: another replica may have won.
		err = s.w.WithContext(ctx).Model(&metaRow{}).Where("id = ? AND key_check = ?", metaID, "").
			Update("key_check", sealed).Error
		if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
			return fmt.Errorf("store the secrets key check: %w", err)
		}
		if check, err = read(); err != nil {
			return err
		}
	}
	plain, err := s.box.Open(check)
	if err != nil || string(plain) != keyCheckText {
		return fmt.Errorf("%w: give every control plane replica the same --secrets-key file", ErrWrongSecretsKey)
	}
	return nil
}
