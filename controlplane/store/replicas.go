package store

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// ReplicaBeats records that the replica r is alive, registering it when
// new; replicas call it every ReplicaBeat. It also forgets the replicas
// silent for ReplicaForget, which died without removing themselves.
func (s *sqlStore) ReplicaBeats(ctx context.Context, r Replica) error {
	if r.ID == "" {
		return errors.New("replica heartbeat: id is empty")
	}
	t := now()
	row := replicaRow{ID: r.ID, Address: r.Address, StartedAt: dbTime(r.StartedAt), HeartbeatAt: t}
	err := s.w.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "id"}},
		DoUpdates: clause.AssignmentColumns([]string{"address", "heartbeat_at"}),
	}).Create(&row).Error
	if err != nil {
		return fmt.Errorf("replica %s heartbeat: %w", r.ID, err)
	}
	if err := s.w.WithContext(ctx).Where("heartbeat_at < ?", t.Add(-ReplicaForget)).Delete(&replicaRow{}).Error; err != nil {
		return fmt.Errorf("replica %s heartbeat: forget the silent replicas: %w", r.ID, err)
	}
	return nil
}

// ReplicaGone removes the replica id, which is stopping: the agents it
// held count as disconnected at once.
func (s *sqlStore) ReplicaGone(ctx context.Context, id string) error {
	if err := s.w.WithContext(ctx).Where("id = ?", id).Delete(&replicaRow{}).Error; err != nil {
		return fmt.Errorf("replica %s gone: %w", id, err)
	}
	return nil
}

// ListReplicas returns the registered replicas, sorted by id.
func (s *sqlStore) ListReplicas(ctx context.Context) ([]Replica, error) {
	var rows []replicaRow
	if err := s.r.WithContext(ctx).Order("id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list replicas: %w", err)
	}
	t := now()
	out := make([]Replica, 0, len(rows))
	for _, r := range rows {
		out = append(out, Replica{ID: r.ID, Address: r.Address, StartedAt: r.StartedAt.UTC(), Heartbeat: r.HeartbeatAt.UTC(),
			Alive: t.Sub(r.HeartbeatAt) < ReplicaLease})
	}
	return out, nil
}

// streams says, for reading agents, which replica holds each agent's
// stream and whether that replica is alive.
type streams struct {
	holder map[string]string // agent id -> replica id
	alive  map[string]bool   // replica id -> beaten within ReplicaLease
}

// readStreams reads the holders of the streams of ids (every agent when
// ids is nil) and the replicas' heartbeats.
func readStreams(tx *gorm.DB, ids []string) (streams, error) {
	st := streams{holder: map[string]string{}, alive: map[string]bool{}}
	q := tx.Model(&agentStreamRow{})
	if ids != nil {
		q = q.Where("agent_id IN ?", ids)
	}
	var rows []agentStreamRow
	if err := q.Find(&rows).Error; err != nil {
		return st, fmt.Errorf("read agent streams: %w", err)
	}
	for _, r := range rows {
		st.holder[r.AgentID] = r.ReplicaID
	}
	var replicas []replicaRow
	if err := tx.Find(&replicas).Error; err != nil {
		return st, fmt.Errorf("read replicas: %w", err)
	}
	t := now()
	for _, r := range replicas {
		st.alive[r.ID] = t.Sub(r.HeartbeatAt) < ReplicaLease
	}
	return st, nil
}

// apply sets a's Replica and Connected (connected).
func (st streams) apply(a *Agent) {
	a.Replica = st.holder[a.ID]
	a.Connected = st.connected(a.ID, a.Connected)
}

// connected is the agent id's stored flag, unless the replica that holds
// its stream is gone. An agent no replica claims (a database from before
// replicas registered) keeps its stored flag.
func (st streams) connected(id string, stored bool) bool {
	r, ok := st.holder[id]
	return stored && (!ok || st.alive[r])
}
