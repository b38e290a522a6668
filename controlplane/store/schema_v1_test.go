package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"gorm.io/gorm"

	"github.com/weft-dev/weft/agent/shared/secrets"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// openUnmigrated connects to dsn as Open does, without migrating.
func openUnmigrated(ctx context.Context, dsn string) (*sqlStore, error) {
	kind, rest, _ := strings.Cut(dsn, ":")
	if kind == "mysql" {
		return openMySQL(ctx, rest, slog.New(slog.DiscardHandler))
	}
	return openSQLite(ctx, rest, slog.New(slog.DiscardHandler))
}

// autoMigrateV1 makes the tables of models as Open did before schema
// versions: by AutoMigrate, in one transaction on SQLite, with InnoDB
// utf8mb4_bin tables on MySQL, and then the revision row.
func autoMigrateV1(ctx context.Context, s *sqlStore, models ...any) error {
	db := s.w.WithContext(ctx)
	create := func(db *gorm.DB) error {
		if err := db.AutoMigrate(models...); err != nil {
			return err
		}
		return db.Create(&metaRowV1{ID: metaID}).Error
	}
	if !s.mysql {
		return db.Transaction(create)
	}
	return create(db.Set("gorm:table_options", "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"))
}

// MakeVersion1Schema makes in the empty database dsn the schema a control
// plane made before schema versions, and nothing else.
func MakeVersion1Schema(ctx context.Context, dsn string) error {
	s, err := openUnmigrated(ctx, dsn)
	if err != nil {
		return err
	}
	defer s.Close()
	return autoMigrateV1(ctx, s, modelsV1...)
}

// The gorm models below are those of schema version 1, frozen as they were
// when gorm's AutoMigrate made the schema at Open, before schema versions.
// Tests make with them the database such a control plane made, and hold
// migration 1 to it. Never change them: a later schema is a migration.

// modelsV1 lists them in the order AutoMigrate created them.
var modelsV1 = []any{
	&metaRowV1{},
	&changeRowV1{},
	&auditRowV1{},
	&packageRowV1{},
	&packageVersionRowV1{},
	&packageFileRowV1{},
	&serviceRowV1{},
	&channelRowV1{},
	&agentRowV1{},
	&securityRowV1{},
	&outgoingRowV1{},
	&jobRowV1{},
	&jobLeaseRowV1{},
	&jobRunRowV1{},
	&statsRowV1{},
	&statsSeenRowV1{},
	&caRowV1{},
	&tokenRowV1{},
	&joinTokenRowV1{},
	&dataKeyRowV1{},
}

type metaRowV1 struct {
	ID       int64  `gorm:"primaryKey;autoIncrement:false"`
	Revision int64  `gorm:"not null;default:0"`
	KeyCheck string `gorm:"size:255;not null;default:''"`
}

func (metaRowV1) TableName() string { return "weft_meta" }

type changeRowV1 struct {
	Revision int64     `gorm:"primaryKey;autoIncrement:false"`
	At       time.Time `gorm:"not null;precision:3"`
	Author   string    `gorm:"size:255;not null"`
	Summary  string    `gorm:"not null"`
}

func (changeRowV1) TableName() string { return "weft_changes" }

type auditRowV1 struct {
	ID         int64     `gorm:"primaryKey;autoIncrement"`
	Revision   int64     `gorm:"not null;index:weft_audit_revision"`
	At         time.Time `gorm:"not null;precision:3;index:weft_audit_at"`
	Author     string    `gorm:"size:255;not null"`
	Kind       string    `gorm:"size:16;not null"`
	Name       string    `gorm:"size:255;not null"`
	Action     string    `gorm:"size:16;not null"`
	HashBefore string    `gorm:"size:64;not null"`
	HashAfter  string    `gorm:"size:64;not null"`
	Summary    string    `gorm:"column:summary"`
}

func (auditRowV1) TableName() string { return "weft_audit" }

type packageRowV1 struct {
	Name             string `gorm:"primaryKey;size:255"`
	CurrentVersion   int64  `gorm:"not null"`
	CurrentVersionID int64  `gorm:"not null"`
}

func (packageRowV1) TableName() string { return "weft_packages" }

