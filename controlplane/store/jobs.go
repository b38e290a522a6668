package store

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"gorm.io/gorm"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// jobDefs are stored in weft_jobs, with the column of the service they
// invoke, which an undeploy looks up.
var jobDefs = kind[*adminv1.Job]{
	table: "weft_jobs",
	word:  "job",
	keys:  func(j *adminv1.Job) map[string]any { return map[string]any{"service": j.GetService()} },
}

// CreateJob stores a new job.
func (s *sqlStore) CreateJob(ctx context.Context, j *adminv1.Job) (*adminv1.Job, error) {
	var out *adminv1.Job
	_, err := s.change(ctx, "", func(tx *gorm.DB, rev int64) (string, error) {
		var n int64
		if err := tx.Table(jobDefs.table).Where("name = ?", j.GetName()).Count(&n).Error; err != nil {
			return "", fmt.Errorf("create job %q: %w", j.GetName(), err)
		}
		if n > 0 {
			return "", fmt.Errorf("job %q already exists: %w", j.GetName(), ErrConflict)
		}
		if err := checkJobService(tx, j); err != nil {
			return "", err
		}
		var err error
		out, err = jobDefs.insert(tx, rev, j)
		return fmt.Sprintf("create job %q", j.GetName()), err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetJob reads a job by name.
func (s *sqlStore) GetJob(ctx context.Context, name string) (*adminv1.Job, error) {
	_, j, err := jobDefs.get(s.r.WithContext(ctx), name)
	return j, err
}

// ListJobs returns every job sorted by name.
func (s *sqlStore) ListJobs(ctx context.Context) ([]*adminv1.Job, error) {
	out, err := jobDefs.list(s.r.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return out, nil
}

// UpdateJob replaces the job of the same name. An update that changes
// nothing leaves the revision as it is.
func (s *sqlStore) UpdateJob(ctx context.Context, j *adminv1.Job) (*adminv1.Job, error) {
	var out *adminv1.Job
	_, err := s.change(ctx, "", func(tx *gorm.DB, rev int64) (string, error) {
		row, old, err := jobDefs.get(tx, j.GetName())
		if err != nil {
			return "", err
		}
		if jobDefs.same(old, j) {
			out = old
			return "", errNoChange
		}
		if err := checkJobService(tx, j); err != nil {
			return "", err
		}
		out, err = jobDefs.replace(tx, rev, row, j)
		summary := fmt.Sprintf("update job %q", j.GetName())
		if old.GetActive() != j.GetActive() {
			summary = fmt.Sprintf("%s job %q", map[bool]string{true: "resume", false: "pause"}[j.GetActive()], j.GetName())
		}
		return summary, err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteJob removes a job, its runs and its lease once lapsed.
func (s *sqlStore) DeleteJob(ctx context.Context, name string) (int64, error) {
	return s.change(ctx, "", func(tx *gorm.DB, rev int64) (string, error) {
		if err := removeJob(tx, name); err != nil {
			return "", err
		}
		return fmt.Sprintf("delete job %q", name), nil
	})
}

// removeJob deletes the job name with its runs, and its lease once
// lapsed.
func removeJob(tx *gorm.DB, name string) error {
	if err := jobDefs.delete(tx, name); err != nil {
		return err
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

// checkJobService checks that the service j invokes is deployed.
func checkJobService(tx *gorm.DB, j *adminv1.Job) error {
	var n int64
	if err := tx.Model(&serviceRow{}).Where("name = ?", j.GetService()).Count(&n).Error; err != nil {
		return fmt.Errorf("job %q: read services: %w", j.GetName(), err)
	}
	if n == 0 {
		return fmt.Errorf("job %q: service %q is not deployed: %w", j.GetName(), j.GetService(), ErrNotFound)
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
	js, err := jobDefs.list(tx.Where("service IN ?", services))
	if err != nil {
		return nil, err
	}
	var out []jobCall
	for _, j := range js {
		if !activeOnly || j.GetActive() {
			out = append(out, jobCall{name: j.GetName(), service: j.GetService()})
		}
	}
	return out, nil
}

// pauseJob makes the job name inactive at revision rev.
func pauseJob(tx *gorm.DB, rev int64, name string) error {
	row, j, err := jobDefs.get(tx, name)
	if err != nil {
		return err
	}
	j.Active = proto.Bool(false)
	_, err = jobDefs.replace(tx, rev, row, j)
	return err
}
