package store

import (
	"context"
	"fmt"
)

// ChangeRevisions returns the revisions in the change log, in order.
func ChangeRevisions(ctx context.Context, s Store) ([]int64, error) {
	var revs []int64
	err := s.(*sqlStore).r.WithContext(ctx).Model(&changeRow{}).Order("revision").Pluck("revision", &revs).Error
	return revs, err
}

// PackageVersions returns every stored version of a package, oldest first.
func PackageVersions(ctx context.Context, s Store, name string) ([]Package, error) {
	var rows []packageVersionRow
	err := s.(*sqlStore).r.WithContext(ctx).Where("name = ?", name).Order("version").Find(&rows).Error
	if err != nil {
		return nil, err
	}
	out := make([]Package, 0, len(rows))
	for i := range rows {
		p, err := rows[i].toPackage()
		if err != nil {
			return nil, fmt.Errorf("version %d: %w", rows[i].Version, err)
		}
		out = append(out, p)
	}
	return out, nil
}