type packageVersionRowV1 struct {
	ID        int64     `gorm:"primaryKey;autoIncrement"`
	Name      string    `gorm:"size:255;not null;uniqueIndex:weft_package_versions_name_version,priority:1"`
	Version   int64     `gorm:"not null;uniqueIndex:weft_package_versions_name_version,priority:2"`
	Sha256    string    `gorm:"size:64;not null"`
	Author    string    `gorm:"size:255;not null"`
	SizeBytes int64     `gorm:"not null"`
	Services  string    `gorm:"not null"`
	Revision  int64     `gorm:"not null;index:weft_package_versions_revision"`
	CreatedAt time.Time `gorm:"not null;precision:3"`
}

func (packageVersionRowV1) TableName() string { return "weft_package_versions" }

type packageFileRowV1 struct {
	ID        int64  `gorm:"primaryKey;autoIncrement"`
	VersionID int64  `gorm:"not null;uniqueIndex:weft_package_files_version_name,priority:1"`
	Name      string `gorm:"size:255;not null;uniqueIndex:weft_package_files_version_name,priority:2"`
	Content   []byte `gorm:"not null"`
}

func (packageFileRowV1) TableName() string { return "weft_package_files" }

type serviceRowV1 struct {
	Name    string `gorm:"primaryKey;size:255"`
	Package string `gorm:"size:255;not null;index:weft_services_package"`
}

func (serviceRowV1) TableName() string { return "weft_services" }

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
	Security     string    `gorm:"size:255;not null;default:'';index:weft_channels_security"`
	RateLimit    float64   `gorm:"not null;default:0"`
	RateBurst    int32     `gorm:"not null;default:0"`
	SOAPActions  string    `gorm:"column:soap_actions"`
	CreatedAt    time.Time `gorm:"not null;precision:3"`
	UpdatedAt    time.Time `gorm:"not null;precision:3;autoUpdateTime:false"`
	Revision     int64     `gorm:"not null"`
}

func (channelRowV1) TableName() string { return "weft_channels" }

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
	NotPersisted    string     `gorm:"column:not_persisted"`
	RevokedAt       *time.Time `gorm:"precision:3"`
	CertNotAfter    *time.Time `gorm:"precision:3"`
	CertSerial      string     `gorm:"size:64"`
	EnrolledBy      string     `gorm:"size:255"`
	EnrolledLabels  string
}

func (agentRowV1) TableName() string { return "weft_agents" }

type securityRowV1 struct {
	ID               int64     `gorm:"primaryKey;autoIncrement"`
	Name             string    `gorm:"size:255;not null;uniqueIndex:weft_security_definitions_name"`
	Kind             string    `gorm:"size:64;not null"`
	Username         string    `gorm:"not null"`
	Password         string    `gorm:"not null"`
	Header           string    `gorm:"not null"`
	Key              string    `gorm:"column:api_key;not null"`
	Algorithms       string    `gorm:"not null"`
	Secret           string    `gorm:"not null"`
	PublicKeyPEM     string    `gorm:"column:public_key_pem;not null"`
	JWKSURL          string    `gorm:"column:jwks_url;not null"`
	Issuer           string    `gorm:"not null"`
	Audience         string    `gorm:"not null"`
	LeewayMs         int64     `gorm:"not null"`
	Token            string    `gorm:"not null"`
	TokenURL         string    `gorm:"column:token_url;not null"`
	ClientID         string    `gorm:"column:client_id;not null"`
	ClientSecret     string    `gorm:"column:client_secret;not null"`
	Scopes           string    `gorm:"not null"`
	CertPEM          string    `gorm:"column:cert_pem;not null"`
	KeyPEM           string    `gorm:"column:key_pem;not null"`
	CreatedAt        time.Time `gorm:"not null;precision:3"`
	UpdatedAt        time.Time `gorm:"not null;precision:3;autoUpdateTime:false"`
	Revision         int64     `gorm:"not null"`
	CAPEM            string    `gorm:"column:ca_pem"`
	AllowedSubjects  string    `gorm:"column:allowed_subjects"`
	AllowedSANs      string    `gorm:"column:allowed_sans"`
	IntrospectionURL string    `gorm:"column:introspection_url"`
	CacheSeconds     int32     `gorm:"not null;default:0"`
}

func (securityRowV1) TableName() string { return "weft_security_definitions" }

