package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/weft-dev/weft/controlplane/store"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// TestCredentialsStayWithTheirOrigin: the connections using one security
// definition name one origin. A second connection elsewhere, by create,
// update or import, is refused with nothing stored; moving the one
// connection is allowed (and audited, see
// TestOutgoingAddressMovesAreAudited); the same origin written another way
// is the same origin.
func TestCredentialsStayWithTheirOrigin(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		if _, err := s.CreateSecurityDefinition(ctx, &adminv1.SecurityDefinition{Name: "crm-token", Kind: "bearer", Token: "t-123"}); err != nil {
			t.Fatal(err)
		}
		crm := connection("crm", "crm-token")
		crm.Address = "https://crm.example"
		if _, err := s.CreateOutgoingConnection(ctx, crm); err != nil {
			t.Fatal(err)
		}
		same := connection("crm-bulk", "crm-token")
		same.Address = "https://CRM.example:443/bulk"
		if _, err := s.CreateOutgoingConnection(ctx, same); err != nil {
			t.Fatalf("the same origin written another way: %v", err)
		}
		rev, _ := s.Revision(ctx)

		evil := connection("evil", "crm-token")
		evil.Address = "http://attacker.example:8080"
		_, err := s.CreateOutgoingConnection(ctx, evil)
		want := `outgoing connection "evil" names http://attacker.example:8080, but security definition "crm-token"'s credentials go to https://crm.example:443 (outgoing connection "crm")`
		if !errors.Is(err, store.ErrOtherOrigin) || !strings.Contains(err.Error(), want) {
			t.Fatalf("create elsewhere: %v; want ErrOtherOrigin with %q", err, want)
		}
		plain := connection("plain", "")
		plain.Address = "http://attacker.example:8080"
		if _, err := s.CreateOutgoingConnection(ctx, plain); err != nil {
			t.Fatal(err)
		}
		plain.Security = "crm-token"
		if _, err := s.UpdateOutgoingConnection(ctx, plain); !errors.Is(err, store.ErrOtherOrigin) {
			t.Fatalf("update onto the definition: %v; want ErrOtherOrigin", err)
		}
		now, _ := s.Revision(ctx)
		_, err = s.ApplyConfig(ctx, "test", store.ConfigChange{BaseRevision: now, Outgoing: []*adminv1.OutgoingConnection{evil}})
		if !errors.Is(err, store.ErrOtherOrigin) {
			t.Fatalf("import elsewhere: %v; want ErrOtherOrigin", err)
		}
		if _, err := s.GetOutgoingConnection(ctx, "evil"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a refused connection was stored: %v", err)
		}
		if after, _ := s.Revision(ctx); after != rev+1 {
			t.Fatalf("revision %d after the refusals; want %d (only the plain connection)", after, rev+1)
		}

		// Both connections move together: allowed, in one import.
		crm.Address, same.Address = "https://crm-2.example", "https://crm-2.example/bulk"
		if _, err := s.ApplyConfig(ctx, "test", store.ConfigChange{BaseRevision: rev + 1, Outgoing: []*adminv1.OutgoingConnection{crm, same}}); err != nil {
			t.Fatalf("moving every user of the definition: %v", err)
		}
	})
}
