package store

import (
	"context"
	"fmt"
	"time"

	"github.com/weft-dev/weft/proto/marks"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// ChangeRevisions returns the revisions in the change log, in order.
func ChangeRevisions(ctx context.Context, s Store) ([]int64, error) {
	var revs []int64
	err := s.(*sqlStore).r.WithContext(ctx).Model(&changeRow{}).Order("revision").Pluck("revision", &revs).Error
	return revs, err
}

// PackageVersions returns every stored version of a package, oldest first.
func PackageVersions(ctx context.Context, s Store, name string) ([]*adminv1.Package, error) {
	var rows []packageVersionRow
	err := s.(*sqlStore).r.WithContext(ctx).Where("name = ?", name).Order("version").Find(&rows).Error
	if err != nil {
		return nil, err
	}
	out := make([]*adminv1.Package, 0, len(rows))
	for i := range rows {
		p, err := rows[i].toPackage()
		if err != nil {
			return nil, fmt.Errorf("version %d: %w", rows[i].Version, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// SealedSecrets returns the stored values of the secret fields of the
// security definition name, by field name, as its spec holds them.
func SealedSecrets(ctx context.Context, s Store, name string) (map[string]string, error) {
	_, d, err := securityDefs.get(s.(*sqlStore).r.WithContext(ctx), name)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	r := d.ProtoReflect()
	for _, fd := range marks.Fields(r.Descriptor(), marks.Secret) {
		out[string(fd.Name())] = r.Get(fd).String()
	}
	return out, nil
}

// RawSpec returns the spec column of the security definition name, as the
// database holds it.
func RawSpec(ctx context.Context, s Store, name string) ([]byte, error) {
	var specs [][]byte
	err := s.(*sqlStore).r.WithContext(ctx).Table(securityDefs.table).Where("name = ?", name).Pluck("spec", &specs).Error
	if err == nil && len(specs) != 1 {
		err = fmt.Errorf("security definition %q: %d rows", name, len(specs))
	}
	if err != nil {
		return nil, err
	}
	return specs[0], nil
}

// channelRowV0 is weft_channels as the release before security
// definitions, rate limits and SOAP actions created it.
type channelRowV0 struct {
	ID           int64     `gorm:"primaryKey;autoIncrement"`
	Name         string    `gorm:"size:255;not null;uniqueIndex:weft_channels_name"`
	Path         string    `gorm:"size:512;not null;uniqueIndex:weft_channels_path"`
	Methods      string    `gorm:"not null"`
	Service      string    `gorm:"size:255;not null;index:weft_channels_service"`
	Active       bool      `gorm:"not null"`
	TimeoutMs    int64     `gorm:"not null"`
	MaxBodyBytes int64     `gorm:"not null"`
	DataFormat   string    `gorm:"size:16;not null;default:json"`
	CreatedAt    time.Time `gorm:"not null;precision:3"`
	UpdatedAt    time.Time `gorm:"not null;precision:3"`
	Revision     int64     `gorm:"not null"`
}

func (channelRowV0) TableName() string { return "weft_channels" }

// agentRowV0 is weft_agents as the release before agents said whether they
// kept their state on disk created it.
type agentRowV0 struct {
	ID              string     `gorm:"primaryKey;size:255"`
	Labels          string     `gorm:"not null"`
	BuildVersion    string     `gorm:"size:255;not null"`
	HTTPAddress     string     `gorm:"size:255;not null"`
	PID             int64      `gorm:"column:pid;not null"`
	StartedAt       *time.Time `gorm:"precision:3"`
	Connected       bool       `gorm:"not null"`
	AppliedRevision int64      `gorm:"not null"`
	AppliedHash     string     `gorm:"size:255;not null"`
	FailedRevision  int64      `gorm:"not null"`
	LastError       string     `gorm:"not null"`
	FirstSeen       time.Time  `gorm:"not null;precision:3"`
	LastSeen        time.Time  `gorm:"not null;precision:3"`
}

func (agentRowV0) TableName() string { return "weft_agents" }

// SeedPreviousSchema makes, in the empty database dsn, the tables of the
// release before security definitions, which AutoMigrate made at Open
// then, holding at revision 2 a channel and an agent.
func SeedPreviousSchema(ctx context.Context, dsn string) error {
	s, err := openUnmigrated(ctx, dsn)
	if err != nil {
		return err
	}
	defer s.Close()
	err = autoMigrateV1(ctx, s, &metaRowV1{}, &changeRowV1{}, &packageRowV1{}, &packageVersionRowV1{},
		&packageFileRowV1{}, &serviceRowV1{}, &channelRowV0{}, &agentRowV0{})
	if err != nil {
		return err
	}
	t := now()
	db := s.w.WithContext(ctx)
	for _, row := range []any{
		&serviceRowV1{Name: "alpha.one", Package: "alpha"},
		&channelRowV0{Name: "orders", Path: "/orders", Methods: `["POST"]`, Service: "alpha.one", Active: true,
			TimeoutMs: 1000, MaxBodyBytes: 1024, DataFormat: "json", CreatedAt: t, UpdatedAt: t, Revision: 2},
		&agentRowV0{ID: "edge-old", Labels: "{}", AppliedRevision: 2, AppliedHash: "h2", FirstSeen: t, LastSeen: t},
	} {
		if err := db.Create(row).Error; err != nil {
			return err
		}
	}
	return db.Model(&metaRowV1{}).Where("id = ?", metaID).Update("revision", 2).Error
}

// ClearKeyCheck forgets the secrets key check, as a database restored
// without its meta row would, so that a store with another key opens.
func ClearKeyCheck(ctx context.Context, s Store) error {
	return s.(*sqlStore).w.WithContext(ctx).Model(&metaRow{}).Where("id = ?", metaID).Update("key_check", "").Error
}

// StoredCAKey returns the CA's key column as it is in the database.
func StoredCAKey(ctx context.Context, s Store) (string, error) {
	var row caRow
	err := s.(*sqlStore).r.WithContext(ctx).Where("id = ?", caID).Take(&row).Error
	return row.KeyPEM, err
}

// AgeReplica sets the last heartbeat of the replica id back by d, as if it
// had stopped beating d ago.
func AgeReplica(ctx context.Context, s Store, id string, d time.Duration) error {
	return s.(*sqlStore).w.WithContext(ctx).Model(&replicaRow{}).Where("id = ?", id).
		Update("heartbeat_at", now().Add(-d)).Error
}
