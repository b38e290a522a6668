package store

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// ChangeRevisions returns the revisions in the change log, in order.
func ChangeRevisions(ctx context.Context, s Store) ([]int64, error) {
	var revs []int64
	err := s.(*sqlStore).r.WithContext(ctx).Model(&changeRow{}).Order("revision").Pluck("revision", &revs).Error
	return revs, err
}

// PackageVersions returns every stored version of a package, oldest first.
func PackageVersions(ctx context.Context, s Store, name string) ([]Package, error) {
	var rows []packageVersionRow
	err := s.(*sqlStore).r.WithContext(ctx).Where("name = ?", name).Order("version").Find(&rows).Error
	if err != nil {
		return nil, err
	}
	out := make([]Package, 0, len(rows))
	for i := range rows {
		p, err := rows[i].toPackage()
		if err != nil {
			return nil, fmt.Errorf("version %d: %w", rows[i].Version, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// SealedSecrets returns the stored values of the secret columns of the
// security definition name, by field name, as they are in the database.
func SealedSecrets(ctx context.Context, s Store, name string) (map[string]string, error) {
	row, err := getSecurity(s.(*sqlStore).r.WithContext(ctx), name)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, f := range secretFields {
		out[f.name] = *f.row(row)
	}
	return out, nil
}

// channelRowV1 is weft_channels as the release before security
// definitions, rate limits and SOAP actions created it.
type channelRowV1 struct {
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

func (channelRowV1) TableName() string { return "weft_channels" }

// PreviousAgent is the agent SeedPreviousSchema stores.
const PreviousAgent = "edge-old"

// agentRowV1 is weft_agents as the release before agents said whether they
// kept their state on disk created it.
type agentRowV1 struct {
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

func (agentRowV1) TableName() string { return "weft_agents" }

// SeedPreviousSchema creates, in the empty database dsn, the tables of the
// release before security definitions, holding at revision 2 the service
// of package pkg and a channel (name, path) that calls it, and the agent
// PreviousAgent, which applied revision 2.
func SeedPreviousSchema(ctx context.Context, dsn, pkg, service, name, path string) error {
	kind, rest, _ := strings.Cut(dsn, ":")
	log := slog.New(slog.DiscardHandler)
	var (
		s   *sqlStore
		err error
	)
	if kind == "mysql" {
		s, err = openMySQL(ctx, rest, log)
	} else {
		s, err = openSQLite(ctx, rest, log)
	}
	if err != nil {
		return err
	}
	defer s.Close()
	db := s.w.WithContext(ctx)
	migrator := db
	if s.mysql {
		migrator = db.Set("gorm:table_options", "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin")
	}
	err = migrator.AutoMigrate(&metaRow{}, &changeRow{}, &packageRow{}, &packageVersionRow{},
		&packageFileRow{}, &serviceRow{}, &channelRowV1{}, &agentRowV1{})
	if err != nil {
		return err
	}
	t := now()
	for _, row := range []any{
		&metaRow{ID: metaID, Revision: 2},
		&serviceRow{Name: service, Package: pkg},
		&channelRowV1{Name: name, Path: path, Methods: `["POST"]`, Service: service, Active: true,
			TimeoutMs: 1000, MaxBodyBytes: 1024, DataFormat: "json", CreatedAt: t, UpdatedAt: t, Revision: 2},
		&agentRowV1{ID: PreviousAgent, Labels: "{}", AppliedRevision: 2, AppliedHash: "h2", FirstSeen: t, LastSeen: t},
	} {
		if err := db.Create(row).Error; err != nil {
			return err
		}
	}
	return nil
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
