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
		jobs, err := jobsCalling(tx, services, true)
		if err != nil {
			return "", err
		}
		if (len(users) > 0 || len(jobs) > 0) && !force {
			them := "them"
			if len(users)+len(jobs) == 1 {
				them = "it"
			}
			return "", fmt.Errorf("%s; deactivate or delete %s first, or undeploy --force: %w", usedBy(name, users, jobs), them, ErrConflict)
		}
		for _, ch := range users {
			if err := deactivateChannel(tx, rev, ch.name); err != nil {
				return "", fmt.Errorf("deactivate channel %q: %w", ch.name, err)
			}
			out.DeactivatedChannels = append(out.DeactivatedChannels, ch.name)
		}
		for _, j := range jobs {
			if err := pauseJob(tx, rev, j.name); err != nil {
				return "", fmt.Errorf("pause job %q: %w", j.name, err)
			}
			out.PausedJobs = append(out.PausedJobs, j.name)
		}
		if err := removePackage(tx, name); err != nil {
			return "", err
		}
		out.Services = services
		if out.Services == nil {
			out.Services = []string{}
		}
		summary := fmt.Sprintf("undeploy %s v%d", name, cur.Version)
		if len(out.DeactivatedChannels) > 0 {
			summary += ", deactivating channels " + strings.Join(out.DeactivatedChannels, ", ")
		}
		if len(out.PausedJobs) > 0 {
			summary += ", pausing jobs " + strings.Join(out.PausedJobs, ", ")
		}
		return summary, nil
	})
	if err != nil {
		return UndeployResult{}, wrapOp("undeploy "+name, err)
	}
	out.Revision = rev
	return out, nil
}

// removePackage removes the package name and its services; its versions
// stay, as history.
func removePackage(tx *gorm.DB, name string) error {
	if err := tx.Where("package = ?", name).Delete(&serviceRow{}).Error; err != nil {
		return fmt.Errorf("remove services of package %q: %w", name, err)
	}
	if err := tx.Where("name = ?", name).Delete(&packageRow{}).Error; err != nil {
		return fmt.Errorf("remove package %q: %w", name, err)
	}
	return nil
}

// activeChannels lists the active channels that call services, as their
// service or through a SOAP action, by name.
func activeChannels(tx *gorm.DB, services []string) ([]channelCall, error) {
	return channelsCalling(tx, services, true)
}

// usedBy says which channels and jobs use the package name, with the
// services of it they call:
// `package "hello" is used by channels "a" (hello.greet), "b" (hello.greet, hello.list) and job "nightly" (hello.greet)`.
func usedBy(name string, chs []channelCall, jobs []jobCall) string {
	var users []string
	if len(chs) > 0 {
		parts := make([]string, 0, len(chs))
		for _, ch := range chs {
			parts = append(parts, fmt.Sprintf("%q (%s)", ch.name, strings.Join(ch.calls, ", ")))
		}
		users = append(users, plural(len(chs), "channel")+" "+strings.Join(parts, ", "))
	}
	if len(jobs) > 0 {
		parts := make([]string, 0, len(jobs))
		for _, j := range jobs {
			parts = append(parts, fmt.Sprintf("%q (%s)", j.name, j.service))
		}
		users = append(users, plural(len(jobs), "job")+" "+strings.Join(parts, ", "))
	}
	return fmt.Sprintf("package %q is used by %s", name, strings.Join(users, " and "))
}

func plural(n int, noun string) string {
	if n == 1 {
		return noun
	}
	return noun + "s"
}
