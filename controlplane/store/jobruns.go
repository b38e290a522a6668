package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// Leases and runs are not config: they change without bumping the
// revision, in short write transactions of their own.
//
// A firing of a job placed on one agent is granted at most once because
// its run row is inserted with the firing's unique key (job, scheduled
// time, slot "one") in the same transaction that checks the lease; a
// second claim finds the row and is refused. The lease decides who may
// claim: its holder, or anybody once it has lapsed. Compare-and-set on the
// lease row (holder, token and expiry as read) lets only one of two
// agents racing for a lapsed lease take it, and fails a takeover that
// races a renewal.

// slotOne is the slot of a firing of a job placed on one agent.
const slotOne = "one"

// maxRunsKept bounds the runs kept per job; older ones are pruned.
const maxRunsKept = 1000

// pruneEvery is how often one replica prunes the runs of one job.
const pruneEvery = time.Minute

// ClaimFiring grants a firing to the lease holder or takes a lapsed lease.
func (s *sqlStore) ClaimFiring(ctx context.Context, c ClaimRequest) (Claim, error) {
	var out Claim
	err := s.write(ctx, func(tx *gorm.DB) error {
		out = Claim{}
		_, row, err := jobDefs.get(tx, c.Job)
		if errors.Is(err, ErrNotFound) {
			out.Reason = fmt.Sprintf("job %q does not exist", c.Job)
			return nil
		}
		if err != nil {
			return err
		}
		if reason, err := s.claimable(tx, row, c.AgentID); err != nil || reason != "" {
			out.Reason = reason
			return err
		}
		holder, reason, err := s.takeLease(tx, c.Job, c.AgentID, c.Now, c.TTL)
		out.Holder = holder
		if err != nil || reason != "" {
			out.Reason = reason
			return err
		}
		if err := closeStaleClaims(tx, row, c.Now, c.TTL); err != nil {
			return err
		}
		at := c.ScheduledAt.UTC().Format(time.RFC3339Nano)
		run := jobRunRow{
			Job: c.Job, ScheduledAtMs: c.ScheduledAt.UnixMilli(), Slot: slotOne,
			AgentID: c.AgentID, CID: c.CID, Trigger: "schedule", Outcome: OutcomeRunning,
		}
		ran, err := firingRun(tx, c.Job, run.ScheduledAtMs, slotOne)
		if err != nil {
			return fmt.Errorf("claim job %q at %s: %w", c.Job, at, err)
		}
		if ran != nil {
			out.Reason = fmt.Sprintf("the firing at %s was already run by agent %q (cid %s)", at, ran.AgentID, ran.CID)
			return nil
		}
		// The read above may be a snapshot older than a claim committed
		// since: the unique key decides, and losing it is a refusal.
		inserted, err := insertNew(tx, &run)
		if err != nil {
			return fmt.Errorf("claim job %q at %s: %w", c.Job, at, err)
		}
		if !inserted {
			out.Reason = fmt.Sprintf("the firing at %s was claimed by another agent at the same moment", at)
			return nil
		}
		out.Granted = true
		return nil
	})
	if err != nil {
		return Claim{}, fmt.Errorf("claim job %q for agent %q: %w", c.Job, c.AgentID, err)
	}
	return out, nil
}

