package security

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"time"
)

// maxTokenSize bounds the JWT accepted, before any decoding.
const maxTokenSize = 16 << 10

type jwtVerifier struct {
	name     string
	algs     []string
	secret   []byte
	pub      crypto.PublicKey // from PublicKeyPEM, or nil
	jwks     *jwksCache       // from JWKSURL, or nil
	issuer   string
	audience string
	leeway   time.Duration
	now      func() time.Time
	realm    string
}

func newJWTVerifier(def Definition, o options) (*jwtVerifier, error) {
	v := &jwtVerifier{
		name:     def.Name,
		algs:     slices.Clone(def.Algorithms),
		issuer:   def.Issuer,
		audience: def.Audience,
		leeway:   def.Leeway,
		now:      o.now,
		realm:    o.realm,
	}
	if def.Secret != "" {
		v.secret = []byte(def.Secret)
	}
	if def.PublicKeyPEM != "" {
		pub, err := def.publicKey()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", def, err)
		}
		v.pub = pub
	}
	if def.JWKSURL != "" {
		v.jwks = newJWKSCache(def.JWKSURL, o)
	}
	return v, nil
}

// refuse builds the 401 for a present but bad token (RFC 6750 3.1).
func (v *jwtVerifier) refuse(format string, args ...any) *AuthError {
	msg := fmt.Sprintf(format, args...)
	return &AuthError{
		Status:    http.StatusUnauthorized,
		Challenge: fmt.Sprintf("Bearer realm=%s, error=\"invalid_token\", error_description=%s", quote(v.realm), quote(msg)),
		Message:   msg,
	}
}

type jwtHeader struct {
	Alg  string   `json:"alg"`
	Kid  string   `json:"kid"`
	Crit []string `json:"crit"`
}

func (v *jwtVerifier) Verify(r *http.Request) (Principal, error) {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		// No credentials: a challenge without an error code (RFC 6750 3.1).
		return Principal{}, &AuthError{
			Status:    http.StatusUnauthorized,
			Challenge: fmt.Sprintf("Bearer realm=%s", quote(v.realm)),
			Message:   "bearer token required",
		}
	}
	if len(token) > maxTokenSize {
		return Principal{}, v.refuse("token is too large")
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return Principal{}, v.refuse("token is not a JWS compact serialization")
	}
	var hdr jwtHeader
	if err := decodeSegment(parts[0], &hdr); err != nil {
		return Principal{}, v.refuse("token header: %v", err)
	}
	if hdr.Alg == "" || strings.EqualFold(hdr.Alg, "none") || !slices.Contains(v.algs, hdr.Alg) {
		return Principal{}, v.refuse("token algorithm %q is not allowed", hdr.Alg)
	}
	if len(hdr.Crit) > 0 {
		return Principal{}, v.refuse("token header has unsupported critical extensions")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return Principal{}, v.refuse("token signature is not base64url")
	}
	signed := []byte(parts[0] + "." + parts[1])
	if err := v.checkSignature(r.Context(), hdr, signed, sig); err != nil {
		return Principal{}, err
	}
	var claims map[string]any
	if err := decodeSegment(parts[1], &claims); err != nil {
		return Principal{}, v.refuse("token claims: %v", err)
	}
	if err := v.checkClaims(claims); err != nil {
		return Principal{}, err
	}
	sub, _ := claims["sub"].(string)
	return Principal{Definition: v.name, Kind: KindJWT, Subject: sub, Claims: claims}, nil
}

func (v *jwtVerifier) checkSignature(ctx context.Context, hdr jwtHeader, signed, sig []byte) error {
	if hdr.Alg == HS256 {
		mac := hmac.New(sha256.New, v.secret)
		mac.Write(signed)
		if !hmac.Equal(mac.Sum(nil), sig) {
			return v.refuse("token signature is invalid")
		}
		return nil
	}
	digest := sha256.Sum256(signed)
	if v.pub != nil {
		if !verifyWith(v.pub, hdr.Alg, digest[:], sig) {
			return v.refuse("token signature is invalid")
		}
		return nil
	}
	keys, err := v.jwks.candidates(ctx, hdr.Kid, hdr.Alg)
	if err != nil {
		// The details (URL, network error) are logged by the cache, not
		// sent to the caller.
		return v.refuse("token signing key is not known")
	}
	for _, k := range keys {
		if verifyWith(k, hdr.Alg, digest[:], sig) {
			return nil
		}
	}
	return v.refuse("token signature is invalid")
}

// verifyWith checks sig over a SHA-256 digest; a key of the wrong type for
// alg never verifies, which rules out algorithm confusion.
func verifyWith(key crypto.PublicKey, alg string, digest, sig []byte) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return alg == RS256 && rsa.VerifyPKCS1v15(k, crypto.SHA256, digest, sig) == nil
	case *ecdsa.PublicKey:
		// JWS ES256 signatures are r||s, 32 bytes each (RFC 7518 3.4).
		if alg != ES256 || len(sig) != 64 {
			return false
		}
		rr := new(big.Int).SetBytes(sig[:32])
		ss := new(big.Int).SetBytes(sig[32:])
		return ecdsa.Verify(k, digest, rr, ss)
	}
	return false
}

func (v *jwtVerifier) checkClaims(c map[string]any) error {
	now := v.now()
	exp, ok, err := numericDate(c, "exp")
	switch {
	case err != nil:
		return v.refuse("%v", err)
	case !ok:
		return v.refuse("token has no exp claim")
	case !now.Before(exp.Add(v.leeway)):
		return v.refuse("token is expired")
	}
	if nbf, ok, err := numericDate(c, "nbf"); err != nil {
		return v.refuse("%v", err)
	} else if ok && now.Add(v.leeway).Before(nbf) {
		return v.refuse("token is not valid yet")
	}
	if iat, ok, err := numericDate(c, "iat"); err != nil {
		return v.refuse("%v", err)
	} else if ok && now.Add(v.leeway).Before(iat) {
		return v.refuse("token is issued in the future")
	}
	if iss, _ := c["iss"].(string); iss != v.issuer {
		return v.refuse("token issuer is not accepted")
	}
	if v.audience != "" && !hasAudience(c["aud"], v.audience) {
		return v.refuse("token audience is not accepted")
	}
	return nil
}

func hasAudience(aud any, want string) bool {
	switch a := aud.(type) {
	case string:
		return a == want
	case []any:
		for _, x := range a {
			if s, ok := x.(string); ok && s == want {
				return true
			}
		}
	}
	return false
}

// numericDate reads a NumericDate claim (RFC 7519 2).
func numericDate(c map[string]any, name string) (time.Time, bool, error) {
	raw, ok := c[name]
	if !ok {
		return time.Time{}, false, nil
	}
	n, ok := raw.(json.Number)
	if !ok {
		return time.Time{}, false, fmt.Errorf("token %s claim is not a number", name)
	}
	f, err := n.Float64()
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) || f < 0 || f > 1e11 {
		return time.Time{}, false, fmt.Errorf("token %s claim is not a valid date", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

func decodeSegment(seg string, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return errors.New("not base64url")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return errors.New("not a JSON object")
	}
	if dec.More() {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}
