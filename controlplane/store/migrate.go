package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strings"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
)

// The schema is made and changed only by the numbered migrations in
// migrations/, embedded in the binary and run by goose at Open; gorm maps
// rows and never changes a table. Each version is one SQL file per
// database (migrations/sqlite, migrations/mysql) under the same number,
// since the two spell types and indexes differently. A change that must
// rewrite values with the store's own code (decoding a column, sealing a
// secret) would be a Go migration of that number instead, for both
// databases (goose.NewGoMigration, given to the provider in newMigrator
// with goose.WithGoMigrations). No migration goes down: to go back,
// restore a backup.
//
// A database made before schema versions (by gorm's AutoMigrate, without
// weft_schema_versions) holds the schema of version 1, which is what
// AutoMigrate made: Open checks that it does, records it as at version 1
// without running migration 1, and runs the later ones.
//
// Replicas opening one database together run each migration once. On
// MySQL everything Open does to the schema runs under a named lock
// (GET_LOCK). On SQLite, which takes one writer at a time, each migration
// runs in a write transaction (BEGIN IMMEDIATE; so a SQLite migration may
// not say NO TRANSACTION) that also records its version, and records it
// only if no other connection did meanwhile; the loser's transaction rolls
// back and Open runs the remaining migrations again.

//go:embed migrations
var migrationFiles embed.FS

// versionTable is goose's record of the versions applied.
const versionTable = "weft_schema_versions"

// baselineVersion is the schema AutoMigrate made before schema versions.
const baselineVersion = 1

// upAttempts bounds how often Open runs the migrations again after
// another connection applied one first (SQLite).
const upAttempts = 3

// SchemaTooNewError means the database was migrated by a newer control
// plane than this one: its schema is one this binary cannot read.
type SchemaTooNewError struct {
	Database int64 // the database's schema version
	Known    int64 // the newest version this binary knows
}

func (e *SchemaTooNewError) Error() string {
	return fmt.Sprintf("the database is at schema version %d; this control plane knows up to %d: upgrade it", e.Database, e.Known)
}

// migrator runs the migrations of one store.
type migrator struct {
	db       *sql.DB // the store's writer
	mysql    bool
	versions database.Store // goose's table of versions
	// up is goose's Provider.Up: it runs the migrations not yet recorded.
	up     func(context.Context) ([]*goose.MigrationResult, error)
	latest int64 // the newest version this binary knows
	log    *slog.Logger
}

func newMigrator(s *sqlStore) (*migrator, error) {
	db, err := s.w.DB()
	if err != nil {
		return nil, err
	}
	dir, dialect := "sqlite", database.DialectSQLite3
	if s.mysql {
		dir, dialect = "mysql", database.DialectMySQL
	}
	versions, err := database.NewStore(dialect, versionTable)
	if err != nil {
		return nil, err
	}
	fsys, err := fs.Sub(migrationFiles, "migrations/"+dir)
	if err != nil {
		return nil, err
	}
	p, err := goose.NewProvider(goose.DialectCustom, db, fsys,
		goose.WithStore(onceStore{versions}), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return nil, err
	}
	sources := p.ListSources()
	return &migrator{db: db, mysql: s.mysql, versions: versions, up: p.Up,
		latest: sources[len(sources)-1].Version, log: s.log}, nil
}

