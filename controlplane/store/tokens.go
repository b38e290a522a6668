package store

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"gorm.io/gorm"
)

// roles are the roles a token may have, weakest first.
var roles = []string{RoleViewer, RoleDeployer, RoleAdmin}

// CreateToken stores an admin API token.
func (s *sqlStore) CreateToken(ctx context.Context, t NewToken) (Token, error) {
	var out Token
	err := s.write(ctx, func(tx *gorm.DB) error {
		var err error
		out, err = insertToken(ctx, tx, t)
		return err
	})
	if err != nil {
		return Token{}, err
	}
	return out, nil
}

// CreateFirstToken stores t when no token exists. The revision row's lock
// makes replicas starting together take turns: the count of the second
// sees the first's token.
func (s *sqlStore) CreateFirstToken(ctx context.Context, t NewToken) (bool, error) {
	var created bool
	err := s.write(ctx, func(tx *gorm.DB) error {
		created = false // again on a retry
		if _, err := s.lockRevision(tx); err != nil {
			return fmt.Errorf("create the first token: %w", err)
		}
		var n int64
		if err := tx.Model(&tokenRow{}).Count(&n).Error; err != nil {
			return fmt.Errorf("create the first token: count tokens: %w", err)
		}
		if n > 0 {
			return nil
		}
		if _, err := insertToken(ctx, tx, t); err != nil {
			return err
		}
		created = true
		return nil
	})
	if err != nil {
		return false, err
	}
	return created, nil
}

// insertToken stores t and audits it.
func insertToken(ctx context.Context, tx *gorm.DB, t NewToken) (Token, error) {
	if err := checkToken(t); err != nil {
		return Token{}, fmt.Errorf("create token %q: %w", t.Name, err)
	}
	var taken []tokenRow
	if err := tx.Select("name").Where("name = ? OR hash = ?", t.Name, t.Hash).Find(&taken).Error; err != nil {
		return Token{}, fmt.Errorf("create token %q: %w", t.Name, err)
	}
	for _, r := range taken {
		if r.Name == t.Name {
			return Token{}, fmt.Errorf("token %q already exists: %w", t.Name, ErrConflict)
		}
	}
	if len(taken) > 0 {
		return Token{}, fmt.Errorf("create token %q: token %q has the same secret: %w", t.Name, taken[0].Name, ErrConflict)
	}
	row := tokenRow{Name: t.Name, Role: t.Role, Hash: t.Hash, CreatedAt: now(), ExpiresAt: timeOrNil(t.ExpiresAt), CreatedBy: t.CreatedBy}
	if err := tx.Create(&row).Error; isDuplicate(err) {
		// Another replica stored it since the check.
		return Token{}, fmt.Errorf("token %q already exists: %w", t.Name, ErrConflict)
	} else if err != nil {
		return Token{}, fmt.Errorf("create token %q: %w", t.Name, err)
	}
	out := tokenFromRow(&row)
	after, err := tokenHash(out)
	if err != nil {
		return Token{}, err
	}
	author := t.CreatedBy
	if author == "" {
		author = authorOf(ctx)
	}
	err = auditTrust(tx, author, trustChange{kind: AuditKindToken, name: t.Name, action: AuditCreated,
		after: after, summary: fmt.Sprintf("token %s created (%s)", t.Name, t.Role)})
	if err != nil {
		return Token{}, fmt.Errorf("create token %q: %w", t.Name, err)
	}
	return out, nil
}

// checkToken checks the fields of a token to store.
func checkToken(t NewToken) error {
	switch {
	case t.Name == "":
		return errors.New("name is empty")
	case len(t.Name) > 255:
		return fmt.Errorf("name: %d bytes, want at most 255", len(t.Name))
	case !slices.Contains(roles, t.Role):
		return fmt.Errorf("role %q: want %s, %s or %s", t.Role, RoleViewer, RoleDeployer, RoleAdmin)
	case len(t.CreatedBy) > 255:
		return fmt.Errorf("created by: %d bytes, want at most 255", len(t.CreatedBy))
	}
	return checkHash(t.Hash)
}

// TokenByHash reads the token whose secret hashes to hash.
func (s *sqlStore) TokenByHash(ctx context.Context, hash string) (Token, error) {
	var rows []tokenRow
	if err := s.r.WithContext(ctx).Where("hash = ?", hash).Limit(1).Find(&rows).Error; err != nil {
		return Token{}, fmt.Errorf("read token: %w", err)
	}
	if len(rows) == 0 {
		return Token{}, fmt.Errorf("no token has this secret: %w", ErrNotFound)
	}
	return tokenFromRow(&rows[0]), nil
}

// ListTokens returns every token sorted by name.
func (s *sqlStore) ListTokens(ctx context.Context) ([]Token, error) {
	var rows []tokenRow
	if err := s.r.WithContext(ctx).Order("name").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	out := make([]Token, 0, len(rows))
	for i := range rows {
		out = append(out, tokenFromRow(&rows[i]))
	}
	return out, nil
}

// RevokeToken marks the token name revoked now, unless it is already.
func (s *sqlStore) RevokeToken(ctx context.Context, name string) (Token, error) {
	var out Token
	err := s.write(ctx, func(tx *gorm.DB) error {
		var rows []tokenRow
		if err := s.locked(tx).Where("name = ?", name).Limit(1).Find(&rows).Error; err != nil {
			return fmt.Errorf("revoke token %q: %w", name, err)
		}
		if len(rows) == 0 {
			return fmt.Errorf("token %q does not exist: %w", name, ErrNotFound)
		}
		row := &rows[0]
		out = tokenFromRow(row)
		if row.RevokedAt != nil {
			return nil
		}
		before, err := tokenHash(out)
		if err != nil {
			return err
		}
		row.RevokedAt = timeOrNil(now())
		if err := tx.Model(&tokenRow{}).Where("name = ?", name).Update("revoked_at", row.RevokedAt).Error; err != nil {
			return fmt.Errorf("revoke token %q: %w", name, err)
		}
		out = tokenFromRow(row)
		after, err := tokenHash(out)
		if err != nil {
			return err
		}
		err = auditTrust(tx, authorOf(ctx), trustChange{kind: AuditKindToken, name: name, action: AuditRevoked,
			before: before, after: after, summary: fmt.Sprintf("token %s revoked", name)})
		if err != nil {
			return fmt.Errorf("revoke token %q: %w", name, err)
		}
		return nil
	})
	if err != nil {
		return Token{}, err
	}
	return out, nil
}

func tokenFromRow(r *tokenRow) Token {
	return Token{
		Name:      r.Name,
		Role:      r.Role,
		Hash:      r.Hash,
		CreatedAt: r.CreatedAt.UTC(),
		ExpiresAt: timeOrZero(r.ExpiresAt),
		RevokedAt: timeOrZero(r.RevokedAt),
		CreatedBy: r.CreatedBy,
	}
}

// tokenHash is the content hash of t, without its secret's hash.
func tokenHash(t Token) (string, error) {
	t.Hash = ""
	return contentHash(t)
}
