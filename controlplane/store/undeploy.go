package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"gorm.io/gorm"
)

// Undeploy removes a package and its services, keeping its history.
func (s *sqlStore) Undeploy(ctx context.Context, author, name string, force bool) (UndeployResult, error) {
	if name == "" {
		return UndeployResult{}, errors.New("undeploy: the package name is empty")
	}
	var out UndeployResult
	rev, err := s.change(ctx, author, func(tx *gorm.DB, rev int64) (string, error) {
		out = UndeployResult{}
		cur, err := currentVersion(tx, name)
		if err != nil {
			return "", err
		}
		if cur == nil {
			_, _, err := findVersion(tx, name, 0) // says never deployed, or undeployed
			return "", err
		}
		var services []string
		if err := tx.Model(&serviceRow{}).Where("package = ?", name).Order("name").Pluck("name", &services).Error; err != nil {
			return "", fmt.Errorf("read services: %w", err)
		}
		users, err := activeChannels(tx, services)
		if err != nil {
			return "", err
		}
		if len(users) > 0 && !force {
			them := "them"
			if len(users) == 1 {
				them = "it"
			}
			return "", fmt.Errorf("%s; deactivate or delete %s first, or undeploy --force: %w", usedBy(name, users), them, ErrConflict)
		}
		for _, ch := range users {
			err := tx.Model(&channelRow{}).Where("id = ?", ch.row.ID).
				Updates(map[string]any{"active": false, "revision": rev, "updated_at": now()}).Error
			if err != nil {
				return "", fmt.Errorf("deactivate channel %q: %w", ch.row.Name, err)
			}
			out.DeactivatedChannels = append(out.DeactivatedChannels, ch.row.Name)
		}
		if err := tx.Where("package = ?", name).Delete(&serviceRow{}).Error; err != nil {
			return "", fmt.Errorf("remove services: %w", err)
		}
		if err := tx.Where("name = ?", name).Delete(&packageRow{}).Error; err != nil {
			return "", fmt.Errorf("remove package: %w", err)
		}
		out.Services = services
		if out.Services == nil {
			out.Services = []string{}
		}
		summary := fmt.Sprintf("undeploy %s v%d", name, cur.Version)
		if len(out.DeactivatedChannels) > 0 {
			summary += ", deactivating channels " + strings.Join(out.DeactivatedChannels, ", ")
		}
		return summary, nil
	})
	if err != nil {
		return UndeployResult{}, wrapOp("undeploy "+name, err)
	}
	out.Revision = rev
	return out, nil
}

// activeChannels lists the active channels that call services, as their
// service or through a SOAP action, by name.
func activeChannels(tx *gorm.DB, services []string) ([]channelCall, error) {
	return channelsCalling(tx, services, true)
}

// usedBy says which channels use the package name, with the services of
// it they call:
// `package "hello" is used by channels "a" (hello.greet), "b" (hello.greet, hello.list)`.
func usedBy(name string, chs []channelCall) string {
	noun := "channel"
	if len(chs) > 1 {
		noun = "channels"
	}
	parts := make([]string, 0, len(chs))
	for _, ch := range chs {
		parts = append(parts, fmt.Sprintf("%q (%s)", ch.row.Name, strings.Join(ch.calls, ", ")))
	}
	return fmt.Sprintf("package %q is used by %s %s", name, noun, strings.Join(parts, ", "))
}
