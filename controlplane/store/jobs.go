package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"gorm.io/gorm"
)

// CreateJob stores a new job.
func (s *sqlStore) CreateJob(ctx context.Context, j Job) (Job, error) {
	var out Job
	_, err := s.change(ctx, "", func(tx *gorm.DB, rev int64) (string, error) {
		var n int64
		if err := tx.Model(&jobRow{}).Where("name = ?", j.Name).Count(&n).Error; err != nil {
			return "", fmt.Errorf("create job %q: %w", j.Name, err)
		}
		if n > 0 {
			return "", fmt.Errorf("job %q already exists: %w", j.Name, ErrConflict)
		}
		if err := checkJobService(tx, j); err != nil {
			return "", err
		}
		var err error
		out, err = insertJob(tx, rev, j)
		return fmt.Sprintf("create job %q", j.Name), err
	})
	if err != nil {
		return Job{}, err
	}
	return out, nil
}

// GetJob reads a job by name.
func (s *sqlStore) GetJob(ctx context.Context, name string) (Job, error) {
	row, err := getJob(s.r.WithContext(ctx), name)
	if err != nil {
		return Job{}, err
	}
	return jobFromRow(row)
}

// ListJobs returns every job sorted by name.
func (s *sqlStore) ListJobs(ctx context.Context) ([]Job, error) {
	out, err := listJobs(s.r.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return out, nil
}

func listJobs(tx *gorm.DB) ([]Job, error) {
	var rows []jobRow
	if err := tx.Order("name").Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]Job, 0, len(rows))
	for i := range rows {
		j, err := jobFromRow(&rows[i])
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, nil
}

// UpdateJob replaces the job of the same name. An update that changes
// nothing leaves the revision as it is.
func (s *sqlStore) UpdateJob(ctx context.Context, j Job) (Job, error) {
	var out Job
	_, err := s.change(ctx, "", func(tx *gorm.DB, rev int64) (string, error) {
		row, err := getJob(tx, j.Name)
		if err != nil {
			return "", err
		}
		old, err := jobFromRow(row)
		if err != nil {
			return "", err
		}
		if sameJob(old, j) {
			out = old
			return "", errNoChange
		}
		if err := checkJobService(tx, j); err != nil {
			return "", err
		}
		out, err = replaceJob(tx, rev, row, j)
		summary := fmt.Sprintf("update job %q", j.Name)
		if old.Active != j.Active {
			summary = fmt.Sprintf("%s job %q", map[bool]string{true: "resume", false: "pause"}[j.Active], j.Name)
		}
		return summary, err
	})
	if err != nil {
		return Job{}, err
	}
	return out, nil
}

// DeleteJob removes a job, its runs and its lease once lapsed.
func (s *sqlStore) DeleteJob(ctx context.Context, name string) (int64, error) {
	return s.change(ctx, "", func(tx *gorm.DB, rev int64) (string, error) {
		row, err := getJob(tx, name)
		if err != nil {
			return "", err
		}
		if err := removeJob(tx, row); err != nil {
			return "", err
		}
		return fmt.Sprintf("delete job %q", name), nil
	})
}

// removeJob deletes the job of row with its runs, and its lease once
// lapsed.
func removeJob(tx *gorm.DB, row *jobRow) error {
	name := row.Name
	if err := tx.Delete(&jobRow{}, row.ID).Error; err != nil {
		return fmt.Errorf("delete job %q: %w", name, err)
	}
	// A lease still running stays: its holder may be cut off and firing on
	// it, so a job created again under the name must wait for it to lapse
	// like any other agent.
	if err := tx.Where("job = ? AND expires_at_ms < ?", name, time.Now().UnixMilli()).Delete(&jobLeaseRow{}).Error; err != nil {
		return fmt.Errorf("delete job %q: its lease: %w", name, err)
	}
	if err := tx.Where("job = ?", name).Delete(&jobRunRow{}).Error; err != nil {
		return fmt.Errorf("delete job %q: its runs: %w", name, err)
	}
	return nil
}

// insertJob writes the new job j at revision rev.
func insertJob(tx *gorm.DB, rev int64, j Job) (Job, error) {
	t := now()
	row := jobRow{Name: j.Name, CreatedAt: t, UpdatedAt: t, Revision: rev}
	if err := fillJobRow(&row, j); err != nil {
		return Job{}, err
	}
	if err := tx.Create(&row).Error; err != nil {
		return Job{}, fmt.Errorf("create job %q: %w", j.Name, err)
	}
	return jobFromRow(&row)
}

