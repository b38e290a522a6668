// Package certfile serves a TLS certificate from a certificate and a key
// file, and takes them again when they change: a renewed certificate is
// used for the next handshakes without a restart.
package certfile

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// checkEvery is how often the files are looked at, at most: a handshake
// after it stats them and reloads them when either changed.
const checkEvery = time.Second

// Reloader holds the certificate of a pair of files.
type Reloader struct {
	certFile, keyFile string
	log               *slog.Logger
	now               func() time.Time

	mu      sync.Mutex
	cert    *tls.Certificate
	seen    [2]stamp // of certFile and keyFile, when loaded
	checked time.Time
}

// stamp tells a file's version apart.
type stamp struct {
	mod  time.Time
	size int64
}

// New loads the pair of files, or says what is wrong with them.
func New(certFile, keyFile string, log *slog.Logger) (*Reloader, error) {
	r := &Reloader{certFile: certFile, keyFile: keyFile, log: log, now: time.Now}
	stamps, err := r.stamps()
	if err != nil {
		return nil, err
	}
	if err := r.load(stamps); err != nil {
		return nil, err
	}
	return r, nil
}

// GetCertificate is for tls.Config.GetCertificate: the certificate of the
// files, loaded again when they changed. A pair that no longer loads (a
// renewal half written, a key that does not match) leaves the previous
// certificate in use, and says so in the log.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.checked) >= checkEvery {
		r.checked = now
		stamps, err := r.stamps()
		if err == nil && stamps != r.seen {
			err = r.load(stamps)
			if err == nil {
				r.log.Info("loaded a changed TLS certificate", "cert", r.certFile, "not_after", r.cert.Leaf.NotAfter)
			}
		}
		if err != nil {
			r.log.Warn("keeping the TLS certificate in use: its files do not load", "err", err)
		}
	}
	return r.cert, nil
}

func (r *Reloader) stamps() ([2]stamp, error) {
	var out [2]stamp
	for i, f := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return out, fmt.Errorf("TLS certificate: %w", err)
		}
		out[i] = stamp{fi.ModTime(), fi.Size()}
	}
	return out, nil
}

// load reads the pair; the caller holds r.mu, or r is not shared yet.
func (r *Reloader) load(stamps [2]stamp) error {
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("TLS certificate %s and key %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert, r.seen = &cert, stamps
	return nil
}
