package store

import (
	"context"
	"fmt"
)

// SealedValues returns every sealed value the database holds, as it is
// there: each secret of each security definition's spec that is set,
// keyed "security NAME FIELD", and the CA's key, keyed "ca".
func SealedValues(ctx context.Context, s Store) (map[string]string, error) {
	db := s.(*sqlStore).r.WithContext(ctx)
	defs, err := securityDefs.list(db)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, d := range defs {
		err := withSecrets(d, func(name, field, value string) (string, error) {
			out[fmt.Sprintf("security %s %s", name, field)] = value
			return value, nil
		})
		if err != nil {
			return nil, err
		}
	}
	var cas []caRow
	if err := db.Find(&cas).Error; err != nil {
		return nil, err
	}
	for _, c := range cas {
		out["ca"] = c.KeyPEM
	}
	return out, nil
}

// DataKey is a row of weft_data_keys, without its key.
type DataKey struct {
	ID      int64
	Retired bool
}

// DataKeys returns the stored data keys, oldest first.
func DataKeys(ctx context.Context, s Store) ([]DataKey, error) {
	var rows []dataKeyRow
	if err := s.(*sqlStore).r.WithContext(ctx).Order("id").Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]DataKey, 0, len(rows))
	for _, r := range rows {
		out = append(out, DataKey{ID: r.ID, Retired: r.RetiredAt != nil})
	}
	return out, nil
}
