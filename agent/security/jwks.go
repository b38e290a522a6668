package security

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"sync"
	"time"
)

// maxJWKSSize bounds a JWKS document.
const maxJWKSSize = 1 << 20

type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

type jwksKey struct {
	kid string
	alg string // from the JWK, may be empty
	key crypto.PublicKey
}

// jwksCache holds the keys of one JWKS URL. Keys are fetched when first
// needed, again after the TTL, and again (at most every minPeriod) when a
// token names an unknown key id, which is how key rotation shows up.
type jwksCache struct {
	url       string
	client    *http.Client
	logger    *slog.Logger
	now       func() time.Time
	ttl       time.Duration
	minPeriod time.Duration

	// sem is a one-slot semaphore held while deciding on and doing a
	// fetch, so concurrent verifiers share one fetch and still honour their
	// contexts. Verifications whose key is cached never wait for it.
	sem chan struct{}

	mu          sync.Mutex // guards the fields below; never held during I/O
	keys        []jwksKey
	fetched     time.Time // last successful fetch
	lastAttempt time.Time
}

func newJWKSCache(url string, o options) *jwksCache {
	return &jwksCache{
		url:       url,
		client:    o.client,
		logger:    o.logger,
		now:       o.now,
		ttl:       o.jwksTTL,
		minPeriod: o.jwksMinPeriod,
		sem:       make(chan struct{}, 1),
	}
}

// candidates returns the keys that may have signed a token with kid and alg.
func (c *jwksCache) candidates(ctx context.Context, kid, alg string) ([]crypto.PublicKey, error) {
	if keys := c.cached(kid, alg, c.now()); len(keys) > 0 {
		return keys, nil
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-c.sem }()

	now := c.now()
	// Another caller may have fetched while we waited.
	if keys := c.cached(kid, alg, now); len(keys) > 0 {
		return keys, nil
	}
	c.mu.Lock()
	// Every fetch, failed or not, waits minPeriod after the previous one,
	// so neither unknown key ids nor a JWKS outage make us hammer the URL.
	canFetch := c.lastAttempt.IsZero() || now.Sub(c.lastAttempt) >= c.minPeriod
	stale := c.fetched.IsZero() || now.Sub(c.fetched) >= c.ttl
	keys := c.match(kid, alg)
	everFetched := !c.fetched.IsZero()
	c.mu.Unlock()

	// Fetch when the keys are stale, or when the key is unknown (rotation).
	if canFetch && (stale || len(keys) == 0) {
		if err := c.refresh(ctx, now); err != nil {
			if len(keys) > 0 {
				return keys, nil // keep using stale keys during an outage
			}
			return nil, err
		}
		c.mu.Lock()
		keys = c.match(kid, alg)
		c.mu.Unlock()
		everFetched = true
	}
	if len(keys) == 0 {
		if !everFetched {
			return nil, errors.New("JWKS not available yet")
		}
		return nil, fmt.Errorf("no key with id %q for %s", kid, alg)
	}
	return keys, nil
}

// cached returns the matching keys if the set is fresh.
func (c *jwksCache) cached(kid, alg string, now time.Time) []crypto.PublicKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fetched.IsZero() || now.Sub(c.fetched) >= c.ttl {
		return nil
	}
	return c.match(kid, alg)
}

// match returns the held keys for kid and alg; c.mu must be held.
func (c *jwksCache) match(kid, alg string) []crypto.PublicKey {
	var out []crypto.PublicKey
	for _, k := range c.keys {
		if kid != "" && k.kid != kid {
			continue
		}
		if k.alg != "" && k.alg != alg {
			continue
		}
		out = append(out, k.key)
	}
	return out
}

// refresh fetches the JWKS; on failure the keys already held stay in use.
// The caller holds c.sem.
func (c *jwksCache) refresh(ctx context.Context, now time.Time) error {
	c.mu.Lock()
	c.lastAttempt = now
	c.mu.Unlock()
	keys, err := c.fetch(ctx)
	if err != nil {
		c.logger.Warn("JWKS fetch failed", "url", c.url, "err", err)
		return err
	}
	c.mu.Lock()
	c.keys, c.fetched = keys, now
	c.mu.Unlock()
	c.logger.Debug("JWKS fetched", "url", c.url, "keys", len(keys))
	return nil
}

func (c *jwksCache) fetch(ctx context.Context) ([]jwksKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS %s: %w", c.url, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch JWKS %s: status %s", c.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSSize+1))
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS %s: %w", c.url, err)
	}
	if len(body) > maxJWKSSize {
		return nil, fmt.Errorf("fetch JWKS %s: larger than %d bytes", c.url, maxJWKSSize)
	}
	return parseJWKS(body, c.logger)
}

func parseJWKS(body []byte, logger *slog.Logger) ([]jwksKey, error) {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("parse JWKS: %w", err)
	}
	var out []jwksKey
	for i, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		pub, err := k.publicKey()
		if err != nil {
			logger.Debug("JWKS key skipped", "index", i, "kid", k.Kid, "err", err)
			continue
		}
		out = append(out, jwksKey{kid: k.Kid, alg: k.Alg, key: pub})
	}
	if len(out) == 0 {
		return nil, errors.New("parse JWKS: no usable RSA or EC P-256 signing key")
	}
	return out, nil
}

func (k jwk) publicKey() (crypto.PublicKey, error) {
	b64 := base64.RawURLEncoding
	switch k.Kty {
	case "RSA":
		n, err := b64.DecodeString(k.N)
		if err != nil {
			return nil, errors.New("n is not base64url")
		}
		e, err := b64.DecodeString(k.E)
		if err != nil || len(e) == 0 || len(e) > 4 {
			return nil, errors.New("e is not a valid exponent")
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("RSA key has %d bits, want at least %d", pub.N.BitLen(), minRSABits)
		}
		if pub.E < 3 || pub.E%2 == 0 {
			return nil, errors.New("e is not a valid exponent")
		}
		return pub, nil
	case "EC":
		if k.Crv != "P-256" {
			return nil, fmt.Errorf("curve %q is not supported", k.Crv)
		}
		x, errX := b64.DecodeString(k.X)
		y, errY := b64.DecodeString(k.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return nil, errors.New("x and y must be 32 bytes of base64url")
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, fmt.Errorf("EC point: %w", err)
		}
		return pub, nil
	}
	return nil, fmt.Errorf("key type %q is not supported", k.Kty)
}
