package app

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weft-dev/weft/agent/shared/secrets"
	"github.com/weft-dev/weft/controlplane/config"
)

// parse is the config of a control plane on a free port with the
// database in dir.
func parse(t *testing.T, dir string, args ...string) config.Config {
	t.Helper()
	cfg, err := config.Parse(append([]string{"--listen", "127.0.0.1:0", "--db", "sqlite:" + filepath.Join(dir, "weft.db")}, args...))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestRunCreatesTheSecretsKeyBesideTheDatabase(t *testing.T) {
	t.Setenv("WEFT_SECRETS_KEY", "")
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, parse(t, dir), slog.New(slog.DiscardHandler)) }()

	path := filepath.Join(dir, "weft-secrets.key")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "weft.db")); err == nil {
			break // the store opens after the key is loaded
		}
		select {
		case err := <-done:
			t.Fatalf("Run ended early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the database never appeared")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no key beside the database: %v", err)
	}
	if fi.Size() != secrets.KeySize || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %d bytes, mode %04o; want %d bytes, 0600", fi.Size(), fi.Mode().Perm(), secrets.KeySize)
	}
}

func TestRunRefusesABadSecretsKey(t *testing.T) {
	t.Setenv("WEFT_SECRETS_KEY", "")
	dir := t.TempDir()
	short := filepath.Join(dir, "short.key")
	if err := os.WriteFile(short, []byte("12345"), 0o600); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(dir, "open.key")
	if err := os.WriteFile(open, make([]byte, secrets.KeySize), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o644); err != nil { // not left to the umask
		t.Fatal(err)
	}
	tests := []struct {
		name string
		key  string
		want string
	}{
		{"wrong size", short, short + ": 5 bytes, want 32"},
		{"readable by others", open, open + ": permissions 0644 are too wide"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := Run(ctx, parse(t, dir, "--secrets-key", tt.key), slog.New(slog.DiscardHandler))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run = %v, want an error containing %q", err, tt.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "weft.db")); err == nil {
				t.Fatal("the database was opened despite the bad key")
			}
		})
	}
}