// claimable says why agentID may not run firings of the job row ("" when
// it may): the job must be active and placed on one agent, and the agent
// known, selected by the job's labels and running the job's current
// definition (an agent that refused the revision keeps an old one).
func (s *sqlStore) claimable(tx *gorm.DB, row *adminv1.Job, agentID string) (string, error) {
	switch {
	case !row.GetActive():
		return fmt.Sprintf("job %q is paused", row.Name), nil
	case row.Placement != PlacementOne:
		return fmt.Sprintf("job %q runs on every agent; it takes no claims", row.Name), nil
	}
	var a agentRow
	err := tx.Where("id = ?", agentID).Take(&a).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return fmt.Sprintf("agent %q is unknown", agentID), nil
	}
	if err != nil {
		return "", fmt.Errorf("read agent %q: %w", agentID, err)
	}
	if a.AppliedRevision < row.Revision {
		return fmt.Sprintf("agent %q runs revision %d, older than job %q's last change at revision %d", agentID, a.AppliedRevision, row.Name, row.Revision), nil
	}
	want := row.AgentLabels
	have, err := decodeMap("labels of agent "+agentID, a.Labels)
	if err != nil {
		return "", err
	}
	for k, v := range want {
		if have[k] != v {
			return fmt.Sprintf("agent %q does not carry the label %s=%s that job %q selects", agentID, k, v, row.Name), nil
		}
	}
	return "", nil
}

// staleClaimAfter is how long past its firing, beyond the job's timeout
// and the lease, a claimed run may go unreported before it is shown as
// unknown.
const staleClaimAfter = time.Minute

// closeStaleClaims marks unknown the claimed runs of row that should
// have been reported long ago: their agent died, or its claim committed
// after it had given up waiting.
func closeStaleClaims(tx *gorm.DB, row *adminv1.Job, now time.Time, ttl time.Duration) error {
	timeout := time.Duration(row.TimeoutMs) * time.Millisecond
	if timeout == 0 {
		timeout = time.Hour // the longest a service may be given
	}
	cutoff := now.Add(-timeout - ttl - staleClaimAfter).UnixMilli()
	err := tx.Model(&jobRunRow{}).
		Where("job = ? AND slot = ? AND outcome = ? AND scheduled_at_ms < ?", row.Name, slotOne, OutcomeRunning, cutoff).
		Updates(map[string]any{"outcome": OutcomeUnknown, "error": "the agent never reported this run"}).Error
	if err != nil {
		return fmt.Errorf("job %q: close stale claims: %w", row.Name, err)
	}
	return nil
}

