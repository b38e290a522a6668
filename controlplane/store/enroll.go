package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// CreateJoinToken stores a join token.
func (s *sqlStore) CreateJoinToken(ctx context.Context, t NewJoinToken) (JoinToken, error) {
	if err := checkJoinToken(t); err != nil {
		return JoinToken{}, fmt.Errorf("create join token %q: %w", t.ID, err)
	}
	labels, err := encodeMap(t.Labels)
	if err != nil {
		return JoinToken{}, fmt.Errorf("create join token %q: labels: %w", t.ID, err)
	}
	var out JoinToken
	err = s.write(ctx, func(tx *gorm.DB) error {
		var taken []joinTokenRow
		if err := tx.Select("id").Where("id = ? OR hash = ?", t.ID, t.Hash).Find(&taken).Error; err != nil {
			return fmt.Errorf("create join token %q: %w", t.ID, err)
		}
		for _, r := range taken {
			if r.ID == t.ID {
				return fmt.Errorf("join token %q already exists: %w", t.ID, ErrConflict)
			}
		}
		if len(taken) > 0 {
			return fmt.Errorf("create join token %q: join token %q has the same secret: %w", t.ID, taken[0].ID, ErrConflict)
		}
		row := joinTokenRow{ID: t.ID, Hash: t.Hash, Labels: labels, CreatedAt: now(), ExpiresAt: timeOrNil(t.ExpiresAt),
			Uses: int64(t.Uses), CreatedBy: t.CreatedBy, Agents: "[]"}
		if err := tx.Create(&row).Error; isDuplicate(err) {
			// Another replica stored it since the check.
			return fmt.Errorf("join token %q already exists: %w", t.ID, ErrConflict)
		} else if err != nil {
			return fmt.Errorf("create join token %q: %w", t.ID, err)
		}
		var err error
		if out, err = joinTokenFromRow(&row); err != nil {
			return err
		}
		after, err := contentHash(out)
		if err != nil {
			return err
		}
		author := t.CreatedBy
		if author == "" {
			author = authorOf(ctx)
		}
		summary := fmt.Sprintf("join token %s created (%d %s%s)", t.ID, t.Uses, plural(t.Uses, "use"), labelText(t.Labels))
		err = auditTrust(tx, author, trustChange{kind: AuditKindJoinToken, name: t.ID, action: AuditCreated,
			after: after, summary: summary})
		if err != nil {
			return fmt.Errorf("create join token %q: %w", t.ID, err)
		}
		return nil
	})
	if err != nil {
		return JoinToken{}, err
	}
	return out, nil
}

// checkJoinToken checks the fields of a join token to store.
func checkJoinToken(t NewJoinToken) error {
	switch {
	case t.ID == "":
		return errors.New("id is empty")
	case len(t.ID) > 255:
		return fmt.Errorf("id: %d bytes, want at most 255", len(t.ID))
	case t.Uses < 1:
		return fmt.Errorf("uses %d: want at least 1", t.Uses)
	case len(t.CreatedBy) > 255:
		return fmt.Errorf("created by: %d bytes, want at most 255", len(t.CreatedBy))
	}
	return checkHash(t.Hash)
}

// labelText is ", labels k=v,k2=v2" sorted by key; "" for none.
func labelText(labels map[string]string) string {
	if len(labels) == 0 {
		return ""
	}
	var kv []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		kv = append(kv, k+"="+labels[k])
	}
	return ", labels " + strings.Join(kv, ",")
}

// ListJoinTokens returns every join token, newest first.
func (s *sqlStore) ListJoinTokens(ctx context.Context) ([]JoinToken, error) {
	var rows []joinTokenRow
	if err := s.r.WithContext(ctx).Order("created_at DESC, id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list join tokens: %w", err)
	}
	out := make([]JoinToken, 0, len(rows))
	for i := range rows {
		t, err := joinTokenFromRow(&rows[i])
		if err != nil {
			return nil, fmt.Errorf("list join tokens: %w", err)
		}
		out = append(out, t)
	}
	return out, nil
}

