package store_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"testing"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/weft-dev/weft/controlplane/store"
)

func TestUnavailable(t *testing.T) {
	refused := dialClosedPort(t)
	busy := sqliteBusy(t)
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"no error", nil, false},
		{"connection refused", refused, true},
		{"connection refused, wrapped", fmt.Errorf("list channels: %w", refused), true},
		{"bad connection", driver.ErrBadConn, true},
		{"mysql invalid connection", fmt.Errorf("read revision: %w", gomysql.ErrInvalidConn), true},
		{"mysql access denied", &gomysql.MySQLError{Number: 1045, Message: "Access denied for user 'weft'@'10.0.0.5'"}, true},
		{"mysql unknown database", &gomysql.MySQLError{Number: 1049, Message: "Unknown database 'weft'"}, true},
		{"mysql server shutting down", &gomysql.MySQLError{Number: 1053, Message: "Server shutdown in progress"}, true},
		{"sqlite busy", busy, true},
		{"the store's own word", fmt.Errorf("x: %w", store.ErrUnavailable), true},

		{"mysql duplicate key", &gomysql.MySQLError{Number: 1062, Message: "Duplicate entry"}, false},
		{"not found", fmt.Errorf("channel %q: %w", "x", store.ErrNotFound), false},
		{"conflict", store.ErrConflict, false},
		{"the caller's deadline", context.DeadlineExceeded, false},
		{"the caller gave up", fmt.Errorf("list: %w", context.Canceled), false},
		{"another error", errors.New("boom"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := store.Unavailable(tt.err); got != tt.want {
				t.Errorf("Unavailable(%v) = %t, want %t", tt.err, got, tt.want)
			}
		})
	}
}

// dialClosedPort returns the error of dialing a port nothing listens on.
func dialClosedPort(t *testing.T) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err := net.Dial("tcp", addr)
	if err == nil {
		c.Close()
		t.Fatalf("dial %s: connected to a closed port", addr)
	}
	return err
}

// sqliteBusy returns the error of writing to a SQLite file another
// connection holds the write lock of, without waiting.
func sqliteBusy(t *testing.T) error {
	t.Helper()
	path := filepath.Join(t.TempDir(), "busy.db")
	open := func() *sql.DB {
		db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(0)")
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		t.Cleanup(func() { db.Close() })
		return db
	}
	holder, other := open(), open()
	ctx := context.Background()
	if _, err := holder.ExecContext(ctx, "CREATE TABLE t (x INTEGER)"); err != nil {
		t.Fatal(err)
	}
	tx, err := holder.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback() })
	if _, err := tx.ExecContext(ctx, "INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	_, err = other.ExecContext(ctx, "INSERT INTO t VALUES (2)")
	if err == nil {
		t.Fatal("a second writer was not refused")
	}
	return err
}
