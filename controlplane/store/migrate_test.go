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
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/weft-dev/weft/agent/shared/secrets"
	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/controlplane/store/storetest"
)

// seedVersion1 makes in b's empty database what a control plane made
// before schema versions, holding store.Version1Objects.
func seedVersion1(t *testing.T, b storetest.Backend) {
	t.Helper()
	seedWith(t, b, store.SeedVersion1)
}

// seedRelease makes in b's empty database what the last release without
// schema versions made, holding store.ReleaseObjects.
func seedRelease(t *testing.T, b storetest.Backend) {
	t.Helper()
	seedWith(t, b, store.SeedRelease)
}

func seedWith(t *testing.T, b storetest.Backend, seed func(context.Context, string, *secrets.Box) error) {
	t.Helper()
	box, err := secrets.NewBox(storetest.TestKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := seed(context.Background(), b.DSN, box); err != nil {
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
// default) and indexes, on each database. A database the last release
// without schema versions made, once Open has brought it to version 1,
// has that schema too, and what Open adds to it is what the release
// lacks. What Open reads of migration 1 is what migration 1 makes.
func TestSchemaVersion1(t *testing.T) {
	ctx := context.Background()
	migrated, made, released := storetest.Backends(t), storetest.Backends(t), storetest.Backends(t)
	for i, b := range migrated {
		t.Run(b.Name, func(t *testing.T) {
			if err := store.MigrateTo(ctx, b.DSN, 1); err != nil {
				t.Fatal(err)
			}
			if err := store.MakeVersion1Schema(ctx, made[i].DSN); err != nil {
				t.Fatal(err)
			}
			seedRelease(t, released[i])
			release, err := store.Schema(ctx, released[i].DSN)
			if err != nil {
				t.Fatal(err)
			}
			if err := store.MigrateTo(ctx, released[i].DSN, 1); err != nil {
				t.Fatal(err)
			}

			got, err := store.Schema(ctx, b.DSN)
			if err != nil {
				t.Fatal(err)
			}
			for _, other := range []struct {
				name string
				dsn  string
			}{{"AutoMigrate", made[i].DSN}, {"the last release's, brought to version 1", released[i].DSN}} {
				want, err := store.Schema(ctx, other.dsn)
				if err != nil {
					t.Fatal(err)
				}
				for _, table := range slices.Sorted(mapKeys(got, want)) {
					if !slices.Equal(got[table], want[table]) {
						t.Errorf("table %s\nmigration 1:\n  %s\n%s:\n  %s", table,
							strings.Join(got[table], "\n  "), other.name, strings.Join(want[table], "\n  "))
					}
				}
			}

			parts := schemaParts(got)
			if read, err := store.Version1Parts(b.Name); err != nil || !slices.Equal(read, parts) {
				t.Errorf("version 1 as Open reads it from migration 1:\n%v, %v\nmigration 1 makes:\n%v", read, err, parts)
			}
			had := map[string]bool{}
			for _, p := range schemaParts(release) {
				had[p] = true
			}
			var lacked []string
			for _, p := range parts {
				if !had[p] && (strings.HasPrefix(p, "table ") || had["table "+tableOf(p)]) {
					lacked = append(lacked, p)
				}
			}
			if want := store.SinceRelease(); !slices.Equal(lacked, want) {
				t.Errorf("the last release lacks, of version 1:\n%v\nOpen adds:\n%v", lacked, want)
			}
		})
	}
}

// TestSchemaUpgraded: a database the last release made has, once Open
// ran the later migrations on it (which rewrite its rows, as migration 2
// rewrites each channel as its message), the schema an empty database
// gets.
func TestSchemaUpgraded(t *testing.T) {
	ctx := context.Background()
	released := storetest.Backends(t)
	for i, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			seedRelease(t, released[i])
			for _, dsn := range []string{b.DSN, released[i].DSN} {
				s, err := store.Open(ctx, dsn, nil)
				if err != nil {
					t.Fatal(err)
				}
				s.Close()
			}
			want, err := store.Schema(ctx, b.DSN)
			if err != nil {
				t.Fatal(err)
			}
			got, err := store.Schema(ctx, released[i].DSN)
			if err != nil {
				t.Fatal(err)
			}
			for _, table := range slices.Sorted(mapKeys(got, want)) {
				if !slices.Equal(got[table], want[table]) {
					t.Errorf("table %s\nupgraded:\n  %s\nmigrated from empty:\n  %s", table,
						strings.Join(got[table], "\n  "), strings.Join(want[table], "\n  "))
				}
			}
		})
	}
}

