package store_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/controlplane/store/storetest"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func channel(name, path, service string) *adminv1.Channel {
	return &adminv1.Channel{
		Name:         name,
		Path:         path,
		Methods:      []string{"GET", "POST"},
		Service:      service,
		Active:       proto.Bool(true),
		DataFormat:   "json",
		TimeoutMs:    5000,
		MaxBodyBytes: 1 << 20,
	}
}

// sameChannel compares every field, times included.
func sameChannel(a, b *adminv1.Channel) bool {
	return proto.Equal(a, b)
}

// wantTime checks that t is set, in UTC, and whole milliseconds.
func wantTime(t *testing.T, what string, ts time.Time) {
	t.Helper()
	if ts.IsZero() || ts.Location() != time.UTC || ts.Nanosecond()%int(time.Millisecond) != 0 {
		t.Fatalf("%s = %v, want a UTC time in whole milliseconds", what, ts)
	}
}

func TestChannels(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		deploy(t, s, pkg("alpha", []string{"alpha.one", "alpha.two"}, "a.go", "a"))
		wantRevision(t, s, 1)

		orders, err := s.CreateChannel(ctx, channel("orders", "/api/orders", "alpha.one"))
		if err != nil {
			t.Fatal(err)
		}
		if orders.Revision != 2 || !orders.CreatedAt.AsTime().Equal(orders.UpdatedAt.AsTime()) {
			t.Fatalf("created = %+v, want revision 2 and equal times", orders)
		}
		wantTime(t, "CreatedAt", orders.CreatedAt.AsTime())
		got, err := s.GetChannel(ctx, "orders")
		if err != nil {
			t.Fatal(err)
		}
		if !sameChannel(got, orders) {
			t.Fatalf("GetChannel = %+v, want %+v", got, orders)
		}
		wantTime(t, "read CreatedAt", got.CreatedAt.AsTime())
		wantRevision(t, s, 2)

		stock, err := s.CreateChannel(ctx, channel("stock", "/api/stock", "alpha.two"))
		if err != nil {
			t.Fatal(err)
		}
		wantRevision(t, s, 3)

		snapshot := func() store.Desired {
			t.Helper()
			d, err := s.Desired(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
		before := snapshot()

		refused := []struct {
			name     string
			do       func() error
			sentinel error
			text     string
		}{
			{"create taken name", func() error {
				_, err := s.CreateChannel(ctx, channel("orders", "/api/other", "alpha.one"))
				return err
			}, store.ErrConflict, `channel "orders" already exists`},
			{"create taken path", func() error {
				_, err := s.CreateChannel(ctx, channel("other", "/api/orders", "alpha.one"))
				return err
			}, store.ErrConflict, `channel "other": path "/api/orders" is already used by channel "orders"`},
			{"create unknown service", func() error {
				_, err := s.CreateChannel(ctx, channel("other", "/api/other", "nope"))
				return err
			}, store.ErrNotFound, `channel "other": service "nope" is not deployed`},
			{"update taken path", func() error {
				_, err := s.UpdateChannel(ctx, channel("stock", "/api/orders", "alpha.two"))
				return err
			}, store.ErrConflict, `channel "stock": path "/api/orders" is already used by channel "orders"`},
			{"update unknown service", func() error {
				_, err := s.UpdateChannel(ctx, channel("stock", "/api/stock", "nope"))
				return err
			}, store.ErrNotFound, `channel "stock": service "nope" is not deployed`},
			{"update missing", func() error {
				_, err := s.UpdateChannel(ctx, channel("ghost", "/api/ghost", "alpha.one"))
				return err
			}, store.ErrNotFound, `channel "ghost" does not exist`},
			{"delete missing", func() error {
				_, err := s.DeleteChannel(ctx, "ghost")
				return err
			}, store.ErrNotFound, `channel "ghost" does not exist`},
			{"get missing", func() error {
				_, err := s.GetChannel(ctx, "ghost")
				return err
			}, store.ErrNotFound, `channel "ghost" does not exist`},
		}
		for _, tt := range refused {
			t.Run(tt.name, func(t *testing.T) {
				wantErr(t, tt.do(), tt.sentinel, tt.text)
				if after := snapshot(); !sameDesired(before, after) {
					t.Fatalf("refused change changed the store:\nbefore %+v\nafter  %+v", before, after)
				}
			})
		}

		// An update that changes nothing is not a revision.
		same, err := s.UpdateChannel(ctx, channel("stock", "/api/stock", "alpha.two"))
		if err != nil {
			t.Fatal(err)
		}
		if !sameChannel(same, stock) {
			t.Fatalf("no-op update = %+v, want %+v", same, stock)
		}
		wantRevision(t, s, 3)

		// Moving a path between channels in two steps.
		upd := channel("orders", "/api/v2/orders", "alpha.two")
		upd.Active = proto.Bool(false)
		upd.Methods = []string{"PUT"}
		updated, err := s.UpdateChannel(ctx, upd)
		if err != nil {
			t.Fatal(err)
		}
		if updated.Revision != 4 || !updated.CreatedAt.AsTime().Equal(orders.CreatedAt.AsTime()) || updated.UpdatedAt.AsTime().Before(orders.UpdatedAt.AsTime()) ||
			updated.GetActive() || !slices.Equal(updated.Methods, []string{"PUT"}) || updated.Service != "alpha.two" {
			t.Fatalf("updated = %+v", updated)
		}
		if got, err := s.GetChannel(ctx, "orders"); err != nil || !sameChannel(got, updated) {
			t.Fatalf("GetChannel after update = %+v, %v; want %+v", got, err, updated)
		}
		if _, err := s.UpdateChannel(ctx, channel("stock", "/api/orders", "alpha.two")); err != nil {
			t.Fatalf("take the freed path: %v", err)
		}
		wantRevision(t, s, 5)

		list, err := s.ListChannels(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].Name != "orders" || list[1].Name != "stock" || list[1].Path != "/api/orders" {
			t.Fatalf("ListChannels = %+v", list)
		}

		rev, err := s.DeleteChannel(ctx, "orders")
		if err != nil || rev != 6 {
			t.Fatalf("DeleteChannel = %d, %v; want 6", rev, err)
		}
		wantRevision(t, s, 6)
		if _, err := s.GetChannel(ctx, "orders"); err == nil {
			t.Fatal("deleted channel still readable")
		}
	})
}

