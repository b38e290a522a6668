package security

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/weft-dev/weft/agent/shared/secdef"
)

// maxTokenSize bounds the JWT accepted, before any decoding.
const maxTokenSize = 16 << 10

// maxNumericDate is the latest exp, nbf or iat accepted (year 5138). It
// keeps go-jose's float-to-int64 conversion of NumericDate in range.
const maxNumericDate = 1e11

// Header parameters refused even under a good signature: "crit" names
// extensions nothing here implements (RFC 7515 4.1.11), and "b64"
// (RFC 7797) would make go-jose check another signing input. An embedded
// "jwk" is refused too: keys come only from the definition.
const (
	headerCrit jose.HeaderKey = "crit"
	headerB64  jose.HeaderKey = "b64"
)

type jwtVerifier struct {
	name     string
	algs     []jose.SignatureAlgorithm
	secret   []byte
	pub      crypto.PublicKey // from PublicKeyPEM, or nil
	jwks     *jwksCache       // from JWKSURL, or nil
	issuer   string
	audience jwt.Audience // nil: any
	leeway   time.Duration
	now      func() time.Time
	realm    string
}

func newJWTVerifier(def secdef.Definition, o options) (*jwtVerifier, error) {
	v := &jwtVerifier{
		name:   def.Name,
		issuer: def.Issuer,
		leeway: def.Leeway,
		now:    o.now,
		realm:  o.realm,
	}
	for _, a := range def.Algorithms {
		v.algs = append(v.algs, jose.SignatureAlgorithm(a))
	}
	if def.Audience != "" {
		v.audience = jwt.Audience{def.Audience}
	}
	if def.Secret != "" {
		v.secret = []byte(def.Secret)
	}
	if def.PublicKeyPEM != "" {
		pub, err := def.PublicKey()
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

func (v *jwtVerifier) Verify(r *http.Request) (Principal, error) {
	token, missing := bearerToken(r, v.realm)
	if missing != nil {
		return Principal{}, missing
	}
	if len(token) > maxTokenSize {
		return Principal{}, v.refuse("token is too large")
	}
	// go-jose refuses, while parsing, an algorithm the definition does not
	// allow ("none" included), so no key is ever tried for it.
	jws, err := jose.ParseSignedCompact(token, v.algs)
	if err != nil {
		return Principal{}, v.refuse("%s", malformed(token, err))
	}
	hdr := jws.Signatures[0].Header // a compact JWS has exactly one
	switch {
	case hdr.ExtraHeaders[headerCrit] != nil:
		return Principal{}, v.refuse("token header has unsupported critical extensions")
	case hdr.ExtraHeaders[headerB64] != nil:
		return Principal{}, v.refuse("token header parameter b64 is not supported")
	case hdr.JSONWebKey != nil:
		return Principal{}, v.refuse("token header must not embed a key (jwk)")
	}
	payload, err := v.checkSignature(r.Context(), jws, hdr)
	if err != nil {
		return Principal{}, err
	}
	claims, sub, err := v.checkClaims(payload)
	if err != nil {
		return Principal{}, err
	}
	return Principal{Definition: v.name, Kind: secdef.KindJWT, Subject: sub, Claims: claims}, nil
}

// malformed says what is wrong with a token go-jose could not parse,
// echoing no more of it than the algorithm.
func malformed(token string, err error) string {
	var alg *jose.ErrUnexpectedSignatureAlgorithm
	if errors.As(err, &alg) {
		return fmt.Sprintf("token algorithm %q is not allowed", alg.Got)
	}
	if strings.Count(token, ".") != 2 {
		return "token is not a JWS compact serialization"
	}
	header, _, _ := strings.Cut(token, ".")
	if _, err := base64.RawURLEncoding.DecodeString(header); err != nil {
		return "token header: not base64url"
	}
	return "token is not a well-formed JWS"
}

// checkSignature returns the payload if a key of the definition signed it.
// The key is chosen by the algorithm, and go-jose refuses a key whose type
// does not fit it, so an HMAC secret never verifies an RS256/ES256 token
// and a public key never verifies an HS256 one.
func (v *jwtVerifier) checkSignature(ctx context.Context, jws *jose.JSONWebSignature, hdr jose.Header) ([]byte, error) {
	var keys []any
	switch {
	case hdr.Algorithm == secdef.HS256:
		keys = []any{v.secret}
	case v.pub != nil:
		keys = []any{v.pub}
	default:
		found, err := v.jwks.candidates(ctx, hdr.KeyID, hdr.Algorithm)
		if err != nil {
			// The details (URL, network error) are logged by the cache, not
			// sent to the caller.
			return nil, v.refuse("token signing key is not known")
		}
		keys = found
	}
	for _, k := range keys {
		if payload, err := jws.Verify(k); err == nil {
			return payload, nil
		}
	}
	return nil, v.refuse("token signature is invalid")
}

// checkClaims validates the signed claims and returns them (numbers as
// json.Number) with the subject.
func (v *jwtVerifier) checkClaims(payload []byte) (map[string]any, string, error) {
	var claims map[string]any
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil || dec.More() {
		return nil, "", v.refuse("token claims: not a JSON object")
	}
	// go-jose reads any number as a date; name the claim that is not one.
	for _, name := range []string{"exp", "nbf", "iat"} {
		raw, ok := claims[name]
		if !ok {
			continue
		}
		n, ok := raw.(json.Number)
		if !ok {
			return nil, "", v.refuse("token %s claim is not a number", name)
		}
		if f, err := n.Float64(); err != nil || !(f >= 0 && f <= maxNumericDate) {
			return nil, "", v.refuse("token %s claim is not a valid date", name)
		}
	}
	if _, ok := claims["exp"]; !ok {
		return nil, "", v.refuse("token has no exp claim")
	}
	var std jwt.Claims
	if err := json.Unmarshal(payload, &std); err != nil {
		return nil, "", v.refuse("token claims: iss, sub, aud or jti is not a string")
	}
	err := std.ValidateWithLeeway(jwt.Expected{Issuer: v.issuer, AnyAudience: v.audience, Time: v.now()}, v.leeway)
	switch {
	case err == nil:
		return claims, std.Subject, nil
	case errors.Is(err, jwt.ErrExpired):
		return nil, "", v.refuse("token is expired")
	case errors.Is(err, jwt.ErrNotValidYet):
		return nil, "", v.refuse("token is not valid yet")
	case errors.Is(err, jwt.ErrIssuedInTheFuture):
		return nil, "", v.refuse("token is issued in the future")
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return nil, "", v.refuse("token issuer is not accepted")
	case errors.Is(err, jwt.ErrInvalidAudience):
		return nil, "", v.refuse("token audience is not accepted")
	}
	return nil, "", v.refuse("token claims are not valid")
}

// bearerToken reads the token of a request's "Authorization: Bearer
// TOKEN", or says it is missing: a challenge without an error code (RFC
// 6750 3.1). The JWT and the introspection verifiers read it alike.
func bearerToken(r *http.Request, realm string) (string, *AuthError) {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", &AuthError{
			Status:    http.StatusUnauthorized,
			Challenge: fmt.Sprintf("Bearer realm=%s", quote(realm)),
			Message:   "bearer token required",
		}
	}
	return token, nil
}
