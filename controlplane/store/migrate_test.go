package store_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/weft-dev/weft/agent/secrets"
	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/controlplane/store/storetest"
)

// seedVersion1 makes in b's empty database what a control plane made
// before schema versions, holding store.Version1Objects.
func seedVersion1(t *testing.T, b storetest.Backend) {
	t.Helper()
	box, err := secrets.NewBox(storetest.TestKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.SeedVersion1(context.Background(), b.DSN, box); err != nil {
		t.Fatalf("seed a database made before schema versions: %v", err)
	}
}

// wantVersions checks the versions recorded in b's database, each once.
func wantVersions(t *testing.T, b storetest.Backend, want ...int64) {
	t.Helper()
	got, err := store.SchemaVersions(context.Background(), b.DSN)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("recorded schema versions = %v, %v; want %v", got, err, want)
	}
}

// allVersions is every version up to the newest this binary knows, with
// goose's 0.
func allVersions() []int64 {
	var out []int64
	for v := range store.KnownSchemaVersion() + 1 {
		out = append(out, v)
	}
	return out
}

func TestMigrationsPerDatabase(t *testing.T) {
	sqlite, err := store.MigrationVersions("sqlite")
	if err != nil {
		t.Fatal(err)
	}
	mysql, err := store.MigrationVersions("mysql")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sqlite, mysql) {
		t.Fatalf("sqlite migrations %v, mysql migrations %v: every version needs one for each database", sqlite, mysql)
	}
	for i, v := range sqlite {
		if v != int64(i+1) {
			t.Fatalf("migration versions %v: want 1, 2, 3, ... without gaps", sqlite)
		}
	}
	// On SQLite a migration's transaction is what keeps two connections
	// from both running it.
	texts, err := store.MigrationText("sqlite")
	if err != nil {
		t.Fatal(err)
	}
	for name, text := range texts {
		if strings.Contains(text, "+goose NO TRANSACTION") {
			t.Errorf("%s runs outside a transaction", name)
		}
	}
}

// TestSchemaVersion1 holds migration 1 to the schema gorm's AutoMigrate
// made before schema versions: the same tables, columns (type, NULL,
// default) and indexes, on each database; and what Open requires of a
// database made then to what migration 1 makes.
func TestSchemaVersion1(t *testing.T) {
	ctx := context.Background()
	migrated, made := storetest.Backends(t), storetest.Backends(t)
	for i, b := range migrated {
		t.Run(b.Name, func(t *testing.T) {
			s, err := store.Open(ctx, b.DSN, nil)
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			if err := store.MakeVersion1Schema(ctx, made[i].DSN); err != nil {
				t.Fatal(err)
			}
			got, err := store.Schema(ctx, b.DSN)
			if err != nil {
				t.Fatal(err)
			}
			want, err := store.Schema(ctx, made[i].DSN)
			if err != nil {
				t.Fatal(err)
			}
			for _, table := range slices.Sorted(mapKeys(got, want)) {
				if !slices.Equal(got[table], want[table]) {
					t.Errorf("table %s\nmigration 1:\n  %s\nAutoMigrate:\n  %s", table,
						strings.Join(got[table], "\n  "), strings.Join(want[table], "\n  "))
				}
			}

			var columns, indexes []string
			for table, lines := range got {
				for _, l := range lines {
					f := strings.Fields(l)
					switch {
					case f[0] == "column":
						columns = append(columns, table+"."+f[2])
					case f[0] == "index" && f[1] != "PRIMARY" && !strings.HasPrefix(f[1], "sqlite_autoindex_"):
						indexes = append(indexes, table+"."+f[1])
					}
				}
			}
			slices.Sort(columns)
			indexes = slices.Compact(slices.Sorted(slices.Values(indexes)))
			wantColumns, wantIndexes := store.Version1Tables()
			if !slices.Equal(columns, wantColumns) || !slices.Equal(indexes, wantIndexes) {
				t.Errorf("version 1 as Open checks it:\ncolumns %v\nindexes %v\nmigration 1 makes:\ncolumns %v\nindexes %v",
					wantColumns, wantIndexes, columns, indexes)
			}
		})
	}
}