// lockLease reads job's lease row, locking it on MySQL so that every
// claim and renewal of one job goes through one row lock and reads its
// current value, not the transaction's snapshot. (SQLite has one writer.)
func (s *sqlStore) lockLease(tx *gorm.DB, job string) (*jobLeaseRow, error) {
	q := tx
	if s.mysql {
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	var rows []jobLeaseRow
	if err := q.Where("job = ?", job).Limit(1).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("read the lease of job %q: %w", job, err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	return &rows[0], nil
}

// takeLease renews agentID's lease on job, or gives it the lease when
// there is none or it has lapsed. It returns the holder afterwards, and
// why agentID may not claim ("" when it may).
func (s *sqlStore) takeLease(tx *gorm.DB, job, agentID string, now time.Time, ttl time.Duration) (string, string, error) {
	expires := now.Add(ttl).UnixMilli()
	l, err := s.lockLease(tx, job)
	if err != nil {
		return "", "", err
	}
	if l == nil {
		inserted, err := insertNew(tx, &jobLeaseRow{Job: job, AgentID: agentID, ExpiresAtMs: expires, Token: 1})
		if err != nil {
			return "", "", fmt.Errorf("take the lease of job %q: %w", job, err)
		}
		if !inserted {
			return "", fmt.Sprintf("another agent took the lease of job %q at the same moment", job), nil
		}
		return agentID, "", nil
	}
	if l.AgentID != agentID && l.ExpiresAtMs > now.UnixMilli() {
		return l.AgentID, fmt.Sprintf("agent %q holds the lease of job %q until %s", l.AgentID, job,
			time.UnixMilli(l.ExpiresAtMs).UTC().Format(time.RFC3339Nano)), nil
	}
	token := l.Token
	if l.AgentID != agentID {
		token++
	}
	// Compare-and-set on what was read: on SQLite nothing can have moved
	// (one writer), on MySQL the row is locked; it guards a mistake here.
	res := tx.Model(&jobLeaseRow{}).
		Where("job = ? AND agent_id = ? AND token = ? AND expires_at_ms = ?", job, l.AgentID, l.Token, l.ExpiresAtMs).
		Updates(map[string]any{"agent_id": agentID, "expires_at_ms": max(expires, l.ExpiresAtMs), "token": token})
	if res.Error != nil {
		return "", "", fmt.Errorf("take the lease of job %q: %w", job, res.Error)
	}
	if res.RowsAffected == 0 && (token != l.Token || expires > l.ExpiresAtMs) {
		// MySQL counts changed rows only, so 0 is also "nothing to change".
		return "", fmt.Sprintf("another agent took the lease of job %q at the same moment", job), nil
	}
	if l.AgentID != agentID {
		// The old holder's claimed runs that it never reported may never
		// be: say so rather than show them running for ever. A late
		// report still replaces this.
		err := tx.Model(&jobRunRow{}).
			Where("job = ? AND slot = ? AND agent_id = ? AND outcome = ?", job, slotOne, l.AgentID, OutcomeRunning).
			Updates(map[string]any{"outcome": OutcomeUnknown, "error": fmt.Sprintf("agent %q lost the lease before it reported this run", l.AgentID)}).Error
		if err != nil {
			return "", "", fmt.Errorf("take the lease of job %q: mark the old holder's runs: %w", job, err)
		}
	}
	return agentID, "", nil
}

// RenewLeases extends the leases agentID holds among jobs.
func (s *sqlStore) RenewLeases(ctx context.Context, agentID string, jobs []string, now time.Time, ttl time.Duration) ([]string, error) {
	if len(jobs) == 0 {
		return []string{}, nil
	}
	var held []string
	err := s.write(ctx, func(tx *gorm.DB) error {
		held = held[:0]
		rows, err := jobDefs.list(tx.Where("name IN ?", jobs))
		if err != nil {
			return err
		}
		var keep []string
		for _, j := range rows {
			reason, err := s.claimable(tx, j, agentID)
			if err != nil {
				return err
			}
			if reason == "" {
				keep = append(keep, j.Name)
			}
		}
		if len(keep) == 0 {
			return nil
		}
		// Expired or not, a lease still naming agentID was taken by nobody
		// else, so renewing it cannot overlap another holder. The rows are
		// read locked (MySQL), so what is returned is what was renewed.
		q := tx.Model(&jobLeaseRow{})
		if s.mysql {
			q = q.Clauses(clause.Locking{Strength: "UPDATE"})
		}
		if err := q.Where("job IN ? AND agent_id = ?", keep, agentID).Order("job").Pluck("job", &held).Error; err != nil {
			return fmt.Errorf("renew leases: %w", err)
		}
		if len(held) == 0 {
			return nil
		}
		err = tx.Model(&jobLeaseRow{}).Where("job IN ? AND agent_id = ? AND expires_at_ms < ?", held, agentID, now.Add(ttl).UnixMilli()).
			Update("expires_at_ms", now.Add(ttl).UnixMilli()).Error
		if err != nil {
			return fmt.Errorf("renew leases: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("renew the leases of agent %q: %w", agentID, err)
	}
	if held == nil {
		held = []string{}
	}
	return held, nil
}

// RecordRuns stores the runs agentID reports.
func (s *sqlStore) RecordRuns(ctx context.Context, agentID string, runs []JobRun) ([]JobRun, error) {
	if len(runs) == 0 {
		return nil, nil
	}
	var doubles []JobRun
	touched := map[string]bool{}
	err := s.write(ctx, func(tx *gorm.DB) error {
		doubles = doubles[:0]
		seen := map[string]bool{}
		var names []string
		for _, r := range runs {
			if !seen[r.Job] {
				seen[r.Job] = true
				names = append(names, r.Job)
			}
		}
		var exist []string
		if err := tx.Table(jobDefs.table).Where("name IN ?", names).Pluck("name", &exist).Error; err != nil {
			return fmt.Errorf("read jobs: %w", err)
		}
		known := make(map[string]bool, len(exist))
		for _, n := range exist {
			known[n] = true
		}
		// Runs of jobs on every agent and runs by hand are this agent's
		// alone: a row already there is this very run sent again, so
		// they go in batches that skip those. A firing of a job on one
		// agent may have a claimed row to complete, or another agent's.
		var mine []jobRunRow
		for _, r := range runs {
			if !known[r.Job] {
				continue
			}
			touched[r.Job] = true
			if runSlot(agentID, r) != slotOne {
				mine = append(mine, runRow(agentID, r))
				continue
			}
			double, err := recordRun(tx, agentID, r)
			if err != nil {
				return err
			}
			if double {
				doubles = append(doubles, r)
			}
		}
		if len(mine) > 0 {
			if err := tx.Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(mine, 200).Error; err != nil {
				return fmt.Errorf("record runs: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("record the runs of agent %q: %w", agentID, err)
	}
	for job := range touched {
		if err := s.pruneRuns(ctx, job); err != nil {
			s.log.Warn("cannot prune old runs", "job", job, "err", err)
		}
	}
	return doubles, nil
}

// recordRun stores one run; double says another agent already ran its
// firing.
func recordRun(tx *gorm.DB, agentID string, r JobRun) (double bool, err error) {
	row := runRow(agentID, r)
	res := tx.Model(&jobRunRow{}).
		Where("job = ? AND scheduled_at_ms = ? AND slot = ? AND agent_id = ?", row.Job, row.ScheduledAtMs, row.Slot, agentID).
		Updates(map[string]any{
			"cid": row.CID, "run_trigger": row.Trigger, "started_at_ms": row.StartedAtMs,
			"duration_us": row.DurationUs, "outcome": row.Outcome, "error": row.Error,
		})
	if res.Error != nil {
		return false, fmt.Errorf("record a run of job %q: %w", r.Job, res.Error)
	}
	if res.RowsAffected > 0 {
		return false, nil
	}
	// No row of agentID's changed: the firing's row holds these very
	// values (MySQL counts changed rows only), or another agent's run, or
	// there is none yet.
	other, err := firingRun(tx, row.Job, row.ScheduledAtMs, row.Slot)
	if err != nil {
		return false, fmt.Errorf("record a run of job %q: %w", r.Job, err)
	}
	if other != nil {
		return other.AgentID != agentID, nil
	}
	// The read may be a snapshot older than a row committed since: a
	// lost insert is another agent's run of the same firing.
	inserted, err := insertNew(tx, &row)
	if err != nil {
		return false, fmt.Errorf("record a run of job %q: %w", r.Job, err)
	}
	return !inserted, nil
}

// firingRun reads the run of a firing; nil when there is none.
func firingRun(tx *gorm.DB, job string, scheduledAtMs int64, slot string) (*jobRunRow, error) {
	var rows []jobRunRow
	err := tx.Where("job = ? AND scheduled_at_ms = ? AND slot = ?", job, scheduledAtMs, slot).Limit(1).Find(&rows).Error
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	return &rows[0], nil
}

// insertNew inserts row and reports false when a row with the same unique
// key exists: one written by a transaction racing this one, since callers
// look first. A failed statement leaves the transaction usable on both
// databases.
func insertNew(tx *gorm.DB, row any) (bool, error) {
	err := tx.Create(row).Error
	if isDuplicate(err) {
		return false, nil
	}
	return err == nil, err
}

// isDuplicate says whether err is a unique key violation (the store's
// gorm translates both databases' errors).
func isDuplicate(err error) bool {
	return errors.Is(err, gorm.ErrDuplicatedKey)
}

func runRow(agentID string, r JobRun) jobRunRow {
	return jobRunRow{
		Job: r.Job, ScheduledAtMs: r.ScheduledAt.UnixMilli(), Slot: runSlot(agentID, r),
		AgentID: agentID, CID: r.CID, Trigger: r.Trigger, StartedAtMs: r.StartedAt.UnixMilli(),
		DurationUs: r.DurationUs, Outcome: r.Outcome, Error: r.Error,
	}
}

// runSlot is the slot that makes r's firing unique.
func runSlot(agentID string, r JobRun) string {
	switch {
	case r.Trigger == TriggerManual:
		return "manual:" + r.CID
	case r.Placement == PlacementOne:
		return slotOne
	default:
		return agentID
	}
}

// pruneRuns keeps the newest maxRunsKept runs of job, at most once per
// pruneEvery.
func (s *sqlStore) pruneRuns(ctx context.Context, job string) error {
	t := time.Now()
	if last, ok := s.pruned.Load(job); ok && t.Sub(last.(time.Time)) < pruneEvery {
		return nil
	}
	s.pruned.Store(job, t)
	var ids []int64
	err := s.r.WithContext(ctx).Model(&jobRunRow{}).Where("job = ?", job).
		Order("id DESC").Offset(maxRunsKept).Limit(1).Pluck("id", &ids).Error
	if err != nil || len(ids) == 0 {
		return err
	}
	return s.w.WithContext(ctx).Where("job = ? AND id <= ?", job, ids[0]).Delete(&jobRunRow{}).Error
}

// ListJobRuns returns the newest runs of job.
func (s *sqlStore) ListJobRuns(ctx context.Context, job string, limit int) ([]JobRun, error) {
	db := s.r.WithContext(ctx)
	if _, _, err := jobDefs.get(db, job); err != nil {
		return nil, err
	}
	var rows []jobRunRow
	q := db.Where("job = ?", job).Order("scheduled_at_ms DESC, id DESC")
	if limit > 0 {
		q = q.Limit(limit)
	}
	if err := q.Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list the runs of job %q: %w", job, err)
	}
	out := make([]JobRun, 0, len(rows))
	for i := range rows {
		out = append(out, runFromRow(&rows[i]))
	}
	return out, nil
}

// JobState reads the lease and the newest run of a job.
func (s *sqlStore) JobState(ctx context.Context, name string) (*JobLease, *JobRun, error) {
	var lease *JobLease
	var last *JobRun
	err := s.read(ctx, func(tx *gorm.DB) error {
		lease, last = nil, nil
		if _, _, err := jobDefs.get(tx, name); err != nil {
			return err
		}
		var l []jobLeaseRow
		if err := tx.Where("job = ?", name).Limit(1).Find(&l).Error; err != nil {
			return fmt.Errorf("read the lease of job %q: %w", name, err)
		}
		if len(l) == 1 {
			lease = &JobLease{Job: name, AgentID: l[0].AgentID, ExpiresAt: time.UnixMilli(l[0].ExpiresAtMs).UTC(), Token: l[0].Token}
		}
		var r []jobRunRow
		if err := tx.Where("job = ?", name).Order("scheduled_at_ms DESC, id DESC").Limit(1).Find(&r).Error; err != nil {
			return fmt.Errorf("read the runs of job %q: %w", name, err)
		}
		if len(r) == 1 {
			run := runFromRow(&r[0])
			last = &run
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return lease, last, nil
}

func runFromRow(r *jobRunRow) JobRun {
	out := JobRun{
		Job: r.Job, AgentID: r.AgentID, CID: r.CID, Trigger: r.Trigger,
		ScheduledAt: time.UnixMilli(r.ScheduledAtMs).UTC(),
		DurationUs:  r.DurationUs, Outcome: r.Outcome, Error: r.Error,
		Placement: PlacementEvery,
	}
	if r.Slot == slotOne {
		out.Placement = PlacementOne
	}
	if r.StartedAtMs != 0 {
		out.StartedAt = time.UnixMilli(r.StartedAtMs).UTC()
	}
	return out
}
