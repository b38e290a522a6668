package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/weft-dev/weft/controlplane/auth"
	"github.com/weft-dev/weft/controlplane/config"
	"github.com/weft-dev/weft/controlplane/pki"
	"github.com/weft-dev/weft/controlplane/store"
)

// loadCA returns the CA the config names: the operator's files, else the
// one in the database, made there on the first start.
func loadCA(ctx context.Context, cfg config.Config, st store.Store, log *slog.Logger) (*pki.CA, error) {
	if cfg.CACert != "" {
		certPEM, err := os.ReadFile(cfg.CACert)
		if err != nil {
			return nil, fmt.Errorf("--ca-cert: %w", err)
		}
		keyPEM, err := os.ReadFile(cfg.CAKey)
		if err != nil {
			return nil, fmt.Errorf("--ca-key: %w", err)
		}
		ca, err := pki.LoadCA(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("--ca-cert %s, --ca-key %s: %w", cfg.CACert, cfg.CAKey, err)
		}
		return ca, nil
	}
	certPEM, keyPEM, err := st.CA(ctx)
	if errors.Is(err, store.ErrNotFound) {
		newCert, newKey, err := pki.NewCA("Weft CA")
		if err != nil {
			return nil, err
		}
		var created bool
		certPEM, keyPEM, created, err = st.InitCA(store.WithAuthor(ctx, "first-start"), newCert, newKey)
		if err != nil {
			return nil, fmt.Errorf("store the CA: %w", err)
		}
		if created {
			log.Info("made the CA: its key is sealed in the database")
		}
	} else if err != nil {
		return nil, fmt.Errorf("read the CA: %w", err)
	}
	ca, err := pki.LoadCA(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("the CA in the database: %w", err)
	}
	return ca, nil
}

// writeCAFile writes the CA certificate where clients find it, replacing
// an older file at once.
func writeCAFile(path string, ca *pki.CA) error {
	if err := writeFileAtomic(path, ca.CertPEM(), 0o644); err != nil {
		return fmt.Errorf("write the CA certificate (--ca-file): %w", err)
	}
	return nil
}

// firstAdminToken makes the first admin token when the database holds no
// token at all, and writes its secret to path (mode 0600). The file is in
// place before the token counts, so a failed write leaves no token that
// nobody can use.
func firstAdminToken(ctx context.Context, st store.Store, path string, log *slog.Logger) error {
	secret := auth.NewSecret(auth.TokenPrefix)
	tmp, err := writeTemp(path, []byte(secret+"\n"), 0o600)
	if err != nil {
		return fmt.Errorf("write the first admin token (--admin-token-file): %w", err)
	}
	defer os.Remove(tmp)
	created, err := st.CreateFirstToken(store.WithAuthor(ctx, "first-start"), store.NewToken{
		Name: "admin", Role: store.RoleAdmin, Hash: auth.HashSecret(secret), CreatedBy: "first-start",
	})
	if err != nil {
		return fmt.Errorf("make the first admin token: %w", err)
	}
	if !created {
		return nil
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write the first admin token (--admin-token-file): %w", err)
	}
	log.Info("made the first admin token; weftctl and grpcurl send it as a bearer token", "file", path, "token", "admin")
	return nil
}

// serverTLS is the TLS config of the control plane's port: the server
// certificate from the CA for hosts, and client certificates verified
// against the CA when given (agents give one; people send tokens).
func serverTLS(ca *pki.CA, hosts []string) (*tls.Config, error) {
	if _, err := ca.ServerCertificate(hosts); err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return ca.ServerCertificate(hosts)
		},
		ClientAuth: tls.VerifyClientCertIfGiven,
		ClientCAs:  ca.Pool(),
		NextProtos: []string{"h2"},
	}, nil
}

// writeFileAtomic writes b to path through a temporary file in its
// directory, so path never holds part of it.
func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	tmp, err := writeTemp(path, b, mode)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// writeTemp writes b to a new temporary file beside path and returns its
// name.
func writeTemp(path string, b []byte, mode os.FileMode) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return "", err
	}
	name := f.Name()
	if err := f.Chmod(mode); err == nil {
		if _, err = f.Write(b); err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			return name, nil
		}
	} else {
		f.Close()
	}
	os.Remove(name)
	return "", err
}