// TestModelsMatchSchema: every column of the store's gorm models is in the
// schema the migrations make, since gorm no longer makes any.
func TestModelsMatchSchema(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		if missing, err := store.ColumnsWithoutTable(s); err != nil || len(missing) > 0 {
			t.Fatalf("columns of the models that no migration makes: %v, %v", missing, err)
		}
	})
}

func mapKeys(ms ...map[string][]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		seen := map[string]bool{}
		for _, m := range ms {
			for k := range m {
				if !seen[k] {
					seen[k] = true
					if !yield(k) {
						return
					}
				}
			}
		}
	}
}

// TestMigrateFromEmpty: an empty database gets every migration, each
// recorded once, and opening it again changes nothing.
func TestMigrateFromEmpty(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			s := storetest.Open(t, b)
			wantRevision(t, s, 0)
			wantVersions(t, b, allVersions()...)
			deploy(t, s, pkg("alpha", []string{"alpha.one"}, "a.go", "package alpha"))
			again := storetest.Open(t, b)
			wantRevision(t, again, 1)
			wantVersions(t, b, allVersions()...)
		})
	}
}

// TestMigrateFromVersion1 opens a database made and filled before schema
// versions: it is recorded as at version 1 without running migration 1
// (which would fail on its tables), the later migrations run, and every
// object reads as it was stored, secrets and the CA's key opened.
func TestMigrateFromVersion1(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			seedVersion1(t, b)
			s := storetest.Open(t, b)
			wantVersions(t, b, allVersions()...)
			want := store.Version1Objects()
			wantVersion1Objects(t, s, want)

			// It takes changes, a key rotation included, and opens again.
			deploy(t, s, pkg("alpha", []string{"alpha.one"}, "a.go", "package alpha // 2"))
			if _, err := s.RotateKey(ctx); err != nil {
				t.Fatal(err)
			}
			s.Close()
			again := storetest.Open(t, b)
			wantRevision(t, again, want.Revision+1)
			wantVersions(t, b, allVersions()...)
			if got, err := again.GetSecurityDefinition(ctx, "erp-oauth"); err != nil || got.ClientSecret != "client-s3cret" {
				t.Fatalf("erp-oauth after a rotation = %+v, %v", got, err)
			}
			if _, key, err := again.CA(ctx); err != nil || string(key) != want.CAKey {
				t.Fatalf("CA key after a rotation = %q, %v", key, err)
			}
		})
	}
}

// wantVersion1Objects reads every object of want through the Store.
func wantVersion1Objects(t *testing.T, s store.Store, want store.Version1Fixture) {
	t.Helper()
	ctx := context.Background()
	check := func(what string, got, want any, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("%s: %v", what, err)
		} else if !reflect.DeepEqual(got, want) {
			t.Errorf("%s =\n  %+v\nwant\n  %+v", what, got, want)
		}
	}
	wantRevision(t, s, want.Revision)
	p, current, err := s.GetPackage(ctx, want.Package.Name, 0)
	check("package", p, want.Package, err)
	if !current {
		t.Errorf("package %s v%d is not current", p.Name, p.Version)
	}
	services, err := s.ListServices(ctx)
	check("services", services, []store.Service{{Name: "alpha.one", Package: "alpha", PackageVersion: 1}}, err)
	channels, err := s.ListChannels(ctx)
	check("channels", channels, want.Channels, err)
	defs, err := s.ListSecurityDefinitions(ctx)
	check("security definitions", defs, want.Security, err)
	conn, err := s.GetOutgoingConnection(ctx, want.Outgoing.Name)
	check("outgoing connection", conn, want.Outgoing, err)
	job, err := s.GetJob(ctx, want.Job.Name)
	check("job", job, want.Job, err)
	lease, run, err := s.JobState(ctx, want.Job.Name)
	if err != nil || lease == nil || run == nil {
		t.Errorf("JobState = %v, %v, %v", lease, run, err)
	} else {
		check("lease", *lease, want.Lease, nil)
		check("run", *run, want.Run, nil)
	}
	agents, err := s.ListAgents(ctx)
	check("agents", agents, want.Agents, err)
	tokens, err := s.ListTokens(ctx)
	check("tokens", tokens, []store.Token{want.Token}, err)
	byHash, err := s.TokenByHash(ctx, want.Token.Hash)
	check("token by hash", byHash, want.Token, err)
	joins, err := s.ListJoinTokens(ctx)
	check("join tokens", joins, []store.JoinToken{want.JoinToken}, err)
	cert, key, err := s.CA(ctx)
	check("CA", [2]string{string(cert), string(key)}, [2]string{want.CACert, want.CAKey}, err)
	stats, err := s.QueryStats(ctx, store.StatsQuery{Resolution: "1m"})
	check("statistics", stats, []store.StatsRow{want.Stats}, err)
	audit, _, err := s.ListAudit(ctx, store.AuditQuery{})
	check("audit trail", audit, want.Audit, err)
	d, err := s.Desired(ctx)
	if err != nil || d.Revision != want.Revision || len(d.Packages) != 1 || len(d.Channels) != 2 ||
		len(d.Security) != 2 || len(d.Outgoing) != 1 || len(d.Jobs) != 1 {
		t.Errorf("Desired = %+v, %v", d, err)
	}
}

