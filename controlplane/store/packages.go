package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"gorm.io/gorm"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// Deploy stores new versions of packages in one transaction and one revision.
func (s *sqlStore) Deploy(ctx context.Context, author string, pkgs []*adminv1.Package) (DeployResult, error) {
	if len(pkgs) == 0 {
		return DeployResult{}, errors.New("deploy: no packages")
	}
	// Within one deploy a package and a service may appear once.
	pkgOf := map[string]string{} // service -> package
	seen := map[string]bool{}
	for _, p := range pkgs {
		if seen[p.Name] {
			return DeployResult{}, fmt.Errorf("deploy: package %q is given twice: %w", p.Name, ErrConflict)
		}
		seen[p.Name] = true
		for _, svc := range p.Services {
			if other, ok := pkgOf[svc]; ok && other != p.Name {
				return DeployResult{}, fmt.Errorf("service %q is registered by both package %q and package %q: %w", svc, other, p.Name, ErrConflict)
			}
			pkgOf[svc] = p.Name
		}
	}

	var out []*adminv1.DeployedPackage
	rev, err := s.change(ctx, author, func(tx *gorm.DB, rev int64) (string, error) {
		out = make([]*adminv1.DeployedPackage, len(pkgs))
		var changed []int // indexes into pkgs
		curs := make([]*packageVersionRow, len(pkgs))
		for i, p := range pkgs {
			cur, err := currentVersion(tx, p.Name)
			if err != nil {
				return "", err
			}
			curs[i] = cur
			if cur != nil && cur.Sha256 == p.Sha256 {
				pkg, err := cur.toPackage()
				if err != nil {
					return "", err
				}
				out[i] = &adminv1.DeployedPackage{Package: pkg, Unchanged: true}
				continue
			}
			changed = append(changed, i)
		}
		if len(changed) == 0 {
			return "", errNoChange
		}
		var names, services []string
		for _, i := range changed {
			names = append(names, pkgs[i].Name)
			services = append(services, pkgs[i].Services...)
		}
		if err := checkServices(tx, names, services); err != nil {
			return "", err
		}
		if err := tx.Where("package IN ?", names).Delete(&serviceRow{}).Error; err != nil {
			return "", fmt.Errorf("deploy: replace services: %w", err)
		}
		var summary []string
		for _, i := range changed {
			pkg, err := storeVersion(tx, author, rev, pkgs[i], curs[i])
			if err != nil {
				return "", err
			}
			out[i] = &adminv1.DeployedPackage{Package: pkg}
			summary = append(summary, fmt.Sprintf("%s v%d", pkg.Name, pkg.Version))
		}
		return "deploy " + strings.Join(summary, ", "), nil
	})
	if err != nil {
		return DeployResult{}, err
	}
	return DeployResult{Revision: rev, Packages: out}, nil
}

// currentVersion reads the current version of a package, or nil.
func currentVersion(tx *gorm.DB, name string) (*packageVersionRow, error) {
	var p packageRow
	err := tx.Where("name = ?", name).Take(&p).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read package %q: %w", name, err)
	}
	var v packageVersionRow
	if err := tx.Where("id = ?", p.CurrentVersionID).Take(&v).Error; err != nil {
		return nil, fmt.Errorf("read package %q version %d: %w", name, p.CurrentVersion, err)
	}
	return &v, nil
}

// checkServices refuses new versions of the packages names, registering
// services between them, when another package registers one of those
// services, or when a service they drop is called by a channel or a job. A service
// may move between packages deployed together.
func checkServices(tx *gorm.DB, names, services []string) error {
	if err := checkServicesFree(tx, names, services); err != nil {
		return err
	}
	return checkDropped(tx, names, services)
}

// checkServicesFree refuses new versions of the packages names when a
// package other than those registers one of services.
func checkServicesFree(tx *gorm.DB, names, services []string) error {
	if len(services) == 0 {
		return nil
	}
	var taken []serviceRow
	err := tx.Where("name IN ? AND package NOT IN ?", services, names).Order("name").Find(&taken).Error
	if err != nil {
		return fmt.Errorf("deploy: read services: %w", err)
	}
	if len(taken) > 0 {
		return fmt.Errorf("service %q is already registered by package %q: %w", taken[0].Name, taken[0].Package, ErrConflict)
	}
	return nil
}

// checkDropped refuses new versions of the packages names, registering
// services, when a service they register today and would drop is called
// by a channel or a job.
func checkDropped(tx *gorm.DB, names, services []string) error {
	var owned []serviceRow
	if err := tx.Where("package IN ?", names).Find(&owned).Error; err != nil {
		return fmt.Errorf("deploy: read services: %w", err)
	}
	dropped := map[string]string{} // service -> package
	for _, o := range owned {
		if !slices.Contains(services, o.Name) {
			dropped[o.Name] = o.Package
		}
	}
	if len(dropped) == 0 {
		return nil
	}
	chs, err := channelsCalling(tx, slices.Collect(maps.Keys(dropped)), false)
	if err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	if len(chs) > 0 {
		svc := chs[0].calls[0]
		return fmt.Errorf("package %q would drop service %q, which channel %q calls; point the channel at another service first: %w",
			dropped[svc], svc, chs[0].name, ErrConflict)
	}
	jobs, err := jobsCalling(tx, slices.Collect(maps.Keys(dropped)), false)
	if err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	if len(jobs) > 0 {
		return fmt.Errorf("package %q would drop service %q, which job %q invokes; point the job at another service first: %w",
			dropped[jobs[0].service], jobs[0].service, jobs[0].name, ErrConflict)
	}
	return nil
}