// RevokeJoinToken marks the join token id revoked now, unless it is
// already.
func (s *sqlStore) RevokeJoinToken(ctx context.Context, id string) (JoinToken, error) {
	var out JoinToken
	err := s.write(ctx, func(tx *gorm.DB) error {
		var rows []joinTokenRow
		if err := s.locked(tx).Where("id = ?", id).Limit(1).Find(&rows).Error; err != nil {
			return fmt.Errorf("revoke join token %q: %w", id, err)
		}
		if len(rows) == 0 {
			return fmt.Errorf("join token %q does not exist: %w", id, ErrNotFound)
		}
		row := &rows[0]
		var err error
		if out, err = joinTokenFromRow(row); err != nil {
			return err
		}
		if row.RevokedAt != nil {
			return nil
		}
		before, err := contentHash(out)
		if err != nil {
			return err
		}
		row.RevokedAt = timeOrNil(now())
		if err := tx.Model(&joinTokenRow{}).Where("id = ?", id).Update("revoked_at", row.RevokedAt).Error; err != nil {
			return fmt.Errorf("revoke join token %q: %w", id, err)
		}
		if out, err = joinTokenFromRow(row); err != nil {
			return err
		}
		after, err := contentHash(out)
		if err != nil {
			return err
		}
		err = auditTrust(tx, authorOf(ctx), trustChange{kind: AuditKindJoinToken, name: id, action: AuditRevoked,
			before: before, after: after, summary: fmt.Sprintf("join token %s revoked", id)})
		if err != nil {
			return fmt.Errorf("revoke join token %q: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return JoinToken{}, err
	}
	return out, nil
}

// Enroll spends one use of the join token whose secret hashes to hash on
// agentID. now decides whether the token has expired; the rows record the
// store's clock. The token's row is locked (FOR UPDATE on MySQL; SQLite
// has one writer) from the first read, so concurrent enrollments take
// turns on it and each reads the uses the others spent; the update that
// spends a use checks them again. A transaction MySQL aborts as a
// deadlock is run again, calling issue again.
func (s *sqlStore) Enroll(ctx context.Context, hash, agentID string, now time.Time, issue func() (Certificate, error)) (JoinToken, error) {
	if agentID == "" {
		return JoinToken{}, errors.New("enroll: the agent id is empty")
	}
	var out JoinToken
	err := s.write(ctx, func(tx *gorm.DB) error {
		var rows []joinTokenRow
		if err := s.locked(tx).Where("hash = ?", hash).Limit(1).Find(&rows).Error; err != nil {
			return fmt.Errorf("enroll agent %q: read the join token: %w", agentID, err)
		}
		if len(rows) == 0 {
			return fmt.Errorf("enroll agent %q: no join token has this secret: %w", agentID, ErrNotFound)
		}
		tok := &rows[0]
		if err := usable(tok, now); err != nil {
			return fmt.Errorf("enroll agent %q: %w", agentID, err)
		}
		tokBefore, err := joinTokenFromRow(tok)
		if err != nil {
			return err
		}

		agent, created, err := s.lockAgent(tx, agentID, tokBefore.Labels)
		if err != nil {
			return fmt.Errorf("enroll agent %q: %w", agentID, err)
		}
		if agent.RevokedAt != nil {
			return fmt.Errorf("enroll agent %q: agent %s was revoked at %s: %w", agentID, agentID, stamp(*agent.RevokedAt), ErrRefused)
		}
		agentBefore := ""
		if !created {
			if agentBefore, err = agentTrustHash(agent); err != nil {
				return err
			}
		}

		cert, err := issue()
		if err != nil {
			return fmt.Errorf("enroll agent %q: %w", agentID, err)
		}
		if err := checkCertificate(cert); err != nil {
			return fmt.Errorf("enroll agent %q: %w", agentID, err)
		}

		tokAfter := tokBefore
		tokAfter.Used++
		tokAfter.Agents = append(slices.Clip(tokBefore.Agents), agentID)
		enrolled, err := encodeList(tokAfter.Agents)
		if err != nil {
			return fmt.Errorf("enroll agent %q: %w", agentID, err)
		}
		// The lock makes this check redundant; it stays so that a token
		// can never be spent twice, whatever the isolation.
		res := tx.Model(&joinTokenRow{}).Where("id = ? AND used < uses AND revoked_at IS NULL", tok.ID).
			Updates(map[string]any{"used": gorm.Expr("used + 1"), "agents": enrolled})
		if res.Error != nil {
			return fmt.Errorf("enroll agent %q: spend join token %s: %w", agentID, tok.ID, res.Error)
		}
		if res.RowsAffected != 1 {
			return fmt.Errorf("enroll agent %q: join token %s was spent or revoked meanwhile: %w", agentID, tok.ID, ErrRefused)
		}

		if err := enrollAgent(tx, agent, tok, cert); err != nil {
			return fmt.Errorf("enroll agent %q: %w", agentID, err)
		}
		agentAfter, err := agentTrustHash(agent)
		if err != nil {
			return err
		}
		before, err := contentHash(tokBefore)
		if err != nil {
			return err
		}
		after, err := contentHash(tokAfter)
		if err != nil {
			return err
		}
		author := authorOf(ctx)
		if author == "" {
			author = "agent:" + agentID
		}
		err = auditTrust(tx, author,
			trustChange{kind: AuditKindAgent, name: agentID, action: AuditEnrolled, before: agentBefore, after: agentAfter,
				summary: fmt.Sprintf("agent %s enrolled with join token %s", agentID, tok.ID)},
			trustChange{kind: AuditKindJoinToken, name: tok.ID, action: AuditUpdated, before: before, after: after,
				summary: fmt.Sprintf("join token %s used by agent %s (%d of %d uses)", tok.ID, agentID, tokAfter.Used, tokAfter.Uses)})
		if err != nil {
			return fmt.Errorf("enroll agent %q: %w", agentID, err)
		}
		out = tokAfter
		return nil
	})
	if err != nil {
		return JoinToken{}, err
	}
	return out, nil
}

// usable says why the join token cannot be used at now; nil when it can.
func usable(t *joinTokenRow, now time.Time) error {
	switch {
	case t.RevokedAt != nil:
		return fmt.Errorf("join token %s was revoked at %s: %w", t.ID, stamp(*t.RevokedAt), ErrRefused)
	case t.ExpiresAt != nil && !now.Before(*t.ExpiresAt):
		return fmt.Errorf("join token %s expired at %s: %w", t.ID, stamp(*t.ExpiresAt), ErrRefused)
	case t.Used >= t.Uses:
		return fmt.Errorf("join token %s is used up (%d of %d uses): %w", t.ID, t.Used, t.Uses, ErrRefused)
	}
	return nil
}

// stamp is how errors and summaries show a time.
func stamp(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

// checkCertificate checks what the store keeps of an issued certificate.
func checkCertificate(c Certificate) error {
	switch {
	case c.Serial == "" || len(c.Serial) > 64:
		return fmt.Errorf("certificate serial %q: want 1 to 64 hex digits", c.Serial)
	case c.NotAfter.IsZero():
		return errors.New("certificate: no expiry")
	}
	return nil
}

// lockAgent reads the row of agent id, locked, creating it when missing
// with labels; created says whether it did.
func (s *sqlStore) lockAgent(tx *gorm.DB, id string, labels map[string]string) (*agentRow, bool, error) {
	encoded, err := encodeMap(labels)
	if err != nil {
		return nil, false, fmt.Errorf("labels: %w", err)
	}
	t := now()
	row := agentRow{ID: id, Labels: encoded, FirstSeen: t, LastSeen: t}
	// An agent saying hello at the same time may insert it first: then
	// this waits on its row and finds it.
	res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&row)
	if res.Error != nil {
		return nil, false, fmt.Errorf("create agent row: %w", res.Error)
	}
	var got agentRow
	if err := s.locked(tx).Where("id = ?", id).Take(&got).Error; err != nil {
		return nil, false, fmt.Errorf("read agent row: %w", err)
	}
	return &got, res.RowsAffected == 1, nil
}

// enrollAgent records on agent's row (and in agent) that it enrolled with
// tok and was issued cert. Its labels take the token's at once; its next
// hello merges them with its own.
func enrollAgent(tx *gorm.DB, agent *agentRow, tok *joinTokenRow, cert Certificate) error {
	labels, err := decodeMap("labels of agent "+agent.ID, agent.Labels)
	if err != nil {
		return err
	}
	tokLabels, err := decodeMap("labels of join token "+tok.ID, tok.Labels)
	if err != nil {
		return err
	}
	maps.Copy(labels, tokLabels)
	if agent.Labels, err = encodeMap(labels); err != nil {
		return err
	}
	agent.EnrolledBy = tok.ID
	agent.EnrolledLabels = tok.Labels
	agent.CertSerial = cert.Serial
	agent.CertNotAfter = timeOrNil(cert.NotAfter)
	err = tx.Model(&agentRow{}).Where("id = ?", agent.ID).Updates(map[string]any{
		"labels":          agent.Labels,
		"enrolled_by":     agent.EnrolledBy,
		"enrolled_labels": agent.EnrolledLabels,
		"cert_serial":     agent.CertSerial,
		"cert_not_after":  agent.CertNotAfter,
	}).Error
	if err != nil {
		return fmt.Errorf("record the enrollment: %w", err)
	}
	return nil
}

// AgentCertified records a certificate issued to an enrolled agent.
func (s *sqlStore) AgentCertified(ctx context.Context, agentID string, c Certificate) error {
	if err := checkCertificate(c); err != nil {
		return fmt.Errorf("certify agent %q: %w", agentID, err)
	}
	return s.write(ctx, func(tx *gorm.DB) error {
		var rows []agentRow
		if err := s.locked(tx).Where("id = ?", agentID).Limit(1).Find(&rows).Error; err != nil {
			return fmt.Errorf("certify agent %q: %w", agentID, err)
		}
		if len(rows) == 0 {
			return fmt.Errorf("agent %q does not exist: %w", agentID, ErrNotFound)
		}
		agent := &rows[0]
		if agent.RevokedAt != nil {
			return fmt.Errorf("certify agent %q: agent %s was revoked at %s: %w", agentID, agentID, stamp(*agent.RevokedAt), ErrRefused)
		}
		if agent.EnrolledBy == "" {
			return fmt.Errorf("agent %q never enrolled: %w", agentID, ErrNotFound)
		}
		before, err := agentTrustHash(agent)
		if err != nil {
			return err
		}
		agent.CertSerial = c.Serial
		agent.CertNotAfter = timeOrNil(c.NotAfter)
		err = tx.Model(&agentRow{}).Where("id = ?", agentID).Updates(map[string]any{
			"cert_serial":    agent.CertSerial,
			"cert_not_after": agent.CertNotAfter,
		}).Error
		if err != nil {
			return fmt.Errorf("certify agent %q: %w", agentID, err)
		}
		after, err := agentTrustHash(agent)
		if err != nil {
			return err
		}
		author := authorOf(ctx)
		if author == "" {
			author = "agent:" + agentID
		}
		err = auditTrust(tx, author, trustChange{kind: AuditKindAgent, name: agentID, action: AuditCertified,
			before: before, after: after,
			summary: fmt.Sprintf("agent %s certified (serial %s, expires %s)", agentID, c.Serial, stamp(*agent.CertNotAfter))})
		if err != nil {
			return fmt.Errorf("certify agent %q: %w", agentID, err)
		}
		return nil
	})
}

// RevokeAgent marks the agent id revoked now, creating its row when the id
// was never seen.
func (s *sqlStore) RevokeAgent(ctx context.Context, id string) (Agent, error) {
	if id == "" {
		return Agent{}, errors.New("revoke agent: the id is empty")
	}
	var out Agent
	err := s.write(ctx, func(tx *gorm.DB) error {
		agent, created, err := s.lockAgent(tx, id, nil)
		if err != nil {
			return fmt.Errorf("revoke agent %q: %w", id, err)
		}
		if agent.RevokedAt == nil {
			before := ""
			if !created {
				if before, err = agentTrustHash(agent); err != nil {
					return err
				}
			}
			agent.RevokedAt = timeOrNil(now())
			if err := tx.Model(&agentRow{}).Where("id = ?", id).Update("revoked_at", agent.RevokedAt).Error; err != nil {
				return fmt.Errorf("revoke agent %q: %w", id, err)
			}
			after, err := agentTrustHash(agent)
			if err != nil {
				return err
			}
			err = auditTrust(tx, authorOf(ctx), trustChange{kind: AuditKindAgent, name: id, action: AuditRevoked,
				before: before, after: after, summary: fmt.Sprintf("agent %s revoked", id)})
			if err != nil {
				return fmt.Errorf("revoke agent %q: %w", id, err)
			}
		}
		out, err = agentFromRow(agent)
		return err
	})
	if err != nil {
		return Agent{}, err
	}
	return out, nil
}

// RevokedAgents returns the revoked agent ids and when each was revoked.
func (s *sqlStore) RevokedAgents(ctx context.Context) (map[string]time.Time, error) {
	var rows []agentRow
	if err := s.r.WithContext(ctx).Select("id", "revoked_at").Where("revoked_at IS NOT NULL").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list revoked agents: %w", err)
	}
	out := make(map[string]time.Time, len(rows))
	for _, r := range rows {
		out[r.ID] = timeOrZero(r.RevokedAt)
	}
	return out, nil
}

func joinTokenFromRow(r *joinTokenRow) (JoinToken, error) {
	labels, err := decodeMap("labels of join token "+r.ID, r.Labels)
	if err != nil {
		return JoinToken{}, err
	}
	agents, err := decodeList("agents of join token "+r.ID, r.Agents)
	if err != nil {
		return JoinToken{}, err
	}
	return JoinToken{
		ID:        r.ID,
		Labels:    labels,
		CreatedAt: r.CreatedAt.UTC(),
		ExpiresAt: timeOrZero(r.ExpiresAt),
		Uses:      int(r.Uses),
		Used:      int(r.Used),
		RevokedAt: timeOrZero(r.RevokedAt),
		CreatedBy: r.CreatedBy,
		Agents:    agents,
	}, nil
}

// agentTrust is what the content hash of an agent covers: its trust
// state, not what it reports of itself.
type agentTrust struct {
	ID             string
	RevokedAt      time.Time
	CertSerial     string
	CertNotAfter   time.Time
	EnrolledBy     string
	EnrolledLabels map[string]string
}

func agentTrustHash(r *agentRow) (string, error) {
	labels, err := decodeMap("enrolled labels of agent "+r.ID, r.EnrolledLabels)
	if err != nil {
		return "", err
	}
	return contentHash(agentTrust{ID: r.ID, RevokedAt: timeOrZero(r.RevokedAt), CertSerial: r.CertSerial,
		CertNotAfter: timeOrZero(r.CertNotAfter), EnrolledBy: r.EnrolledBy, EnrolledLabels: labels})
}
