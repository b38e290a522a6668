package store

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"
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
// A database made before schema versions (by gorm's AutoMigrate; it has
// weft_meta and no weft_schema_versions) is brought to version 1 without
// running migration 1, whose CREATE TABLEs would find its tables: Open
// adds what the last release without schema versions did not make
// (sinceRelease: tables, and columns of its tables), each as migration 1
// makes it, read from migration 1's own file (version1Parts), so that no
// second copy of the schema is kept; it records version 1 and runs the
// later migrations. A database that lacks anything else of version 1 (made
// by an older release, or not Weft's) is refused and left as it is. The
// upgrade runs as described below for migrations: on MySQL under the lock,
// where a start stopped half-way leaves some parts added and the next
// adds the rest; on SQLite in one write transaction with the recording
// of version 1.
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

// baselineVersion is the version a database made before schema versions
// is brought to.
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
	upTo   func(context.Context, int64) ([]*goose.MigrationResult, error) // for tests
	latest int64                                                          // the newest version this binary knows
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
		goose.WithStore(onceStore{versions}), goose.WithDisableGlobalRegistry(true),
		goose.WithGoMigrations(goMigrations(s.mysql)...))
	if err != nil {
		return nil, err
	}
	sources := p.ListSources()
	return &migrator{db: db, mysql: s.mysql, versions: versions, up: p.Up, upTo: p.UpTo,
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
// versions at version 1 once it is brought to it. On MySQL it runs on
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
		if err := m.upgradeBaseline(ctx, q); err != nil {
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

// sinceRelease is what version 1 has that the last release without
// schema versions (commit 2741c7c) did not make: tables, and columns of
// its tables; TestSchemaVersion1 holds it to what that release's schema
// lacks. A database that release made lacks them (one made by a build
// between it and version 1 lacks some of them), and Open adds them. A
// database that lacks anything else of version 1 was made by an older
// release, or is not Weft's: Open refuses it.
var sinceRelease = []string{
	"table weft_ca", "table weft_tokens", "table weft_join_tokens", "table weft_data_keys",
	"column weft_audit.summary",
	"column weft_agents.revoked_at", "column weft_agents.cert_not_after", "column weft_agents.cert_serial",
	"column weft_agents.enrolled_by", "column weft_agents.enrolled_labels",
	"column weft_security_definitions.ca_pem", "column weft_security_definitions.allowed_subjects",
	"column weft_security_definitions.allowed_sans", "column weft_security_definitions.introspection_url",
	"column weft_security_definitions.cache_seconds",
}

// schemaPart is a table, column or index of version 1 with the statements
// that add it to a database: those of migration 1 for a table (on SQLite
// with its indexes), an ALTER TABLE for a column or an index (on SQLite a
// CREATE INDEX).
type schemaPart struct {
	what  string // "table T", "column T.C" or "index T.I"
	table string
	add   []string
}

var (
	// createTable matches a CREATE TABLE of migration 1: the table's name
	// and its lines, one column, index (MySQL) or primary key per line.
	createTable = regexp.MustCompile("(?s)^CREATE TABLE (?:IF NOT EXISTS )?`(\\w+)` \\((.*)\\)")
	// tableLine matches a column or an index in a CREATE TABLE: whether it
	// is an index, and its name.
	tableLine = regexp.MustCompile("^((?:UNIQUE )?INDEX )?`(\\w+)`")
	// createIndex matches a CREATE INDEX of migration 1 (SQLite): the
	// index's name and its table's.
	createIndex = regexp.MustCompile("^CREATE (?:UNIQUE )?INDEX `(\\w+)` ON `(\\w+)`")
)

// version1Parts reads every table, column and index of version 1 from
// migration 1 of one database ("sqlite" or "mysql"), in its order: each
// table before its columns and indexes. Migration 1 never changes, and a
// test holds what this reads of it to what it makes.
func version1Parts(dir string) ([]schemaPart, error) {
	text, err := fs.ReadFile(migrationFiles, "migrations/"+dir+"/00001_schema.sql")
	if err != nil {
		return nil, err
	}
	var sql strings.Builder
	for l := range strings.Lines(string(text)) {
		if !strings.HasPrefix(l, "--") {
			sql.WriteString(l)
		}
	}
	var parts []schemaPart
	tables := map[string]int{} // the index of each table's part
	for stmt := range strings.SplitSeq(sql.String(), ";") {
		stmt = strings.TrimSpace(stmt)
		if m := createTable.FindStringSubmatch(stmt); m != nil {
			table := m[1]
			tables[table] = len(parts)
			parts = append(parts, schemaPart{"table " + table, table, []string{stmt}})
			for l := range strings.Lines(m[2]) {
				l = strings.TrimSuffix(strings.TrimSpace(l), ",")
				switch c := tableLine.FindStringSubmatch(l); {
				case c == nil: // the primary key
				case c[1] == "":
					parts = append(parts, schemaPart{"column " + table + "." + c[2], table,
						[]string{"ALTER TABLE `" + table + "` ADD COLUMN " + l}})
				default:
					parts = append(parts, schemaPart{"index " + table + "." + c[2], table,
						[]string{"ALTER TABLE `" + table + "` ADD " + l}})
				}
			}
		} else if m := createIndex.FindStringSubmatch(stmt); m != nil {
			i, ok := tables[m[2]]
			if !ok {
				return nil, fmt.Errorf("migration 1 (%s) makes index %s before its table %s", dir, m[1], m[2])
			}
			parts[i].add = append(parts[i].add, stmt)
			parts = append(parts, schemaPart{"index " + m[2] + "." + m[1], m[2], []string{stmt}})
		}
	}
	if len(tables) == 0 {
		return nil, fmt.Errorf("migration 1 (%s) makes no table", dir)
	}
	return parts, nil
}

// upgradeBaseline brings a database made before schema versions to
// version 1: it adds what the last release without schema versions did
// not make, as migration 1 makes it, which leaves every row's values as
// they were (a new column is NULL, or its default, in the rows there).
// A database that lacks anything else is refused and left as it is.
func (m *migrator) upgradeBaseline(ctx context.Context, q database.DBTxConn) error {
	add, err := m.baselineChanges(ctx, q)
	if err != nil {
		return err
	}
	var added []string
	for _, p := range add {
		for _, stmt := range p.add {
			if _, err := q.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("bring the schema made before schema versions to version 1: add %s: %w", p.what, err)
			}
		}
		added = append(added, p.what)
	}
	if len(added) > 0 {
		m.log.Info("brought the schema of a database made before schema versions to version 1",
			"added", strings.Join(added, ", "))
	}
	return nil
}

// baselineChanges returns what a database made before schema versions
// lacks of version 1, or an error naming what it lacks that the last
// release without schema versions made.
func (m *migrator) baselineChanges(ctx context.Context, q database.DBTxConn) ([]schemaPart, error) {
	dir, query := "sqlite", `SELECT 'table ' || name FROM sqlite_master WHERE type = 'table'
		UNION ALL SELECT 'column ' || m.name || '.' || p.name
			FROM sqlite_master AS m JOIN pragma_table_info(m.name) AS p WHERE m.type = 'table'
		UNION ALL SELECT 'index ' || tbl_name || '.' || name FROM sqlite_master WHERE type = 'index'`
	if m.mysql {
		dir, query = "mysql", `SELECT CONCAT('table ', TABLE_NAME) FROM information_schema.TABLES
			WHERE TABLE_SCHEMA = DATABASE()
		UNION ALL SELECT CONCAT('column ', TABLE_NAME, '.', COLUMN_NAME) FROM information_schema.COLUMNS
			WHERE TABLE_SCHEMA = DATABASE()
		UNION ALL SELECT CONCAT('index ', TABLE_NAME, '.', INDEX_NAME) FROM information_schema.STATISTICS
			WHERE TABLE_SCHEMA = DATABASE()`
	}
	parts, err := version1Parts(dir)
	if err != nil {
		return nil, err
	}
	have, err := names(ctx, q, query)
	if err != nil {
		return nil, fmt.Errorf("read the tables: %w", err)
	}
	var add []schemaPart
	var missing []string
	for _, p := range parts {
		table := "table " + p.table
		switch {
		case have[p.what]:
		case p.what != table && !have[table]:
			// Made with its table, or the table is missing.
		case slices.Contains(sinceRelease, p.what) || slices.Contains(sinceRelease, table):
			add = append(add, p)
		default:
			missing = append(missing, p.what)
		}
	}
	if len(missing) == 0 {
		return add, nil
	}
	// Tables first, then columns, then indexes.
	slices.SortFunc(missing, func(a, b string) int {
		return cmp.Or(strings.Index("tci", a[:1])-strings.Index("tci", b[:1]), strings.Compare(a, b))
	})
	shown := strings.Join(missing[:min(len(missing), 5)], ", ")
	if len(missing) > 5 {
		shown += fmt.Sprintf(" and %d more", len(missing)-5)
	}
	return nil, fmt.Errorf("the database has no schema version, and lacks what the last release without "+
		"schema versions made (%s): if an older control plane made it, run that release on it once, "+
		"which brings its tables up to date, then this one; else it is not a Weft database", shown)
}

// names reads a query's rows of one name as a set.
func names(ctx context.Context, q database.DBTxConn, query string) (map[string]bool, error) {
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	set := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		set[n] = true
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