// storeVersion writes a new version of p and makes it current (cur is the
// current version, nil when there is none), registering its services (the
// caller has removed the old ones).
func storeVersion(tx *gorm.DB, author string, rev int64, p *adminv1.Package, cur *packageVersionRow) (*adminv1.Package, error) {
	var size int64
	for _, f := range p.Sources {
		size += int64(len(f.Content))
	}
	v, err := addVersion(tx, author, rev, p.Name, p.Sha256, size, p.Services, cur != nil, func(id int64) error {
		// One file per statement keeps each under MySQL's max_allowed_packet.
		for _, f := range p.Sources {
			content := f.Content
			if content == nil {
				content = []byte{}
			}
			row := packageFileRow{VersionID: id, Name: f.Name, Content: content}
			if err := tx.Create(&row).Error; err != nil {
				if errors.Is(err, gorm.ErrDuplicatedKey) {
					return fmt.Errorf("deploy %s: file %q is given twice: %w", p.Name, f.Name, ErrConflict)
				}
				return fmt.Errorf("deploy %s: store file %s: %w", p.Name, f.Name, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return v.toPackage()
}

// addVersion stores a new version of the package name, numbered after the
// highest stored version (so numbers continue after an undeploy), makes it
// current and registers its services; the caller has removed the old ones.
// hasCurrent says whether the package has a current version to replace.
// files stores the new version's files given its id.
func addVersion(tx *gorm.DB, author string, rev int64, name, sha string, size int64, services []string,
	hasCurrent bool, files func(versionID int64) error) (*packageVersionRow, error) {
	services = slices.Clone(services)
	slices.Sort(services)
	services = slices.Compact(services)
	svcJSON, err := encodeList(services)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", name, err)
	}
	last, err := lastVersion(tx, name)
	if err != nil {
		return nil, err
	}
	v := packageVersionRow{
		Name:      name,
		Version:   last + 1,
		Sha256:    sha,
		Author:    author,
		SizeBytes: size,
		Services:  svcJSON,
		Revision:  rev,
		CreatedAt: now(),
	}
	if err := tx.Create(&v).Error; err != nil {
		return nil, fmt.Errorf("store %s version %d: %w", name, v.Version, err)
	}
	if err := files(v.ID); err != nil {
		return nil, err
	}
	pr := packageRow{Name: name, CurrentVersion: v.Version, CurrentVersionID: v.ID}
	if hasCurrent {
		err = tx.Model(&packageRow{}).Where("name = ?", name).
			Updates(map[string]any{"current_version": v.Version, "current_version_id": v.ID}).Error
	} else {
		err = tx.Create(&pr).Error
	}
	if err != nil {
		return nil, fmt.Errorf("make %s version %d current: %w", name, v.Version, err)
	}
	for _, svc := range services {
		if err := tx.Create(&serviceRow{Name: svc, Package: name}).Error; err != nil {
			return nil, fmt.Errorf("store %s: register service %s: %w", name, svc, err)
		}
	}
	return &v, nil
}

// lastVersion returns the highest stored version number of a package, 0
// when it has none.
func lastVersion(tx *gorm.DB, name string) (int64, error) {
	var last sql.NullInt64
	if err := tx.Model(&packageVersionRow{}).Where("name = ?", name).Select("MAX(version)").Row().Scan(&last); err != nil {
		return 0, fmt.Errorf("read versions of package %q: %w", name, err)
	}
	return last.Int64, nil
}

// ListPackages returns every package at its current version, without files.
func (s *sqlStore) ListPackages(ctx context.Context) ([]*adminv1.Package, error) {
	var rows []packageVersionRow
	err := s.r.WithContext(ctx).
		Joins("JOIN weft_packages ON weft_packages.current_version_id = weft_package_versions.id").
		Order("weft_package_versions.name").Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("list packages: %w", err)
	}
	out := make([]*adminv1.Package, 0, len(rows))
	for i := range rows {
		p, err := rows[i].toPackage()
		if err != nil {
			return nil, fmt.Errorf("list packages: %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}

// ListServices returns every service of the deployed packages.
func (s *sqlStore) ListServices(ctx context.Context) ([]*adminv1.Service, error) {
	var rows []struct {
		Name           string
		Package        string
		CurrentVersion int64
	}
	err := s.r.WithContext(ctx).Model(&serviceRow{}).
		Select("weft_services.name, weft_services.package, weft_packages.current_version").
		Joins("JOIN weft_packages ON weft_packages.name = weft_services.package").
		Order("weft_services.name").Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	out := make([]*adminv1.Service, 0, len(rows))
	for _, r := range rows {
		out = append(out, &adminv1.Service{Name: r.Name, Package: r.Package, PackageVersion: r.CurrentVersion})
	}
	return out, nil
}
