package store_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/weft-dev/weft/controlplane/store"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// desired reads the whole config.
func desired(t *testing.T, s store.Store) store.Desired {
	t.Helper()
	d, err := s.Desired(context.Background())
	if err != nil {
		t.Fatalf("Desired: %v", err)
	}
	return d
}

// wantUnchanged checks that the config is still before, by value.
func wantUnchanged(t *testing.T, s store.Store, before store.Desired) {
	t.Helper()
	if after := desired(t, s); !sameDesired(before, after) {
		t.Fatalf("a refused change changed the store:\nbefore %+v\nafter  %+v", before, after)
	}
}

// versionsOf renders a history as name@version list, for comparisons.
func versionsOf(ps []*adminv1.Package) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, fmt.Sprintf("%s@%d", p.Name, p.Version))
	}
	return out
}

// sameFiles reports whether a package version has exactly the files of p.
func sameFiles(got []*adminv1.SourceFile, want *adminv1.Package) bool {
	if len(got) != len(want.Sources) {
		return false
	}
	for i, f := range got {
		if f.Name != want.Sources[i].Name || !bytes.Equal(f.Content, want.Sources[i].Content) {
			return false
		}
	}
	return true
}

func TestPackageHistory(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		a1 := pkg("alpha", []string{"alpha.one"}, "a.go", "package alpha // 1")
		a2 := pkg("alpha", []string{"alpha.one"}, "a.go", "package alpha // 2", "b.go", "package alpha")
		b1 := pkg("beta", []string{"beta.one"}, "b.go", "package beta")
		deploy(t, s, a1)     // revision 1
		deploy(t, s, a2, b1) // revision 2

		all, err := s.ListPackageVersions(ctx, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := versionsOf(all), []string{"alpha@2", "beta@1", "alpha@1"}; !slices.Equal(got, want) {
			t.Fatalf("history = %v, want %v", got, want)
		}
		newest := all[0]
		if newest.Revision != 2 || newest.Sha256 != a2.Sha256 || newest.Author != "tester" ||
			newest.SizeBytes != int64(len("package alpha // 2package alpha")) || !slices.Equal(newest.Services, []string{"alpha.one"}) {
			t.Fatalf("newest = %+v", newest)
		}
		if !slices.Equal(newest.Files, []string{"a.go", "b.go"}) || len(newest.Sources) != 0 {
			t.Fatalf("newest files = %+v, want names a.go and b.go without contents", newest.Files)
		}

		limited, err := s.ListPackageVersions(ctx, "", 2)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := versionsOf(limited), []string{"alpha@2", "beta@1"}; !slices.Equal(got, want) {
			t.Fatalf("history limited to 2 = %v, want %v", got, want)
		}
		alpha, err := s.ListPackageVersions(ctx, "alpha", 0)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := versionsOf(alpha), []string{"alpha@2", "alpha@1"}; !slices.Equal(got, want) {
			t.Fatalf("alpha history = %v, want %v", got, want)
		}
		_, err = s.ListPackageVersions(ctx, "gamma", 0)
		wantErr(t, err, store.ErrNotFound, `package "gamma" has never been deployed`)

		tests := []struct {
			name        string
			pkg         string
			version     int64
			want        *adminv1.Package
			wantVersion int64
			current     bool
			err         error
			text        string
		}{
			{name: "current", pkg: "alpha", version: 0, want: a2, wantVersion: 2, current: true},
			{name: "current by number", pkg: "alpha", version: 2, want: a2, wantVersion: 2, current: true},
			{name: "older", pkg: "alpha", version: 1, want: a1, wantVersion: 1},
			{name: "unknown version", pkg: "alpha", version: 9, err: store.ErrNotFound, text: `package "alpha" has no version 9 (it has v1 to v2)`},
			{name: "unknown version of a package with one", pkg: "beta", version: 2, err: store.ErrNotFound, text: `package "beta" has no version 2 (it has v1 only)`},
			{name: "unknown package", pkg: "gamma", err: store.ErrNotFound, text: `package "gamma" has never been deployed`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				p, current, err := s.GetPackage(ctx, tt.pkg, tt.version)
				if tt.err != nil {
					wantErr(t, err, tt.err, tt.text)
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if p.Name != tt.pkg || p.Version != tt.wantVersion || p.Sha256 != tt.want.Sha256 || current != tt.current || !sameFiles(p.Sources, tt.want) {
					t.Fatalf("GetPackage = %+v, current %v; want %s v%d, current %v", p, current, tt.pkg, tt.wantVersion, tt.current)
				}
			})
		}
	})
}

