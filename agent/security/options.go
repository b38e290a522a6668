package security

import (
	"log/slog"
	"net/http"
	"time"
)

// Option configures NewVerifier and NewAuthenticator.
type Option func(*options)

type options struct {
	client        *http.Client
	logger        *slog.Logger
	now           func() time.Time
	realm         string
	jwksTTL       time.Duration
	jwksMinPeriod time.Duration
	tokenMargin   time.Duration
}

func buildOptions(opts []Option) options {
	o := options{
		client:        &http.Client{Timeout: 10 * time.Second},
		logger:        slog.New(slog.DiscardHandler),
		now:           time.Now,
		realm:         "weft",
		jwksTTL:       time.Hour,
		jwksMinPeriod: 30 * time.Second,
		tokenMargin:   30 * time.Second,
	}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithHTTPClient sets the client used to fetch JWKS and OAuth2 tokens. The
// default has a 10 second timeout.
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) { o.client = c }
}

// WithLogger sets the logger (JWKS refreshes, token fetches). Secrets are
// never logged.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l.With("component", "security") }
}

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// WithJWKSRefresh sets how long fetched JWKS keys are trusted (default one
// hour) and the shortest time between two fetches caused by an unknown key
// id (default 30 seconds).
func WithJWKSRefresh(ttl, minInterval time.Duration) Option {
	return func(o *options) { o.jwksTTL, o.jwksMinPeriod = ttl, minInterval }
}

// WithTokenMargin sets how long before its expiry an OAuth2 token is
// fetched again (default 30 seconds).
func WithTokenMargin(d time.Duration) Option {
	return func(o *options) { o.tokenMargin = d }
}