// TestCaseSensitive checks that names and paths compare byte by byte on
// both databases (MySQL's default collations would not).
func TestCaseSensitive(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		deploy(t, s, pkg("alpha", []string{"alpha.one"}, "a.go", "a"))
		for _, ch := range []*adminv1.Channel{
			channel("orders", "/api/orders", "alpha.one"),
			channel("Orders", "/API/orders", "alpha.one"),
		} {
			if _, err := s.CreateChannel(ctx, ch); err != nil {
				t.Fatalf("create %s: %v", ch.Name, err)
			}
		}
		list, err := s.ListChannels(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].Name != "Orders" || list[1].Name != "orders" {
			t.Fatalf("ListChannels = %+v, want Orders then orders", list)
		}
	})
}

// TestConcurrentWriters checks that writers racing on the revision end with
// one revision per change, gap-free, and a change log that matches.
func TestConcurrentWriters(t *testing.T) {
	const writers, each = 8, 5
	eachBackend(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		deploy(t, s, pkg("alpha", []string{"alpha.one"}, "a.go", "a"))

		var wg sync.WaitGroup
		errs := make(chan error, writers*each)
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					name := fmt.Sprintf("ch-%d-%d", w, i)
					if _, err := s.CreateChannel(ctx, channel(name, "/"+name, "alpha.one")); err != nil {
						errs <- fmt.Errorf("create %s: %w", name, err)
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}

		total := int64(1 + writers*each)
		wantRevision(t, s, total)
		changes, err := store.ChangeRevisions(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		for i, rev := range changes {
			if rev != int64(i+1) {
				t.Fatalf("change log = %v, want 1..%d", changes, total)
			}
		}
		if int64(len(changes)) != total {
			t.Fatalf("change log has %d entries, want %d", len(changes), total)
		}
		list, err := s.ListChannels(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var revs []int64
		for _, ch := range list {
			revs = append(revs, ch.Revision)
		}
		slices.Sort(revs)
		for i, rev := range revs {
			if rev != int64(i+2) {
				t.Fatalf("channel revisions = %v, want 2..%d", revs, total)
			}
		}
	})
}

// TestDesiredConsistent reads Desired while a writer adds channels: every
// snapshot must hold exactly the channels of its revision.
func TestDesiredConsistent(t *testing.T) {
	const channels = 30
	eachBackend(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		deploy(t, s, pkg("alpha", []string{"alpha.one"}, "a.go", "a"))

		done := make(chan error, 1)
		go func() {
			for i := range channels {
				name := fmt.Sprintf("ch-%02d", i)
				if _, err := s.CreateChannel(ctx, channel(name, "/"+name, "alpha.one")); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		reads := 0
		for finished := false; ; {
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
				finished = true
			default:
			}
			d, err := s.Desired(ctx)
			if err != nil {
				t.Fatal(err)
			}
			reads++
			if int64(len(d.Channels)) != d.Revision-1 || len(d.Packages) != 1 {
				t.Fatalf("snapshot at revision %d has %d channels and %d packages, want %d and 1",
					d.Revision, len(d.Channels), len(d.Packages), d.Revision-1)
			}
			for _, ch := range d.Channels {
				if ch.Revision > d.Revision {
					t.Fatalf("snapshot at revision %d holds channel %s of revision %d", d.Revision, ch.Name, ch.Revision)
				}
			}
			if finished {
				if d.Revision != channels+1 {
					t.Fatalf("final revision = %d, want %d", d.Revision, channels+1)
				}
				break
			}
		}
		t.Logf("%d consistent snapshots", reads)
	})
}

// soapChannel is an active SOAP channel whose main service is main and
// whose actions call the services of actions (action -> service).
func soapChannel(name, main string, actions map[string]string) *adminv1.Channel {
	ch := channel(name, "/"+name, main)
	ch.DataFormat = "soap11"
	ch.SoapActions = actions
	return ch
}

// TestChannelSOAPActions checks that every service a channel's SOAP actions
// call must be deployed, and stays so: deploy and undeploy see them as
// they see the channel's own service.
func TestChannelSOAPActions(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		deploy(t, s,
			pkg("alpha", []string{"alpha.one"}, "a.go", "a"),
			pkg("beta", []string{"beta.get", "beta.put"}, "b.go", "b"))
		orders, err := s.CreateChannel(ctx, soapChannel("orders", "alpha.one",
			map[string]string{"GetOrder": "beta.get", "PutOrder": "beta.put", "Ping": "alpha.one"}))
		if err != nil {
			t.Fatal(err)
		}
		idle := soapChannel("idle", "alpha.one", map[string]string{"GetOrder": "beta.get"})
		idle.Active = proto.Bool(false)
		if _, err := s.CreateChannel(ctx, idle); err != nil {
			t.Fatal(err)
		}
		wantRevision(t, s, 3)
		before := desired(t, s)

		refused := []struct {
			name     string
			do       func() error
			sentinel error
			text     string
		}{
			{"create with an undeployed action service", func() error {
				_, err := s.CreateChannel(ctx, soapChannel("new", "alpha.one", map[string]string{"A": "beta.get", "urn:Zap": "nope.zap"}))
				return err
			}, store.ErrNotFound, `channel "new": SOAP action "urn:Zap": service "nope.zap" is not deployed`},
			{"update with an undeployed action service", func() error {
				_, err := s.UpdateChannel(ctx, soapChannel("orders", "alpha.one", map[string]string{"GetOrder": "beta.gone"}))
				return err
			}, store.ErrNotFound, `channel "orders": SOAP action "GetOrder": service "beta.gone" is not deployed`},
			{"undeploy a package only actions call", func() error {
				_, err := s.Undeploy(ctx, "remover", "beta", false)
				return err
			}, store.ErrConflict, `package "beta" is used by channel "orders" (beta.get, beta.put); deactivate or delete it first, or undeploy --force`},
			{"deploy dropping a service an action calls", func() error {
				_, err := s.Deploy(ctx, "tester", []*adminv1.Package{pkg("beta", []string{"beta.get"}, "b.go", "b2")})
				return err
			}, store.ErrConflict, `package "beta" would drop service "beta.put", which channel "orders" calls`},
		}
		for _, tt := range refused {
			t.Run(tt.name, func(t *testing.T) {
				wantErr(t, tt.do(), tt.sentinel, tt.text)
				wantUnchanged(t, s, before)
			})
		}

		// A forced undeploy deactivates the active channels whose actions
		// call the package; the inactive one stays as it is.
		res, err := s.Undeploy(ctx, "remover", "beta", true)
		if err != nil {
			t.Fatal(err)
		}
		if res.Revision != 4 || !slices.Equal(res.DeactivatedChannels, []string{"orders"}) ||
			!slices.Equal(res.Services, []string{"beta.get", "beta.put"}) {
			t.Fatalf("Undeploy = %+v", res)
		}
		got, err := s.GetChannel(ctx, "orders")
		if err != nil {
			t.Fatal(err)
		}
		if got.GetActive() || got.Revision != 4 || !maps.Equal(got.SoapActions, orders.SoapActions) {
			t.Fatalf("orders after forced undeploy = %+v, want inactive at revision 4 with its actions", got)
		}
		if got, err := s.GetChannel(ctx, "idle"); err != nil || got.Revision != 3 {
			t.Fatalf("idle after forced undeploy = %+v, %v; want it untouched", got, err)
		}
	})
}