// migrate brings the schema to the newest version this binary knows, or
// refuses a database at a newer one.
func (s *sqlStore) migrate(ctx context.Context) error {
	m, err := newMigrator(s)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if !s.mysql {
		return m.run(ctx, nil)
	}
	// GET_LOCK belongs to a connection: take it and release it on one.
	conn, err := m.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	var got sql.NullInt64
	err = conn.QueryRowContext(ctx, "SELECT GET_LOCK(CONCAT('weft_migrate:', DATABASE()), ?)", migrateLockWait).Scan(&got)
	if err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	if !got.Valid || got.Int64 != 1 {
		return fmt.Errorf("migrate: another process held the schema lock for %ds", migrateLockWait)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT RELEASE_LOCK(CONCAT('weft_migrate:', DATABASE()))")
	return m.run(ctx, conn)
}

// run migrates; on MySQL conn holds the schema lock.
func (m *migrator) run(ctx context.Context, conn *sql.Conn) error {
	from, err := m.prepare(ctx, conn)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if from > m.latest {
		return &SchemaTooNewError{Database: from, Known: m.latest}
	}
	for attempt, before := 1, from; before < m.latest; attempt++ {
		_, err := m.up(ctx)
		if err == nil {
			m.log.Info("migrated the database schema", "from", from, "to", m.latest)
			return nil
		}
		// On SQLite another connection may have applied a version
		// first, which rolled ours back: run what remains.
		after, _, verr := m.recorded(ctx, m.db)
		if verr != nil || after <= before || attempt == upAttempts {
			return fmt.Errorf("migrate from schema version %d to %d: %w", before, m.latest, err)
		}
		before = after
	}
	return nil
}

// recorded reads the database's schema version; ok is false when none is
// recorded.
func (m *migrator) recorded(ctx context.Context, q database.DBTxConn) (v int64, ok bool, err error) {
	versioned, err := m.hasTable(ctx, q, versionTable)
	if err != nil || !versioned {
		return 0, false, err
	}
	v, err = m.versions.GetLatestVersion(ctx, q)
	if errors.Is(err, database.ErrVersionNotFound) {
		// Empty: a start stopped between making the table and filling
		// it (MySQL commits each step).
		return 0, false, nil
	}
	return v, err == nil, err
}

// prepare returns the database's schema version. A database without one
// gets goose's table: a new one at version 0, one made before schema
// versions at version 1 once its tables are checked. On MySQL it runs on
// conn, under the schema lock; on SQLite in one write transaction, unless
// a version is recorded already.
func (m *migrator) prepare(ctx context.Context, conn *sql.Conn) (int64, error) {
	if conn != nil {
		return m.prepareOn(ctx, conn)
	}
	if v, ok, err := m.recorded(ctx, m.db); err != nil || ok {
		return v, err
	}
	tx, err := m.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	v, err := m.prepareOn(ctx, tx)
	if err != nil {
		return 0, err
	}
	return v, tx.Commit()
}

func (m *migrator) prepareOn(ctx context.Context, q database.DBTxConn) (int64, error) {
	if v, ok, err := m.recorded(ctx, q); err != nil || ok {
		return v, err
	}
	versioned, err := m.hasTable(ctx, q, versionTable)
	if err != nil {
		return 0, err
	}
	before, err := m.hasTable(ctx, q, metaRow{}.TableName())
	if err != nil {
		return 0, err
	}
	if before {
		if err := m.checkBaseline(ctx, q); err != nil {
			return 0, err
		}
	}
	if !versioned {
		if err := m.versions.CreateVersionTable(ctx, q); err != nil {
			return 0, fmt.Errorf("create %s: %w", versionTable, err)
		}
	}
	record := []int64{0}
	if before {
		record = append(record, baselineVersion)
	}
	for _, v := range record {
		if err := m.versions.Insert(ctx, q, database.InsertRequest{Version: v}); err != nil {
			return 0, fmt.Errorf("record schema version %d: %w", v, err)
		}
	}
	if before {
		m.log.Info("recorded the schema of a database made before schema versions as version 1")
	}
	return record[len(record)-1], nil
}

func (m *migrator) hasTable(ctx context.Context, q database.DBTxConn, name string) (bool, error) {
	query := "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
	if m.mysql {
		query = "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?"
	}
	var n int
	if err := q.QueryRowContext(ctx, query, name).Scan(&n); err != nil {
		return false, fmt.Errorf("look for table %s: %w", name, err)
	}
	return n > 0, nil
}

// version1 is every table of schema version 1 with its columns and the
// names of its indexes (besides the primary key). A test holds it to
// what migration 1 makes.
var version1 = map[string][2]string{
	"weft_meta":    {"id revision key_check", ""},
	"weft_changes": {"revision at author summary", ""},
	"weft_audit": {"id revision at author kind name action hash_before hash_after summary",
		"weft_audit_at weft_audit_revision"},
	"weft_packages": {"name current_version current_version_id", ""},
	"weft_package_versions": {"id name version sha256 author size_bytes services revision created_at",
		"weft_package_versions_name_version weft_package_versions_revision"},
	"weft_package_files": {"id version_id name content", "weft_package_files_version_name"},
	"weft_services":      {"name package", "weft_services_package"},
	"weft_channels": {"id name path methods service active timeout_ms max_body_bytes data_format security " +
		"rate_limit rate_burst soap_actions created_at updated_at revision",
		"weft_channels_name weft_channels_path weft_channels_security weft_channels_service"},
	"weft_agents": {"id labels build_version http_address pid started_at connected applied_revision applied_hash " +
		"failed_revision last_error first_seen last_seen not_persisted revoked_at cert_not_after cert_serial " +
		"enrolled_by enrolled_labels", ""},
	"weft_security_definitions": {"id name kind username password header api_key algorithms secret " +
		"public_key_pem jwks_url issuer audience leeway_ms token token_url client_id client_secret scopes " +
		"cert_pem key_pem created_at updated_at revision ca_pem allowed_subjects allowed_sans " +
		"introspection_url cache_seconds", "weft_security_definitions_name"},
	"weft_outgoing_connections": {"id name address path_template method data_format soap_action timeout_ms " +
		"tls_skip_verify ca_bundle_pem security pool_size headers active created_at updated_at revision",
		"weft_outgoing_connections_name weft_outgoing_connections_security"},
	"weft_jobs": {"id name service type start_at interval_ms repeats cron time_zone payload active " +
		"agent_labels placement run_missed timeout_ms created_at updated_at revision",
		"weft_jobs_name weft_jobs_service"},
	"weft_job_leases": {"job agent_id expires_at_ms token", ""},
	"weft_job_runs": {"id job scheduled_at_ms slot agent_id cid run_trigger started_at_ms duration_us outcome error",
		"weft_job_runs_firing weft_job_runs_job_id"},
	"weft_stats": {"resolution start_ms agent_id kind name count errors sum_us max_us histogram statuses " +
		"bytes_in bytes_out", "weft_stats_object"},
	"weft_stats_seen":  {"agent_id epoch last_seq updated_at", "weft_stats_seen_updated"},
	"weft_ca":          {"id cert_pem key_pem created_at", ""},
	"weft_tokens":      {"name role hash created_at expires_at revoked_at created_by", "weft_tokens_hash"},
	"weft_join_tokens": {"id hash labels created_at expires_at uses used revoked_at created_by agents", "weft_join_tokens_hash"},
	"weft_data_keys":   {"id sealed_key created_at retired_at", ""},
}

// checkBaseline checks that a database made before schema versions has
// every table, column and index of version 1, as the last control plane
// without schema versions left it. One made by an older control plane
// lacks some: it is refused and left as it is.
func (m *migrator) checkBaseline(ctx context.Context, q database.DBTxConn) error {
	columnsQuery := "SELECT m.name, p.name FROM sqlite_master AS m JOIN pragma_table_info(m.name) AS p WHERE m.type = 'table'"
	indexesQuery := "SELECT tbl_name, name FROM sqlite_master WHERE type = 'index'"
	if m.mysql {
		columnsQuery = "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()"
		indexesQuery = "SELECT DISTINCT TABLE_NAME, INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE()"
	}
	columns, err := namePairs(ctx, q, columnsQuery)
	if err != nil {
		return fmt.Errorf("read the columns: %w", err)
	}
	indexes, err := namePairs(ctx, q, indexesQuery)
	if err != nil {
		return fmt.Errorf("read the indexes: %w", err)
	}
	tables := map[string]bool{}
	for c := range columns {
		table, _, _ := strings.Cut(c, ".")
		tables[table] = true
	}
	var noTables, noColumns, noIndexes []string
	for table, want := range version1 {
		if !tables[table] {
			noTables = append(noTables, "table "+table)
			continue
		}
		for c := range strings.FieldsSeq(want[0]) {
			if !columns[table+"."+c] {
				noColumns = append(noColumns, "column "+table+"."+c)
			}
		}
		for i := range strings.FieldsSeq(want[1]) {
			if !indexes[table+"."+i] {
				noIndexes = append(noIndexes, "index "+i)
			}
		}
	}
	for _, l := range [][]string{noTables, noColumns, noIndexes} {
		slices.Sort(l)
	}
	missing := slices.Concat(noTables, noColumns, noIndexes)
	if len(missing) == 0 {
		return nil
	}
	shown := strings.Join(missing[:min(len(missing), 5)], ", ")
	if len(missing) > 5 {
		shown += fmt.Sprintf(" and %d more", len(missing)-5)
	}
	return fmt.Errorf("the database has no schema version, and lacks what version 1 has (%s): "+
		"it was made by a control plane older than the last one without schema versions; "+
		"run that one on it once, which brings its tables up to date, then this one", shown)
}

// namePairs reads a query's rows of two names as a set of "a.b".
func namePairs(ctx context.Context, q database.DBTxConn, query string) (map[string]bool, error) {
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	set := map[string]bool{}
	for rows.Next() {
		var a, b string
		if err := rows.Scan(&a, &b); err != nil {
			return nil, err
		}
		set[a+"."+b] = true
	}
	return set, rows.Err()
}

// onceStore records a version only if no other connection recorded it
// meanwhile. goose records a version in the transaction of its
// migration, so on SQLite, where that transaction is the only writer
// from its first statement on, a migration that another connection
// applied first fails and rolls back whole.
type onceStore struct{ database.Store }

func (s onceStore) Insert(ctx context.Context, db database.DBTxConn, req database.InsertRequest) error {
	if req.Version != 0 {
		applied, err := s.ListMigrations(ctx, db)
		if err != nil {
			return err
		}
		for _, a := range applied {
			if a.Version == req.Version && a.IsApplied {
				return fmt.Errorf("schema version %d was applied meanwhile by another connection", req.Version)
			}
		}
	}
	return s.Store.Insert(ctx, db, req)
}