// replaceJob writes j over its stored row at revision rev.
func replaceJob(tx *gorm.DB, rev int64, row *jobRow, j Job) (Job, error) {
	if err := fillJobRow(row, j); err != nil {
		return Job{}, err
	}
	row.UpdatedAt, row.Revision = now(), rev
	if err := tx.Model(&jobRow{}).Where("id = ?", row.ID).Select("*").Omit("id").Updates(row).Error; err != nil {
		return Job{}, fmt.Errorf("update job %q: %w", j.Name, err)
	}
	return jobFromRow(row)
}

func getJob(tx *gorm.DB, name string) (*jobRow, error) {
	var row jobRow
	err := tx.Where("name = ?", name).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, fmt.Errorf("job %q does not exist: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read job %q: %w", name, err)
	}
	return &row, nil
}

// checkJobService checks that the service j invokes is deployed.
func checkJobService(tx *gorm.DB, j Job) error {
	var n int64
	if err := tx.Model(&serviceRow{}).Where("name = ?", j.Service).Count(&n).Error; err != nil {
		return fmt.Errorf("job %q: read services: %w", j.Name, err)
	}
	if n == 0 {
		return fmt.Errorf("job %q: service %q is not deployed: %w", j.Name, j.Service, ErrNotFound)
	}
	return nil
}

// jobCall is a job that invokes a service of a set.
type jobCall struct {
	name    string
	service string
}

// jobsCalling lists the jobs that invoke one of services, by name.
func jobsCalling(tx *gorm.DB, services []string, activeOnly bool) ([]jobCall, error) {
	if len(services) == 0 {
		return nil, nil
	}
	q := tx.Model(&jobRow{}).Where("service IN ?", services).Order("name")
	if activeOnly {
		q = q.Where("active = ?", true)
	}
	var rows []jobRow
	if err := q.Select("name", "service").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("read jobs: %w", err)
	}
	out := make([]jobCall, 0, len(rows))
	for _, r := range rows {
		out = append(out, jobCall{name: r.Name, service: r.Service})
	}
	return out, nil
}

func sameJob(a, b Job) bool {
	return a.Service == b.Service && a.Type == b.Type && a.StartAt.Equal(b.StartAt) &&
		a.Interval == b.Interval && a.Repeats == b.Repeats && a.Cron == b.Cron &&
		a.TimeZone == b.TimeZone && a.Payload == b.Payload && a.Active == b.Active &&
		maps.Equal(a.AgentLabels, b.AgentLabels) && a.Placement == b.Placement &&
		a.RunMissed == b.RunMissed && a.TimeoutMs == b.TimeoutMs
}

func fillJobRow(r *jobRow, j Job) error {
	labels, err := encodeMap(j.AgentLabels)
	if err != nil {
		return fmt.Errorf("job %q: agent_labels: %w", j.Name, err)
	}
	r.Service, r.Type, r.StartAt = j.Service, j.Type, dbTime(j.StartAt)
	r.IntervalMs, r.Repeats = j.Interval.Milliseconds(), j.Repeats
	r.Cron, r.TimeZone, r.Payload = j.Cron, j.TimeZone, j.Payload
	r.Active, r.AgentLabels, r.Placement = j.Active, labels, j.Placement
	r.RunMissed, r.TimeoutMs = j.RunMissed, j.TimeoutMs
	return nil
}

func jobFromRow(r *jobRow) (Job, error) {
	labels, err := decodeMap("agent_labels of job "+r.Name, r.AgentLabels)
	if err != nil {
		return Job{}, err
	}
	return Job{
		Name:        r.Name,
		Service:     r.Service,
		Type:        r.Type,
		StartAt:     r.StartAt.UTC(),
		Interval:    time.Duration(r.IntervalMs) * time.Millisecond,
		Repeats:     r.Repeats,
		Cron:        r.Cron,
		TimeZone:    r.TimeZone,
		Payload:     r.Payload,
		Active:      r.Active,
		AgentLabels: labels,
		Placement:   r.Placement,
		RunMissed:   r.RunMissed,
		TimeoutMs:   r.TimeoutMs,
		CreatedAt:   r.CreatedAt.UTC(),
		UpdatedAt:   r.UpdatedAt.UTC(),
		Revision:    r.Revision,
	}, nil
}
