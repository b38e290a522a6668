package security

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
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
func NewAuthenticator(def Definition, opts ...Option) (Authenticator, error) {
	if err := def.Validate(); err != nil {
		return nil, err
	}
	switch def.Kind {
	case KindBasicAuth:
		user, pass := def.Username, def.Password
		return headerAuth(func(r *http.Request) { r.SetBasicAuth(user, pass) }), nil
	case KindAPIKey:
		header, key := def.Header, def.Key
		if header == "" {
			header = DefaultAPIKeyHeader
		}
		return headerAuth(func(r *http.Request) { r.Header.Set(header, key) }), nil
	case KindBearer:
		v := "Bearer " + def.Token
		return headerAuth(func(r *http.Request) { r.Header.Set("Authorization", v) }), nil
	case KindJWT:
		return newJWTSigner(def, buildOptions(opts))
	case KindOAuth2:
		return NewOAuth2(def, opts...)
	case KindTLSClientCert:
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

// maxTokenResponse bounds a token endpoint's answer.
const maxTokenResponse = 1 << 20

// OAuth2 authenticates with a token from the OAuth2 client credentials
// grant (RFC 6749 4.4). The token is cached until shortly before it
// expires; concurrent callers share one fetch.
type OAuth2 struct {
	def    Definition
	o      options
	sem    chan struct{} // one-slot semaphore held while fetching
	token  string        // guarded by sem
	expiry time.Time     // guarded by sem; when to fetch again
}

// NewOAuth2 returns the Authenticator for an oauth2_client_credentials
// definition.
func NewOAuth2(def Definition, opts ...Option) (*OAuth2, error) {
	if def.Kind != KindOAuth2 {
		return nil, fmt.Errorf("%s: NewOAuth2 needs kind %s", def, KindOAuth2)
	}
	if err := def.Validate(); err != nil {
		return nil, err
	}
	return &OAuth2{def: def, o: buildOptions(opts), sem: make(chan struct{}, 1)}, nil
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

type tokenResponse struct {
	AccessToken      string          `json:"access_token"`
	TokenType        string          `json:"token_type"`
	ExpiresIn        json.RawMessage `json:"expires_in"`
	Error            string          `json:"error"`
	ErrorDescription string          `json:"error_description"`
}

func (a *OAuth2) fetch(ctx context.Context) (string, time.Duration, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	if len(a.def.Scopes) > 0 {
		form.Set("scope", strings.Join(a.def.Scopes, " "))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.def.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, fmt.Errorf("token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// RFC 6749 2.3.1: the credentials are form-encoded before Basic.
	req.SetBasicAuth(url.QueryEscape(a.def.ClientID), url.QueryEscape(a.def.ClientSecret))
	resp, err := a.o.client.Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("token request: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse))
	if err != nil {
		return "", 0, fmt.Errorf("token request %s: %w", a.def.TokenURL, err)
	}
	var tr tokenResponse
	jsonErr := json.Unmarshal(body, &tr)
	if resp.StatusCode != http.StatusOK {
		if jsonErr == nil && tr.Error != "" {
			return "", 0, fmt.Errorf("token request %s: status %s: %s %s", a.def.TokenURL, resp.Status, tr.Error, tr.ErrorDescription)
		}
		return "", 0, fmt.Errorf("token request %s: status %s", a.def.TokenURL, resp.Status)
	}
	if jsonErr != nil {
		return "", 0, fmt.Errorf("token response from %s: %w", a.def.TokenURL, jsonErr)
	}
	if tr.AccessToken == "" {
		return "", 0, fmt.Errorf("token response from %s: no access_token", a.def.TokenURL)
	}
	if tr.TokenType != "" && !strings.EqualFold(tr.TokenType, "bearer") {
		return "", 0, fmt.Errorf("token response from %s: token_type %q, want Bearer", a.def.TokenURL, tr.TokenType)
	}
	lifetime, err := parseExpiresIn(tr.ExpiresIn)
	if err != nil {
		return "", 0, fmt.Errorf("token response from %s: %w", a.def.TokenURL, err)
	}
	return tr.AccessToken, lifetime, nil
}

// parseExpiresIn accepts a number or, as some servers send, a string.
func parseExpiresIn(raw json.RawMessage) (time.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return defaultTokenLifetime, nil
	}
	s := strings.Trim(string(raw), `"`)
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n < 0 || n > 10*365*24*3600 {
		return 0, errors.New("expires_in is not a valid number of seconds")
	}
	return time.Duration(n * float64(time.Second)), nil
}
