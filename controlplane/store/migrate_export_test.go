package store

import (
	"context"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strings"

	"github.com/pressly/goose/v3"
	"gorm.io/gorm"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// PreviousAgent is the agent of Version1Objects stored before enrollment
// and the disk report existed.
const PreviousAgent = "edge-old"

// VersionTable is the table of schema versions.
const VersionTable = versionTable

// Version1Parts returns the tables, columns and indexes of version 1 as
// Open reads them from migration 1 of one database ("sqlite" or "mysql"):
// "table T", "column T.C" and "index T.I", sorted.
func Version1Parts(dir string) ([]string, error) {
	parts, err := version1Parts(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range parts {
		out = append(out, p.what)
	}
	slices.Sort(out)
	return out, nil
}

// SinceRelease returns what Open adds to a database the last release
// without schema versions made, in the words of Version1Parts, sorted.
func SinceRelease() []string {
	return slices.Sorted(slices.Values(sinceRelease))
}

// UpgradeBaselinePartly adds to the database dsn, made before schema
// versions, the first n of the parts Open would add to bring it to
// version 1, as a start stopped half-way would on MySQL, and returns how
// many Open would add.
func UpgradeBaselinePartly(ctx context.Context, dsn string, n int) (int, error) {
	s, err := openUnmigrated(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	m, err := newMigrator(s)
	if err != nil {
		return 0, err
	}
	add, err := m.baselineChanges(ctx, m.db)
	if err != nil {
		return 0, err
	}
	for _, p := range add[:min(n, len(add))] {
		for _, stmt := range p.add {
			if _, err := m.db.ExecContext(ctx, stmt); err != nil {
				return 0, fmt.Errorf("add %s: %w", p.what, err)
			}
		}
	}
	return len(add), nil
}

// ExecUnmigrated runs statements on the database dsn without migrating it.
func ExecUnmigrated(ctx context.Context, dsn string, statements ...string) error {
	s, err := openUnmigrated(ctx, dsn)
	if err != nil {
		return err
	}
	defer s.Close()
	for _, stmt := range statements {
		if err := s.w.WithContext(ctx).Exec(stmt).Error; err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
	}
	return nil
}

// MigrationVersions returns the versions of the migrations of one database
// ("sqlite" or "mysql"), oldest first.
func MigrationVersions(dir string) ([]int64, error) {
	names, err := fs.Glob(migrationFiles, "migrations/"+dir+"/*.sql")
	if err != nil {
		return nil, err
	}
	var out []int64
	for _, n := range names {
		v, err := goose.NumericComponent(n)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	for _, m := range goMigrations(dir == "mysql") {
		out = append(out, m.Version)
	}
	slices.Sort(out)
	return out, nil
}

// MigrationText returns the text of every migration of one database.
func MigrationText(dir string) (map[string]string, error) {
	names, err := fs.Glob(migrationFiles, "migrations/"+dir+"/*.sql")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, n := range names {
		b, err := fs.ReadFile(migrationFiles, n)
		if err != nil {
			return nil, err
		}
		out[n] = string(b)
	}
	return out, nil
}

// KnownSchemaVersion is the newest schema version this binary knows.
func KnownSchemaVersion() int64 {
	v, err := MigrationVersions("sqlite")
	if err != nil || len(v) == 0 {
		panic(fmt.Sprintf("no migrations: %v", err))
	}
	return v[len(v)-1]
}

// SchemaVersions returns every version recorded in the database dsn, in the
// order recorded.
func SchemaVersions(ctx context.Context, dsn string) ([]int64, error) {
	s, err := openUnmigrated(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	var out []int64
	err = s.w.WithContext(ctx).Table(versionTable).Order("id").Pluck("version_id", &out).Error
	return out, err
}

// RecordSchemaVersion records version v as applied in the database dsn, as
// a newer control plane would.
func RecordSchemaVersion(ctx context.Context, dsn string, v int64) error {
	s, err := openUnmigrated(ctx, dsn)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.w.WithContext(ctx).Exec("INSERT INTO "+versionTable+" (version_id, is_applied) VALUES (?, ?)", v, true).Error
}

// HasTable reports whether the database dsn has the table name.
func HasTable(ctx context.Context, dsn, name string) (bool, error) {
	s, err := openUnmigrated(ctx, dsn)
	if err != nil {
		return false, err
	}
	defer s.Close()
	return s.w.WithContext(ctx).Migrator().HasTable(name), nil
}

// Schema describes the tables of the database dsn but goose's, one line
// per table option, column and index, in the database's own words: on
// SQLite from its pragmas, on MySQL from information_schema. A string
// default reads the same in either quote.
func Schema(ctx context.Context, dsn string) (map[string][]string, error) {
	s, err := openUnmigrated(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	db := s.w.WithContext(ctx)
	out := map[string][]string{}
	type line struct{ Table, Text string }
	var lines []line
	var q string
	if s.mysql {
		q = `SELECT TABLE_NAME AS "table", CONCAT('table engine=', ENGINE, ' collation=', TABLE_COLLATION) AS text
			FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()
		UNION ALL SELECT TABLE_NAME, CONCAT_WS(' ', 'column', ORDINAL_POSITION, COLUMN_NAME, COLUMN_TYPE,
			IF(IS_NULLABLE = 'YES', 'null', 'not-null'), CONCAT('default=', COALESCE(COLUMN_DEFAULT, '(none)')),
			CONCAT('extra=', EXTRA), CONCAT('collation=', COALESCE(COLLATION_NAME, '(none)')))
			FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()
		UNION ALL SELECT TABLE_NAME, CONCAT_WS(' ', 'index', INDEX_NAME, IF(NON_UNIQUE = 0, 'unique', 'non-unique'),
			SEQ_IN_INDEX, COLUMN_NAME, CONCAT('part=', COALESCE(SUB_PART, '(all)')))
			FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE()`
	} else {
		q = `SELECT m.name AS "table", 'table autoincrement=' || (m.sql LIKE '%AUTOINCREMENT%') AS text
			FROM sqlite_master AS m WHERE m.type = 'table'
		UNION ALL SELECT m.name, 'column ' || p.cid || ' ' || p.name || ' ' || p.type || ' ' ||
			CASE p."notnull" WHEN 1 THEN 'not-null' ELSE 'null' END || ' default=' || COALESCE(p.dflt_value, '(none)') ||
			' pk=' || p.pk
			FROM sqlite_master AS m JOIN pragma_table_info(m.name) AS p WHERE m.type = 'table'
		UNION ALL SELECT m.name, 'index ' || l.name || ' ' || CASE l."unique" WHEN 1 THEN 'unique' ELSE 'non-unique' END ||
			' ' || l.origin || ' ' || i.seqno || ' ' || i.name
			FROM sqlite_master AS m JOIN pragma_index_list(m.name) AS l JOIN pragma_index_info(l.name) AS i
			WHERE m.type = 'table'`
	}
	if err := db.Raw(q).Scan(&lines).Error; err != nil {
		return nil, err
	}
	for _, l := range lines {
		if l.Table == versionTable || l.Table == "sqlite_sequence" {
			continue
		}
		out[l.Table] = append(out[l.Table], strings.ReplaceAll(l.Text, `"`, `'`))
	}
	for _, t := range out {
		slices.Sort(t)
	}
	return out, nil
}

// models lists the models the store reads and writes.
var models = []any{&metaRow{}, &changeRow{}, &auditRow{}, &packageRow{}, &packageVersionRow{},
	&packageFileRow{}, &serviceRow{}, &agentRow{},
	&jobLeaseRow{}, &jobRunRow{}, &statsRow{}, &statsSeenRow{}, &caRow{}, &tokenRow{},
	&joinTokenRow{}, &dataKeyRow{}, &replicaRow{}, &agentStreamRow{}}

// ColumnsWithoutTable returns the columns of the store's models that the
// database of s lacks, as "table.column".
func ColumnsWithoutTable(s Store) ([]string, error) {
	db := s.(*sqlStore).w
	var out []string
	for _, m := range models {
		stmt := &gorm.Statement{DB: db}
		if err := stmt.Parse(m); err != nil {
			return nil, err
		}
		types, err := db.Migrator().ColumnTypes(m)
		if err != nil {
			return nil, err
		}
		have := map[string]bool{}
		for _, c := range types {
			have[c.Name()] = true
		}
		for _, f := range stmt.Schema.Fields {
			if f.DBName != "" && !have[f.DBName] {
				out = append(out, stmt.Schema.Table+"."+f.DBName)
			}
		}
	}
	// The kinds stored as their messages (objects.go).
	for table, keys := range map[string]map[string]any{
		channels.table:     channels.keys(&adminv1.Channel{}),
		outgoings.table:    outgoings.keys(&adminv1.OutgoingConnection{}),
		securityDefs.table: securityDefs.keys(&adminv1.SecurityDefinition{}),
		jobDefs.table:      jobDefs.keys(&adminv1.Job{}),
	} {
		types, err := db.Migrator().ColumnTypes(table)
		if err != nil {
			return nil, err
		}
		have := map[string]bool{}
		for _, c := range types {
			have[c.Name()] = true
		}
		for _, c := range append(strings.Split(objectColumns, ", "), slices.Collect(maps.Keys(keys))...) {
			if !have[c] {
				out = append(out, table+"."+c)
			}
		}
	}
	return out, nil
}

// MigrateTo brings the database dsn to schema version v, as Open would
// bring it to the newest.
func MigrateTo(ctx context.Context, dsn string, v int64) error {
	s, err := openUnmigrated(ctx, dsn)
	if err != nil {
		return err
	}
	defer s.Close()
	m, err := newMigrator(s)
	if err != nil {
		return err
	}
	if _, err := m.prepare(ctx, nil); err != nil {
		return err
	}
	_, err = m.upTo(ctx, v)
	return err
}
