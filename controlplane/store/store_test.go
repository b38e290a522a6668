package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/controlplane/store/storetest"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// eachBackend runs fn in a subtest per backend, on a fresh store.
func eachBackend(t *testing.T, fn func(t *testing.T, s store.Store)) {
	t.Helper()
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			fn(t, storetest.Open(t, b))
		})
	}
}

// pkg builds a package whose sha256 covers its files.
func pkg(name string, services []string, files ...string) *adminv1.Package {
	p := &adminv1.Package{Name: name, Services: services}
	h := sha256.New()
	for i := 0; i+1 < len(files); i += 2 {
		p.Sources = append(p.Sources, &adminv1.SourceFile{Name: files[i], Content: []byte(files[i+1])})
		h.Write([]byte(files[i] + "\x00" + files[i+1] + "\x00"))
	}
	p.Sha256 = hex.EncodeToString(h.Sum(nil))
	return p
}

func revision(t *testing.T, s store.Store) int64 {
	t.Helper()
	rev, err := s.Revision(context.Background())
	if err != nil {
		t.Fatalf("Revision: %v", err)
	}
	return rev
}

func wantRevision(t *testing.T, s store.Store, want int64) {
	t.Helper()
	if got := revision(t, s); got != want {
		t.Fatalf("revision = %d, want %d", got, want)
	}
}

func deploy(t *testing.T, s store.Store, pkgs ...*adminv1.Package) store.DeployResult {
	t.Helper()
	res, err := s.Deploy(context.Background(), "tester", pkgs)
	if err != nil {
		t.Fatalf("Deploy: %v", err)
	}
	return res
}

func wantErr(t *testing.T, err, sentinel error, text string) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want %v containing %q", sentinel, text)
	}
	if sentinel != nil && !errors.Is(err, sentinel) {
		t.Fatalf("err = %v, want errors.Is %v", err, sentinel)
	}
	if !strings.Contains(err.Error(), text) {
		t.Fatalf("err = %q, want it to contain %q", err, text)
	}
}

