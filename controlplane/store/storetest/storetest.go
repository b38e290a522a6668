// Package storetest gives tests the databases the store runs on: a SQLite
// file, and a fresh database on a MySQL (or MariaDB) server. Tests of the
// store run against each; end-to-end tests use a Backend's DSN to start real
// control plane binaries.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/weft-dev/weft/agent/shared/secrets"
	"github.com/weft-dev/weft/controlplane/store"
)

// DefaultMySQL is the server the MySQL backend uses unless the environment
// variable WEFT_TEST_MYSQL names another, in the same form (a
// go-sql-driver/mysql DSN; its database part is ignored).
const DefaultMySQL = "root@tcp(127.0.0.1:3306)/"

// connectTimeout bounds the check that the MySQL server is up.
const connectTimeout = 5 * time.Second

// Backend is one database to test against.
type Backend struct {
	Name string // "sqlite" or "mysql"
	DSN  string // for store.Open
}

// Backends returns a SQLite file in t.TempDir() and a new, empty MySQL
// database that t.Cleanup drops. When MySQL is unreachable Backends logs the
// reason and returns SQLite alone, so that a machine without MySQL still
// tests SQLite; under CI=true MySQL is required and the test fails instead.
func Backends(t testing.TB) []Backend {
	t.Helper()
	backends := []Backend{SQLite(t)}
	if b, reason := mysqlBackend(t); reason != "" {
		t.Logf("skipping the mysql backend: %s", reason)
	} else {
		backends = append(backends, b)
	}
	return backends
}

// SQLite returns a backend on a new SQLite file in t.TempDir().
func SQLite(t testing.TB) Backend {
	t.Helper()
	return Backend{Name: "sqlite", DSN: "sqlite:" + filepath.Join(t.TempDir(), "weft.db")}
}

// MySQL returns a backend on a new database of the test MySQL server that
// t.Cleanup drops. When the server is unreachable it skips the test, or
// fails it under CI=true.
func MySQL(t testing.TB) Backend {
	t.Helper()
	b, reason := mysqlBackend(t)
	if reason != "" {
		t.Skip(reason)
	}
	return b
}

// mysqlBackend creates the database, or says why it cannot reach the
// server. Under CI=true an unreachable server fails the test.
func mysqlBackend(t testing.TB) (Backend, string) {
	t.Helper()
	server := os.Getenv("WEFT_TEST_MYSQL")
	if server == "" {
		server = DefaultMySQL
	}
	cfg, err := mysql.ParseDSN(server)
	if err != nil {
		t.Fatalf("WEFT_TEST_MYSQL=%q: %v", server, err)
	}
	cfg.DBName = ""
	if cfg.Timeout == 0 {
		cfg.Timeout = connectTimeout
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatalf("WEFT_TEST_MYSQL=%q: %v", server, err)
	}
	admin := sql.OpenDB(connector)
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		admin.Close()
		reason := fmt.Sprintf("MySQL at %s is unreachable (WEFT_TEST_MYSQL names another server): %v", cfg.Addr, err)
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true requires MySQL: %s", reason)
		}
		return Backend{}, reason
	}

	name := "weft_test_" + randomHex(6)
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		admin.Close()
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})

	db := cfg.Clone()
	db.DBName = name
	return Backend{Name: "mysql", DSN: "mysql:" + db.FormatDSN()}, ""
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails since Go 1.24
	return hex.EncodeToString(b)
}

// TestKey is the secrets key of stores opened by Open.
var TestKey = bytes.Repeat([]byte{7}, secrets.KeySize)

// Open opens the store of backend b, closed by t.Cleanup, sealing secrets
// with TestKey. Store warnings and errors go to the test log.
func Open(t testing.TB, b Backend) store.Store {
	t.Helper()
	box, err := secrets.NewBox(TestKey)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := store.Open(context.Background(), b.DSN, log, store.WithSecrets(box))
	if err != nil {
		t.Fatalf("open %s store: %v", b.Name, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close %s store: %v", b.Name, err)
		}
	})
	return s
}