func TestRollback(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		a1 := pkg("alpha", []string{"alpha.one"}, "a.go", "package alpha // 1")
		a2 := pkg("alpha", []string{"alpha.one", "alpha.two"}, "a.go", "package alpha // 2", "b.go", "package alpha")
		deploy(t, s, a1) // revision 1
		deploy(t, s, a2) // revision 2

		// The version before the current one, as a new version.
		p, restored, rev, err := s.Rollback(ctx, "roller", "alpha", 0)
		if err != nil {
			t.Fatal(err)
		}
		if rev != 3 || restored != 1 || p.Version != 3 || p.Revision != 3 || p.Sha256 != a1.Sha256 || p.Author != "roller" ||
			!slices.Equal(p.Services, []string{"alpha.one"}) || p.SizeBytes != int64(len("package alpha // 1")) {
			t.Fatalf("Rollback = %+v, restored v%d, revision %d; want v3 with the content of v1 at revision 3", p, restored, rev)
		}
		if len(p.Files) != 1 || p.Files[0] != "a.go" {
			t.Fatalf("Rollback files = %+v, want a.go", p.Files)
		}
		wantRevision(t, s, 3)
		d := desired(t, s)
		if len(d.Packages) != 1 || d.Packages[0].Version != 3 || !sameFiles(d.Packages[0].Sources, a1) {
			t.Fatalf("Desired after rollback = %+v, want alpha v3 with the files of v1", d.Packages)
		}
		services, err := s.ListServices(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := serviceLines(services), []string{"alpha.one alpha v3"}; !slices.Equal(got, want) {
			t.Fatalf("ListServices = %q, want %q", got, want)
		}
		got, current, err := s.GetPackage(ctx, "alpha", 3)
		if err != nil || !current || !sameFiles(got.Sources, a1) {
			t.Fatalf("GetPackage v3 = %+v, current %v, %v", got, current, err)
		}

		// Deploying the restored content is unchanged.
		if res := deploy(t, s, a1); !res.Packages[0].Unchanged || res.Revision != 3 {
			t.Fatalf("deploy of the restored content = %+v, want unchanged", res)
		}

		// A channel on alpha.two exists only with v2's content.
		if _, _, _, err := s.Rollback(ctx, "roller", "alpha", 2); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateChannel(ctx, channel("two", "/two", "alpha.two")); err != nil {
			t.Fatal(err)
		}
		deploy(t, s, pkg("beta", []string{"beta.one"}, "b.go", "package beta"))
		wantRevision(t, s, 6)
		before := desired(t, s)

		refused := []struct {
			name    string
			pkg     string
			version int64
			err     error
			text    string
		}{
			{"content already current", "alpha", 2, store.ErrConflict, "alpha v4 already has the content of v2"},
			{"the current version", "alpha", 4, store.ErrConflict, "alpha v4 is the current version"},
			{"unknown version", "alpha", 9, store.ErrNotFound, `package "alpha" has no version 9 (it has v1 to v4)`},
			{"unknown package", "gamma", 0, store.ErrNotFound, `package "gamma" has never been deployed`},
			{"drops a service a channel calls", "alpha", 1, store.ErrConflict, `package "alpha" would drop service "alpha.two", which channel "two" calls`},
			{"no version before v1", "beta", 0, store.ErrConflict, `package "beta" has no version before v1`},
		}
		for _, tt := range refused {
			t.Run(tt.name, func(t *testing.T) {
				_, _, _, err := s.Rollback(ctx, "roller", tt.pkg, tt.version)
				wantErr(t, err, tt.err, tt.text)
				wantUnchanged(t, s, before)
				changes, err := store.ChangeRevisions(ctx, s)
				if err != nil {
					t.Fatal(err)
				}
				if len(changes) != 6 {
					t.Fatalf("change log = %v, want revisions 1 to 6", changes)
				}
			})
		}

		// A service another package registers now is refused.
		if _, err := s.DeleteChannel(ctx, "two"); err != nil {
			t.Fatal(err)
		}
		deploy(t, s, pkg("alpha", []string{"alpha.one"}, "a.go", "package alpha // 5")) // v5 drops alpha.two
		deploy(t, s, pkg("beta", []string{"beta.one", "alpha.two"}, "b.go", "package beta // 2"))
		_, _, _, err = s.Rollback(ctx, "roller", "alpha", 2)
		wantErr(t, err, store.ErrConflict, `service "alpha.two" is already registered by package "beta"`)
	})
}

