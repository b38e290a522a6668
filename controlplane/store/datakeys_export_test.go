package store

import (
	"context"
	"fmt"
)

// SealedValues returns every sealed value the database holds, as it is
// there: each secret column of each security definition that is set,
// keyed "security NAME FIELD", and the CA's key, keyed "ca".
func SealedValues(ctx context.Context, s Store) (map[string]string, error) {
	db := s.(*sqlStore).r.WithContext(ctx)
	var defs []securityRow
	if err := db.Find(&defs).Error; err != nil {
		return nil, err
	}
	out := map[string]string{}
	for i := range defs {
		for _, f := range secretFields {
			if v := *f.row(&defs[i]); v != "" {
				out[fmt.Sprintf("security %s %s", defs[i].Name, f.name)] = v
			}
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
