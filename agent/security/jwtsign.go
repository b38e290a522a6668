package security

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// signedTokenLifetime is how long a JWT signed for an outgoing request is
// valid: long enough for clock skew, short enough to be worthless if seen.
const signedTokenLifetime = 5 * time.Minute

// jwtSigner presents a fresh HS256 JWT in "Authorization: Bearer" on every
// outgoing request, with the definition's issuer and audience, the time of
// issue, a five-minute expiry and a random id.
type jwtSigner struct {
	secret   []byte
	issuer   string
	audience string
	now      func() time.Time
}

func newJWTSigner(def Definition, o options) (*jwtSigner, error) {
	if def.Secret == "" || !slices.Contains(def.Algorithms, HS256) {
		return nil, fmt.Errorf("%s: outbound requests are signed with HS256: algorithms must include HS256 and secret must be set", def)
	}
	return &jwtSigner{secret: []byte(def.Secret), issuer: def.Issuer, audience: def.Audience, now: o.now}, nil
}

// Apply signs a token and sets it on req.
func (s *jwtSigner) Apply(_ context.Context, req *http.Request) error {
	tok, err := s.sign()
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	return nil
}

func (s *jwtSigner) sign() (string, error) {
	now := s.now()
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	claims := map[string]any{
		"iss": s.issuer,
		"iat": now.Unix(),
		"exp": now.Add(signedTokenLifetime).Unix(),
		"jti": hex.EncodeToString(id),
	}
	if s.audience != "" {
		claims["aud"] = s.audience
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("sign a JWT: %w", err)
	}
	enc := base64.RawURLEncoding
	signed := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(payload)
	mac := hmac.New(sha256.New, s.secret)
	mac.Write([]byte(signed))
	return signed + "." + enc.EncodeToString(mac.Sum(nil)), nil
}