type outgoingRowV1 struct {
	ID            int64     `gorm:"primaryKey;autoIncrement"`
	Name          string    `gorm:"size:255;not null;uniqueIndex:weft_outgoing_connections_name"`
	Address       string    `gorm:"not null"`
	PathTemplate  string    `gorm:"not null"`
	Method        string    `gorm:"size:16;not null"`
	DataFormat    string    `gorm:"size:16;not null"`
	SOAPAction    string    `gorm:"column:soap_action;not null"`
	TimeoutMs     int64     `gorm:"not null"`
	TLSSkipVerify bool      `gorm:"column:tls_skip_verify;not null"`
	CABundlePEM   string    `gorm:"column:ca_bundle_pem;not null"`
	Security      string    `gorm:"size:255;not null;index:weft_outgoing_connections_security"`
	PoolSize      int32     `gorm:"not null"`
	Headers       string    `gorm:"not null"`
	Active        bool      `gorm:"not null"`
	CreatedAt     time.Time `gorm:"not null;precision:3"`
	UpdatedAt     time.Time `gorm:"not null;precision:3;autoUpdateTime:false"`
	Revision      int64     `gorm:"not null"`
}

func (outgoingRowV1) TableName() string { return "weft_outgoing_connections" }

type jobRowV1 struct {
	ID          int64     `gorm:"primaryKey;autoIncrement"`
	Name        string    `gorm:"size:255;not null;uniqueIndex:weft_jobs_name"`
	Service     string    `gorm:"size:255;not null;index:weft_jobs_service"`
	Type        string    `gorm:"size:16;not null"`
	StartAt     time.Time `gorm:"not null;precision:3"`
	IntervalMs  int64     `gorm:"not null"`
	Repeats     int64     `gorm:"not null"`
	Cron        string    `gorm:"not null"`
	TimeZone    string    `gorm:"size:64;not null"`
	Payload     string    `gorm:"not null"`
	Active      bool      `gorm:"not null"`
	AgentLabels string    `gorm:"not null"`
	Placement   string    `gorm:"size:16;not null"`
	RunMissed   bool      `gorm:"not null"`
	TimeoutMs   int64     `gorm:"not null"`
	CreatedAt   time.Time `gorm:"not null;precision:3"`
	UpdatedAt   time.Time `gorm:"not null;precision:3;autoUpdateTime:false"`
	Revision    int64     `gorm:"not null"`
}

func (jobRowV1) TableName() string { return "weft_jobs" }

type jobLeaseRowV1 struct {
	Job         string `gorm:"primaryKey;size:255"`
	AgentID     string `gorm:"size:255;not null"`
	ExpiresAtMs int64  `gorm:"not null"`
	Token       int64  `gorm:"not null"`
}

func (jobLeaseRowV1) TableName() string { return "weft_job_leases" }

type jobRunRowV1 struct {
	ID            int64  `gorm:"primaryKey;autoIncrement"`
	Job           string `gorm:"size:255;not null;uniqueIndex:weft_job_runs_firing,priority:1;index:weft_job_runs_job_id,priority:1"`
	ScheduledAtMs int64  `gorm:"not null;uniqueIndex:weft_job_runs_firing,priority:2"`
	Slot          string `gorm:"size:255;not null;uniqueIndex:weft_job_runs_firing,priority:3"`
	AgentID       string `gorm:"size:255;not null"`
	CID           string `gorm:"column:cid;size:64;not null"`
	Trigger       string `gorm:"column:run_trigger;size:16;not null"`
	StartedAtMs   int64  `gorm:"not null"`
	DurationUs    int64  `gorm:"not null"`
	Outcome       string `gorm:"size:16;not null"`
	Error         string `gorm:"not null"`
}

func (jobRunRowV1) TableName() string { return "weft_job_runs" }

type statsRowV1 struct {
	Resolution string `gorm:"primaryKey;size:4;index:weft_stats_object,priority:1"`
	StartMs    int64  `gorm:"primaryKey;autoIncrement:false;index:weft_stats_object,priority:4"`
	AgentID    string `gorm:"primaryKey;size:255"`
	Kind       string `gorm:"primaryKey;size:16;index:weft_stats_object,priority:2"`
	Name       string `gorm:"primaryKey;size:255;index:weft_stats_object,priority:3"`
	Count      int64  `gorm:"not null"`
	Errors     int64  `gorm:"not null"`
	SumUs      int64  `gorm:"not null"`
	MaxUs      int64  `gorm:"not null"`
	Histogram  string `gorm:"not null"`
	Statuses   string `gorm:"not null"`
	BytesIn    int64  `gorm:"not null"`
	BytesOut   int64  `gorm:"not null"`
}

func (statsRowV1) TableName() string { return "weft_stats" }

