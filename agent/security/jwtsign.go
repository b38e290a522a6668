package security

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/weft-dev/weft/agent/shared/secdef"
)

// signedTokenLifetime is how long a JWT signed for an outgoing request is
// valid: long enough for clock skew, short enough to be worthless if seen.
const signedTokenLifetime = 5 * time.Minute

// jwtSigner presents a fresh HS256 JWT in "Authorization: Bearer" on every
// outgoing request, with the definition's issuer and audience, the time of
// issue, a five-minute expiry and a random id.
type jwtSigner struct {
	signer   jose.Signer // safe for concurrent use
	issuer   string
	audience jwt.Audience
	now      func() time.Time
}

func newJWTSigner(def secdef.Definition, o options) (*jwtSigner, error) {
	if def.Secret == "" || !slices.Contains(def.Algorithms, secdef.HS256) {
		return nil, fmt.Errorf("%s: outbound requests are signed with HS256: algorithms must include secdef.HS256 and secret must be set", def)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(def.Secret)},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", def, err)
	}
	s := &jwtSigner{signer: signer, issuer: def.Issuer, now: o.now}
	if def.Audience != "" {
		s.audience = jwt.Audience{def.Audience}
	}
	return s, nil
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
	tok, err := jwt.Signed(s.signer).Claims(jwt.Claims{
		Issuer:   s.issuer,
		Audience: s.audience,
		IssuedAt: jwt.NewNumericDate(now),
		Expiry:   jwt.NewNumericDate(now.Add(signedTokenLifetime)),
		ID:       hex.EncodeToString(id),
	}).Serialize()
	if err != nil {
		return "", fmt.Errorf("sign a JWT: %w", err)
	}
	return tok, nil
}
