package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"time"

	"gorm.io/gorm"
)

// The kinds of object the audit trail names.
const (
	AuditKindPackage  = "package"
	AuditKindChannel  = "channel"
	AuditKindSecurity = "security"
	AuditKindOutgoing = "outgoing"
	AuditKindJob      = "job"
	// The kinds of trust state: changes to them keep the revision.
	AuditKindToken     = "token"
	AuditKindJoinToken = "join-token"
	AuditKindAgent     = "agent"
	AuditKindCA        = "ca"
	// AuditKindSecretsKey: the data keys that seal secrets (RotateKey).
	AuditKindSecretsKey = "secrets-key"
)

// AuditKinds are the kinds of object the audit trail names.
var AuditKinds = []string{AuditKindPackage, AuditKindChannel, AuditKindSecurity, AuditKindOutgoing, AuditKindJob,
	AuditKindToken, AuditKindJoinToken, AuditKindAgent, AuditKindCA, AuditKindSecretsKey}

// The actions of an audit entry.
const (
	AuditCreated = "created"
	AuditUpdated = "updated"
	AuditDeleted = "deleted"
	// AuditRevoked: a token, join token or agent was revoked.
	AuditRevoked = "revoked"
	// AuditEnrolled: an agent enrolled with a join token.
	AuditEnrolled = "enrolled"
	// AuditCertified: an enrolled agent was issued a new certificate.
	AuditCertified = "certified"
	// AuditRotated: a new data key seals the secrets (kind secrets-key).
	AuditRotated = "rotated"
	// AuditResealed: a rotation re-sealed a security definition's
	// secrets; their clear values are unchanged.
	AuditResealed = "resealed"
)

// AuditEntry is one object one revision created, changed or deleted, or
// one change of trust state (a token, join token, agent or the CA), which
// keeps the revision current when it was made.
type AuditEntry struct {
	Revision   int64
	At         time.Time
	Author     string
	Kind, Name string
	Action     string
	// HashBefore and HashAfter are the sha256 of the object's stored
	// content before and after; empty when it did not exist.
	HashBefore, HashAfter string
	// Summary is the revision's summary, or the change's own for a
	// change of trust state.
	Summary string
}

// AuditQuery filters ListAudit.
type AuditQuery struct {
	Since  time.Time // zero: all
	Author string    // empty: anyone
	Kind   string    // empty: every kind
	Limit  int       // at most this many, the newest
}

// auditRow is one entry of the audit trail.
type auditRow struct {
	ID         int64     `gorm:"primaryKey;autoIncrement"`
	Revision   int64     `gorm:"not null;index:weft_audit_revision"`
	At         time.Time `gorm:"not null;precision:3;index:weft_audit_at"`
	Author     string    `gorm:"size:255;not null"`
	Kind       string    `gorm:"size:16;not null"`
	Name       string    `gorm:"size:255;not null"`
	Action     string    `gorm:"size:16;not null"`
	HashBefore string    `gorm:"size:64;not null"`
	HashAfter  string    `gorm:"size:64;not null"`
	// Summary is the change's own summary, for changes that make no
	// revision (trust state); "" or NULL (rows from before the column)
	// means the revision's, in weft_changes.
	Summary string `gorm:"column:summary"`
}

func (auditRow) TableName() string { return "weft_audit" }

// authorKey is the context key of the author of a change.
type authorKey struct{}

// WithAuthor returns ctx naming who makes the changes it carries, for the
// changes whose methods take no author of their own.
func WithAuthor(ctx context.Context, author string) context.Context {
	return context.WithValue(ctx, authorKey{}, author)
}

// authorOf is the author ctx names; "" for none.
func authorOf(ctx context.Context) string {
	a, _ := ctx.Value(authorKey{}).(string)
	return a
}

// objectKey names one object of the config.
type objectKey struct{ kind, name string }

