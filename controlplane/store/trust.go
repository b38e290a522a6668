package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Trust state is the control plane's CA, the admin API's tokens, the
// agents' join tokens and what the store knows of each agent's
// certificate (the trust columns of weft_agents). It is not config: no
// change to it bumps the revision. Each change is written to the audit
// trail at the current revision, with a summary of its own.

// caRow is the control plane's CA, the one row of weft_ca.
type caRow struct {
	ID        int64     `gorm:"primaryKey;autoIncrement:false"`
	CertPEM   string    `gorm:"column:cert_pem;not null"`
	KeyPEM    string    `gorm:"column:key_pem;not null"` // sealed with the store's secrets box
	CreatedAt time.Time `gorm:"not null;precision:3"`
}

func (caRow) TableName() string { return "weft_ca" }

// caID is the id of the one row of weft_ca.
const caID = 1

// tokenRow is an admin API token. Only the sha256 of its secret is kept.
type tokenRow struct {
	Name      string     `gorm:"primaryKey;size:255"`
	Role      string     `gorm:"size:16;not null"`
	Hash      string     `gorm:"size:64;not null;uniqueIndex:weft_tokens_hash"`
	CreatedAt time.Time  `gorm:"not null;precision:3"`
	ExpiresAt *time.Time `gorm:"precision:3"` // NULL: never
	RevokedAt *time.Time `gorm:"precision:3"` // NULL: not revoked
	CreatedBy string     `gorm:"size:255;not null"`
}

func (tokenRow) TableName() string { return "weft_tokens" }

// joinTokenRow is a join token: what lets an agent enroll. Only the sha256
// of its secret is kept.
type joinTokenRow struct {
	ID        string     `gorm:"primaryKey;size:255"`
	Hash      string     `gorm:"size:64;not null;uniqueIndex:weft_join_tokens_hash"`
	Labels    string     `gorm:"not null"` // JSON object
	CreatedAt time.Time  `gorm:"not null;precision:3"`
	ExpiresAt *time.Time `gorm:"precision:3"` // NULL: never
	Uses      int64      `gorm:"not null"`
	Used      int64      `gorm:"not null"`
	RevokedAt *time.Time `gorm:"precision:3"` // NULL: not revoked
	CreatedBy string     `gorm:"size:255;not null"`
	Agents    string     `gorm:"not null"` // JSON array: the ids enrolled with it, in order
}

func (joinTokenRow) TableName() string { return "weft_join_tokens" }

// timeOrZero reads a nullable time column; NULL is the zero time.
func timeOrZero(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// timeOrNil is t as a nullable time column writes it; zero is NULL.
func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = dbTime(t)
	return &t
}

// locked makes the reads of tx lock the rows they read on MySQL, so that
// the writers of one row take turns on its lock and read its latest
// value, not the transaction's snapshot. (SQLite has one writer.)
func (s *sqlStore) locked(tx *gorm.DB) *gorm.DB {
	if s.mysql {
		return tx.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	return tx
}

// checkHash checks that hash is what the store keeps of a secret: its
// sha256, hex.
func checkHash(hash string) error {
	if _, err := hex.DecodeString(hash); err != nil || len(hash) != 2*sha256.Size {
		return errors.New("hash: want the sha256 of the secret, 64 hex digits")
	}
	return nil
}

// trustChange is one audited change of trust state.
type trustChange struct {
	kind, name, action string
	// before and after are the object's content hashes; "" when it did
	// not exist.
	before, after string
	summary       string
}

// auditTrust writes the audit entries of changes of trust state, at the
// current revision since they do not make one.
func auditTrust(tx *gorm.DB, author string, changes ...trustChange) error {
	rev, err := readRevision(tx)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	at := now()
	rows := make([]auditRow, 0, len(changes))
	for _, c := range changes {
		rows = append(rows, auditRow{Revision: rev, At: at, Author: author, Kind: c.kind, Name: c.name,
			Action: c.action, HashBefore: c.before, HashAfter: c.after, Summary: c.summary})
	}
	if err := tx.Create(&rows).Error; err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// contentHash is the sha256, hex, of v's JSON: the content hash of an
// object of trust state. v holds its fields that are not secret, and
// json.Marshal writes struct fields in order and map keys sorted, so
// equal content hashes equal.
func contentHash(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("audit: hash: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// caContent is what the content hash of the CA covers: not its key.
type caContent struct {
	CertPEM string
}

// CA reads the CA, its key unsealed.
func (s *sqlStore) CA(ctx context.Context) ([]byte, []byte, error) {
	var rows []caRow
	if err := s.r.WithContext(ctx).Where("id = ?", caID).Limit(1).Find(&rows).Error; err != nil {
		return nil, nil, fmt.Errorf("read the CA: %w", err)
	}
	if len(rows) == 0 {
		return nil, nil, fmt.Errorf("no CA is stored yet: %w", ErrNotFound)
	}
	return s.openCA(&rows[0])
}

// InitCA stores the CA given unless one is stored, and returns the one
// stored.
func (s *sqlStore) InitCA(ctx context.Context, certPEM, keyPEM []byte) ([]byte, []byte, bool, error) {
	if len(certPEM) == 0 || len(keyPEM) == 0 {
		return nil, nil, false, errors.New("store the CA: the certificate or the key is empty")
	}
	if s.box == nil {
		return nil, nil, false, errors.New("store the CA: no secrets key configured, so its key cannot be stored")
	}
	var (
		stored  caRow
		created bool
	)
	err := s.write(ctx, func(tx *gorm.DB) error {
		// Sealed with the newest data key, read under the revision lock
		// as a config change does, so that no rotation commits between.
		if _, err := s.lockRevision(tx); err != nil {
			return fmt.Errorf("store the CA: %w", err)
		}
		if err := s.useNewestKey(tx); err != nil {
			return fmt.Errorf("store the CA: %w", err)
		}
		sealed, err := s.sealValue(keyPEM)
		if err != nil {
			return fmt.Errorf("store the CA: seal its key: %w", err)
		}
		row := caRow{ID: caID, CertPEM: string(certPEM), KeyPEM: sealed, CreatedAt: now()}
		// Replicas starting together race here: the first insert wins,
		// the others wait on its row and then find it.
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&row)
		if res.Error != nil {
			return fmt.Errorf("store the CA: %w", res.Error)
		}
		if created = res.RowsAffected == 1; !created {
			if err := s.locked(tx).Where("id = ?", caID).Take(&stored).Error; err != nil {
				return fmt.Errorf("read the CA stored first: %w", err)
			}
			return nil
		}
		stored = row
		after, err := contentHash(caContent{CertPEM: row.CertPEM})
		if err != nil {
			return err
		}
		return auditTrust(tx, authorOf(ctx), trustChange{kind: AuditKindCA, name: "ca", action: AuditCreated,
			after: after, summary: "CA created"})
	})
	if err != nil {
		return nil, nil, false, err
	}
	cert, key, err := s.openCA(&stored)
	if err != nil {
		return nil, nil, false, err
	}
	return cert, key, created, nil
}

// openCA unseals the CA's key.
func (s *sqlStore) openCA(r *caRow) ([]byte, []byte, error) {
	if s.box == nil {
		return nil, nil, errors.New("read the CA: its key is sealed and no secrets key configured")
	}
	key, err := s.openValue(r.KeyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("read the CA: open its key: %w (is the secrets key the one it was stored with?)", err)
	}
	return []byte(r.CertPEM), key, nil
}
