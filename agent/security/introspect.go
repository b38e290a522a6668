package security

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/weft-dev/weft/agent/shared/secdef"
)

// inactiveCache bounds how long an answer that refuses a token is reused:
// a client repeating a bad token does not reach the endpoint each time,
// and a token that becomes valid is not refused for long.
const inactiveCache = 10 * time.Second

// introspectionTimeout bounds one call of the endpoint, whatever the HTTP
// client's own timeout.
const introspectionTimeout = 10 * time.Second

// maxIntrospectionAnswer bounds the body of an introspection answer.
const maxIntrospectionAnswer = 1 << 20

// defaultIntrospectionEntries bounds how many answers one definition
// keeps.
const defaultIntrospectionEntries = 10_000

// introspectionVerifier checks a bearer token by asking the OAuth2 token
// introspection endpoint (RFC 7662) of the definition, authenticated with
// HTTP basic client credentials (RFC 6749 2.3.1). Answers are cached by the
// token's SHA-256, never the token itself: active ones for the
// definition's cache time (never past the token's exp), inactive ones for
// at most inactiveCache. Concurrent requests with the same token share one
// call. An endpoint that cannot be reached, or does not answer 200 with an
// answer, makes the request fail with 503 and is not cached.
type introspectionVerifier struct {
	name         string
	url          string
	clientID     string
	clientSecret string
	scopes       []string
	audience     string
	ttl          time.Duration
	client       *http.Client
	logger       *slog.Logger
	now          func() time.Time
	realm        string

	flight     singleflight.Group
	mu         sync.Mutex // guards cache
	cache      map[[sha256.Size]byte]cachedAnswer
	maxEntries int
}

var _ Verifier = (*introspectionVerifier)(nil)

// cachedAnswer is an introspection answer and until when to use it.
type cachedAnswer struct {
	answer *introspection
	until  time.Time
}

// introspection is what an endpoint said of a token.
type introspection struct {
	active   bool
	scopes   []string
	audience []string
	exp, nbf time.Time // zero when absent
	subject  string
	raw      []byte // the answer, for the principal's claims
}

func newIntrospectionVerifier(def secdef.Definition, o options) *introspectionVerifier {
	ttl := time.Duration(def.CacheSeconds) * time.Second
	if ttl == 0 {
		ttl = secdef.DefaultIntrospectionCache
	}
	return &introspectionVerifier{
		name:         def.Name,
		url:          def.IntrospectionURL,
		clientID:     def.ClientID,
		clientSecret: def.ClientSecret,
		scopes:       def.Scopes,
		audience:     def.Audience,
		ttl:          ttl,
		client:       o.client,
		logger:       o.logger,
		now:          o.now,
		realm:        o.realm,
		cache:        map[[sha256.Size]byte]cachedAnswer{},
		maxEntries:   defaultIntrospectionEntries,
	}
}

// refuse builds the 401 for a present but refused token (RFC 6750 3.1).
func (v *introspectionVerifier) refuse(code, msg string) *AuthError {
	return &AuthError{
		Status:    http.StatusUnauthorized,
		Challenge: fmt.Sprintf("Bearer realm=%s, error=%q, error_description=%s", quote(v.realm), code, quote(msg)),
		Message:   msg,
	}
}

// unavailable is the answer to a request whose token could not be
// checked: a 503, not a 401, since the token may be good. The cause is in
// the agent's log.
func unavailable() *AuthError {
	return &AuthError{
		Status:  http.StatusServiceUnavailable,
		Message: "the bearer token cannot be checked now: the token introspection endpoint is unavailable (see the agent log); try again later",
	}
}

func (v *introspectionVerifier) Verify(r *http.Request) (Principal, error) {
	token, missing := bearerToken(r, v.realm)
	if missing != nil {
		return Principal{}, missing
	}
	if len(token) > maxTokenSize {
		return Principal{}, v.refuse("invalid_token", "token is too large")
	}
	key := sha256.Sum256([]byte(token))
	a, ok := v.cached(key, v.now())
	if !ok {
		var err error
		if a, err = v.lookup(r.Context(), key, token); err != nil {
			return Principal{}, err
		}
	}
	return v.check(a, v.now())
}