func TestUndeploy(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		a1 := pkg("alpha", []string{"alpha.one", "alpha.two"}, "a.go", "package alpha // 1")
		deploy(t, s, a1, pkg("beta", []string{"beta.one"}, "b.go", "package beta"))
		for _, ch := range []*adminv1.Channel{
			channel("hello", "/hello", "alpha.one"),
			channel("x", "/x", "alpha.one"),
			channel("other", "/other", "beta.one"),
		} {
			if _, err := s.CreateChannel(ctx, ch); err != nil {
				t.Fatal(err)
			}
		}
		idle := channel("idle", "/idle", "alpha.two")
		idle.Active = proto.Bool(false)
		if _, err := s.CreateChannel(ctx, idle); err != nil {
			t.Fatal(err)
		}
		wantRevision(t, s, 5)
		before := desired(t, s)

		_, err := s.Undeploy(ctx, "remover", "alpha", false)
		wantErr(t, err, store.ErrConflict,
			`package "alpha" is used by channels "hello" (alpha.one), "x" (alpha.one); deactivate or delete them first, or undeploy --force`)
		wantUnchanged(t, s, before)
		_, err = s.Undeploy(ctx, "remover", "gamma", true)
		wantErr(t, err, store.ErrNotFound, `package "gamma" has never been deployed`)
		wantUnchanged(t, s, before)

		res, err := s.Undeploy(ctx, "remover", "alpha", true)
		if err != nil {
			t.Fatal(err)
		}
		if res.Revision != 6 || !slices.Equal(res.Services, []string{"alpha.one", "alpha.two"}) ||
			!slices.Equal(res.DeactivatedChannels, []string{"hello", "x"}) {
			t.Fatalf("Undeploy = %+v", res)
		}
		wantRevision(t, s, 6)
		d := desired(t, s)
		if len(d.Packages) != 1 || d.Packages[0].Name != "beta" {
			t.Fatalf("Desired packages = %+v, want beta alone", d.Packages)
		}
		for _, ch := range d.Channels {
			wantActive := ch.Name == "other"
			if ch.GetActive() != wantActive {
				t.Errorf("channel %s active = %v, want %v", ch.Name, ch.Active, wantActive)
			}
			if (ch.Name == "hello" || ch.Name == "x") && ch.Revision != 6 {
				t.Errorf("channel %s revision = %d, want 6", ch.Name, ch.Revision)
			}
		}
		list, err := s.ListPackages(ctx)
		if err != nil || len(list) != 1 || list[0].Name != "beta" {
			t.Fatalf("ListPackages = %+v, %v; want beta alone", list, err)
		}
		services, err := s.ListServices(ctx)
		if err != nil || !slices.Equal(serviceLines(services), []string{"beta.one beta v1"}) {
			t.Fatalf("ListServices = %q, %v; want beta.one alone", serviceLines(services), err)
		}

		// The history is kept and readable; nothing is current.
		hist, err := s.ListPackageVersions(ctx, "alpha", 0)
		if err != nil || len(hist) != 1 || hist[0].Version != 1 {
			t.Fatalf("alpha history = %+v, %v", hist, err)
		}
		p, current, err := s.GetPackage(ctx, "alpha", 1)
		if err != nil || current || !sameFiles(p.Sources, a1) {
			t.Fatalf("GetPackage alpha v1 = %+v, current %v, %v; want it, not current", p, current, err)
		}
		_, _, err = s.GetPackage(ctx, "alpha", 0)
		wantErr(t, err, store.ErrNotFound, `package "alpha" is not deployed: it was undeployed after v1`)
		_, err = s.Undeploy(ctx, "remover", "alpha", false)
		wantErr(t, err, store.ErrNotFound, `package "alpha" is not deployed`)
		_, _, _, err = s.Rollback(ctx, "remover", "alpha", 0)
		wantErr(t, err, store.ErrConflict, `package "alpha" is not deployed, so no version is before the current one; name the version to restore (v1 to v1)`)
		wantRevision(t, s, 6)

		// Deploying it again continues the version numbers, even with the
		// same source.
		res2 := deploy(t, s, a1)
		if got := res2.Packages[0]; got.Unchanged || got.Package.Version != 2 || res2.Revision != 7 {
			t.Fatalf("redeploy = %+v, want a new v2 at revision 7", res2)
		}
		if res3 := deploy(t, s, a1); !res3.Packages[0].Unchanged {
			t.Fatalf("second redeploy = %+v, want unchanged", res3)
		}
		if _, err := s.UpdateChannel(ctx, channel("hello", "/hello", "alpha.one")); err != nil {
			t.Fatalf("reactivate channel hello: %v", err)
		}

		// An undeploy without active channels needs no force; a rollback
		// naming a version restores an undeployed package.
		if _, err := s.DeleteChannel(ctx, "other"); err != nil {
			t.Fatal(err)
		}
		res, err = s.Undeploy(ctx, "remover", "beta", false)
		if err != nil || res.Revision != 10 || len(res.DeactivatedChannels) != 0 {
			t.Fatalf("Undeploy beta = %+v, %v", res, err)
		}
		wantErr(t, mustNot(s.Undeploy(ctx, "remover", "beta", false)), store.ErrNotFound, `package "beta" is not deployed`)
		p, restored, rev, err := s.Rollback(ctx, "remover", "beta", 1)
		if err != nil || p.Version != 2 || restored != 1 || rev != 11 {
			t.Fatalf("Rollback of undeployed beta = %+v, v%d, revision %d, %v", p, restored, rev, err)
		}
		changes, err := store.ChangeRevisions(ctx, s)
		if err != nil || !slices.Equal(changes, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}) {
			t.Fatalf("change log = %v, %v", changes, err)
		}
	})
}

