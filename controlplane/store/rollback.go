package store

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// Rollback stores a new version of a package with the content of an older one.
func (s *sqlStore) Rollback(ctx context.Context, author, name string, toVersion int64) (*adminv1.Package, int64, int64, error) {
	if name == "" {
		return nil, 0, 0, errors.New("rollback: the package name is empty")
	}
	if toVersion < 0 {
		return nil, 0, 0, fmt.Errorf("rollback %s: version %d is not a version number", name, toVersion)
	}
	var (
		out      *adminv1.Package
		restored int64
	)
	rev, err := s.change(ctx, author, func(tx *gorm.DB, rev int64) (string, error) {
		cur, err := currentVersion(tx, name)
		if err != nil {
			return "", err
		}
		target := toVersion
		if target == 0 {
			if cur == nil {
				last, err := lastVersion(tx, name)
				if err != nil {
					return "", err
				}
				if last == 0 {
					return "", fmt.Errorf("package %q has never been deployed: %w", name, ErrNotFound)
				}
				return "", fmt.Errorf("package %q is not deployed, so no version is before the current one; name the version to restore (v1 to v%d): %w", name, last, ErrConflict)
			}
			if cur.Version == 1 {
				return "", fmt.Errorf("package %q has no version before v1: %w", name, ErrConflict)
			}
			target = cur.Version - 1
		}
		var old packageVersionRow
		err = tx.Where("name = ? AND version = ?", name, target).Take(&old).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return "", noVersion(tx, name, target)
		}
		if err != nil {
			return "", fmt.Errorf("read package %q version %d: %w", name, target, err)
		}
		if cur != nil && cur.Version == old.Version {
			return "", fmt.Errorf("%s v%d is the current version; there is nothing to roll back: %w", name, cur.Version, ErrConflict)
		}
		if cur != nil && cur.Sha256 == old.Sha256 {
			return "", fmt.Errorf("%s v%d already has the content of v%d: %w", name, cur.Version, old.Version, ErrConflict)
		}
		services, err := decodeList("services of package "+name, old.Services)
		if err != nil {
			return "", err
		}
		if err := checkServices(tx, []string{name}, services); err != nil {
			return "", err
		}
		if err := tx.Where("package = ?", name).Delete(&serviceRow{}).Error; err != nil {
			return "", fmt.Errorf("replace services of %q: %w", name, err)
		}
		v, err := addVersion(tx, author, rev, name, old.Sha256, old.SizeBytes, services, cur != nil, func(id int64) error {
			// Copy in the database: contents may be large.
			err := tx.Exec("INSERT INTO weft_package_files (version_id, name, content) "+
				"SELECT ?, name, content FROM weft_package_files WHERE version_id = ?", id, old.ID).Error
			if err != nil {
				return fmt.Errorf("copy files of %s v%d: %w", name, old.Version, err)
			}
			return nil
		})
		if err != nil {
			return "", err
		}
		if out, err = v.toPackage(); err != nil {
			return "", err
		}
		names, err := fileNames(tx, []int64{v.ID})
		if err != nil {
			return "", err
		}
		out.Files = names[v.ID]
		restored = old.Version
		return fmt.Sprintf("rollback %s to the content of v%d as v%d", name, old.Version, out.Version), nil
	})
	if err != nil {
		return nil, 0, 0, wrapOp("rollback "+name, err)
	}
	return out, restored, rev, nil
}
