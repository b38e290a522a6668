package security

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/weft-dev/weft/agent/shared/secdef"
)

// Authenticator adds a definition's credentials to an outgoing request.
type Authenticator interface {
	// Apply sets the credentials on req, fetching a token first if needed.
	Apply(ctx context.Context, req *http.Request) error
}

var (
	_ Authenticator = headerAuth(nil)
	_ Authenticator = (*OAuth2)(nil)
)

// NewAuthenticator returns the Authenticator for an outbound definition.
// For tls_client_cert it returns one that does nothing: the credential is
// presented by the transport, configured with Definition.TLSConfig.
func NewAuthenticator(def secdef.Definition, opts ...Option) (Authenticator, error) {
	if err := def.Validate(); err != nil {
		return nil, err
	}
	switch def.Kind {
	case secdef.KindBasicAuth:
		user, pass := def.Username, def.Password
		return headerAuth(func(r *http.Request) { r.SetBasicAuth(user, pass) }), nil
	case secdef.KindAPIKey:
		header, key := def.Header, def.Key
		if header == "" {
			header = secdef.DefaultAPIKeyHeader
		}
		return headerAuth(func(r *http.Request) { r.Header.Set(header, key) }), nil
	case secdef.KindBearer:
		if !def.Outbound() {
			return nil, fmt.Errorf("%s: cannot authenticate outbound requests (inbound only: it checks tokens; set token to send one)", def)
		}
		v := "Bearer " + def.Token
		return headerAuth(func(r *http.Request) { r.Header.Set("Authorization", v) }), nil
	case secdef.KindJWT:
		return newJWTSigner(def, buildOptions(opts))
	case secdef.KindOAuth2:
		return NewOAuth2(def, opts...)
	case secdef.KindTLSClientCert:
		if def.CertPEM == "" {
			return nil, fmt.Errorf("%s: cannot authenticate outbound requests (inbound only: it checks certificates; set cert_pem and key_pem to present one)", def)
		}
		return headerAuth(func(*http.Request) {}), nil
	}
	return nil, fmt.Errorf("%s: cannot authenticate outbound requests (inbound only)", def)
}

// headerAuth sets fixed credentials.
type headerAuth func(*http.Request)

func (h headerAuth) Apply(_ context.Context, req *http.Request) error {
	h(req)
	return nil
}

// defaultTokenLifetime is how long a token without expires_in is reused.
const defaultTokenLifetime = time.Minute

// maxTokenLifetime is the longest expires_in accepted.
const maxTokenLifetime = 10 * 365 * 24 * time.Hour

// OAuth2 authenticates with a token from the OAuth2 client credentials
// grant (RFC 6749 4.4), fetched by golang.org/x/oauth2/clientcredentials.
// The token is cached until shortly before it expires; concurrent callers
// share one fetch. The cache is ours, not oauth2.ReuseTokenSource, because
// it follows the injected clock and margin, honours each caller's context
// while waiting, and can be invalidated.
type OAuth2 struct {
	def    secdef.Definition
	o      options
	conf   *clientcredentials.Config
	sem    chan struct{} // one-slot semaphore held while fetching
	token  string        // guarded by sem
	expiry time.Time     // guarded by sem; when to fetch again
}

// NewOAuth2 returns the Authenticator for an oauth2_client_credentials
// definition.
func NewOAuth2(def secdef.Definition, opts ...Option) (*OAuth2, error) {
	if def.Kind != secdef.KindOAuth2 {
		return nil, fmt.Errorf("%s: NewOAuth2 needs kind %s", def, secdef.KindOAuth2)
	}
	if err := def.Validate(); err != nil {
		return nil, err
	}
	conf := &clientcredentials.Config{
		ClientID:     def.ClientID,
		ClientSecret: def.ClientSecret,
		TokenURL:     def.TokenURL,
		Scopes:       def.Scopes,
		// RFC 6749 2.3.1 Basic, and only that: auto-detection would retry
		// a refused client with the secret in the form body.
		AuthStyle: oauth2.AuthStyleInHeader,
	}
	return &OAuth2{def: def, o: buildOptions(opts), conf: conf, sem: make(chan struct{}, 1)}, nil
}

// Apply sets "Authorization: Bearer <token>".
func (a *OAuth2) Apply(ctx context.Context, req *http.Request) error {
	tok, err := a.Token(ctx)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	return nil
}

// Token returns a valid access token, fetching one when the cached token is
// missing or about to expire.
func (a *OAuth2) Token(ctx context.Context) (string, error) {
	select {
	case a.sem <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("%s: token: %w", a.def, ctx.Err())
	}
	defer func() { <-a.sem }()
	if a.token != "" && a.o.now().Before(a.expiry) {
		return a.token, nil
	}
	tok, lifetime, err := a.fetch(ctx)
	if err != nil {
		return "", fmt.Errorf("%s: %w", a.def, err)
	}
	margin := a.o.tokenMargin
	if margin > lifetime/2 {
		margin = lifetime / 2
	}
	a.token, a.expiry = tok, a.o.now().Add(lifetime-margin)
	a.o.logger.Debug("OAuth2 token fetched", "definition", a.def.Name, "expires_in", lifetime)
	return tok, nil
}

// Invalidate drops the cached token, e.g. after the remote answered 401.
func (a *OAuth2) Invalidate() {
	a.sem <- struct{}{}
	a.token = ""
	<-a.sem
}

// fetch gets a token and its lifetime from the token URL.
func (a *OAuth2) fetch(ctx context.Context) (string, time.Duration, error) {
	tok, err := a.conf.Token(context.WithValue(ctx, oauth2.HTTPClient, a.o.client))
	if err != nil {
		var re *oauth2.RetrieveError
		var ue *url.Error
		switch {
		case errors.As(err, &re) && re.ErrorCode != "":
			return "", 0, fmt.Errorf("token request %s: status %s: %s", a.def.TokenURL, re.Response.Status,
				strings.TrimSpace(re.ErrorCode+" "+re.ErrorDescription))
		case errors.As(err, &re):
			return "", 0, fmt.Errorf("token request %s: status %s", a.def.TokenURL, re.Response.Status)
		case errors.As(err, &ue):
			return "", 0, fmt.Errorf("token request: %w", err)
		}
		return "", 0, fmt.Errorf("token response from %s: %w", a.def.TokenURL, err)
	}
	if tok.TokenType != "" && !strings.EqualFold(tok.TokenType, "bearer") {
		return "", 0, fmt.Errorf("token response from %s: token_type %q, want Bearer", a.def.TokenURL, tok.TokenType)
	}
	// x/oauth2 turns expires_in (whole seconds) into an expiry on the real
	// clock, or none when it is absent or 0; rounding recovers the lifetime
	// the server gave.
	lifetime := defaultTokenLifetime
	if !tok.Expiry.IsZero() {
		lifetime = time.Until(tok.Expiry).Round(time.Second)
	}
	if lifetime < 0 || lifetime > maxTokenLifetime {
		return "", 0, fmt.Errorf("token response from %s: expires_in is not a valid number of seconds", a.def.TokenURL)
	}
	return tok.AccessToken, lifetime, nil
}
