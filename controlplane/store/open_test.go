package store_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/controlplane/store/storetest"
)

func TestOpenBadDSN(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		dsn  string
		want []string // in the error
		hide string   // never in the error
	}{
		{"empty", "", []string{"want sqlite:PATH or mysql:"}, ""},
		{"unknown kind", "postgres://u:hunter2@host/db", []string{`unknown kind "postgres"`, "want sqlite:PATH or mysql:"}, "hunter2"},
		{"no kind", "weft.db", []string{"want sqlite:PATH or mysql:"}, ""},
		{"sqlite without path", "sqlite:", []string{"path is empty"}, ""},
		{"sqlite in memory", "sqlite::memory:", []string{"in-memory database is not supported"}, ""},
		{"sqlite missing directory", "sqlite:" + filepath.Join(dir, "missing", "weft.db"), []string{"directory", "no such file or directory"}, ""},
		{"mysql without slash", "mysql:root@tcp(127.0.0.1:3306)", []string{"missing the slash", "want sqlite:PATH or mysql:"}, ""},
		{"mysql without database", "mysql:root:hunter2@tcp(127.0.0.1:3306)/", []string{"names no database"}, "hunter2"},
		{"mysql unreachable", "mysql:root:hunter2@tcp(127.0.0.1:1)/weft", []string{"connect to mysql:root:***@tcp(127.0.0.1:1)/weft", "refused"}, "hunter2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := store.Open(context.Background(), tt.dsn, nil)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q) succeeded", tt.dsn)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if tt.hide != "" && strings.Contains(err.Error(), tt.hide) {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

// TestReplicas opens one database from several stores at once, as control
// plane replicas starting together do, and checks that they see each
// other's writes. Opening again also re-runs the migration on a migrated
// schema.
func TestReplicas(t *testing.T) {
	const replicas = 3
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			stores := make([]store.Store, replicas)
			var wg sync.WaitGroup
			for i := range stores {
				wg.Go(func() { stores[i] = storetest.Open(t, b) })
			}
			wg.Wait()
			if t.Failed() {
				t.FailNow()
			}
			deploy(t, stores[0], pkg("alpha", []string{"alpha.one"}, "a.go", "a"))
			if _, err := stores[1].CreateChannel(ctx, channel("orders", "/orders", "alpha.one")); err != nil {
				t.Fatal(err)
			}
			for i, s := range stores {
				d, err := s.Desired(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if d.Revision != 2 || len(d.Packages) != 1 || len(d.Channels) != 1 {
					t.Fatalf("replica %d sees %+v", i, d)
				}
			}
			later := storetest.Open(t, b)
			wantRevision(t, later, 2)
		})
	}
}
