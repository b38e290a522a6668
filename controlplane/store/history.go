package store

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// fileNameBatch bounds the version ids of one query for file names, well
// under SQLite's limit on bound parameters.
const fileNameBatch = 500

// ListPackageVersions returns the deploy history, newest first.
func (s *sqlStore) ListPackageVersions(ctx context.Context, name string, limit int) ([]*adminv1.Package, error) {
	what := "list package versions"
	if name != "" {
		what = fmt.Sprintf("list versions of package %q", name)
	}
	var out []*adminv1.Package
	err := s.read(ctx, func(tx *gorm.DB) error {
		q := tx.Model(&packageVersionRow{})
		if name != "" {
			q = q.Where("name = ?", name)
		}
		q = q.Order("revision DESC, name, version DESC")
		if limit > 0 {
			q = q.Limit(limit)
		}
		var rows []packageVersionRow
		if err := q.Find(&rows).Error; err != nil {
			return err
		}
		if name != "" && len(rows) == 0 {
			return fmt.Errorf("package %q has never been deployed: %w", name, ErrNotFound)
		}
		ids := make([]int64, 0, len(rows))
		for _, r := range rows {
			ids = append(ids, r.ID)
		}
		names, err := fileNames(tx, ids)
		if err != nil {
			return err
		}
		out = make([]*adminv1.Package, 0, len(rows))
		for i := range rows {
			p, err := rows[i].toPackage()
			if err != nil {
				return err
			}
			p.Files = names[rows[i].ID]
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, wrapOp(what, err)
	}
	return out, nil
}

// fileNames returns the names of the files of package versions by
// version id; each list is sorted and never nil.
func fileNames(tx *gorm.DB, ids []int64) (map[int64][]string, error) {
	out := make(map[int64][]string, len(ids))
	for _, id := range ids {
		out[id] = []string{}
	}
	for start := 0; start < len(ids); start += fileNameBatch {
		batch := ids[start:min(start+fileNameBatch, len(ids))]
		var rows []struct {
			VersionID int64
			Name      string
		}
		err := tx.Model(&packageFileRow{}).Select("version_id, name").
			Where("version_id IN ?", batch).Order("version_id, name").Scan(&rows).Error
		if err != nil {
			return nil, fmt.Errorf("read file names: %w", err)
		}
		for _, r := range rows {
			out[r.VersionID] = append(out[r.VersionID], r.Name)
		}
	}
	return out, nil
}

// GetPackage reads a version of a package with its file contents.
func (s *sqlStore) GetPackage(ctx context.Context, name string, version int64) (*adminv1.Package, bool, error) {
	var (
		out     *adminv1.Package
		current bool
	)
	err := s.read(ctx, func(tx *gorm.DB) error {
		v, cur, err := findVersion(tx, name, version)
		if err != nil {
			return err
		}
		if out, err = v.toPackage(); err != nil {
			return err
		}
		current = cur
		var files []packageFileRow
		if err := tx.Where("version_id = ?", v.ID).Order("name").Find(&files).Error; err != nil {
			return fmt.Errorf("read files of %s v%d: %w", name, v.Version, err)
		}
		out.Files = make([]string, 0, len(files))
		out.Sources = make([]*adminv1.SourceFile, 0, len(files))
		for _, f := range files {
			out.Files = append(out.Files, f.Name)
			out.Sources = append(out.Sources, &adminv1.SourceFile{Name: f.Name, Content: f.Content})
		}
		return nil
	})
	if err != nil {
		return nil, false, wrapOp(fmt.Sprintf("get package %s v%d", name, version), err)
	}
	return out, current, nil
}

// findVersion reads version of the package name, 0 meaning the current
// one, and says whether it is current. Its errors name the package and the
// version, and wrap ErrNotFound when either does not exist.
func findVersion(tx *gorm.DB, name string, version int64) (*packageVersionRow, bool, error) {
	if name == "" {
		return nil, false, errors.New("the package name is empty")
	}
	if version < 0 {
		return nil, false, fmt.Errorf("package %q: version %d is not a version number", name, version)
	}
	cur, err := currentVersion(tx, name)
	if err != nil {
		return nil, false, err
	}
	if version == 0 || (cur != nil && cur.Version == version) {
		if cur != nil {
			return cur, true, nil
		}
		last, err := lastVersion(tx, name)
		if err != nil {
			return nil, false, err
		}
		if last == 0 {
			return nil, false, fmt.Errorf("package %q has never been deployed: %w", name, ErrNotFound)
		}
		return nil, false, fmt.Errorf("package %q is not deployed: it was undeployed after v%d; its versions are kept: %w", name, last, ErrNotFound)
	}
	var v packageVersionRow
	err = tx.Where("name = ? AND version = ?", name, version).Take(&v).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, false, noVersion(tx, name, version)
	}
	if err != nil {
		return nil, false, fmt.Errorf("read package %q version %d: %w", name, version, err)
	}
	return &v, false, nil
}

// noVersion is the error for a version the package name does not have: it
// says which versions it has.
func noVersion(tx *gorm.DB, name string, version int64) error {
	last, err := lastVersion(tx, name)
	switch {
	case err != nil:
		return err
	case last == 0:
		return fmt.Errorf("package %q has never been deployed: %w", name, ErrNotFound)
	case last == 1:
		return fmt.Errorf("package %q has no version %d (it has v1 only): %w", name, version, ErrNotFound)
	default:
		return fmt.Errorf("package %q has no version %d (it has v1 to v%d): %w", name, version, last, ErrNotFound)
	}
}

// GetDeployStatus reads a package version and every agent's state for it.
func (s *sqlStore) GetDeployStatus(ctx context.Context, name string, version int64) (DeployStatus, error) {
	var out DeployStatus
	err := s.read(ctx, func(tx *gorm.DB) error {
		var (
			v   *packageVersionRow
			cur bool
			err error
		)
		if name == "" {
			if version != 0 {
				return fmt.Errorf("version %d needs a package name", version)
			}
			v, err = latestDeployed(tx)
			cur = true
		} else {
			v, cur, err = findVersion(tx, name, version)
		}
		if err != nil {
			return err
		}
		p, err := v.toPackage()
		if err != nil {
			return err
		}
		names, err := fileNames(tx, []int64{v.ID})
		if err != nil {
			return err
		}
		p.Files = names[v.ID]
		out = DeployStatus{Package: p, Current: cur}

		var agents []agentRow
		if err := tx.Order("id").Find(&agents).Error; err != nil {
			return fmt.Errorf("read agents: %w", err)
		}
		st, err := readStreams(tx, nil)
		if err != nil {
			return err
		}
		out.Agents = make([]AgentDeployStatus, 0, len(agents))
		for _, a := range agents {
			ds := agentDeployStatus(a, p.Revision)
			ds.Connected = st.connected(a.ID, ds.Connected)
			out.Agents = append(out.Agents, ds)
		}
		return nil
	})
	if err != nil {
		return DeployStatus{}, wrapOp("deploy status", err)
	}
	return out, nil
}

// latestDeployed reads the current version of the deployed package changed
// last (by the name when one revision changed several).
func latestDeployed(tx *gorm.DB) (*packageVersionRow, error) {
	var rows []packageVersionRow
	err := tx.Joins("JOIN weft_packages ON weft_packages.current_version_id = weft_package_versions.id").
		Order("weft_package_versions.revision DESC, weft_package_versions.name").Limit(1).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("read packages: %w", err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("no package is deployed: %w", ErrNotFound)
	}
	return &rows[0], nil
}

// agentDeployStatus says where agent a is with the version that revision
// stored: deployed once it applied that revision or a later one, failed
// when it refused that revision or a later one and serves an older one.
func agentDeployStatus(a agentRow, revision int64) AgentDeployStatus {
	st := AgentDeployStatus{AgentID: a.ID, Connected: a.Connected, AppliedRevision: a.AppliedRevision, State: DeployPending}
	switch {
	case a.AppliedRevision >= revision:
		st.State = DeployDeployed
		st.NotPersisted = a.NotPersisted
	case a.FailedRevision >= revision:
		st.State = DeployFailed
		st.Error = a.LastError
	}
	return st
}

// wrapOp adds the operation to an unexpected error. Errors that wrap
// ErrNotFound, ErrConflict or ErrWrongKind already say what is wrong,
// naming the objects, and are returned as they are, for callers to show.
func wrapOp(op string, err error) error {
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) || errors.Is(err, ErrWrongKind) {
		return err
	}
	return fmt.Errorf("%s: %w", op, err)
}