// schemaParts names the tables, columns and indexes (but the primary keys)
// of a store.Schema: "table T", "column T.C", "index T.I", sorted.
func schemaParts(schema map[string][]string) []string {
	var out []string
	for table, lines := range schema {
		out = append(out, "table "+table)
		for _, l := range lines {
			f := strings.Fields(l)
			switch {
			case f[0] == "column":
				out = append(out, "column "+table+"."+f[2])
			case f[0] == "index" && f[1] != "PRIMARY" && !strings.HasPrefix(f[1], "sqlite_autoindex_"):
				out = append(out, "index "+table+"."+f[1])
			}
		}
	}
	return slices.Compact(slices.Sorted(slices.Values(out)))
}

// tableOf is the table of a schema part.
func tableOf(part string) string {
	_, name, _ := strings.Cut(part, " ")
	table, _, _ := strings.Cut(name, ".")
	return table
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
	if err != nil || !proto.Equal(p, want.Package) {
		t.Errorf("package = %v, %v; want %v", p, err, want.Package)
	}
	if !current {
		t.Errorf("package %s v%d is not current", p.Name, p.Version)
	}
	services, err := s.ListServices(ctx)
	check("services", serviceLines(services), []string{"alpha.one alpha v1"}, err)
	channels, err := s.ListChannels(ctx)
	if err != nil || len(channels) != len(want.Channels) {
		t.Errorf("channels = %v, %v; want %v", channels, err, want.Channels)
	}
	for i := range min(len(channels), len(want.Channels)) {
		if !proto.Equal(channels[i], want.Channels[i]) { // field for field
			t.Errorf("channel %d =\n  %v\nwant\n  %v", i, channels[i], want.Channels[i])
		}
	}
	defs, err := s.ListSecurityDefinitions(ctx)
	if err != nil || len(defs) != len(want.Security) {
		t.Errorf("security definitions = %v, %v; want %v", defs, err, want.Security)
	}
	for i := range min(len(defs), len(want.Security)) {
		if !proto.Equal(defs[i], want.Security[i]) { // field for field, secrets in clear
			t.Errorf("security definition %d =\n  %v\nwant\n  %v", i, defs[i], want.Security[i])
		}
	}
	conn, err := s.GetOutgoingConnection(ctx, want.Outgoing.Name)
	if err != nil || !proto.Equal(conn, want.Outgoing) { // field for field
		t.Errorf("outgoing connection =\n  %v, %v\nwant\n  %v", conn, err, want.Outgoing)
	}
	job, err := s.GetJob(ctx, want.Job.Name)
	if err != nil || !proto.Equal(job, want.Job) { // field for field
		t.Errorf("job =\n  %v, %v\nwant\n  %v", job, err, want.Job)
	}
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
	joins, jerr := s.ListJoinTokens(ctx)
	cert, key, cerr := s.CA(ctx)
	if want.Token.Name == "" { // made before trust
		if err != nil || jerr != nil || len(tokens)+len(joins) > 0 || !errors.Is(cerr, store.ErrNotFound) {
			t.Errorf("tokens %v, %v; join tokens %v, %v; CA: %v; want none", tokens, err, joins, jerr, cerr)
		}
	} else {
		check("tokens", tokens, []store.Token{want.Token}, err)
		byHash, err := s.TokenByHash(ctx, want.Token.Hash)
		check("token by hash", byHash, want.Token, err)
		check("join tokens", joins, []store.JoinToken{want.JoinToken}, jerr)
		check("CA", [2]string{string(cert), string(key)}, [2]string{want.CACert, want.CAKey}, cerr)
	}
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

// TestMigrateFromRelease opens a database made and filled by the last
// release without schema versions, which lacks the tables and columns
// version 1 added since: Open adds them and records version 1; every
// object reads as it was stored, and tokens, enrollment, the CA and key
// rotation work on it. Opened again, it is as it was left. A database
// that has part of what was added (a start stopped half-way on MySQL, or
// made by a build between the release and version 1) gets the rest.
func TestMigrateFromRelease(t *testing.T) {
	// A migration that moves a kind to a spec column (objects.go) and
	// stopped after adding it (MySQL commits each ALTER TABLE): the next
	// start fills it and drops the old columns.
	specHalfWay := map[string]struct {
		before int64
		table  string
	}{
		"channels half-way":             {1, "weft_channels"},
		"outgoing half-way":             {2, "weft_outgoing_connections"},
		"security definitions half-way": {3, "weft_security_definitions"},
		"jobs half-way":                 {4, "weft_jobs"},
	}
	for _, start := range []string{"release", "half-way", "channels half-way", "outgoing half-way", "security definitions half-way", "jobs half-way"} {
		for _, b := range storetest.Backends(t) {
			if _, ok := specHalfWay[start]; ok && b.Name != "mysql" {
				continue // on SQLite each migration is one transaction
			}
			t.Run(start+"/"+b.Name, func(t *testing.T) {
				ctx := store.WithAuthor(context.Background(), "ada")
				seedRelease(t, b)
				switch start {
				case "half-way":
					n, err := store.UpgradeBaselinePartly(ctx, b.DSN, len(store.SinceRelease())/2)
					if err != nil || n != len(store.SinceRelease()) {
						t.Fatalf("UpgradeBaselinePartly = %d, %v; want %d parts to add", n, err, len(store.SinceRelease()))
					}
				case "channels half-way", "outgoing half-way", "security definitions half-way", "jobs half-way":
					h := specHalfWay[start]
					if err := store.MigrateTo(ctx, b.DSN, h.before); err != nil {
						t.Fatal(err)
					}
					if err := store.ExecUnmigrated(ctx, b.DSN, "ALTER TABLE `"+h.table+"` ADD COLUMN `spec` longblob AFTER `name`"); err != nil {
						t.Fatal(err)
					}
				}
				s := storetest.Open(t, b)
				wantVersions(t, b, allVersions()...)
				want := store.ReleaseObjects()
				wantVersion1Objects(t, s, want)

				if _, err := s.CreateToken(ctx, store.NewToken{Name: "admin", Role: store.RoleAdmin,
					Hash: secretHash("admin"), CreatedBy: "bootstrap"}); err != nil {
					t.Fatal(err)
				}
				if tok, err := s.TokenByHash(ctx, secretHash("admin")); err != nil || tok.Name != "admin" {
					t.Fatalf("TokenByHash = %+v, %v", tok, err)
				}
				if _, _, created, err := s.InitCA(ctx, []byte("ca cert"), []byte("ca key")); err != nil || !created {
					t.Fatalf("InitCA = %t, %v", created, err)
				}
				berlin := map[string]string{"site": "berlin"}
				if _, err := s.CreateJoinToken(ctx, store.NewJoinToken{ID: "j-berlin", Hash: secretHash("join"),
					Labels: berlin, Uses: 2, CreatedBy: "ada"}); err != nil {
					t.Fatal(err)
				}
				// edge-1 was known to the release, edge-2 is new.
				cert := certFor("0c0d")
				for _, id := range []string{"edge-1", "edge-2"} {
					if _, err := s.Enroll(ctx, secretHash("join"), id, time.Now(), issued(cert, new(int))); err != nil {
						t.Fatalf("enroll %s: %v", id, err)
					}
				}
				enrolled := want.Agents[0]
				enrolled.CertSerial, enrolled.CertNotAfter, enrolled.EnrolledBy = cert.Serial, cert.NotAfter, "j-berlin"
				if a, err := s.GetAgent(ctx, "edge-1"); err != nil || !reflect.DeepEqual(a, enrolled) {
					t.Fatalf("edge-1 enrolled =\n  %+v, %v\nwant\n  %+v", a, err, enrolled)
				}
				rotation, err := s.RotateKey(ctx)
				if err != nil || rotation.Resealed == 0 {
					t.Fatalf("RotateKey = %+v, %v", rotation, err)
				}
				deploy(t, s, pkg("alpha", []string{"alpha.one"}, "a.go", "package alpha // 2"))
				s.Close()

				again := storetest.Open(t, b)
				wantVersions(t, b, allVersions()...)
				wantRevision(t, again, want.Revision+1)
				for _, d := range want.Security {
					if got, err := again.GetSecurityDefinition(ctx, d.Name); err != nil || !reflect.DeepEqual(got, d) {
						t.Errorf("%s after a rotation =\n  %+v, %v\nwant\n  %+v", d.Name, got, err, d)
					}
				}
				if _, key, err := again.CA(ctx); err != nil || string(key) != "ca key" {
					t.Fatalf("CA key after a rotation = %q, %v", key, err)
				}
				if a, err := again.GetAgent(ctx, "edge-1"); err != nil || !reflect.DeepEqual(a, enrolled) {
					t.Fatalf("edge-1 opened again =\n  %+v, %v\nwant\n  %+v", a, err, enrolled)
				}
				if joins, err := again.ListJoinTokens(ctx); err != nil || len(joins) != 1 || joins[0].Used != 2 {
					t.Fatalf("join tokens = %+v, %v", joins, err)
				}
			})
		}
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

// TestRefuseUnversioned: a database without schema versions that lacks
// what the last release without them made (made by an older release, or
// another program's with a weft_meta of its own) is refused, naming what
// it lacks, and left as it is.
func TestRefuseUnversioned(t *testing.T) {
	tests := []struct {
		name string
		make func(ctx context.Context, dsn string) error
		want []string
	}{
		{"older release", store.SeedPreviousSchema, []string{
			"lacks what the last release without schema versions made (table weft_audit, table weft_job_leases, " +
				"table weft_job_runs, table weft_jobs, table weft_outgoing_connections and 9 more)"}},
		{"not Weft's", func(ctx context.Context, dsn string) error {
			return store.ExecUnmigrated(ctx, dsn, "CREATE TABLE weft_meta (name varchar(64))",
				"CREATE TABLE orders (id integer)")
		}, []string{"(table weft_agents, table weft_audit, table weft_changes, ", " more)", "else it is not a Weft database"}},
	}
	for _, tt := range tests {
		for _, b := range storetest.Backends(t) {
			t.Run(tt.name+"/"+b.Name, func(t *testing.T) {
				ctx := context.Background()
				if err := tt.make(ctx, b.DSN); err != nil {
					t.Fatal(err)
				}
				before, err := store.Schema(ctx, b.DSN)
				if err != nil {
					t.Fatal(err)
				}
				s, err := store.Open(ctx, b.DSN, nil)
				if err == nil {
					s.Close()
					t.Fatal("Open succeeded on an incomplete schema")
				}
				for _, w := range append([]string{"has no schema version", "run that release on it once"}, tt.want...) {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				if has, err := store.HasTable(ctx, b.DSN, store.VersionTable); err != nil || has {
					t.Fatalf("%s exists (%v) after a refusal", store.VersionTable, err)
				}
				after, err := store.Schema(ctx, b.DSN)
				if err != nil || !reflect.DeepEqual(after, before) {
					t.Fatalf("the schema changed on a refusal: %v\n%v\nthen\n%v", err, before, after)
				}
			})
		}
	}
}

// TestConcurrentOpens opens one database from several stores at once, as
// replicas starting together do, empty, made before schema versions with
// the schema of version 1, and made by the last release without them:
// each migration runs and is recorded once, and the last one's database is
// brought to version 1 once.
func TestConcurrentOpens(t *testing.T) {
	const replicas = 4
	for _, start := range []string{"empty", "version 1", "release"} {
		for _, b := range storetest.Backends(t) {
			t.Run(start+"/"+b.Name, func(t *testing.T) {
				switch start {
				case "version 1":
					seedVersion1(t, b)
				case "release":
					seedRelease(t, b)
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
				switch start {
				case "version 1":
					wantVersion1Objects(t, stores[replicas-1], store.Version1Objects())
				case "release":
					wantVersion1Objects(t, stores[replicas-1], store.ReleaseObjects())
				}
			})
		}
	}
}