// objectHashes returns the content hash of every object of the config, as
// tx sees it. A package's is the sha256 of its current version's files;
// a channel's, a connection's and a security definition's is over its
// spec (objects.go); another
// object's is over its stored row, without the fields every write changes
// (id, times, revision). Secrets are stored sealed, so a changed
// secret changes the hash without the hash telling anything of it.
func objectHashes(tx *gorm.DB) (map[objectKey]string, error) {
	out := map[objectKey]string{}
	var pkgs []struct {
		Name   string
		Sha256 string
	}
	if err := tx.Table("weft_packages AS p").Select("p.name, v.sha256").
		Joins("JOIN weft_package_versions v ON v.id = p.current_version_id").Scan(&pkgs).Error; err != nil {
		return nil, fmt.Errorf("audit: read packages: %w", err)
	}
	for _, p := range pkgs {
		out[objectKey{AuditKindPackage, p.Name}] = p.Sha256
	}
	if err := channels.hashes(tx, AuditKindChannel, out); err != nil {
		return nil, err
	}
	if err := outgoings.hashes(tx, AuditKindOutgoing, out); err != nil {
		return nil, err
	}
	if err := securityDefs.hashes(tx, AuditKindSecurity, out); err != nil {
		return nil, err
	}
	if err := jobDefs.hashes(tx, AuditKindJob, out); err != nil {
		return nil, err
	}
	for _, t := range []struct {
		kind string
		rows any
	}{} {
		if err := tx.Find(t.rows).Error; err != nil {
			return nil, fmt.Errorf("audit: read %s: %w", t.kind, err)
		}
		rows := reflect.ValueOf(t.rows).Elem()
		for i := range rows.Len() {
			r := rows.Index(i)
			name := r.FieldByName("Name").String()
			for _, volatile := range []string{"ID", "CreatedAt", "UpdatedAt", "Revision"} {
				r.FieldByName(volatile).SetZero() // what every write changes
			}
			b, err := json.Marshal(r.Interface())
			if err != nil {
				return nil, fmt.Errorf("audit: %s %q: %w", t.kind, name, err)
			}
			sum := sha256.Sum256(b)
			out[objectKey{t.kind, name}] = hex.EncodeToString(sum[:])
		}
	}
	return out, nil
}

// auditChanges returns the entries of what changed from before to after,
// sorted by kind and name.
func auditChanges(rev int64, at time.Time, author string, before, after map[objectKey]string) []auditRow {
	var out []auditRow
	add := func(k objectKey, action, b, a string) {
		out = append(out, auditRow{Revision: rev, At: at, Author: author, Kind: k.kind, Name: k.name, Action: action, HashBefore: b, HashAfter: a})
	}
	for k, a := range after {
		switch b, ok := before[k]; {
		case !ok:
			add(k, AuditCreated, "", a)
		case b != a:
			add(k, AuditUpdated, b, a)
		}
	}
	for k, b := range before {
		if _, ok := after[k]; !ok {
			add(k, AuditDeleted, b, "")
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// DefaultAuditLimit is how many entries ListAudit returns when its query
// sets no limit.
const DefaultAuditLimit = 1000

// ListAudit returns the audit trail, newest first, and whether older
// entries matched beyond q.Limit.
func (s *sqlStore) ListAudit(ctx context.Context, q AuditQuery) ([]AuditEntry, bool, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultAuditLimit
	}
	db := s.r.WithContext(ctx).Table("weft_audit AS a").
		Select("a.revision, a.at, a.author, a.kind, a.name, a.action, a.hash_before, a.hash_after, " +
			"COALESCE(NULLIF(a.summary, ''), c.summary, '') AS summary").
		Joins("LEFT JOIN weft_changes c ON c.revision = a.revision")
	if !q.Since.IsZero() {
		db = db.Where("a.at >= ?", dbTime(q.Since))
	}
	if q.Author != "" {
		db = db.Where("a.author = ?", q.Author)
	}
	if q.Kind != "" {
		db = db.Where("a.kind = ?", q.Kind)
	}
	var rows []struct {
		Revision   int64
		At         time.Time
		Author     string
		Kind, Name string
		Action     string
		HashBefore string
		HashAfter  string
		Summary    string
	}
	// Within a revision, the changes of trust state (the entries with a
	// summary of their own) come first, newest first; ids grow in the
	// order the entries were written. The revision's own entries follow
	// in their order (kind, name).
	order := "a.revision DESC, CASE WHEN COALESCE(a.summary, '') = '' THEN 0 ELSE a.id END DESC, a.id"
	if err := db.Order(order).Limit(limit + 1).Scan(&rows).Error; err != nil {
		return nil, false, fmt.Errorf("read the audit trail: %w", err)
	}
	truncated := len(rows) > limit
	if truncated {
		rows = rows[:limit]
	}
	out := make([]AuditEntry, 0, len(rows))
	for _, r := range rows {
		out = append(out, AuditEntry{Revision: r.Revision, At: r.At.UTC(), Author: r.Author, Kind: r.Kind, Name: r.Name,
			Action: r.Action, HashBefore: r.HashBefore, HashAfter: r.HashAfter, Summary: r.Summary})
	}
	return out, truncated, nil
}
