package store

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"gorm.io/gorm"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// ApplyConfig makes every change of c in one transaction and revision.
//
// The order lets a config move things between objects in one go: deletes
// first (a pruned channel frees its path), then security definitions and
// outgoing connections, packages, channels (paths that change are parked
// first, so two channels may swap paths) and jobs. References are not
// checked one by one against the half-applied state: the caller checked
// them against the whole config at c.BaseRevision, and the revision lock
// makes sure nothing moved since.
func (s *sqlStore) ApplyConfig(ctx context.Context, author string, c ConfigChange) (int64, error) {
	return s.change(ctx, author, func(tx *gorm.DB, rev int64) (string, error) {
		if cur := rev - 1; cur != c.BaseRevision {
			return "", fmt.Errorf("planned at revision %d, now at %d: %w", c.BaseRevision, cur, ErrStale)
		}
		t := &tally{}
		if err := s.applyDeletes(tx, c, t); err != nil {
			return "", err
		}
		for _, d := range c.Security {
			if err := s.securities().put(tx, rev, d, t); err != nil {
				return "", err
			}
		}
		for _, o := range c.Outgoing {
			if err := outgoings.put(tx, rev, o, t); err != nil {
				return "", err
			}
		}
		if err := deployAll(tx, author, rev, c.Deploy, t); err != nil {
			return "", err
		}
		if err := parkPaths(tx, c.Channels); err != nil {
			return "", err
		}
		for _, ch := range c.Channels {
			if err := channels.put(tx, rev, ch, t); err != nil {
				return "", err
			}
		}
		for _, j := range c.Jobs {
			if err := jobDefs.put(tx, rev, j, t); err != nil {
				return "", err
			}
		}
		if err := checkCredentialOrigins(tx); err != nil {
			return "", err
		}
		if t.empty() {
			return "", errNoChange
		}
		return t.summary(), nil
	})
}

// tally counts what an import did, for the revision log.
type tally struct {
	created, updated, deleted []string // "channel \"x\""
	// notes are said in full: the addresses connections moved to.
	notes []string
}

func (t *tally) empty() bool { return len(t.created)+len(t.updated)+len(t.deleted) == 0 }

// maxNamed bounds the objects a summary names per action.
const maxNamed = 5

// summary is a line such as `import: create channel "a", job "b"; delete
// channel "c"`, naming at most maxNamed objects per action.
func (t *tally) summary() string {
	var parts []string
	for _, a := range []struct {
		verb string
		l    []string
	}{{"create", t.created}, {"update", t.updated}, {"delete", t.deleted}} {
		if len(a.l) == 0 {
			continue
		}
		shown := a.l[:min(len(a.l), maxNamed)]
		part := a.verb + " " + strings.Join(shown, ", ")
		if more := len(a.l) - len(shown); more > 0 {
			part += fmt.Sprintf(" and %d more", more)
		}
		parts = append(parts, part)
	}
	return "import: " + strings.Join(append(parts, t.notes...), "; ")
}

// applyDeletes deletes what c deletes, users before what they use.
func (s *sqlStore) applyDeletes(tx *gorm.DB, c ConfigChange, t *tally) error {
	for _, name := range c.DeleteJobs {
		if err := removeJob(tx, name); err != nil {
			return err
		}
		t.deleted = append(t.deleted, fmt.Sprintf("job %q", name))
	}
	for _, name := range c.DeleteChannels {
		if err := channels.delete(tx, name); err != nil {
			return err
		}
		t.deleted = append(t.deleted, fmt.Sprintf("channel %q", name))
	}
	for _, name := range c.DeleteOutgoing {
		if err := outgoings.delete(tx, name); err != nil {
			return err
		}
		t.deleted = append(t.deleted, fmt.Sprintf("outgoing connection %q", name))
	}
	for _, name := range c.DeleteSecurity {
		if err := securityDefs.delete(tx, name); err != nil {
			return err
		}
		t.deleted = append(t.deleted, fmt.Sprintf("security definition %q", name))
	}
	for _, name := range c.Undeploy {
		cur, err := currentVersion(tx, name)
		if err != nil {
			return err
		}
		if cur == nil {
			return fmt.Errorf("package %q is not deployed: %w", name, ErrNotFound)
		}
		if err := removePackage(tx, name); err != nil {
			return err
		}
		t.deleted = append(t.deleted, fmt.Sprintf("package %q", name))
	}
	return nil
}

// deployAll stores a new version of each package of pkgs whose files
// differ from its current version's. A service may move between the
// packages deployed together; one registered by another package is a
// conflict.
func deployAll(tx *gorm.DB, author string, rev int64, pkgs []*adminv1.Package, t *tally) error {
	var (
		changed         []*adminv1.Package
		curs            []*packageVersionRow
		names, services []string
	)
	pkgOf := map[string]string{} // service -> package, within pkgs
	for _, p := range pkgs {
		for _, svc := range p.Services {
			if other, ok := pkgOf[svc]; ok && other != p.Name {
				return fmt.Errorf("service %q is registered by both package %q and package %q: %w", svc, other, p.Name, ErrConflict)
			}
			pkgOf[svc] = p.Name
		}
		cur, err := currentVersion(tx, p.Name)
		if err != nil {
			return err
		}
		if cur != nil && cur.Sha256 == p.Sha256 {
			continue
		}
		changed, curs = append(changed, p), append(curs, cur)
		names, services = append(names, p.Name), append(services, p.Services...)
	}
	if len(changed) == 0 {
		return nil
	}
	if err := checkServicesFree(tx, names, services); err != nil {
		return err
	}
	if err := tx.Where("package IN ?", names).Delete(&serviceRow{}).Error; err != nil {
		return fmt.Errorf("deploy: replace services: %w", err)
	}
	for i, p := range changed {
		if _, err := storeVersion(tx, author, rev, p, curs[i]); err != nil {
			return err
		}
		what := fmt.Sprintf("package %q", p.Name)
		if curs[i] == nil {
			t.created = append(t.created, what)
		} else {
			t.updated = append(t.updated, what)
		}
	}
	return nil
}

// parkPaths moves each stored channel of chs whose path changes to a path
// no request can have, so that the channels' new paths are free to take
// whatever their order (two channels may swap paths).
func parkPaths(tx *gorm.DB, chs []*adminv1.Channel) error {
	if len(chs) == 0 {
		return nil
	}
	byName := make(map[string]string, len(chs))
	for _, ch := range chs {
		byName[ch.GetName()] = ch.GetPath()
	}
	var rows []struct {
		ID         int64
		Name, Path string
	}
	if err := tx.Table(channels.table).Select("id", "name", "path").Where("name IN ?", slices.Collect(maps.Keys(byName))).Find(&rows).Error; err != nil {
		return fmt.Errorf("read channel paths: %w", err)
	}
	for _, r := range rows {
		if r.Path == byName[r.Name] {
			continue
		}
		// Paths start with "/"; a parked one cannot, and the name makes it unique.
		if err := tx.Table(channels.table).Where("id = ?", r.ID).Update("path", "parked:"+r.Name).Error; err != nil {
			return fmt.Errorf("channel %q: move its path: %w", r.Name, err)
		}
	}
	return nil
}