// check decides on a token by what the endpoint said of it.
func (v *introspectionVerifier) check(a *introspection, now time.Time) (Principal, error) {
	switch {
	case !a.active:
		return Principal{}, v.refuse("invalid_token", "token is not active")
	case !a.exp.IsZero() && !now.Before(a.exp):
		return Principal{}, v.refuse("invalid_token", "token is expired")
	case !a.nbf.IsZero() && now.Before(a.nbf):
		return Principal{}, v.refuse("invalid_token", "token is not valid yet")
	case v.audience != "" && !slices.Contains(a.audience, v.audience):
		return Principal{}, v.refuse("invalid_token", "token audience is not accepted")
	}
	var missing []string
	for _, s := range v.scopes {
		if !slices.Contains(a.scopes, s) {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		e := v.refuse("insufficient_scope", "token lacks scope "+strings.Join(missing, " "))
		e.Challenge += ", scope=" + quote(strings.Join(v.scopes, " "))
		return Principal{}, e
	}
	// A fresh copy for each request: services may change their claims.
	var claims map[string]any
	dec := json.NewDecoder(bytes.NewReader(a.raw))
	dec.UseNumber()
	_ = dec.Decode(&claims) // decoded once already
	return Principal{Definition: v.name, Kind: secdef.KindBearer, Subject: a.subject, Claims: claims}, nil
}

// cached returns the answer for the token of key if one is fresh.
func (v *introspectionVerifier) cached(key [sha256.Size]byte, now time.Time) (*introspection, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	c, ok := v.cache[key]
	if !ok || !now.Before(c.until) {
		return nil, false
	}
	return c.answer, true
}

// remember caches a, for the definition's cache time or until the token
// expires, whichever is first; an answer that refuses the token for at
// most inactiveCache. A full cache drops its stale answers, then any.
func (v *introspectionVerifier) remember(key [sha256.Size]byte, a *introspection, now time.Time) {
	until := now.Add(v.ttl)
	if !a.active {
		until = now.Add(min(v.ttl, inactiveCache))
	} else if !a.exp.IsZero() && a.exp.Before(until) {
		until = a.exp
		if !until.After(now) { // refused as expired from now on
			until = now.Add(min(v.ttl, inactiveCache))
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.cache[key]; !ok && len(v.cache) >= v.maxEntries {
		for k, c := range v.cache {
			if !now.Before(c.until) {
				delete(v.cache, k)
			}
		}
		// Still full: drop an eighth, whichever the map yields first, so
		// that the next inserts do not each walk the whole cache.
		for k := range v.cache {
			if len(v.cache) <= v.maxEntries-max(v.maxEntries/8, 1) {
				break
			}
			delete(v.cache, k)
		}
	}
	v.cache[key] = cachedAnswer{answer: a, until: until}
}

// lookup asks the endpoint about token, sharing one call among the
// requests that ask at the same time, and caches the answer. The call is
// not cut short when the request that started it goes away: the others
// may be waiting for it.
func (v *introspectionVerifier) lookup(ctx context.Context, key [sha256.Size]byte, token string) (*introspection, error) {
	ch := v.flight.DoChan(string(key[:]), func() (any, error) {
		if a, ok := v.cached(key, v.now()); ok { // answered while we waited
			return a, nil
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), introspectionTimeout)
		defer cancel()
		a, err := v.introspect(cctx, token)
		if err != nil {
			v.logger.Warn("token introspection failed", "definition", v.name, "url", v.url, "err", err)
			return nil, err
		}
		v.remember(key, a, v.now())
		return a, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, unavailable()
		}
		return res.Val.(*introspection), nil
	case <-ctx.Done():
		return nil, unavailable()
	}
}

// introspect calls the endpoint. Its errors name neither the token nor
// the client secret.
func (v *introspectionVerifier) introspect(ctx context.Context, token string) (*introspection, error) {
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, v.url, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("introspection request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// RFC 6749 2.3.1: the client id and secret are form-encoded first.
	req.SetBasicAuth(url.QueryEscape(v.clientID), url.QueryEscape(v.clientSecret))
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("introspection request: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxIntrospectionAnswer))
		hint := ""
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			hint = " (are client_id and client_secret right?)"
		}
		return nil, fmt.Errorf("introspection endpoint answered %s%s", resp.Status, hint)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxIntrospectionAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("read the introspection answer: %w", err)
	}
	if len(body) > maxIntrospectionAnswer {
		return nil, fmt.Errorf("the introspection answer is larger than %d bytes", maxIntrospectionAnswer)
	}
	a, err := parseIntrospection(body)
	if err != nil {
		return nil, fmt.Errorf("introspection answer: %w", err)
	}
	return a, nil
}

// parseIntrospection reads an RFC 7662 answer: "active", and for an
// active token "scope", "aud", "exp", "nbf", "sub" (or "username").
func parseIntrospection(body []byte) (*introspection, error) {
	var claims map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil || claims == nil || dec.More() {
		return nil, errors.New("not a JSON object")
	}
	active, ok := claims["active"].(bool)
	if !ok {
		return nil, errors.New(`"active" is missing or not a boolean`)
	}
	if !active {
		// Nothing else of an inactive token counts (RFC 7662 2.2).
		return &introspection{}, nil
	}
	a := &introspection{active: true, raw: body}
	if s, ok := claims["scope"]; ok {
		str, ok := s.(string)
		if !ok {
			return nil, errors.New(`"scope" is not a string`)
		}
		a.scopes = strings.Fields(str)
	}
	switch aud := claims["aud"].(type) {
	case nil:
	case string:
		a.audience = []string{aud}
	case []any:
		for _, x := range aud {
			s, ok := x.(string)
			if !ok {
				return nil, errors.New(`"aud" is not a string or a list of strings`)
			}
			a.audience = append(a.audience, s)
		}
	default:
		return nil, errors.New(`"aud" is not a string or a list of strings`)
	}
	for _, d := range []struct {
		name string
		dst  *time.Time
	}{{"exp", &a.exp}, {"nbf", &a.nbf}} {
		raw, ok := claims[d.name]
		if !ok || raw == nil {
			continue
		}
		n, ok := raw.(json.Number)
		if !ok {
			return nil, fmt.Errorf("%q is not a number", d.name)
		}
		f, err := n.Float64()
		if err != nil || !(f >= 0 && f <= maxNumericDate) {
			return nil, fmt.Errorf("%q is not a valid date", d.name)
		}
		sec := int64(f)
		*d.dst = time.Unix(sec, int64((f-float64(sec))*1e9))
	}
	for _, k := range []string{"sub", "username"} {
		if s, ok := claims[k].(string); ok && s != "" {
			a.subject = s
			break
		}
	}
	return a, nil
}