type statsSeenRowV1 struct {
	AgentID   string    `gorm:"primaryKey;size:255"`
	Epoch     string    `gorm:"primaryKey;size:64"`
	LastSeq   int64     `gorm:"not null"`
	UpdatedAt time.Time `gorm:"not null;precision:3;index:weft_stats_seen_updated"`
}

func (statsSeenRowV1) TableName() string { return "weft_stats_seen" }

type caRowV1 struct {
	ID        int64     `gorm:"primaryKey;autoIncrement:false"`
	CertPEM   string    `gorm:"column:cert_pem;not null"`
	KeyPEM    string    `gorm:"column:key_pem;not null"`
	CreatedAt time.Time `gorm:"not null;precision:3"`
}

func (caRowV1) TableName() string { return "weft_ca" }

type tokenRowV1 struct {
	Name      string     `gorm:"primaryKey;size:255"`
	Role      string     `gorm:"size:16;not null"`
	Hash      string     `gorm:"size:64;not null;uniqueIndex:weft_tokens_hash"`
	CreatedAt time.Time  `gorm:"not null;precision:3"`
	ExpiresAt *time.Time `gorm:"precision:3"`
	RevokedAt *time.Time `gorm:"precision:3"`
	CreatedBy string     `gorm:"size:255;not null"`
}

func (tokenRowV1) TableName() string { return "weft_tokens" }

type joinTokenRowV1 struct {
	ID        string     `gorm:"primaryKey;size:255"`
	Hash      string     `gorm:"size:64;not null;uniqueIndex:weft_join_tokens_hash"`
	Labels    string     `gorm:"not null"`
	CreatedAt time.Time  `gorm:"not null;precision:3"`
	ExpiresAt *time.Time `gorm:"precision:3"`
	Uses      int64      `gorm:"not null"`
	Used      int64      `gorm:"not null"`
	RevokedAt *time.Time `gorm:"precision:3"`
	CreatedBy string     `gorm:"size:255;not null"`
	Agents    string     `gorm:"not null"`
}

func (joinTokenRowV1) TableName() string { return "weft_join_tokens" }

type dataKeyRowV1 struct {
	ID        int64      `gorm:"primaryKey;autoIncrement"`
	SealedKey string     `gorm:"column:sealed_key;size:255;not null"`
	CreatedAt time.Time  `gorm:"not null;precision:3"`
	RetiredAt *time.Time `gorm:"precision:3"`
}

func (dataKeyRowV1) TableName() string { return "weft_data_keys" }

// Version1Fixture is what SeedVersion1 stores: an object of every kind,
// as the Store reads it back.
type Version1Fixture struct {
	Revision  int64
	Package   *adminv1.Package // with its sources
	Channels  []*adminv1.Channel
	Security  []*adminv1.SecurityDefinition
	Outgoing  *adminv1.OutgoingConnection
	Job       *adminv1.Job
	Lease     JobLease
	Run       JobRun
	Agents    []Agent
	Token     Token
	JoinToken JoinToken
	CACert    string
	CAKey     string
	Stats     StatsRow
	Audit     []AuditEntry // newest first
}

