// Package outgoingconf is the configuration of an outgoing HTTP connection
// (address, path template, method, data format, timeout, TLS, pool,
// headers) and its check. Agents build their connections from it (package
// agent/outgoing) and the control plane checks connections with the same
// Validate, so that the door refuses exactly what an agent could not
// build.
package outgoingconf

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// Data formats a connection can speak.
const (
	FormatJSON   = "json"
	FormatXML    = "xml"
	FormatSOAP11 = "soap11"
	FormatSOAP12 = "soap12"
)

// Defaults that WithDefaults applies to zero-valued fields.
const (
	DefaultMethod   = "GET"
	DefaultFormat   = FormatJSON
	DefaultTimeout  = 30 * time.Second
	DefaultPoolSize = 10
)

// methods lists the HTTP methods a connection may use.
var methods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// Config describes one outgoing HTTP connection.
type Config struct {
	// Name is how services refer to the connection (ctx.Outgoing("crm")).
	Name string
	// Address is scheme://host[:port][/prefix], scheme http or https. It
	// carries no credentials, query or fragment: use an Auth for secrets.
	Address string
	// PathTemplate is appended to the address, e.g. /customers/{id};
	// params are whole segments. Empty means the address itself.
	PathTemplate string
	// Method is the HTTP method; empty means GET.
	Method string
	// Format is json, xml, soap11 or soap12; empty means json. It sets the
	// Content-Type and Accept headers; XML and SOAP bodies pass as bytes.
	Format string
	// SOAPAction is the SOAP action: the SOAPAction header for soap11, the
	// action parameter of the Content-Type for soap12.
	SOAPAction string
	// Timeout bounds each call, connect to last body byte; zero means 30s.
	Timeout time.Duration
	// InsecureSkipVerify turns off TLS certificate verification. The zero
	// value verifies, so a forgotten field never weakens a connection.
	InsecureSkipVerify bool
	// CABundlePEM, when set, replaces the system roots with these
	// PEM-encoded certificates.
	CABundlePEM []byte
	// PoolSize caps the connections (idle plus active) per host; zero
	// means 10.
	PoolSize int
	// Headers are sent with every request; they override the format's
	// Content-Type and Accept.
	Headers map[string]string
}

// Validate reports the first problem with c, naming the field.
func (c Config) Validate() error {
	if err := c.validate(); err != nil {
		return fmt.Errorf("outgoing %q: %w", c.Name, err)
	}
	return nil
}

func (c Config) validate() error {
	if strings.TrimSpace(c.Name) == "" {
		return errors.New("name: must not be empty")
	}
	if strings.ContainsFunc(c.Name, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return errors.New("name: must not contain spaces or control characters")
	}
	if _, err := ParseAddress(c.Address); err != nil {
		return fmt.Errorf("address: %w", err)
	}
	if _, err := ParseTemplate(c.PathTemplate); err != nil {
		return fmt.Errorf("path_template: %w", err)
	}
	if c.Method != "" && !contains(methods, c.Method) {
		return fmt.Errorf("method: %q is not one of %s", c.Method, strings.Join(methods, ", "))
	}
	switch c.Format {
	case "", FormatJSON, FormatXML:
		if c.SOAPAction != "" {
			return fmt.Errorf("soap_action: only valid with format soap11 or soap12, not %q", c.formatOrDefault())
		}
	case FormatSOAP11, FormatSOAP12:
		if strings.ContainsAny(c.SOAPAction, "\"\r\n") {
			return errors.New("soap_action: must not contain quotes or line breaks")
		}
	default:
		return fmt.Errorf("data_format: %q is not one of json, xml, soap11, soap12", c.Format)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("timeout: %s is negative", c.Timeout)
	}
	if c.PoolSize < 0 {
		return fmt.Errorf("pool_size: %d is negative", c.PoolSize)
	}
	if len(c.CABundlePEM) > 0 {
		if _, err := ParseCABundle(c.CABundlePEM); err != nil {
			return fmt.Errorf("ca_bundle_pem: %w", err)
		}
	}
	for k, v := range c.Headers {
		if !isToken(k) {
			return fmt.Errorf("headers: %q is not a valid header name", k)
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return fmt.Errorf("headers: value of %q contains a line break or NUL", k)
		}
		switch http.CanonicalHeaderKey(k) {
		case "Authorization", "Proxy-Authorization", "Cookie":
			// Headers are stored and shown in clear; credentials are not.
			return fmt.Errorf("headers: %s carries credentials, which are stored and shown in clear here; use a security definition", k)
		}
	}
	return nil
}

