package secrets

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func newTestBox(t *testing.T, fill byte) *Box {
	t.Helper()
	b, err := NewBox(bytes.Repeat([]byte{fill}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	b := newTestBox(t, 1)
	for _, pt := range []string{"", "hunter2", strings.Repeat("x", 10000)} {
		s, err := b.Seal([]byte(pt))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(s, "v1:") || !IsSealed(s) {
			t.Fatalf("sealed value %q lacks v1: prefix", s)
		}
		if pt != "" && strings.Contains(s, pt) {
			t.Fatal("sealed value contains the plaintext")
		}
		got, err := b.Open(s)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != pt {
			t.Fatalf("Open = %q, want %q", got, pt)
		}
	}
	s1, _ := b.Seal([]byte("same"))
	s2, _ := b.Seal([]byte("same"))
	if s1 == s2 {
		t.Fatal("two seals of the same value are equal: nonce reused")
	}
}

func TestOpenErrors(t *testing.T) {
	b := newTestBox(t, 1)
	sealed, err := b.Seal([]byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(sealed, "v1:"))
	flipped := bytes.Clone(raw)
	flipped[len(flipped)-1] ^= 1
	tests := []struct {
		name string
		box  *Box
		in   string
		want error
	}{
		{"wrong key", newTestBox(t, 2), sealed, ErrWrongKey},
		{"tampered", b, "v1:" + base64.StdEncoding.EncodeToString(flipped), ErrWrongKey},
		{"truncated", b, "v1:" + base64.StdEncoding.EncodeToString(raw[:10]), ErrDamaged},
		{"bad base64", b, "v1:%%%", ErrDamaged},
		{"no prefix", b, "plaintext", ErrDamaged},
		{"unknown version", b, "v9:" + strings.TrimPrefix(sealed, "v1:"), ErrUnknownVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.box.Open(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestNewBoxKeySize(t *testing.T) {
	if _, err := NewBox(make([]byte, 16)); err == nil || !strings.Contains(err.Error(), "16 bytes, want 32") {
		t.Fatalf("NewBox(16 bytes) error = %v", err)
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	t.Run("creates then reloads", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "sub", "secrets.key")
		k1, err := LoadOrCreateKey(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(k1) != KeySize {
			t.Fatalf("key is %d bytes", len(k1))
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("mode = %04o, want 0600", fi.Mode().Perm())
		}
		k2, err := LoadOrCreateKey(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(k1, k2) {
			t.Fatal("second load returned a different key")
		}
		entries, _ := os.ReadDir(filepath.Dir(path))
		if len(entries) != 1 {
			t.Fatalf("directory holds %d entries, want only the key", len(entries))
		}
	})
	t.Run("concurrent creators agree", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "k")
		const n = 8
		keys := make([][]byte, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				k, err := LoadOrCreateKey(path)
				if err != nil {
					t.Error(err)
				}
				keys[i] = k
			})
		}
		wg.Wait()
		for i := range keys {
			if !bytes.Equal(keys[i], keys[0]) {
				t.Fatalf("creator %d got a different key", i)
			}
		}
	})
	t.Run("wrong size", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "k")
		if err := os.WriteFile(path, []byte("short"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadOrCreateKey(path)
		if err == nil || !strings.Contains(err.Error(), "5 bytes, want 32") {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("too wide permissions", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "k")
		if err := os.WriteFile(path, make([]byte, KeySize), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadOrCreateKey(path)
		if err == nil || !strings.Contains(err.Error(), "permissions 0644 are too wide") {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		_, err := LoadOrCreateKey(t.TempDir())
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("error = %v", err)
		}
	})
}
