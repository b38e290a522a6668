package store

import (
	"context"
	"time"

	"github.com/weft-dev/weft/agent/shared/secrets"
)

// The gorm models of the last release without schema versions (commit
// 2741c7c), frozen: that release made its tables with them by AutoMigrate
// at Open. Its other tables are those of version 1, whose frozen models
// (schema_v1_test.go) have the same fields and tags as its models; these
// three lack what version 1 added to their tables. Never change them.

// modelsRelease lists them in the order the release's AutoMigrate created
// them.
var modelsRelease = []any{
	&metaRowV1{},
	&changeRowV1{},
	&auditRowRelease{},
	&packageRowV1{},
	&packageVersionRowV1{},
	&packageFileRowV1{},
	&serviceRowV1{},
	&channelRowV1{},
	&agentRowRelease{},
	&securityRowRelease{},
	&outgoingRowV1{},
	&jobRowV1{},
	&jobLeaseRowV1{},
	&jobRunRowV1{},
	&statsRowV1{},
	&statsSeenRowV1{},
}

type auditRowRelease struct {
	ID         int64     `gorm:"primaryKey;autoIncrement"`
	Revision   int64     `gorm:"not null;index:weft_audit_revision"`
	At         time.Time `gorm:"not null;precision:3;index:weft_audit_at"`
	Author     string    `gorm:"size:255;not null"`
	Kind       string    `gorm:"size:16;not null"`
	Name       string    `gorm:"size:255;not null"`
	Action     string    `gorm:"size:16;not null"`
	HashBefore string    `gorm:"size:64;not null"`
	HashAfter  string    `gorm:"size:64;not null"`
}

func (auditRowRelease) TableName() string { return "weft_audit" }

type agentRowRelease struct {
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
	NotPersisted    string     `gorm:"column:not_persisted"`
}

func (agentRowRelease) TableName() string { return "weft_agents" }

type securityRowRelease struct {
	ID           int64     `gorm:"primaryKey;autoIncrement"`
	Name         string    `gorm:"size:255;not null;uniqueIndex:weft_security_definitions_name"`
	Kind         string    `gorm:"size:64;not null"`
	Username     string    `gorm:"not null"`
	Password     string    `gorm:"not null"`
	Header       string    `gorm:"not null"`
	Key          string    `gorm:"column:api_key;not null"`
	Algorithms   string    `gorm:"not null"`
	Secret       string    `gorm:"not null"`
	PublicKeyPEM string    `gorm:"column:public_key_pem;not null"`
	JWKSURL      string    `gorm:"column:jwks_url;not null"`
	Issuer       string    `gorm:"not null"`
	Audience     string    `gorm:"not null"`
	LeewayMs     int64     `gorm:"not null"`
	Token        string    `gorm:"not null"`
	TokenURL     string    `gorm:"column:token_url;not null"`
	ClientID     string    `gorm:"column:client_id;not null"`
	ClientSecret string    `gorm:"column:client_secret;not null"`
	Scopes       string    `gorm:"not null"`
	CertPEM      string    `gorm:"column:cert_pem;not null"`
	KeyPEM       string    `gorm:"column:key_pem;not null"`
	CreatedAt    time.Time `gorm:"not null;precision:3"`
	UpdatedAt    time.Time `gorm:"not null;precision:3;autoUpdateTime:false"`
	Revision     int64     `gorm:"not null"`
}

func (securityRowRelease) TableName() string { return "weft_security_definitions" }

// ReleaseObjects returns the objects SeedRelease stores: those of
// Version1Objects that the release knew, as the Store reads them back.
func ReleaseObjects() Version1Fixture {
	f := Version1Objects()
	f.Token, f.JoinToken, f.CACert, f.CAKey = Token{}, JoinToken{}, "", ""
	// Before enrollment.
	f.Agents[0].CertNotAfter, f.Agents[0].CertSerial, f.Agents[0].EnrolledBy = time.Time{}, "", ""
	f.Audit = f.Audit[1:]          // the token's entry
	for _, d := range f.Security { // before the inbound columns
		d.CaPem, d.AllowedSubjects, d.AllowedSans, d.IntrospectionUrl, d.CacheSeconds = "", nil, nil, "", 0
	}
	return f
}

// SeedRelease makes in the empty database dsn what the last release
// without schema versions made and kept: its schema, by AutoMigrate of its
// models, holding ReleaseObjects with the secrets sealed with box, and the
// key check sealed with it. Rows stored before a column existed hold NULL
// in it, as AutoMigrate left them.
func SeedRelease(ctx context.Context, dsn string, box *secrets.Box) error {
	return seed(ctx, dsn, box, modelsRelease, ReleaseObjects(),
		"UPDATE weft_channels SET soap_actions = NULL WHERE name = 'orders'",
		"UPDATE weft_agents SET not_persisted = NULL WHERE id = 'edge-old'",
	)
}
