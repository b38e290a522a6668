// Package secrets encrypts secret values at rest (AES-256-GCM under one
// key file) and redacts them in reads and exports: the control plane's
// store and an agent's state directory seal the same way.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// KeySize is the length in bytes of a key for NewBox.
const KeySize = 32

// version1 prefixes every value sealed by this package.
const version1 = "v1"

var (
	// ErrUnknownVersion is returned by Open for a value sealed by a format it
	// does not know.
	ErrUnknownVersion = errors.New("unknown format version")
	// ErrDamaged is returned by Open for a value that is not well formed.
	ErrDamaged = errors.New("damaged value")
	// ErrWrongKey is returned by Open when authentication fails: the value
	// was sealed with another key, or its bytes were altered. AES-GCM cannot
	// tell these two apart.
	ErrWrongKey = errors.New("wrong key, or the value was altered")
)

// Box seals and opens secret values with one AES-256-GCM key. It is safe
// for concurrent use.
type Box struct {
	aead cipher.AEAD
}

// NewBox returns a Box using key, which must be KeySize bytes.
func NewBox(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secrets key: %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts plaintext under a fresh random nonce and returns
// "v1:" + base64(nonce|ciphertext).
func (b *Box) Seal(plaintext []byte) (string, error) {
	nonce := make([]byte, b.aead.NonceSize(), b.aead.NonceSize()+len(plaintext)+b.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal: nonce: %w", err)
	}
	out := b.aead.Seal(nonce, nonce, plaintext, []byte(version1))
	return version1 + ":" + base64.StdEncoding.EncodeToString(out), nil
}

// Open decrypts a value made by Seal. Its errors wrap ErrUnknownVersion,
// ErrDamaged or ErrWrongKey.
func (b *Box) Open(s string) ([]byte, error) {
	version, body, ok := strings.Cut(s, ":")
	if !ok {
		return nil, fmt.Errorf("open secret: %w: no version prefix (want %q)", ErrDamaged, version1+":")
	}
	if version != version1 {
		return nil, fmt.Errorf("open secret: %w %q (this build reads %q)", ErrUnknownVersion, version, version1)
	}
	raw, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		return nil, fmt.Errorf("open secret: %w: bad base64: %v", ErrDamaged, err)
	}
	ns := b.aead.NonceSize()
	if len(raw) < ns+b.aead.Overhead() {
		return nil, fmt.Errorf("open secret: %w: %d bytes is too short", ErrDamaged, len(raw))
	}
	pt, err := b.aead.Open(nil, raw[:ns], raw[ns:], []byte(version1))
	if err != nil {
		return nil, fmt.Errorf("open secret: %w", ErrWrongKey)
	}
	return pt, nil
}

// IsSealed reports whether s looks like a value made by Seal (it does not
// check that it opens).
func IsSealed(s string) bool {
	return strings.HasPrefix(s, version1+":")
}

// LoadOrCreateKey reads the KeySize-byte key at path, creating the file
// (mode 0600, random key) when it is missing. It refuses a file of the
// wrong size or one readable or writable by group or others.
func LoadOrCreateKey(path string) ([]byte, error) {
	key, err := loadKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if err := createKey(path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	// Read back what is on disk: another process may have won the race.
	return loadKey(path)
}

func loadKey(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s: not a regular file", path)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("key file %s: permissions %04o are too wide, want 0600 (chmod 600 %s)",
			path, fi.Mode().Perm(), path)
	}
	key, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("key file %s: %d bytes, want %d", path, len(key), KeySize)
	}
	return key, nil
}

// createKey writes a random key to a temporary file next to path and links
// it into place, so path never holds a partial key and is never replaced.
func createKey(path string) error {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("create key file %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create key file %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, ".key-*")
	if err != nil {
		return fmt.Errorf("create key file %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("create key file %s: %w", path, err)
	}
	if _, err := tmp.Write(key); err != nil {
		tmp.Close()
		return fmt.Errorf("create key file %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("create key file %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("create key file %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		return fmt.Errorf("create key file %s: %w", path, err)
	}
	return nil
}