// Version1Objects returns the objects SeedVersion1 stores.
func Version1Objects() Version1Fixture {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	h := sha256.New()
	h.Write([]byte("a.go\x00package alpha\x00"))
	return Version1Fixture{
		Revision: 2,
		Package: &adminv1.Package{Name: "alpha", Version: 1, Sha256: hex.EncodeToString(h.Sum(nil)), Author: "ada",
			SizeBytes: int64(len("package alpha")), Services: []string{"alpha.one"},
			Files: []string{"a.go"}, Sources: []*adminv1.SourceFile{{Name: "a.go", Content: []byte("package alpha")}},
			CreatedAt: timestamppb.New(t0), Revision: 1},
		Channels: []*adminv1.Channel{
			// Stored before SOAP actions: its soap_actions is NULL.
			{Name: "orders", Path: "/orders", Methods: []string{"POST"}, Service: "alpha.one", Active: proto.Bool(true),
				TimeoutMs: 1000, MaxBodyBytes: 1024, DataFormat: "json",
				CreatedAt: timestamppb.New(t0), UpdatedAt: timestamppb.New(t0), Revision: 2},
			// Every field set.
			{Name: "quotes", Path: "/soap/quotes", Methods: []string{"GET", "POST"}, Service: "alpha.one", Active: proto.Bool(true),
				TimeoutMs: 2000, MaxBodyBytes: 4096, DataFormat: "soap11", Security: "partner-in",
				RateLimit: 2.5, RateBurst: 5, SoapActions: map[string]string{"GetQuote": "alpha.one", "ListQuotes": "alpha.one"},
				CreatedAt: timestamppb.New(t0), UpdatedAt: timestamppb.New(t0.Add(time.Minute)), Revision: 2},
		},
		Security: []*adminv1.SecurityDefinition{
			// Every field set, whatever its kind uses.
			{Name: "erp-oauth", Kind: "oauth2_client_credentials", Username: "erp", Password: "erp-pw",
				Header: "X-Key", Key: "erp-key", Algorithms: []string{"HS256", "RS256"}, Secret: "erp-hmac",
				PublicKeyPem: "public pem", JwksUrl: "https://idp.example/jwks", Issuer: "idp", Audience: "weft",
				LeewayMs: 1500, Token: "erp-token", TokenUrl: "https://idp.example/token", ClientId: "weft",
				ClientSecret: "client-s3cret", Scopes: []string{"orders:read", "orders:write"}, CertPem: "cert pem",
				KeyPem: "key pem", CaPem: "ca pem", AllowedSubjects: []string{"CN=erp"}, AllowedSans: []string{"erp.example"},
				IntrospectionUrl: "https://idp.example/introspect", CacheSeconds: 30,
				CreatedAt: timestamppb.New(t0), UpdatedAt: timestamppb.New(t0.Add(time.Minute)), Revision: 2},
			// Stored before the inbound columns: they are NULL.
			{Name: "partner-in", Kind: "basic_auth", Username: "partner", Password: "pw",
				CreatedAt: timestamppb.New(t0), UpdatedAt: timestamppb.New(t0), Revision: 2},
		},
		// Every field set.
		Outgoing: &adminv1.OutgoingConnection{Name: "erp-api", Address: "https://erp.example", PathTemplate: "/orders/{id}",
			Method: "POST", DataFormat: "soap11", SoapAction: "urn:Place", TimeoutMs: 5000, TlsSkipVerify: true,
			CaBundlePem: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", Security: "erp-oauth", PoolSize: 4,
			Headers: map[string]string{"X-Team": "ops", "X-Site": "berlin"}, Active: proto.Bool(true),
			CreatedAt: timestamppb.New(t0), UpdatedAt: timestamppb.New(t0.Add(time.Minute)), Revision: 2},
		// Every field set, whatever its type uses.
		Job: &adminv1.Job{Name: "nightly", Service: "alpha.one", Type: "cron", StartAt: timestamppb.New(t0),
			Interval: &adminv1.JobInterval{Weeks: 1, Days: 2, Hours: 3, Minutes: 4, Seconds: 5}, Repeats: 3,
			Cron: "0 3 * * *", TimeZone: "Europe/Berlin", Payload: `{"full":true}`, Active: proto.Bool(true),
			AgentLabels: map[string]string{"site": "berlin", "tier": "edge"}, Placement: PlacementOne, RunMissed: true,
			TimeoutMs: 60000, CreatedAt: timestamppb.New(t0), UpdatedAt: timestamppb.New(t0.Add(time.Minute)), Revision: 2},
		Lease: JobLease{Job: "nightly", AgentID: "edge-1", ExpiresAt: t0.Add(day + time.Minute), Token: 1},
		Run: JobRun{Job: "nightly", AgentID: "edge-1", CID: "c-0001", Trigger: "schedule", Placement: PlacementOne,
			ScheduledAt: t0.Add(day), StartedAt: t0.Add(day + time.Second), DurationUs: 1500, Outcome: "ok"},
		Agents: []Agent{
			{ID: "edge-1", Labels: map[string]string{"site": "berlin"}, BuildVersion: "v1.4.0",
				HTTPAddress: "10.0.0.5:8080", PID: 4242, StartedAt: t0, Connected: true, AppliedRevision: 2,
				AppliedHash: "h2", FirstSeen: t0, LastSeen: t0.Add(day), CertNotAfter: t0.Add(30 * day),
				CertSerial: "0a1b", EnrolledBy: "j-berlin"},
			// Seen before enrollment and the disk report: those columns are NULL.
			{ID: "edge-old", Labels: map[string]string{}, BuildVersion: "v0.9.0", HTTPAddress: "10.0.0.9:8080",
				PID: 7, AppliedRevision: 2, AppliedHash: "h2", FailedRevision: 1, LastError: "compile: boom",
				FirstSeen: t0, LastSeen: t0},
		},
		Token: Token{Name: "admin", Role: RoleAdmin, Hash: hexSHA256("admin-secret"), CreatedAt: t0,
			CreatedBy: "bootstrap"},
		JoinToken: JoinToken{ID: "j-berlin", Labels: map[string]string{"site": "berlin"}, CreatedAt: t0,
			ExpiresAt: t0.Add(day), Uses: 1, Used: 1, CreatedBy: "ada", Agents: []string{"edge-1"}},
		CACert: "-----BEGIN CERTIFICATE-----\nMIIBfixture\n-----END CERTIFICATE-----\n",
		CAKey:  "-----BEGIN PRIVATE KEY-----\nMC4Cfixture\n-----END PRIVATE KEY-----\n",
		Stats: StatsRow{Resolution: "1m", AgentID: "edge-1", StatsBucket: StatsBucket{Kind: "channel", Name: "orders",
			Start: t0, Count: 3, Errors: 1, SumUs: 4500, MaxUs: 2000, Histogram: map[int32]int64{12: 3},
			Statuses: map[int32]int64{200: 2, 500: 1}, BytesIn: 300, BytesOut: 900}},
		Audit: []AuditEntry{
			{Revision: 2, At: t0, Author: "bootstrap", Kind: AuditKindToken, Name: "admin", Action: AuditCreated,
				HashAfter: hexSHA256("token"), Summary: "token admin created (admin)"},
			{Revision: 2, At: t0, Author: "ada", Kind: AuditKindChannel, Name: "orders", Action: AuditCreated,
				HashAfter: hexSHA256("orders"), Summary: "create channels orders, quotes"},
			// Written before audit entries had summaries: it is NULL.
			{Revision: 1, At: t0, Author: "ada", Kind: AuditKindPackage, Name: "alpha", Action: AuditCreated,
				HashAfter: hexSHA256("alpha"), Summary: "deploy alpha v1"},
		},
	}
}

