package security

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/weft-dev/weft/agent/shared/secdef"
)

// maxJWKSSize bounds a JWKS document.
const maxJWKSSize = 1 << 20

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

	mu          sync.Mutex        // guards the fields below; never held during I/O
	keys        []jose.JSONWebKey // public signing keys only
	fetched     time.Time         // last successful fetch
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

// candidates returns the keys that may have signed a token with kid and
// alg, for jose.JSONWebSignature.Verify.
func (c *jwksCache) candidates(ctx context.Context, kid, alg string) ([]any, error) {
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
func (c *jwksCache) cached(kid, alg string, now time.Time) []any {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fetched.IsZero() || now.Sub(c.fetched) >= c.ttl {
		return nil
	}
	return c.match(kid, alg)
}

// match returns the held keys for kid and alg; c.mu must be held.
func (c *jwksCache) match(kid, alg string) []any {
	var out []any
	for _, k := range c.keys {
		if kid != "" && k.KeyID != kid {
			continue
		}
		if k.Algorithm != "" && k.Algorithm != alg {
			continue
		}
		out = append(out, k.Key)
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

func (c *jwksCache) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
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

// parseJWKS returns the usable signing keys of a JWKS. Each key is parsed
// on its own so that one go-jose cannot read, or one we do not accept, is
// skipped rather than failing the set (RFC 7517 5).
func parseJWKS(body []byte, logger *slog.Logger) ([]jose.JSONWebKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("parse JWKS: %w", err)
	}
	var out []jose.JSONWebKey
	for i, raw := range set.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			logger.Debug("JWKS key skipped", "index", i, "err", err)
			continue
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		kid := k.KeyID
		k = k.Public() // a published private key is used as its public half
		if err := usableJWK(k); err != nil {
			logger.Debug("JWKS key skipped", "index", i, "kid", kid, "err", err)
			continue
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		return nil, errors.New("parse JWKS: no usable RSA or EC P-256 signing key")
	}
	return out, nil
}

// usableJWK applies the rules public_key_pem keys follow: RSA of at least
// secdef.MinRSABits, or EC on P-256.
func usableJWK(k jose.JSONWebKey) error {
	switch pub := k.Key.(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() < secdef.MinRSABits {
			return fmt.Errorf("RSA key has %d bits, want at least %d", pub.N.BitLen(), secdef.MinRSABits)
		}
		if pub.E < 3 || pub.E%2 == 0 {
			return errors.New("e is not a valid exponent")
		}
		return nil
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return fmt.Errorf("curve %s is not supported", pub.Curve.Params().Name)
		}
		return nil
	}
	return fmt.Errorf("key type %T is not supported", k.Key)
}