// mustNot returns the error of a call whose result does not matter.
func mustNot[T any](_ T, err error) error { return err }

func TestDeployStatus(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		deploy(t, s, pkg("alpha", []string{"alpha.one"}, "a.go", "package alpha // 1")) // revision 1
		deploy(t, s, pkg("beta", []string{"beta.one"}, "b.go", "package beta"))         // revision 2
		deploy(t, s, pkg("alpha", []string{"alpha.one"}, "a.go", "package alpha // 2")) // revision 3

		agent := func(id string, applied, failed int64, msg string, connected bool) {
			t.Helper()
			if err := s.AgentHello(ctx, store.AgentHello{ID: id, AppliedRevision: applied}); err != nil {
				t.Fatal(err)
			}
			if failed > 0 {
				if err := s.AgentFailed(ctx, id, failed, msg); err != nil {
					t.Fatal(err)
				}
			}
			if !connected {
				if err := s.AgentGone(ctx, id, ""); err != nil {
					t.Fatal(err)
				}
			}
		}
		agent("a-done", 3, 0, "", true)
		agent("b-failed", 2, 3, "a.go:1:1: boom", true)
		agent("c-pending", 2, 0, "", true)
		agent("d-away", 1, 0, "", false)
		agent("e-old-failure", 2, 2, "b.go:1:1: old", true)

		type row struct {
			id        string
			state     store.DeployState
			errText   string
			connected bool
			applied   int64
		}
		rows := func(st store.DeployStatus) []row {
			var out []row
			for _, a := range st.Agents {
				out = append(out, row{a.AgentID, a.State, a.Error, a.Connected, a.AppliedRevision})
			}
			return out
		}
		tests := []struct {
			name        string
			pkg         string
			version     int64
			wantPkg     string
			wantVersion int64
			current     bool
			agents      []row
		}{
			{
				name: "current", pkg: "alpha", wantPkg: "alpha", wantVersion: 2, current: true,
				agents: []row{
					{"a-done", store.DeployDeployed, "", true, 3},
					{"b-failed", store.DeployFailed, "a.go:1:1: boom", true, 2},
					{"c-pending", store.DeployPending, "", true, 2},
					{"d-away", store.DeployPending, "", false, 1},
					{"e-old-failure", store.DeployPending, "", true, 2},
				},
			},
			{
				name: "an older version", pkg: "alpha", version: 1, wantPkg: "alpha", wantVersion: 1,
				agents: []row{
					{"a-done", store.DeployDeployed, "", true, 3},
					{"b-failed", store.DeployDeployed, "", true, 2},
					{"c-pending", store.DeployDeployed, "", true, 2},
					{"d-away", store.DeployDeployed, "", false, 1},
					{"e-old-failure", store.DeployDeployed, "", true, 2},
				},
			},
			{
				name: "the newest deploy of any package", wantPkg: "alpha", wantVersion: 2, current: true,
			},
			{
				name: "beta", pkg: "beta", wantPkg: "beta", wantVersion: 1, current: true,
				agents: []row{
					{"a-done", store.DeployDeployed, "", true, 3},
					{"b-failed", store.DeployDeployed, "", true, 2},
					{"c-pending", store.DeployDeployed, "", true, 2},
					{"d-away", store.DeployPending, "", false, 1},
					{"e-old-failure", store.DeployDeployed, "", true, 2},
				},
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				st, err := s.GetDeployStatus(ctx, tt.pkg, tt.version)
				if err != nil {
					t.Fatal(err)
				}
				if st.Package.Name != tt.wantPkg || st.Package.Version != tt.wantVersion || st.Current != tt.current {
					t.Fatalf("package = %s v%d current %v, want %s v%d current %v",
						st.Package.Name, st.Package.Version, st.Current, tt.wantPkg, tt.wantVersion, tt.current)
				}
				if len(st.Package.Files) != 1 || len(st.Package.Sources) != 0 {
					t.Fatalf("files = %+v, want one name without content", st.Package.Files)
				}
				if tt.agents != nil && !slices.Equal(rows(st), tt.agents) {
					t.Fatalf("agents =\n%+v\nwant\n%+v", rows(st), tt.agents)
				}
			})
		}

		_, err := s.GetDeployStatus(ctx, "alpha", 7)
		wantErr(t, err, store.ErrNotFound, `package "alpha" has no version 7`)

		// An undeployed package answers for a version it had.
		if _, err := s.Undeploy(ctx, "tester", "alpha", false); err != nil {
			t.Fatal(err)
		}
		st, err := s.GetDeployStatus(ctx, "alpha", 2)
		if err != nil || st.Current || st.Package.Version != 2 {
			t.Fatalf("status of undeployed alpha v2 = %+v, %v", st, err)
		}
		_, err = s.GetDeployStatus(ctx, "alpha", 0)
		wantErr(t, err, store.ErrNotFound, `package "alpha" is not deployed`)
		if st, err := s.GetDeployStatus(ctx, "", 0); err != nil || st.Package.Name != "beta" {
			t.Fatalf("newest deploy after undeploying alpha = %+v, %v; want beta", st.Package, err)
		}
		if _, err := s.Undeploy(ctx, "tester", "beta", false); err != nil {
			t.Fatal(err)
		}
		_, err = s.GetDeployStatus(ctx, "", 0)
		wantErr(t, err, store.ErrNotFound, "no package is deployed")
	})
}
