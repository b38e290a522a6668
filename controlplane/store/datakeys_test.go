package store_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/controlplane/store/storetest"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// caKey is the CA key the rotation tests store: clear text to look for.
const caKey = "ca-key-clear"

// wantSealedWith checks every sealed value s's database holds: each names
// data key id ("k<id>:v1:"; id 0: the key file's key, "v1:"), and none
// holds the clear text of a value in clear. It returns how many there are.
func wantSealedWith(t *testing.T, s store.Store, id int64, clear []string) int {
	t.Helper()
	raw, err := store.SealedValues(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	prefix := "v1:"
	if id > 0 {
		prefix = "k" + strconv.FormatInt(id, 10) + ":v1:"
	}
	for what, v := range raw {
		if !strings.HasPrefix(v, prefix) {
			t.Errorf("%s is stored as %q, want it sealed with %q", what, v, prefix)
		}
		for _, c := range clear {
			if strings.Contains(v, c) {
				t.Errorf("%s is stored as %q, which holds %q", what, v, c)
			}
		}
	}
	return len(raw)
}

// wantDataKeys checks the data keys stored: ids, and which are retired.
func wantDataKeys(t *testing.T, s store.Store, want ...store.DataKey) {
	t.Helper()
	got, err := store.DataKeys(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("data keys = %+v, want %+v", got, want)
	}
}

// wantClear reads every definition of defs and the CA through s, and
// checks that they open to their clear values.
func wantClear(t *testing.T, s store.Store, defs ...*adminv1.SecurityDefinition) {
	t.Helper()
	ctx := context.Background()
	for _, d := range defs {
		got, err := s.GetSecurityDefinition(ctx, d.Name)
		if err != nil {
			t.Fatalf("read %s: %v", d.Name, err)
		}
		for field, clear := range clearSecrets(d) {
			if gotClear := clearSecrets(got)[field]; gotClear != clear {
				t.Errorf("%s: %s = %q, want %q", d.Name, field, gotClear, clear)
			}
		}
	}
	if _, key, err := s.CA(ctx); err != nil || string(key) != caKey {
		t.Errorf("CA key = %q, %v; want %q", key, err, caKey)
	}
}

func rotate(t *testing.T, s store.Store) store.KeyRotation {
	t.Helper()
	r, err := s.RotateKey(store.WithAuthor(context.Background(), "ops"))
	if err != nil {
		t.Fatalf("RotateKey: %v", err)
	}
	return r
}

// TestRotateKey rotates the secrets key on one replica and reads and
// writes through another that keeps running: every sealed column is
// re-sealed with the new data key and still opens to the same clear
// text, the revision does not move, and the second replica reads values
// sealed after a rotation it did not do and seals with the newest key.
func TestRotateKey(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			a := storetest.Open(t, b)
			replica := storetest.Open(t, b) // another replica, opened before any rotation
			if _, _, _, err := a.InitCA(ctx, []byte("ca-cert"), []byte(caKey)); err != nil {
				t.Fatal(err)
			}
			full, shop := everySecret("full"), basicAuth("shop", "pw-1")
			for _, d := range []*adminv1.SecurityDefinition{full, shop} {
				if _, err := a.CreateSecurityDefinition(ctx, d); err != nil {
					t.Fatal(err)
				}
			}
			clear := []string{"pw-1", caKey}
			for _, v := range clearSecrets(full) {
				clear = append(clear, v)
			}
			// Before the first rotation: no data key, the key file's key seals.
			if n := wantSealedWith(t, a, 0, clear); n != 8 {
				t.Fatalf("%d sealed values, want 8 (6 of full, 1 of shop, the CA's key)", n)
			}
			wantDataKeys(t, a)
			rev := revision(t, a)

			r1 := rotate(t, a)
			if r1.KeyID <= 0 || r1.Resealed != 8 || len(r1.Retired) != 0 || len(r1.Deleted) != 0 || r1.At.IsZero() {
				t.Fatalf("first rotation = %+v, want a key, 8 values re-sealed, nothing retired", r1)
			}
			wantSealedWith(t, a, r1.KeyID, clear)
			wantDataKeys(t, a, store.DataKey{ID: r1.KeyID})
			wantRevision(t, a, rev)
			wantClear(t, a, full, shop)
			wantClear(t, replica, full, shop) // loads the key it did not make

			// The replica seals with the key it did not make, and a store
			// opened now with the new values.
			shop.Password = "pw-2"
			if _, err := replica.UpdateSecurityDefinition(ctx, shop); err != nil {
				t.Fatal(err)
			}
			clear = append(clear, "pw-2")
			wantSealedWith(t, a, r1.KeyID, clear)
			wantClear(t, a, full, shop)
			wantClear(t, storetest.Open(t, b), full, shop)
			rev = revision(t, a)

			// Rotating twice: the second retires the first key, the third
			// deletes it (no value names it) and retires the second.
			r2 := rotate(t, replica)
			if r2.KeyID <= r1.KeyID || r2.Resealed != 8 || !slices.Equal(r2.Retired, []int64{r1.KeyID}) || len(r2.Deleted) != 0 {
				t.Fatalf("second rotation = %+v, want a newer key, 8 values re-sealed, k%d retired", r2, r1.KeyID)
			}
			wantSealedWith(t, a, r2.KeyID, clear)
			wantDataKeys(t, a, store.DataKey{ID: r1.KeyID, Retired: true}, store.DataKey{ID: r2.KeyID})
			wantClear(t, a, full, shop)

			r3 := rotate(t, a)
			if r3.KeyID <= r2.KeyID || r3.Resealed != 8 || !slices.Equal(r3.Retired, []int64{r2.KeyID}) || !slices.Equal(r3.Deleted, []int64{r1.KeyID}) {
				t.Fatalf("third rotation = %+v, want a newer key, 8 values re-sealed, k%d retired, k%d deleted", r3, r2.KeyID, r1.KeyID)
			}
			wantSealedWith(t, a, r3.KeyID, clear)
			wantDataKeys(t, a, store.DataKey{ID: r2.KeyID, Retired: true}, store.DataKey{ID: r3.KeyID})
			wantRevision(t, a, rev)
			wantClear(t, replica, full, shop)

			// A definition made after the rotations, through the replica.
			api := &adminv1.SecurityDefinition{Name: "api", Kind: "api_key", Header: "X-Key", Key: "api-key-clear"}
			if _, err := replica.CreateSecurityDefinition(ctx, api); err != nil {
				t.Fatal(err)
			}
			wantSealedWith(t, a, r3.KeyID, append(clear, "api-key-clear"))
			wantClear(t, a, full, shop, api)

			k := func(r store.KeyRotation) string { return "k" + strconv.FormatInt(r.KeyID, 10) }
			wantLines(t, "audit", auditOf(t, a, store.AuditKindSecretsKey), []string{
				fmt.Sprintf("ops secrets-key %s rotated: data key %s made; 8 secret values re-sealed with it", k(r1), k(r1)),
				fmt.Sprintf("ops secrets-key %s rotated: data key %s made; 8 secret values re-sealed with it; retired %s", k(r2), k(r2), k(r1)),
				fmt.Sprintf("ops secrets-key %s rotated: data key %s made; 8 secret values re-sealed with it; retired %s; deleted %s", k(r3), k(r3), k(r2), k(r1)),
			})
			// Each definition's hashes keep chaining across the rotations,
			// which change its stored row.
			entries, _, err := a.ListAudit(ctx, store.AuditQuery{Kind: store.AuditKindSecurity})
			if err != nil {
				t.Fatal(err)
			}
			var shopTrail []string
			last := ""
			for i := len(entries) - 1; i >= 0; i-- {
				e := entries[i]
				if e.Name != "shop" {
					continue
				}
				shopTrail = append(shopTrail, fmt.Sprintf("%s %s: %s", e.Author, e.Action, e.Summary))
				if e.HashBefore != last {
					t.Errorf("shop %s: hash before %q, want the last one after, %q", e.Action, e.HashBefore, last)
				}
				last = e.HashAfter
			}
			wantLines(t, "shop's audit", shopTrail, []string{
				` created: create security definition "shop"`,
				"ops resealed: secrets re-sealed with data key " + k(r1),
				` updated: update security definition "shop"`,
				"ops resealed: secrets re-sealed with data key " + k(r2),
				"ops resealed: secrets re-sealed with data key " + k(r3),
			})
		})
	}
}

