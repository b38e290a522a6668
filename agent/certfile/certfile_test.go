package certfile

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writePair writes a self-signed certificate named cn and its key.
func writePair(t *testing.T, certFile, keyFile, cn string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func served(t *testing.T, r *Reloader) string {
	t.Helper()
	c, err := r.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	return c.Leaf.Subject.CommonName
}

func TestReloader(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if _, err := New(certFile, keyFile, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "cert.pem") {
		t.Fatalf("New without files: %v; want an error naming the file", err)
	}
	writePair(t, certFile, keyFile, "first")
	var logs bytes.Buffer
	r, err := New(certFile, keyFile, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	r.now = func() time.Time { return now }
	if got := served(t, r); got != "first" {
		t.Fatalf("served %q", got)
	}

	// Renewed: seen once checkEvery has passed, not before.
	writePair(t, certFile, keyFile, "second")
	r.checked = now
	if got := served(t, r); got != "first" {
		t.Fatalf("before checkEvery: served %q, want first", got)
	}
	now = now.Add(checkEvery)
	if got := served(t, r); got != "second" {
		t.Fatalf("after a renewal: served %q, want second", got)
	}
	if !strings.Contains(logs.String(), "loaded a changed TLS certificate") {
		t.Errorf("log: %s", logs.String())
	}

	// A key that does not match, then a broken file: the last good pair.
	other := filepath.Join(dir, "other-cert.pem")
	writePair(t, other, keyFile, "third")
	now = now.Add(checkEvery)
	if got := served(t, r); got != "second" {
		t.Fatalf("with a mismatched key: served %q, want second", got)
	}
	if err := os.WriteFile(certFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	now = now.Add(checkEvery)
	if got := served(t, r); got != "second" {
		t.Fatalf("with a broken file: served %q, want second", got)
	}
	if !strings.Contains(logs.String(), "keeping the TLS certificate in use") {
		t.Errorf("log: %s", logs.String())
	}
	// Mended: taken.
	writePair(t, certFile, keyFile, "fourth")
	now = now.Add(checkEvery)
	if got := served(t, r); got != "fourth" {
		t.Fatalf("mended: served %q, want fourth", got)
	}
}