// WithDefaults returns c with zero-valued fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Method == "" {
		c.Method = DefaultMethod
	}
	c.Format = c.formatOrDefault()
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.PoolSize == 0 {
		c.PoolSize = DefaultPoolSize
	}
	return c
}

func (c Config) formatOrDefault() string {
	if c.Format == "" {
		return DefaultFormat
	}
	return c.Format
}

// ParseAddress parses a connection's address and checks it: an absolute
// http(s) URL with a host and no credentials, query or fragment.
func ParseAddress(s string) (*url.URL, error) {
	if s == "" {
		return nil, errors.New("must not be empty")
	}
	u, err := url.Parse(s)
	if err != nil {
		// url.Error would repeat the address, which may hold a secret.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("not a URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("scheme %q is not http or https", u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, errors.New("has no host")
	}
	if u.User != nil {
		return nil, errors.New("must not carry credentials; use a security definition")
	}
	if u.RawQuery != "" || u.ForceQuery {
		return nil, errors.New("must not have a query; pass query values per call")
	}
	if u.Fragment != "" {
		return nil, errors.New("must not have a fragment")
	}
	return u, nil
}

// Segment is one path segment of a template: a literal or a {param}.
type Segment struct {
	Literal string
	Param   string // the param's name; "" for a literal
}

// Template is a parsed PathTemplate.
type Template []Segment

// ParseTemplate parses a path template such as /customers/{id}: params are
// whole segments with names of letters, digits and _, each used once.
func ParseTemplate(s string) (Template, error) {
	if s == "" {
		return nil, nil
	}
	if !strings.HasPrefix(s, "/") {
		return nil, fmt.Errorf("%q must start with /", s)
	}
	var t Template
	seen := map[string]bool{}
	parts := strings.Split(s[1:], "/")
	for i, p := range parts {
		switch {
		case strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") && len(p) > 2:
			name := p[1 : len(p)-1]
			if !isIdent(name) {
				return nil, fmt.Errorf("%q: param %q is not a name (letters, digits, _)", s, name)
			}
			if seen[name] {
				return nil, fmt.Errorf("%q: param %q appears twice", s, name)
			}
			seen[name] = true
			t = append(t, Segment{Param: name})
		case strings.ContainsAny(p, "{}"):
			return nil, fmt.Errorf("%q: segment %q: a param must be a whole segment like {id}", s, p)
		case p == "" && i != len(parts)-1:
			return nil, fmt.Errorf("%q: empty segment", s)
		case strings.ContainsFunc(p, func(r rune) bool { return r <= ' ' || r == 0x7f || strings.ContainsRune("?#%", r) }):
			return nil, fmt.Errorf("%q: segment %q has a space, control character, ?, # or %%", s, p)
		default:
			t = append(t, Segment{Literal: p})
		}
	}
	return t, nil
}

// ParseCABundle reads a connection's CA bundle: PEM certificates, at
// least one of which must parse.
func ParseCABundle(pem []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("no PEM certificate could be parsed")
	}
	return pool, nil
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		ok := r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9'
		if !ok {
			return false
		}
	}
	return true
}

// isToken reports whether s is an RFC 9110 token, as header names must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			strings.ContainsRune("!#$%&'*+-.^_`|~", r)
		if !ok {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Of is the connection the API's message c describes: as agents build it,
// and as the control plane checks it.
func Of(c *adminv1.OutgoingConnection) Config {
	return Config{
		Name: c.GetName(), Address: c.GetAddress(), PathTemplate: c.GetPathTemplate(), Method: c.GetMethod(),
		Format: c.GetDataFormat(), SOAPAction: c.GetSoapAction(), Timeout: time.Duration(c.GetTimeoutMs()) * time.Millisecond,
		InsecureSkipVerify: c.GetTlsSkipVerify(), CABundlePEM: []byte(c.GetCaBundlePem()), PoolSize: int(c.GetPoolSize()), Headers: c.GetHeaders(),
	}
}
