package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	gomysql "github.com/go-sql-driver/mysql"
	"gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/weft-dev/weft/agent/shared/secrets"
)

// dsnForms is the help text of every DSN error.
const dsnForms = "want sqlite:PATH or mysql:USER:PASSWORD@tcp(HOST:PORT)/DATABASE"

// Settings of the connections. SQLite has one writer connection, since
// SQLite takes one writer at a time anyway, and a few readers, which WAL
// lets run beside the writer.
const (
	sqliteBusyTimeout = 10 * time.Second
	sqliteReaders     = 4
	mysqlDialTimeout  = 10 * time.Second
	mysqlMaxOpen      = 16
	mysqlMaxIdle      = 8
	mysqlMaxIdleTime  = 5 * time.Minute
	slowQuery         = time.Second
	migrateLockWait   = 60 // seconds, for MySQL GET_LOCK
)

// Open connects to the database named by dsn and migrates its schema to
// the newest version this binary knows (see migrate.go):
//
//	sqlite:PATH        an embedded SQLite file (created when missing)
//	mysql:DSN          MySQL or MariaDB, DSN as go-sql-driver/mysql reads it,
//	                   such as mysql:root@tcp(127.0.0.1:3306)/weft
//
// A MySQL DSN always gets parseTime=true; it gets charset=utf8mb4, loc=UTC
// and a 10s dial timeout unless it sets them. Several processes
// may Open one database at the same time: each migration runs once. A
// database at a newer schema version is refused with a
// *SchemaTooNewError. SQL is logged only when slow or failing, at warn
// and error level.
func Open(ctx context.Context, dsn string, log *slog.Logger, opts ...Option) (Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	kind, rest, ok := strings.Cut(dsn, ":")
	var (
		s   *sqlStore
		err error
	)
	switch {
	case ok && kind == "sqlite":
		s, err = openSQLite(ctx, rest, log)
	case ok && kind == "mysql":
		s, err = openMySQL(ctx, rest, log)
	default:
		return nil, fmt.Errorf("open store: DSN %q: unknown kind %q: %s", redactDSN(dsn), kind, dsnForms)
	}
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	for _, o := range opts {
		o(s)
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := s.checkKey(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := s.loadDataKeys(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	return s, nil
}

// Option configures a store at Open.
type Option func(*sqlStore)

// WithSecrets makes the store seal the secrets of security definitions
// with box before writing them, and open them when reading. Without it,
// definitions that hold a secret can be neither stored nor read.
func WithSecrets(box *secrets.Box) Option {
	return func(s *sqlStore) { s.box = box }
}

// redactDSN hides the password of a DSN shown in an error.
func redactDSN(dsn string) string {
	at := strings.LastIndex(dsn, "@")
	if at < 0 {
		return dsn
	}
	userinfo := dsn[:at]
	start := 0 // skip a leading "scheme://" or "kind:"
	if i := strings.Index(userinfo, "://"); i >= 0 {
		start = i + len("://")
	} else if kind, _, ok := strings.Cut(userinfo, ":"); ok && (kind == "mysql" || kind == "sqlite") {
		start = len(kind) + 1
	}
	if i := strings.Index(userinfo[start:], ":"); i >= 0 {
		return userinfo[:start+i] + ":***" + dsn[at:]
	}
	return dsn
}

func gormConfig(log *slog.Logger) *gorm.Config {
	return &gorm.Config{
		Logger: logger.NewSlogLogger(log, logger.Config{
			LogLevel:                  logger.Warn,
			SlowThreshold:             slowQuery,
			IgnoreRecordNotFoundError: true,
			ParameterizedQueries:      true, // never log file contents or labels
		}),
		NowFunc:                now,
		SkipDefaultTransaction: true, // the store opens its own transactions
		TranslateError:         true,
	}
}

func openSQLite(ctx context.Context, path string, log *slog.Logger) (*sqlStore, error) {
	file, params, _ := strings.Cut(path, "?")
	switch file {
	case "":
		return nil, fmt.Errorf("DSN %q: the path is empty: %s", "sqlite:"+path, dsnForms)
	case ":memory:":
		return nil, fmt.Errorf("DSN %q: an in-memory database is not supported, name a file", "sqlite:"+path)
	}
	if dir := filepath.Dir(file); dir != "" {
		if st, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("sqlite %s: directory: %w", file, err)
		} else if !st.IsDir() {
			return nil, fmt.Errorf("sqlite %s: %s is not a directory", file, dir)
		}
	}
	common := url.Values{}
	common.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeout.Milliseconds()))
	common.Add("_pragma", "foreign_keys(1)")
	common.Add("_pragma", "synchronous(NORMAL)")
	// No _time_format: go-sqlite v1.21 ignores _txlock when it is set.
	// Times are then written as "2006-01-02 15:04:05.999 +0000 UTC",
	// which it reads back, and which sorts as text since all are UTC.
	open := func(extra url.Values, maxConns int) (*sql.DB, error) {
		q := url.Values{}
		for _, v := range []url.Values{common, extra} {
			for k, l := range v {
				q[k] = append(q[k], l...)
			}
		}
		dsn := file + "?" + q.Encode()
		if params != "" {
			dsn += "&" + params
		}
		db, err := sql.Open(sqlite.DriverName, dsn)
		if err != nil {
			return nil, err
		}
		db.SetMaxOpenConns(maxConns)
		db.SetMaxIdleConns(maxConns)
		db.SetConnMaxIdleTime(0)
		return db, nil
	}

	// The writer switches the file to WAL (a setting stored in the file)
	// before any reader opens it.
	wdb, err := open(url.Values{"_pragma": {"journal_mode(WAL)"}, "_txlock": {"immediate"}}, 1)
	if err != nil {
		return nil, fmt.Errorf("sqlite %s: %w", file, err)
	}
	if err := pingWhileBusy(ctx, wdb); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("sqlite %s: %w", file, err)
	}
	rdb, err := open(url.Values{"_pragma": {"query_only(1)"}}, sqliteReaders)
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("sqlite %s: %w", file, err)
	}
	kdb, err := open(url.Values{"_pragma": {"query_only(1)"}}, 1)
	if err != nil {
		wdb.Close()
		rdb.Close()
		return nil, fmt.Errorf("sqlite %s: %w", file, err)
	}
	closeAll := func() {
		wdb.Close()
		rdb.Close()
		kdb.Close()
	}
	cfg := gormConfig(log)
	w, err := gorm.Open(sqlite.Dialector{Conn: wdb}, cfg)
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("sqlite %s: %w", file, err)
	}
	r, err := gorm.Open(sqlite.Dialector{Conn: rdb}, cfg)
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("sqlite %s: %w", file, err)
	}
	k, err := gorm.Open(sqlite.Dialector{Conn: kdb}, cfg)
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("sqlite %s: %w", file, err)
	}
	return &sqlStore{w: w, r: r, keyReads: k, closers: []*sql.DB{rdb, kdb, wdb}, log: log}, nil
}

