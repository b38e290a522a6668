package store

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Agent state is not config: these writes never touch the revision, and
// each is a single statement.

// AgentHello creates the agent on first sight and updates what it says
// about itself; first seen is kept, failure state is kept. Its labels are
// those it states, overridden by those of the join token it enrolled with.
// The row is read locked (FOR UPDATE on MySQL; SQLite has one writer), so
// that an enrollment cannot change the enrolled labels between the read
// and the write.
func (s *sqlStore) AgentHello(ctx context.Context, a AgentHello) error {
	if a.ID == "" {
		return errors.New("agent hello: id is empty")
	}
	t := now()
	row := agentRow{
		ID:              a.ID,
		BuildVersion:    a.BuildVersion,
		HTTPAddress:     a.HTTPAddress,
		PID:             a.PID,
		Connected:       true,
		AppliedRevision: a.AppliedRevision,
		AppliedHash:     a.AppliedHash,
		FirstSeen:       t,
		LastSeen:        t,
	}
	if !a.StartedAt.IsZero() {
		st := dbTime(a.StartedAt)
		row.StartedAt = &st
	}
	// Two replicas may upsert one agent at once (a reconnect racing a
	// stale stream); MySQL can report that as a deadlock, and write runs
	// the transaction again.
	err := s.write(ctx, func(tx *gorm.DB) error {
		var stored []agentRow
		if err := s.locked(tx).Select("id", "enrolled_labels").Where("id = ?", a.ID).Limit(1).Find(&stored).Error; err != nil {
			return err
		}
		labels := maps.Clone(a.Labels)
		if labels == nil {
			labels = map[string]string{}
		}
		if len(stored) > 0 {
			enrolled, err := decodeMap("enrolled labels", stored[0].EnrolledLabels)
			if err != nil {
				return err
			}
			maps.Copy(labels, enrolled)
		}
		var err error
		if row.Labels, err = encodeMap(labels); err != nil {
			return err
		}
		err = tx.Clauses(clause.OnConflict{
			Columns: []clause.Column{{Name: "id"}},
			DoUpdates: clause.AssignmentColumns([]string{
				"labels", "build_version", "http_address", "pid", "started_at",
				"connected", "applied_revision", "applied_hash", "last_seen",
			}),
		}).Create(&row).Error
		if err != nil || a.Replica == "" {
			return err
		}
		return tx.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "agent_id"}},
			DoUpdates: clause.AssignmentColumns([]string{"replica_id"}),
		}).Create(&agentStreamRow{AgentID: a.ID, ReplicaID: a.Replica}).Error
	})
	if err != nil {
		return fmt.Errorf("agent %s hello: %w", a.ID, err)
	}
	return nil
}

// AgentApplied records an ACK of a state that is all on the agent's disk.
func (s *sqlStore) AgentApplied(ctx context.Context, id string, revision int64, hash string) error {
	return s.AgentAcked(ctx, id, AgentAck{Revision: revision, Hash: hash})
}

// AgentAcked records an ACK, in one statement so that no reader sees the
// revision without what the agent said of its disk. It clears the last
// error when the revision is at or past the revision the agent last
// refused; the failed revision itself stays as a record.
func (s *sqlStore) AgentAcked(ctx context.Context, id string, ack AgentAck) error {
	return s.updateAgent(ctx, "ack", id, map[string]any{
		"applied_revision": ack.Revision,
		"applied_hash":     ack.Hash,
		"last_error":       gorm.Expr("CASE WHEN ? >= failed_revision THEN '' ELSE last_error END", ack.Revision),
		"not_persisted":    ack.NotPersisted,
		"connected":        true,
		"last_seen":        now(),
	})
}

// AgentFailed records a NACK.
func (s *sqlStore) AgentFailed(ctx context.Context, id string, revision int64, message string) error {
	return s.updateAgent(ctx, "nack", id, map[string]any{
		"failed_revision": revision,
		"last_error":      message,
		"connected":       true,
		"last_seen":       now(),
	})
}

// AgentGone records that the agent's stream with the replica ended,
// unless another replica holds the agent now (it moved there first).
func (s *sqlStore) AgentGone(ctx context.Context, id, replica string) error {
	// One statement: a hello of another replica commits before it or
	// after it, never between a read of the holder and the write.
	other := s.w.Model(&agentStreamRow{}).Select("1").Where("agent_id = ? AND replica_id <> ?", id, replica)
	err := s.w.WithContext(ctx).Model(&agentRow{}).Where("id = ? AND NOT EXISTS (?)", id, other).
		Updates(map[string]any{"connected": false, "last_seen": now()}).Error
	if err != nil {
		return fmt.Errorf("agent %s gone: %w", id, err)
	}
	return nil
}

// AgentSeen records that the agent's stream is alive.
func (s *sqlStore) AgentSeen(ctx context.Context, id string) error {
	return s.updateAgent(ctx, "seen", id, map[string]any{
		"connected": true,
		"last_seen": now(),
	})
}

func (s *sqlStore) updateAgent(ctx context.Context, op, id string, set map[string]any) error {
	db := s.w.WithContext(ctx)
	res := db.Model(&agentRow{}).Where("id = ?", id).Updates(set)
	if res.Error != nil {
		return fmt.Errorf("agent %s %s: %w", id, op, res.Error)
	}
	if res.RowsAffected > 0 {
		return nil
	}
	// MySQL counts changed rows, not matched ones: a row written with the
	// same values in the same millisecond reports 0. Look before failing.
	var n int64
	if err := db.Model(&agentRow{}).Where("id = ?", id).Count(&n).Error; err != nil {
		return fmt.Errorf("agent %s %s: %w", id, op, err)
	}
	if n == 0 {
		return fmt.Errorf("agent %q has not said hello: %w", id, ErrNotFound)
	}
	return nil
}

// ListAgents returns every agent sorted by id.
func (s *sqlStore) ListAgents(ctx context.Context) ([]Agent, error) {
	var rows []agentRow
	if err := s.r.WithContext(ctx).Order("id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	st, err := readStreams(s.r.WithContext(ctx), nil)
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	out := make([]Agent, 0, len(rows))
	for i := range rows {
		a, err := agentFromRow(&rows[i])
		if err != nil {
			return nil, fmt.Errorf("list agents: %w", err)
		}
		st.apply(&a)
		out = append(out, a)
	}
	return out, nil
}

// GetAgent reads one agent.
func (s *sqlStore) GetAgent(ctx context.Context, id string) (Agent, error) {
	var row agentRow
	err := s.r.WithContext(ctx).Where("id = ?", id).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Agent{}, fmt.Errorf("agent %q does not exist: %w", id, ErrNotFound)
	}
	if err != nil {
		return Agent{}, fmt.Errorf("read agent %q: %w", id, err)
	}
	a, err := agentFromRow(&row)
	if err != nil {
		return Agent{}, err
	}
	st, err := readStreams(s.r.WithContext(ctx), []string{id})
	if err != nil {
		return Agent{}, fmt.Errorf("read agent %q: %w", id, err)
	}
	st.apply(&a)
	return a, nil
}
