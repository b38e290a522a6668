package store

import (
	"context"
	"fmt"

	"gorm.io/gorm"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// Desired reads the revision and the whole config in one snapshot.
func (s *sqlStore) Desired(ctx context.Context) (Desired, error) {
	var d Desired
	err := s.read(ctx, func(tx *gorm.DB) error {
		// The first read takes the snapshot every later read sees.
		rev, err := readRevision(tx)
		if err != nil {
			return err
		}
		d = Desired{Revision: rev}

		var versions []packageVersionRow
		err = tx.Joins("JOIN weft_packages ON weft_packages.current_version_id = weft_package_versions.id").
			Order("weft_package_versions.name").Find(&versions).Error
		if err != nil {
			return fmt.Errorf("read packages: %w", err)
		}
		ids := make([]int64, 0, len(versions))
		for _, v := range versions {
			ids = append(ids, v.ID)
		}
		files := map[int64][]*adminv1.SourceFile{}
		if len(ids) > 0 {
			// Read file by file rather than all at once: contents may be large.
			rows, err := tx.Model(&packageFileRow{}).Where("version_id IN ?", ids).
				Order("version_id, name").Rows()
			if err != nil {
				return fmt.Errorf("read package files: %w", err)
			}
			defer rows.Close()
			for rows.Next() {
				var f packageFileRow
				if err := tx.ScanRows(rows, &f); err != nil {
					return fmt.Errorf("read package files: %w", err)
				}
				files[f.VersionID] = append(files[f.VersionID], &adminv1.SourceFile{Name: f.Name, Content: f.Content})
			}
			if err := rows.Err(); err != nil {
				return fmt.Errorf("read package files: %w", err)
			}
		}
		d.Packages = make([]*adminv1.Package, 0, len(versions))
		for i := range versions {
			p, err := versions[i].toPackage()
			if err != nil {
				return err
			}
			p.Sources = files[versions[i].ID]
			for _, f := range p.Sources {
				p.Files = append(p.Files, f.Name)
			}
			d.Packages = append(d.Packages, p)
		}

		if d.Channels, err = channels.list(tx); err != nil {
			return fmt.Errorf("read channels: %w", err)
		}
		if d.Security, err = s.securities().list(tx); err != nil {
			return fmt.Errorf("read security definitions: %w", err)
		}
		if d.Outgoing, err = outgoings.list(tx); err != nil {
			return fmt.Errorf("read outgoing connections: %w", err)
		}
		if d.Jobs, err = jobDefs.list(tx); err != nil {
			return fmt.Errorf("read jobs: %w", err)
		}
		return nil
	})
	if err != nil {
		return Desired{}, fmt.Errorf("read desired config: %w", err)
	}
	return d, nil
}