// TestRefuseNewerSchema: a database a newer control plane migrated is
// refused, naming both versions, and left as it is.
func TestRefuseNewerSchema(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			s := storetest.Open(t, b)
			s.Close()
			known := store.KnownSchemaVersion()
			newer := known + 6
			if err := store.RecordSchemaVersion(ctx, b.DSN, newer); err != nil {
				t.Fatal(err)
			}
			s, err := store.Open(ctx, b.DSN, nil)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded on a newer schema")
			}
			var tooNew *store.SchemaTooNewError
			text := fmt.Sprintf("the database is at schema version %d; this control plane knows up to %d: upgrade it", newer, known)
			if !errors.As(err, &tooNew) || tooNew.Database != newer || tooNew.Known != known || !strings.Contains(err.Error(), text) {
				t.Fatalf("Open = %v, want a *SchemaTooNewError saying %q", err, text)
			}
			wantVersions(t, b, append(allVersions(), newer)...)
		})
	}
}

// TestRefuseOlderUnversioned: a database made by a control plane older
// than the last without schema versions lacks columns of version 1: it is
// refused, naming them, and left as it is.
func TestRefuseOlderUnversioned(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			if err := store.SeedPreviousSchema(ctx, b.DSN); err != nil {
				t.Fatal(err)
			}
			s, err := store.Open(ctx, b.DSN, nil)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded on an incomplete schema")
			}
			for _, w := range []string{"has no schema version", "lacks what version 1 has (table weft_audit, table weft_ca,",
				"more)", "run that one on it once"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if has, err := store.HasTable(ctx, b.DSN, store.VersionTable); err != nil || has {
				t.Fatalf("%s exists (%v) after a refusal", store.VersionTable, err)
			}
		})
	}
}

// TestConcurrentOpens opens one database from several stores at once, as
// replicas starting together do, empty and made before schema versions:
// each migration runs and is recorded once.
func TestConcurrentOpens(t *testing.T) {
	const replicas = 4
	for _, start := range []string{"empty", "version 1"} {
		for _, b := range storetest.Backends(t) {
			t.Run(start+"/"+b.Name, func(t *testing.T) {
				if start == "version 1" {
					seedVersion1(t, b)
				}
				box, err := secrets.NewBox(storetest.TestKey)
				if err != nil {
					t.Fatal(err)
				}
				stores := make([]store.Store, replicas)
				errs := make([]error, replicas)
				var wg sync.WaitGroup
				for i := range stores {
					wg.Go(func() {
						stores[i], errs[i] = store.Open(context.Background(), b.DSN, slog.New(slog.DiscardHandler), store.WithSecrets(box))
					})
				}
				wg.Wait()
				for i, s := range stores {
					if errs[i] != nil {
						t.Errorf("replica %d: %v", i, errs[i])
						continue
					}
					defer s.Close()
				}
				if t.Failed() {
					t.FailNow()
				}
				wantVersions(t, b, allVersions()...)
				if start == "version 1" {
					wantVersion1Objects(t, stores[replicas-1], store.Version1Objects())
				}
			})
		}
	}
}