// TestMigratePrevious opens a database made before schema versions whose
// channel orders was stored before security definitions, rate limits and
// SOAP actions (its soap_actions is NULL): it reads with those empty, and
// takes them on update.
func TestMigratePrevious(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			seedVersion1(t, b)
			s := storetest.Open(t, b)
			wantRevision(t, s, 2)
			old, err := s.GetChannel(ctx, "orders")
			if err != nil {
				t.Fatal(err)
			}
			if old.Security != "" || old.RateLimit != 0 || old.RateBurst != 0 ||
				len(old.SoapActions) != 0 || old.DataFormat != "json" || old.Service != "alpha.one" {
				t.Fatalf("migrated channel = %+v", old)
			}

			if _, err := s.CreateSecurityDefinition(ctx, basicAuth("partner", "pw")); err != nil {
				t.Fatal(err)
			}
			upd := soapChannel("orders", "alpha.one", map[string]string{"GetOrder": "alpha.one"})
			upd.Path = "/orders"
			upd.Security = "partner"
			upd.RateLimit, upd.RateBurst = 10, 20
			updated, err := s.UpdateChannel(ctx, upd)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.GetChannel(ctx, "orders")
			if err != nil || !sameChannel(got, updated) || got.Security != "partner" || got.RateBurst != 20 ||
				got.SoapActions["GetOrder"] != "alpha.one" {
				t.Fatalf("updated migrated channel = %+v, %v", got, err)
			}
			if _, err := s.CreateOutgoingConnection(ctx, connection("erp", "partner")); err != nil {
				t.Fatal(err)
			}
			if d := desired(t, s); d.Revision != 5 || len(d.Channels) != 2 || len(d.Security) != 3 || len(d.Outgoing) != 2 {
				t.Fatalf("Desired = %+v", d)
			}
		})
	}
}