func TestDeploy(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		wantRevision(t, s, 0)

		a1 := pkg("alpha", []string{"alpha.one"}, "a.go", "package alpha // 1")
		res := deploy(t, s, a1)
		if res.Revision != 1 || len(res.Packages) != 1 {
			t.Fatalf("first deploy = %+v, want revision 1 and one package", res)
		}
		got := res.Packages[0]
		if got.Unchanged || got.Package.Version != 1 || got.Package.Revision != 1 ||
			got.Package.Author != "tester" || got.Package.SizeBytes != int64(len("package alpha // 1")) ||
			got.Package.Sha256 != a1.Sha256 || got.Package.Files != nil || got.Package.Sources != nil {
			t.Fatalf("first deploy package = %+v", got)
		}
		wantRevision(t, s, 1)

		res = deploy(t, s, a1)
		if res.Revision != 1 || !res.Packages[0].Unchanged || res.Packages[0].Package.Version != 1 {
			t.Fatalf("unchanged deploy = %+v, want revision 1, unchanged v1", res)
		}
		wantRevision(t, s, 1)

		// Two packages in one deploy are one revision.
		a2 := pkg("alpha", []string{"alpha.one", "alpha.two"}, "a.go", "package alpha // 2")
		b1 := pkg("beta", []string{"beta.one"}, "b.go", "package beta", "c.go", "package beta // c")
		res = deploy(t, s, b1, a2)
		wantRevision(t, s, 2)
		if res.Revision != 2 {
			t.Fatalf("deploy revision = %d, want 2", res.Revision)
		}
		for i, want := range []struct {
			name    string
			version int64
		}{{"beta", 1}, {"alpha", 2}} {
			p := res.Packages[i]
			if p.Unchanged || p.Package.Name != want.name || p.Package.Version != want.version || p.Package.Revision != 2 {
				t.Fatalf("package %d = %+v, want %s v%d at revision 2", i, p, want.name, want.version)
			}
		}

		// One unchanged and one changed: the revision moves once.
		a3 := pkg("alpha", []string{"alpha.one"}, "a.go", "package alpha // 3")
		res = deploy(t, s, a3, b1)
		if res.Revision != 3 || res.Packages[0].Unchanged || !res.Packages[1].Unchanged ||
			res.Packages[0].Package.Version != 3 || res.Packages[1].Package.Version != 1 {
			t.Fatalf("mixed deploy = %+v", res)
		}
		wantRevision(t, s, 3)

		list, err := s.ListPackages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].Name != "alpha" || list[0].Version != 3 || list[1].Name != "beta" ||
			list[1].Version != 1 || list[0].Files != nil || !slices.Equal(list[0].Services, []string{"alpha.one"}) {
			t.Fatalf("ListPackages = %+v", list)
		}

		services, err := s.ListServices(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := serviceLines(services), []string{"alpha.one alpha v3", "beta.one beta v1"}; !slices.Equal(got, want) {
			t.Fatalf("ListServices = %q, want %q", got, want)
		}

		// History is kept.
		versions, err := store.PackageVersions(ctx, s, "alpha")
		if err != nil {
			t.Fatal(err)
		}
		var shas []string
		for _, v := range versions {
			shas = append(shas, v.Sha256)
		}
		if !slices.Equal(shas, []string{a1.Sha256, a2.Sha256, a3.Sha256}) {
			t.Fatalf("alpha history = %v", versions)
		}
		changes, err := store.ChangeRevisions(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(changes, []int64{1, 2, 3}) {
			t.Fatalf("change log = %v, want [1 2 3]", changes)
		}

		d, err := s.Desired(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d.Revision != 3 || len(d.Packages) != 2 || len(d.Channels) != 0 {
			t.Fatalf("Desired = %+v", d)
		}
		for i, want := range []*adminv1.Package{a3, b1} {
			got := d.Packages[i]
			if got.Name != want.Name || got.Sha256 != want.Sha256 || len(got.Sources) != len(want.Sources) {
				t.Fatalf("Desired package %d = %+v, want %s", i, got, want.Name)
			}
			for j, f := range got.Sources {
				if f.Name != want.Sources[j].Name || !bytes.Equal(f.Content, want.Sources[j].Content) {
					t.Fatalf("Desired %s file %d = %s %q, want %s %q", got.Name, j, f.Name, f.Content, want.Sources[j].Name, want.Sources[j].Content)
				}
			}
		}
	})
}

func TestDeployRefused(t *testing.T) {
	tests := []struct {
		name     string
		pkgs     []*adminv1.Package
		sentinel error
		text     string
	}{
		{
			name:     "service of another package",
			pkgs:     []*adminv1.Package{pkg("gamma", []string{"gamma.one"}, "g.go", "g"), pkg("beta", []string{"alpha.one"}, "b.go", "b")},
			sentinel: store.ErrConflict,
			text:     `service "alpha.one" is already registered by package "alpha"`,
		},
		{
			name:     "service twice in one deploy",
			pkgs:     []*adminv1.Package{pkg("gamma", []string{"x.y"}, "g.go", "g"), pkg("beta", []string{"x.y"}, "b.go", "b")},
			sentinel: store.ErrConflict,
			text:     `service "x.y" is registered by both package "gamma" and package "beta"`,
		},
		{
			name:     "package twice in one deploy",
			pkgs:     []*adminv1.Package{pkg("gamma", nil, "g.go", "g"), pkg("gamma", nil, "g.go", "h")},
			sentinel: store.ErrConflict,
			text:     `package "gamma" is given twice`,
		},
		{
			name:     "drops a service a channel calls",
			pkgs:     []*adminv1.Package{pkg("gamma", nil, "g.go", "g"), pkg("alpha", []string{"alpha.two"}, "a.go", "a2")},
			sentinel: store.ErrConflict,
			text:     `package "alpha" would drop service "alpha.one", which channel "orders" calls`,
		},
		{
			name: "no packages",
			text: "no packages",
		},
	}
	eachBackend(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		deploy(t, s, pkg("alpha", []string{"alpha.one"}, "a.go", "a"))
		if _, err := s.CreateChannel(ctx, channel("orders", "/orders", "alpha.one")); err != nil {
			t.Fatal(err)
		}
		before, err := s.Desired(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := s.Deploy(ctx, "tester", tt.pkgs)
				wantErr(t, err, tt.sentinel, tt.text)
				after, err := s.Desired(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if !sameDesired(before, after) {
					t.Fatalf("refused deploy changed the store:\nbefore %+v\nafter  %+v", before, after)
				}
				versions, err := store.PackageVersions(ctx, s, "gamma")
				if err != nil || len(versions) != 0 {
					t.Fatalf("gamma versions = %v, %v; want none stored", versions, err)
				}
			})
		}
	})
}