func openMySQL(ctx context.Context, dsn string, log *slog.Logger) (*sqlStore, error) {
	cfg, err := gomysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("DSN %q: %w: %s", redactDSN("mysql:"+dsn), err, dsnForms)
	}
	if cfg.DBName == "" {
		return nil, fmt.Errorf("DSN %q names no database: %s", redactDSN("mysql:"+dsn), dsnForms)
	}
	// Times are scanned into time.Time and kept in UTC; the tables are
	// utf8mb4. A Loc the DSN sets is kept: the driver converts both ways.
	cfg.ParseTime = true
	if _, query, _ := strings.Cut(dsn, "?"); !hasParam(query, "charset") {
		if err := cfg.Apply(gomysql.Charset("utf8mb4", "")); err != nil {
			return nil, fmt.Errorf("DSN %q: %w", redactDSN("mysql:"+dsn), err)
		}
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = mysqlDialTimeout
	}
	shown := redactDSN("mysql:" + cfg.FormatDSN())

	connector, err := gomysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", shown, err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(mysqlMaxOpen)
	db.SetMaxIdleConns(mysqlMaxIdle)
	db.SetConnMaxIdleTime(mysqlMaxIdleTime)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to %s: %w", shown, err)
	}
	g, err := gorm.Open(mysql.New(mysql.Config{Conn: db}), gormConfig(log))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to %s: %w", shown, err)
	}
	kdb := sql.OpenDB(connector)
	kdb.SetMaxOpenConns(1)
	kdb.SetMaxIdleConns(1)
	kdb.SetConnMaxIdleTime(mysqlMaxIdleTime)
	k, err := gorm.Open(mysql.New(mysql.Config{Conn: kdb, SkipInitializeWithVersion: true}), gormConfig(log))
	if err != nil {
		db.Close()
		kdb.Close()
		return nil, fmt.Errorf("connect to %s: %w", shown, err)
	}
	return &sqlStore{w: g, r: g, keyReads: k, mysql: true, closers: []*sql.DB{db, kdb}, log: log}, nil
}

// hasParam reports whether the query part of a DSN sets name.
func hasParam(query, name string) bool {
	v, err := url.ParseQuery(query)
	return err == nil && v.Has(name)
}

// pingWhileBusy opens db's first connection. Connections opening a new
// file together race to switch it to WAL, and SQLite answers the losers
// SQLITE_BUSY at once rather than after its busy timeout: they try again
// until the busy timeout has passed.
func pingWhileBusy(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(sqliteBusyTimeout)
	for {
		err := db.PingContext(ctx)
		var liteErr interface{ Code() int }
		if err == nil || !errors.As(err, &liteErr) || liteErr.Code()&0xff != 5 || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(5+rand.IntN(20)) * time.Millisecond):
		}
	}
}