func hexSHA256(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// SeedVersion1 makes in the empty database dsn what a control plane before
// schema versions made and kept: the schema, by AutoMigrate of the models
// of version 1, holding Version1Objects with the secrets and the CA's key
// sealed with box, and the key check sealed with it. Rows stored before a
// column existed hold NULL in it, as AutoMigrate left them.
func SeedVersion1(ctx context.Context, dsn string, box *secrets.Box) error {
	return seed(ctx, dsn, box, modelsV1, Version1Objects(),
		"UPDATE weft_channels SET soap_actions = NULL WHERE name = 'orders'",
		"UPDATE weft_security_definitions SET ca_pem = NULL, allowed_subjects = NULL, allowed_sans = NULL, "+
			"introspection_url = NULL WHERE name = 'partner-in'",
		"UPDATE weft_agents SET not_persisted = NULL, revoked_at = NULL, cert_not_after = NULL, cert_serial = NULL, "+
			"enrolled_by = NULL, enrolled_labels = NULL WHERE id = 'edge-old'",
		"UPDATE weft_audit SET summary = NULL WHERE kind = 'package'",
	)
}

// seed makes in the empty database dsn the tables of models by
// AutoMigrate, and stores f in them, the secrets, the CA's key and the key
// check sealed with box; then it runs nulls. A row is stored without the
// columns its table lacks, and f's token, join token and CA only when set.
func seed(ctx context.Context, dsn string, box *secrets.Box, models []any, f Version1Fixture, nulls ...string) error {
	s, err := openUnmigrated(ctx, dsn)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := autoMigrateV1(ctx, s, models...); err != nil {
		return err
	}
	var sealErr error
	seal := func(v string) string {
		if v == "" {
			return ""
		}
		sealed, err := box.Seal([]byte(v))
		if err != nil {
			sealErr = err
		}
		return sealed
	}
	check := seal(keyCheckText)
	p := f.Package
	rows := []any{
		&changeRowV1{Revision: 1, At: p.CreatedAt.AsTime(), Author: "ada", Summary: "deploy alpha v1"},
		&changeRowV1{Revision: 2, At: p.CreatedAt.AsTime(), Author: "ada", Summary: "create channels orders, quotes"},
		&packageVersionRowV1{ID: 1, Name: p.Name, Version: p.Version, Sha256: p.Sha256, Author: p.Author,
			SizeBytes: p.SizeBytes, Services: jsonText(p.Services), Revision: p.Revision, CreatedAt: p.CreatedAt.AsTime()},
		&packageFileRowV1{VersionID: 1, Name: p.Sources[0].Name, Content: p.Sources[0].Content},
		&packageRowV1{Name: p.Name, CurrentVersion: p.Version, CurrentVersionID: 1},
		&serviceRowV1{Name: p.Services[0], Package: p.Name},
	}
	for _, c := range f.Channels {
		rows = append(rows, &channelRowV1{Name: c.Name, Path: c.Path, Methods: jsonText(c.Methods), Service: c.Service,
			Active: c.GetActive(), TimeoutMs: c.TimeoutMs, MaxBodyBytes: c.MaxBodyBytes, DataFormat: c.DataFormat,
			Security: c.Security, RateLimit: c.RateLimit, RateBurst: c.RateBurst, SOAPActions: jsonText(c.SoapActions),
			CreatedAt: c.CreatedAt.AsTime(), UpdatedAt: c.UpdatedAt.AsTime(), Revision: c.Revision})
	}
	for _, d := range f.Security {
		rows = append(rows, &securityRowV1{Name: d.Name, Kind: d.Kind, Username: d.Username, Password: seal(d.Password),
			Header: d.Header, Key: seal(d.Key), Algorithms: jsonText(orEmpty(d.Algorithms)), Secret: seal(d.Secret),
			PublicKeyPEM: d.PublicKeyPem, JWKSURL: d.JwksUrl, Issuer: d.Issuer, Audience: d.Audience,
			LeewayMs: d.LeewayMs, Token: seal(d.Token), TokenURL: d.TokenUrl, ClientID: d.ClientId,
			ClientSecret: seal(d.ClientSecret), Scopes: jsonText(orEmpty(d.Scopes)), CertPEM: d.CertPem, KeyPEM: seal(d.KeyPem),
			CreatedAt: d.CreatedAt.AsTime(), UpdatedAt: d.UpdatedAt.AsTime(), Revision: d.Revision, CAPEM: d.CaPem,
			AllowedSubjects: jsonText(orEmpty(d.AllowedSubjects)), AllowedSANs: jsonText(orEmpty(d.AllowedSans)),
			IntrospectionURL: d.IntrospectionUrl, CacheSeconds: d.CacheSeconds})
	}
	o := f.Outgoing
	j := f.Job
	rows = append(rows,
		&outgoingRowV1{Name: o.Name, Address: o.Address, PathTemplate: o.PathTemplate, Method: o.Method,
			DataFormat: o.DataFormat, SOAPAction: o.SoapAction, TimeoutMs: o.TimeoutMs, TLSSkipVerify: o.TlsSkipVerify,
			CABundlePEM: o.CaBundlePem, Security: o.Security, PoolSize: o.PoolSize, Headers: jsonText(o.Headers),
			Active: o.GetActive(), CreatedAt: o.CreatedAt.AsTime(), UpdatedAt: o.UpdatedAt.AsTime(), Revision: o.Revision},
		&jobRowV1{Name: j.Name, Service: j.Service, Type: j.Type, StartAt: j.StartAt.AsTime(), IntervalMs: intervalMs(j.Interval),
			Repeats: j.Repeats, Cron: j.Cron, TimeZone: j.TimeZone, Payload: j.Payload, Active: j.GetActive(),
			AgentLabels: jsonText(j.AgentLabels), Placement: j.Placement, RunMissed: j.RunMissed, TimeoutMs: j.TimeoutMs,
			CreatedAt: j.CreatedAt.AsTime(), UpdatedAt: j.UpdatedAt.AsTime(), Revision: j.Revision},
		&jobLeaseRowV1{Job: f.Lease.Job, AgentID: f.Lease.AgentID, ExpiresAtMs: f.Lease.ExpiresAt.UnixMilli(), Token: f.Lease.Token},
		&jobRunRowV1{Job: f.Run.Job, ScheduledAtMs: f.Run.ScheduledAt.UnixMilli(), Slot: slotOne, AgentID: f.Run.AgentID,
			CID: f.Run.CID, Trigger: f.Run.Trigger, StartedAtMs: f.Run.StartedAt.UnixMilli(), DurationUs: f.Run.DurationUs,
			Outcome: f.Run.Outcome, Error: f.Run.Error},
	)
	for _, a := range f.Agents {
		rows = append(rows, &agentRowV1{ID: a.ID, Labels: jsonText(a.Labels), BuildVersion: a.BuildVersion,
			HTTPAddress: a.HTTPAddress, PID: a.PID, StartedAt: timeOrNil(a.StartedAt), Connected: a.Connected,
			AppliedRevision: a.AppliedRevision, AppliedHash: a.AppliedHash, FailedRevision: a.FailedRevision,
			LastError: a.LastError, FirstSeen: a.FirstSeen, LastSeen: a.LastSeen, NotPersisted: a.NotPersisted,
			CertNotAfter: timeOrNil(a.CertNotAfter), CertSerial: a.CertSerial, EnrolledBy: a.EnrolledBy,
			EnrolledLabels: jsonText(a.Labels)})
	}
	t, jt, st := f.Token, f.JoinToken, f.Stats
	if t.Name != "" {
		rows = append(rows,
			&tokenRowV1{Name: t.Name, Role: t.Role, Hash: t.Hash, CreatedAt: t.CreatedAt, CreatedBy: t.CreatedBy})
	}
	if jt.ID != "" {
		rows = append(rows, &joinTokenRowV1{ID: jt.ID, Hash: hexSHA256("join-secret"), Labels: jsonText(jt.Labels),
			CreatedAt: jt.CreatedAt, ExpiresAt: timeOrNil(jt.ExpiresAt), Uses: int64(jt.Uses), Used: int64(jt.Used),
			CreatedBy: jt.CreatedBy, Agents: jsonText(jt.Agents)})
	}
	if f.CACert != "" {
		rows = append(rows, &caRowV1{ID: caID, CertPEM: f.CACert, KeyPEM: seal(f.CAKey), CreatedAt: p.CreatedAt.AsTime()})
	}
	rows = append(rows,
		&statsRowV1{Resolution: st.Resolution, StartMs: st.Start.UnixMilli(), AgentID: st.AgentID, Kind: st.Kind,
			Name: st.Name, Count: st.Count, Errors: st.Errors, SumUs: st.SumUs, MaxUs: st.MaxUs,
			Histogram: jsonText(st.Histogram), Statuses: jsonText(st.Statuses), BytesIn: st.BytesIn, BytesOut: st.BytesOut},
		&statsSeenRowV1{AgentID: st.AgentID, Epoch: "e1", LastSeq: 9, UpdatedAt: p.CreatedAt.AsTime()},
	)
	for i := len(f.Audit) - 1; i >= 0; i-- { // oldest first, as written
		e := f.Audit[i]
		summary := e.Summary
		if e.Kind != AuditKindToken {
			summary = "" // the revision's, in weft_changes
		}
		rows = append(rows, &auditRowV1{Revision: e.Revision, At: e.At, Author: e.Author, Kind: e.Kind, Name: e.Name,
			Action: e.Action, HashBefore: e.HashBefore, HashAfter: e.HashAfter, Summary: summary})
	}
	if sealErr != nil {
		return fmt.Errorf("seal: %w", sealErr)
	}
	db := s.w.WithContext(ctx)
	for _, r := range rows {
		omit, err := columnsLacking(db, r)
		if err != nil {
			return fmt.Errorf("store %T: %w", r, err)
		}
		if err := db.Omit(omit...).Create(r).Error; err != nil {
			return fmt.Errorf("store %T: %w", r, err)
		}
	}
	meta := fmt.Sprintf("UPDATE weft_meta SET revision = %d, key_check = '%s'", f.Revision, check)
	for _, q := range append([]string{meta}, nulls...) {
		if err := db.Exec(q).Error; err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// columnsLacking returns the columns of row's model that its table lacks.
func columnsLacking(db *gorm.DB, row any) ([]string, error) {
	types, err := db.Migrator().ColumnTypes(row)
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, c := range types {
		have[c.Name()] = true
	}
	stmt := &gorm.Statement{DB: db}
	if err := stmt.Parse(row); err != nil {
		return nil, err
	}
	var out []string
	for _, f := range stmt.Schema.Fields {
		if f.DBName != "" && !have[f.DBName] {
			out = append(out, f.DBName)
		}
	}
	return out, nil
}

// orEmpty is l, or an empty list for nil: the release wrote [] for none.
func orEmpty(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// intervalMs is iv in milliseconds, as version 1 kept it.
func intervalMs(iv *adminv1.JobInterval) int64 {
	s := (((iv.GetWeeks()*7+iv.GetDays())*24+iv.GetHours())*60+iv.GetMinutes())*60 + iv.GetSeconds()
	return s * 1000
}
