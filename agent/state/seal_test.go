package state

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// secretSnapshot holds a secret in every secret field of a definition.
func secretSnapshot(rev int64) *agentv1.Desired {
	return &agentv1.Desired{Revision: rev, Hash: "h", Security: []*adminv1.SecurityDefinition{{
		Name: "partner", Kind: "basic_auth", Username: "weft",
		Password: "s3cret-password", Key: "s3cret-key", Secret: "s3cret-hmac", Token: "s3cret-token",
		ClientSecret: "s3cret-client", KeyPem: "-----BEGIN PRIVATE KEY-----s3cret-pem",
	}}}
}

// TestSecretsSealedAtRest checks that the snapshot file and the backups
// hold no secret in clear, that they load back in clear, that the key is
// kept 0600, and that a file written before sealing still loads.
func TestSecretsSealedAtRest(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(dir, WithBackups(3))
	if err != nil {
		t.Fatal(err)
	}
	snap := secretSnapshot(1)
	if err := d.Save(snap); err != nil {
		t.Fatal(err)
	}
	if _, err := d.KeepBackup(snap, 2, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := snap.GetSecurity()[0].GetPassword(); got != "s3cret-password" {
		t.Fatalf("Save changed the caller's snapshot: %q", got)
	}
	err = filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() || fi.Name() == KeyFile {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte("s3cret")) {
			t.Errorf("%s holds a secret in clear", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	loaded, err := d.Load()
	if err != nil || !proto.Equal(loaded, snap) {
		t.Fatalf("Load = %v, %v; want the snapshot with its secrets in clear", loaded, err)
	}
	backups, err := d.Backups()
	if err != nil || len(backups) != 1 {
		t.Fatal(backups, err)
	}
	b, err := d.LoadBackup(backups[0].ID)
	if err != nil || !proto.Equal(b, snap) {
		t.Fatalf("LoadBackup = %v, %v", b, err)
	}

	// Reopened, the directory keeps its key.
	again, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if loaded, err := again.Load(); err != nil || !proto.Equal(loaded, snap) {
		t.Fatalf("after reopening: %v, %v", loaded, err)
	}

	// A file from before sealing (secrets in clear) loads; the next Save
	// seals them.
	old := t.TempDir()
	plain, err := proto.MarshalOptions{Deterministic: true}.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	od, err := Open(old)
	if err != nil {
		t.Fatal(err)
	}
	clear, err := od.encodePlain(plain)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(old, fileName), clear, 0o600); err != nil {
		t.Fatal(err)
	}
	if loaded, err := od.Load(); err != nil || !proto.Equal(loaded, snap) {
		t.Fatalf("a file with clear secrets: %v, %v", loaded, err)
	}

	// Another key cannot open them: the error says which file to look at.
	if err := os.Remove(filepath.Join(dir, KeyFile)); err != nil {
		t.Fatal(err)
	}
	other, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Load(); err == nil || !strings.Contains(err.Error(), KeyFile) {
		t.Fatalf("Load with another key: %v; want an error naming %s", err, KeyFile)
	}
}