// TestRotateKeyEmpty rotates a database that holds no secret yet.
func TestRotateKeyEmpty(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		r := rotate(t, s)
		if r.KeyID <= 0 || r.Resealed != 0 {
			t.Fatalf("rotation = %+v, want a key and nothing re-sealed", r)
		}
		wantRevision(t, s, 0)
		// The CA stored afterwards is sealed with the data key.
		if _, _, _, err := s.InitCA(context.Background(), []byte("ca-cert"), []byte(caKey)); err != nil {
			t.Fatal(err)
		}
		wantSealedWith(t, s, r.KeyID, []string{caKey})
		wantClear(t, s)
	})
}

// TestRotateKeyRaces rotates on one replica while another keeps changing
// a secret and readers on both keep reading: every read opens to a value
// that was written, and once all is done every value is sealed with the
// newest key, none with a retired one.
func TestRotateKeyRaces(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			a, replica := storetest.Open(t, b), storetest.Open(t, b)
			if _, _, _, err := a.InitCA(ctx, []byte("ca-cert"), []byte(caKey)); err != nil {
				t.Fatal(err)
			}
			full := everySecret("full")
			if _, err := a.CreateSecurityDefinition(ctx, full); err != nil {
				t.Fatal(err)
			}
			if _, err := a.CreateSecurityDefinition(ctx, basicAuth("shop", "pw-0")); err != nil {
				t.Fatal(err)
			}
			const rotations, writes = 4, 12

			done := make(chan struct{})
			var readers sync.WaitGroup
			errs := make(chan error, 100)
			for _, s := range []store.Store{a, replica} {
				readers.Go(func() {
					for {
						select {
						case <-done:
							return
						default:
						}
						defs, err := s.ListSecurityDefinitions(ctx)
						if err != nil {
							errs <- fmt.Errorf("list: %w", err)
							return
						}
						for _, d := range defs {
							if d.Name == "full" && d.Password != full.Password {
								errs <- fmt.Errorf("full's password read as %q", d.Password)
								return
							}
							if d.Name == "shop" && !strings.HasPrefix(d.Password, "pw-") {
								errs <- fmt.Errorf("shop's password read as %q", d.Password)
								return
							}
						}
						if _, key, err := s.CA(ctx); err != nil || string(key) != caKey {
							errs <- fmt.Errorf("CA key read as %q, %v", key, err)
							return
						}
					}
				})
			}
			var work sync.WaitGroup
			var newest int64
			work.Go(func() {
				for range rotations {
					r, err := a.RotateKey(ctx)
					if err != nil {
						errs <- fmt.Errorf("rotate: %w", err)
						return
					}
					newest = r.KeyID
				}
			})
			work.Go(func() {
				for i := range writes {
					if _, err := replica.UpdateSecurityDefinition(ctx, basicAuth("shop", fmt.Sprintf("pw-%d", i+1))); err != nil {
						errs <- fmt.Errorf("update: %w", err)
						return
					}
				}
			})
			work.Wait()
			close(done)
			readers.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if t.Failed() {
				return
			}
			wantSealedWith(t, a, newest, []string{caKey, "pw-"})
			wantClear(t, replica, full, basicAuth("shop", fmt.Sprintf("pw-%d", writes)))
			wantRevision(t, a, 2+writes)
		})
	}
}

// TestRotateKeyBusyReplica reads, on a replica that did not rotate, the
// values a rotation re-sealed, from more read transactions at once than
// the replica has connections: the key they name is loaded all the same.
func TestRotateKeyBusyReplica(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			a, replica := storetest.Open(t, b), storetest.Open(t, b)
			shop := basicAuth("shop", "pw-busy")
			if _, err := a.CreateSecurityDefinition(ctx, shop); err != nil {
				t.Fatal(err)
			}
			rotate(t, a)
			const readers = 32 // more than either backend's pool
			var wg sync.WaitGroup
			errs := make(chan error, readers)
			for range readers {
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
					defer cancel()
					d, err := replica.Desired(ctx)
					switch {
					case err != nil:
						errs <- err
					case len(d.Security) != 1 || d.Security[0].Password != shop.Password:
						errs <- fmt.Errorf("desired security = %+v", d.Security)
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}
