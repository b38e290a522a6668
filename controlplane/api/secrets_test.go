package api

import (
	"context"
	"strings"
	"testing"

	"github.com/weft-dev/weft/proto/marks"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// TestRotateKey rotates the secrets key through the API: the answer names
// the new data key and counts the values re-sealed, the revision (and so
// the watch agents follow) does not move, the secret still reads
// redacted and opens in the store, and the log names no secret.
func TestRotateKey(t *testing.T) {
	e := newAdminEnv(t)
	ctx := context.Background()
	if _, err := e.security.CreateSecurityDefinition(ctx, &adminv1.CreateSecurityDefinitionRequest{
		Definition: &adminv1.SecurityDefinition{Name: "shop", Kind: "basic_auth", Username: "shop", Password: "pw-rotate-1"},
	}); err != nil {
		t.Fatal(err)
	}
	e.watchAt(t, 1)

	keys := adminv1.NewSecretsServiceClient(e.conn)
	for i := 1; i <= 2; i++ {
		res, err := keys.RotateKey(ctx, &adminv1.RotateKeyRequest{})
		if err != nil {
			t.Fatalf("rotation %d: %v", i, err)
		}
		if res.GetKeyId() <= 0 || res.GetResealed() != 1 || res.GetAt().AsTime().IsZero() {
			t.Errorf("rotation %d = %v; want a key id, 1 value re-sealed and a time", i, res)
		}
		e.watchAt(t, 1)
		if rev, err := e.store.Revision(ctx); err != nil || rev != 1 {
			t.Errorf("revision after rotation %d = %d, %v; want 1", i, rev, err)
		}
	}

	got, err := e.security.GetSecurityDefinition(ctx, &adminv1.GetSecurityDefinitionRequest{Name: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetDefinition().GetPassword() != marks.Redacted {
		t.Errorf("password reads %q, want it redacted", got.GetDefinition().GetPassword())
	}
	if d, err := e.store.GetSecurityDefinition(ctx, "shop"); err != nil || d.Password != "pw-rotate-1" {
		t.Errorf("stored password = %q, %v; want pw-rotate-1", d.Password, err)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "secrets key rotated") {
		t.Errorf("the log does not say the key was rotated:\n%s", logs)
	}
	if strings.Contains(logs, "pw-rotate-1") {
		t.Error("the log shows the secret")
	}
}