// TestDeployMovesService moves a service between two packages deployed
// together, which no order of two single deploys could do.
func TestDeployMovesService(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		deploy(t, s, pkg("alpha", []string{"shared.svc"}, "a.go", "a"))
		if _, err := s.CreateChannel(ctx, channel("orders", "/orders", "shared.svc")); err != nil {
			t.Fatal(err)
		}
		res := deploy(t, s, pkg("alpha", []string{"alpha.only"}, "a.go", "a2"), pkg("beta", []string{"shared.svc"}, "b.go", "b"))
		if res.Revision != 3 {
			t.Fatalf("revision = %d, want 3", res.Revision)
		}
		services, err := s.ListServices(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := serviceLines(services), []string{"alpha.only alpha v2", "shared.svc beta v1"}; !slices.Equal(got, want) {
			t.Fatalf("ListServices = %q, want %q", got, want)
		}
	})
}

func TestLargeFile(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		content := bytes.Repeat([]byte("0123456789abcdef"), 4<<20/16) // 4 MiB
		p := pkg("big", nil)
		p.Sources = []*adminv1.SourceFile{{Name: "big.go", Content: content}}
		deploy(t, s, p)
		d, err := s.Desired(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Packages) != 1 || len(d.Packages[0].Files) != 1 || !bytes.Equal(d.Packages[0].Sources[0].Content, content) {
			t.Fatalf("4 MiB file did not round-trip")
		}
		if d.Packages[0].SizeBytes != int64(len(content)) {
			t.Fatalf("SizeBytes = %d, want %d", d.Packages[0].SizeBytes, len(content))
		}
	})
}

// sameDesired compares two snapshots by value.
func sameDesired(a, b store.Desired) bool {
	if a.Revision != b.Revision || len(a.Packages) != len(b.Packages) || len(a.Channels) != len(b.Channels) ||
		len(a.Security) != len(b.Security) || len(a.Outgoing) != len(b.Outgoing) {
		return false
	}
	for i := range a.Security {
		if !sameDefinition(a.Security[i], b.Security[i]) {
			return false
		}
	}
	for i := range a.Outgoing {
		if !sameConnection(a.Outgoing[i], b.Outgoing[i]) {
			return false
		}
	}
	for i := range a.Packages {
		p, q := a.Packages[i], b.Packages[i]
		if p.Name != q.Name || p.Version != q.Version || p.Sha256 != q.Sha256 || !slices.Equal(p.Services, q.Services) || !slices.Equal(p.Files, q.Files) || len(p.Sources) != len(q.Sources) {
			return false
		}
	}
	for i := range a.Channels {
		if !sameChannel(a.Channels[i], b.Channels[i]) {
			return false
		}
	}
	return true
}

// serviceLines are services as "name package vN" lines, to compare.
func serviceLines(l []*adminv1.Service) []string {
	out := make([]string, 0, len(l))
	for _, v := range l {
		out = append(out, fmt.Sprintf("%s %s v%d", v.Name, v.Package, v.PackageVersion))
	}
	return out
}
