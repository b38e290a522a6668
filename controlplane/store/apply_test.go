package store_test

import (
	"context"
	"maps"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/weft-dev/weft/controlplane/store"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// applySeed stores, at revision 5: package hello (hello.greet), a basic
// auth definition, a connection, channels a (/a) and b (/b), and a job.
func applySeed(t *testing.T, s store.Store) {
	t.Helper()
	ctx := context.Background()
	deploy(t, s, pkg("hello", []string{"hello.greet"}, "hello.go", "v1"))
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.CreateSecurityDefinition(ctx, basicAuth("basic", "s3cret")))
	must(s.CreateChannel(ctx, channel("a", "/a", "hello.greet")))
	must(s.CreateChannel(ctx, channel("b", "/b", "hello.greet")))
	must(s.CreateJob(ctx, job("tick")))
	wantRevision(t, s, 5)
}

func TestApplyConfig(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		applySeed(t, s)
		before, err := s.Desired(ctx)
		if err != nil {
			t.Fatal(err)
		}

		// One change of every kind: channels a and b swap paths, c is new,
		// the job goes, the definition changes its password, hello gets a
		// new version registering one more service, and package more is new.
		a, b := channel("a", "/b", "hello.greet"), channel("b", "/a", "hello.greet")
		c := channel("c", "/c", "more.run")
		c.Security = "basic"
		rev, err := s.ApplyConfig(ctx, "tester", store.ConfigChange{
			BaseRevision: 5,
			Deploy:       []*adminv1.Package{pkg("hello", []string{"hello.greet", "hello.wave"}, "hello.go", "v2"), pkg("more", []string{"more.run"}, "more.go", "v1")},
			Security:     []*adminv1.SecurityDefinition{basicAuth("basic", "n3w")},
			Channels:     []*adminv1.Channel{a, b, c},
			DeleteJobs:   []string{"tick"},
			Outgoing:     []*adminv1.OutgoingConnection{{Name: "crm", Address: "http://crm.example", Method: "POST", DataFormat: "json", TimeoutMs: 1000, Active: proto.Bool(true)}},
		})
		if err != nil {
			t.Fatalf("ApplyConfig: %v", err)
		}
		if rev != 6 {
			t.Fatalf("revision = %d, want 6: one import is one revision", rev)
		}
		d, err := s.Desired(ctx)
		if err != nil {
			t.Fatal(err)
		}
		paths := map[string]string{}
		for _, ch := range d.Channels {
			paths[ch.Name] = ch.Path
			if ch.Revision != 6 {
				t.Errorf("channel %s revision = %d, want 6", ch.Name, ch.Revision)
			}
		}
		if want := map[string]string{"a": "/b", "b": "/a", "c": "/c"}; !maps.Equal(paths, want) {
			t.Errorf("paths = %v, want %v", paths, want)
		}
		if len(d.Jobs) != 0 {
			t.Errorf("jobs = %v, want none", d.Jobs)
		}
		if len(d.Security) != 1 || d.Security[0].Password != "n3w" {
			t.Errorf("security = %+v, want basic with the new password", d.Security)
		}
		if len(d.Outgoing) != 1 || d.Outgoing[0].Name != "crm" {
			t.Errorf("outgoing = %+v, want crm", d.Outgoing)
		}
		var names []string
		for _, p := range d.Packages {
			names = append(names, p.Name)
		}
		if !slices.Equal(names, []string{"hello", "more"}) || d.Packages[0].Version != 2 || !slices.Contains(d.Packages[0].Services, "hello.wave") {
			t.Errorf("packages = %+v, want hello v2 with hello.wave, and more", d.Packages)
		}
		if d.Packages[0].Revision == before.Packages[0].Revision {
			t.Error("hello was not stored again")
		}

		// The same change again writes nothing and keeps the revision.
		rev, err = s.ApplyConfig(ctx, "tester", store.ConfigChange{
			BaseRevision: 6,
			Deploy:       []*adminv1.Package{pkg("hello", []string{"hello.greet", "hello.wave"}, "hello.go", "v2")},
			Security:     []*adminv1.SecurityDefinition{basicAuth("basic", "n3w")},
			Channels:     []*adminv1.Channel{a, b, c},
		})
		if err != nil || rev != 6 {
			t.Fatalf("the same change again: revision %d, %v; want 6, nil", rev, err)
		}
		revs, err := store.ChangeRevisions(ctx, s)
		if err != nil || revs[len(revs)-1] != 6 {
			t.Errorf("change log ends at %v, %v; want 6", revs, err)
		}
	})
}

func TestApplyConfigRefused(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		applySeed(t, s)
		before, err := s.Desired(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name     string
			change   store.ConfigChange
			sentinel error
			text     string
		}{
			{"planned at an older revision", store.ConfigChange{BaseRevision: 4, DeleteJobs: []string{"tick"}},
				store.ErrStale, "planned at revision 4, now at 5"},
			{"a service of another package", store.ConfigChange{BaseRevision: 5,
				Deploy:     []*adminv1.Package{pkg("other", []string{"hello.greet"}, "o.go", "x")},
				DeleteJobs: []string{"tick"}},
				store.ErrConflict, `service "hello.greet" is already registered by package "hello"`},
			{"two packages, one service", store.ConfigChange{BaseRevision: 5,
				Deploy: []*adminv1.Package{pkg("p1", []string{"dup.run"}, "a.go", "1"), pkg("p2", []string{"dup.run"}, "b.go", "2")}},
				store.ErrConflict, `service "dup.run" is registered by both package "p1" and package "p2"`},
			{"a path two channels take", store.ConfigChange{BaseRevision: 5,
				Channels: []*adminv1.Channel{channel("c", "/c", "hello.greet"), channel("d", "/c", "hello.greet")}},
				nil, "create channel"},
			{"a delete of nothing", store.ConfigChange{BaseRevision: 5, DeleteChannels: []string{"zzz"}},
				store.ErrNotFound, `channel "zzz" does not exist`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := s.ApplyConfig(ctx, "tester", tt.change)
				wantErr(t, err, tt.sentinel, tt.text)
				wantRevision(t, s, 5)
				after, err := s.Desired(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if !sameDesired(before, after) {
					t.Error("a refused import changed the config")
				}
			})
		}
	})
}
