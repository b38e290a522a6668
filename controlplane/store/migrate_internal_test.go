package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
)

// sqliteMigrator is the migrator of a new store on the SQLite file dsn.
func sqliteMigrator(t *testing.T, dsn string) *migrator {
	t.Helper()
	s, err := openUnmigrated(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.log = slog.New(slog.DiscardHandler)
	m, err := newMigrator(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestMigrateAfterAnotherConnection: when another connection applies a
// migration between this one's reading the versions and applying it (on
// SQLite, where no lock spans the two), this one's fails, rolls back, and
// runs again from the version the other left; when nobody moved the
// version, the failure is returned.
func TestMigrateAfterAnotherConnection(t *testing.T) {
	ctx := context.Background()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "weft.db")
	other, m := sqliteMigrator(t, dsn), sqliteMigrator(t, dsn)
	realUp, calls := m.up, 0
	m.up = func(ctx context.Context) ([]*goose.MigrationResult, error) {
		calls++
		if calls == 1 {
			if err := other.run(ctx, nil); err != nil {
				t.Fatal(err)
			}
			return nil, errors.New("table `weft_meta` already exists")
		}
		return realUp(ctx)
	}
	if err := m.run(ctx, nil); err != nil || calls != 1 {
		t.Fatalf("run = %v after %d calls, want nil after 1 (the other connection did the rest)", err, calls)
	}
	if v, ok, err := m.recorded(ctx, m.db); err != nil || !ok || v != m.latest {
		t.Fatalf("version = %d, %v, %v; want %d", v, ok, err, m.latest)
	}

	dsn = "sqlite:" + filepath.Join(t.TempDir(), "weft.db")
	m = sqliteMigrator(t, dsn)
	m.up = func(context.Context) ([]*goose.MigrationResult, error) { return nil, errors.New("disk on fire") }
	if err := m.run(ctx, nil); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("migrate from schema version 0 to %d: disk on fire", m.latest)) {
		t.Fatalf("run = %v, want the failure", err)
	}
}

// TestOnceStore: a version another connection recorded is not recorded
// again, so that its migration's transaction rolls back.
func TestOnceStore(t *testing.T) {
	ctx := context.Background()
	m := sqliteMigrator(t, "sqlite:"+filepath.Join(t.TempDir(), "weft.db"))
	if err := m.run(ctx, nil); err != nil {
		t.Fatal(err)
	}
	err := onceStore{m.versions}.Insert(ctx, m.db, database.InsertRequest{Version: 1})
	if err == nil || !strings.Contains(err.Error(), "schema version 1 was applied meanwhile by another connection") {
		t.Fatalf("Insert(1) again = %v", err)
	}
	if err := (onceStore{m.versions}).Insert(ctx, m.db, database.InsertRequest{Version: m.latest + 1}); err != nil {
		t.Fatalf("Insert(%d) = %v", m.latest+1, err)
	}
}
