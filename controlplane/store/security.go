package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"gorm.io/gorm"

	"github.com/weft-dev/weft/agent/security"
)

// securityFields are the non-secret fields of a definition, as stored.
type securityFields struct {
	Username     string   `json:"username,omitempty"`
	Header       string   `json:"header,omitempty"`
	Algorithms   []string `json:"algorithms,omitempty"`
	PublicKeyPEM string   `json:"public_key_pem,omitempty"`
	JWKSURL      string   `json:"jwks_url,omitempty"`
	Issuer       string   `json:"issuer,omitempty"`
	Audience     string   `json:"audience,omitempty"`
	LeewayMs     int64    `json:"leeway_ms,omitempty"`
	TokenURL     string   `json:"token_url,omitempty"`
	ClientID     string   `json:"client_id,omitempty"`
	Scopes       []string `json:"scopes,omitempty"`
	CertPEM      string   `json:"cert_pem,omitempty"`
}

// securitySecrets are the secret fields, sealed as one JSON object.
type securitySecrets struct {
	Password     string `json:"password,omitempty"`
	Key          string `json:"key,omitempty"`
	Secret       string `json:"secret,omitempty"`
	Token        string `json:"token,omitempty"`
	ClientSecret string `json:"client_secret,omitempty"`
	KeyPEM       string `json:"key_pem,omitempty"`
}

// CreateSecurityDefinition stores a new definition, sealing its secrets.
func (s *sqlStore) CreateSecurityDefinition(ctx context.Context, d SecurityDefinition) (SecurityDefinition, error) {
	var out SecurityDefinition
	_, err := s.change(ctx, "", func(tx *gorm.DB, rev int64) (string, error) {
		var n int64
		if err := tx.Model(&securityRow{}).Where("name = ?", d.Name).Count(&n).Error; err != nil {
			return "", fmt.Errorf("create security definition %q: %w", d.Name, err)
		}
		if n > 0 {
			return "", fmt.Errorf("security definition %q already exists: %w", d.Name, ErrConflict)
		}
		t := now()
		row := securityRow{Name: d.Name, CreatedAt: t, UpdatedAt: t, Revision: rev}
		if err := s.fillSecurityRow(&row, d); err != nil {
			return "", err
		}
		if err := tx.Create(&row).Error; err != nil {
			return "", fmt.Errorf("create security definition %q: %w", d.Name, err)
		}
		var err error
		out, err = s.securityFromRow(&row)
		return fmt.Sprintf("create security definition %q", d.Name), err
	})
	if err != nil {
		return SecurityDefinition{}, err
	}
	return out, nil
}

// GetSecurityDefinition reads a definition by name, secrets in clear.
func (s *sqlStore) GetSecurityDefinition(ctx context.Context, name string) (SecurityDefinition, error) {
	row, err := getSecurity(s.r.WithContext(ctx), name)
	if err != nil {
		return SecurityDefinition{}, err
	}
	return s.securityFromRow(row)
}

// ListSecurityDefinitions returns every definition sorted by name.
func (s *sqlStore) ListSecurityDefinitions(ctx context.Context) ([]SecurityDefinition, error) {
	out, err := s.listSecurity(s.r.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("list security definitions: %w", err)
	}
	return out, nil
}

func (s *sqlStore) listSecurity(tx *gorm.DB) ([]SecurityDefinition, error) {
	var rows []securityRow
	if err := tx.Order("name").Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]SecurityDefinition, 0, len(rows))
	for i := range rows {
		d, err := s.securityFromRow(&rows[i])
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// UpdateSecurityDefinition replaces the definition of the same name. An
// update that changes nothing leaves the revision as it is.
func (s *sqlStore) UpdateSecurityDefinition(ctx context.Context, d SecurityDefinition) (SecurityDefinition, error) {
	var out SecurityDefinition
	_, err := s.change(ctx, "", func(tx *gorm.DB, rev int64) (string, error) {
		row, err := getSecurity(tx, d.Name)
		if err != nil {
			return "", err
		}
		old, err := s.securityFromRow(row)
		if err != nil {
			return "", err
		}
		if sameSecurity(old, d) {
			out = old
			return "", errNoChange
		}
		if err := checkSecurityUsers(tx, d); err != nil {
			return "", err
		}
		if err := s.fillSecurityRow(row, d); err != nil {
			return "", err
		}
		row.UpdatedAt, row.Revision = now(), rev
		if err := tx.Model(&securityRow{}).Where("id = ?", row.ID).Select("*").Omit("id").Updates(row).Error; err != nil {
			return "", fmt.Errorf("update security definition %q: %w", d.Name, err)
		}
		out, err = s.securityFromRow(row)
		return fmt.Sprintf("update security definition %q", d.Name), err
	})
	if err != nil {
		return SecurityDefinition{}, err
	}
	return out, nil
}

// DeleteSecurityDefinition removes a definition no channel or connection
// uses and returns the new revision.
func (s *sqlStore) DeleteSecurityDefinition(ctx context.Context, name string) (int64, error) {
	return s.change(ctx, "", func(tx *gorm.DB, rev int64) (string, error) {
		row, err := getSecurity(tx, name)
		if err != nil {
			return "", err
		}
		users, err := securityUsers(tx, name)
		if err != nil {
			return "", err
		}
		if len(users) > 0 {
			return "", fmt.Errorf("security definition %q is used by %s; point them at another definition first: %w", name, strings.Join(users, ", "), ErrConflict)
		}
		if err := tx.Delete(&securityRow{}, row.ID).Error; err != nil {
			return "", fmt.Errorf("delete security definition %q: %w", name, err)
		}
		return fmt.Sprintf("delete security definition %q", name), nil
	})
}

func getSecurity(tx *gorm.DB, name string) (*securityRow, error) {
	var row securityRow
	err := tx.Where("name = ?", name).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, fmt.Errorf("security definition %q does not exist: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read security definition %q: %w", name, err)
	}
	return &row, nil
}

// securityUsers names the channels and connections that use definition
// name, such as `channel "orders"`.
func securityUsers(tx *gorm.DB, name string) ([]string, error) {
	var chans, conns []string
	if err := tx.Model(&channelRow{}).Where("security = ?", name).Order("name").Pluck("name", &chans).Error; err != nil {
		return nil, fmt.Errorf("read channels: %w", err)
	}
	if err := tx.Model(&outgoingRow{}).Where("security = ?", name).Order("name").Pluck("name", &conns).Error; err != nil {
		return nil, fmt.Errorf("read outgoing connections: %w", err)
	}
	var out []string
	for _, c := range chans {
		out = append(out, fmt.Sprintf("channel %q", c))
	}
	for _, c := range conns {
		out = append(out, fmt.Sprintf("outgoing connection %q", c))
	}
	return out, nil
}

// checkSecurityUsers refuses a change to d that its users could no longer
// use: a channel needs a definition that verifies inbound requests, an
// outgoing connection one that supplies outbound credentials.
func checkSecurityUsers(tx *gorm.DB, d SecurityDefinition) error {
	def := d.definition()
	if !def.Inbound() {
		var chans []string
		if err := tx.Model(&channelRow{}).Where("security = ?", d.Name).Order("name").Pluck("name", &chans).Error; err != nil {
			return fmt.Errorf("read channels: %w", err)
		}
		if len(chans) > 0 {
			return fmt.Errorf("security definition %q: channel %q uses it, and %s cannot verify inbound requests: %w", d.Name, chans[0], d.Kind, ErrConflict)
		}
	}
	if !def.Outbound() {
		var conns []string
		if err := tx.Model(&outgoingRow{}).Where("security = ?", d.Name).Order("name").Pluck("name", &conns).Error; err != nil {
			return fmt.Errorf("read outgoing connections: %w", err)
		}
		if len(conns) > 0 {
			return fmt.Errorf("security definition %q: outgoing connection %q uses it, and %s cannot supply outbound credentials: %w", d.Name, conns[0], outboundKind(d), ErrConflict)
		}
	}
	return nil
}

// checkSecurityUse checks that user (`channel "x"` or `outgoing connection
// "y"`) may use the definition name: it exists, and verifies inbound
// requests (inbound) or supplies outbound credentials.
func (s *sqlStore) checkSecurityUse(tx *gorm.DB, user, name string, inbound bool) error {
	row, err := getSecurity(tx, name)
	if err != nil {
		return fmt.Errorf("%s: %w", user, err)
	}
	d, err := s.securityFromRow(row)
	if err != nil {
		return err
	}
	def := d.definition()
	switch {
	case inbound && !def.Inbound():
		return fmt.Errorf("%s: security definition %q is %s, which cannot verify inbound requests: %w", user, name, d.Kind, ErrConflict)
	case !inbound && !def.Outbound():
		return fmt.Errorf("%s: security definition %q is %s, which cannot supply outbound credentials: %w", user, name, outboundKind(d), ErrConflict)
	}
	return nil
}

// outboundKind describes d's kind for an outbound refusal: a jwt
// definition can sign outbound tokens only with an HS256 secret.
func outboundKind(d SecurityDefinition) string {
	if d.Kind == string(security.KindJWT) {
		return "a jwt definition without an HS256 secret"
	}
	return d.Kind
}

// definition is d as agent/security sees it, for the direction checks.
func (d SecurityDefinition) definition() security.Definition {
	return security.Definition{Name: d.Name, Kind: security.Kind(d.Kind), Algorithms: d.Algorithms, Secret: d.Secret}
}

// fillSecurityRow sets row's kind, fields and sealed secrets from d.
func (s *sqlStore) fillSecurityRow(row *securityRow, d SecurityDefinition) error {
	fields, err := encodeJSON(securityFields{
		Username: d.Username, Header: d.Header, Algorithms: d.Algorithms, PublicKeyPEM: d.PublicKeyPEM,
		JWKSURL: d.JWKSURL, Issuer: d.Issuer, Audience: d.Audience, LeewayMs: d.LeewayMs,
		TokenURL: d.TokenURL, ClientID: d.ClientID, Scopes: d.Scopes, CertPEM: d.CertPEM,
	})
	if err != nil {
		return fmt.Errorf("security definition %q: %w", d.Name, err)
	}
	sec := securitySecrets{Password: d.Password, Key: d.Key, Secret: d.Secret, Token: d.Token, ClientSecret: d.ClientSecret, KeyPEM: d.KeyPEM}
	sealed := ""
	if sec != (securitySecrets{}) {
		if s.box == nil {
			return fmt.Errorf("security definition %q: no secrets key is configured, so its secrets cannot be stored", d.Name)
		}
		plain, err := json.Marshal(sec)
		if err != nil {
			return fmt.Errorf("security definition %q: %w", d.Name, err)
		}
		if sealed, err = s.box.Seal(plain); err != nil {
			return fmt.Errorf("security definition %q: seal its secrets: %w", d.Name, err)
		}
	}
	row.Kind, row.Fields, row.Secrets = d.Kind, fields, sealed
	return nil
}

// securityFromRow reads a definition, opening its secrets.
func (s *sqlStore) securityFromRow(r *securityRow) (SecurityDefinition, error) {
	var f securityFields
	if err := json.Unmarshal([]byte(r.Fields), &f); err != nil {
		return SecurityDefinition{}, fmt.Errorf("decode security definition %q: %w", r.Name, err)
	}
	var sec securitySecrets
	if r.Secrets != "" {
		if s.box == nil {
			return SecurityDefinition{}, fmt.Errorf("security definition %q: its secrets are sealed and no secrets key is configured", r.Name)
		}
		plain, err := s.box.Open(r.Secrets)
		if err != nil {
			return SecurityDefinition{}, fmt.Errorf("security definition %q: open its secrets: %w (is this the control plane's secrets key?)", r.Name, err)
		}
		if err := json.Unmarshal(plain, &sec); err != nil {
			return SecurityDefinition{}, fmt.Errorf("security definition %q: decode its secrets: %w", r.Name, err)
		}
	}
	return SecurityDefinition{
		Name: r.Name, Kind: r.Kind,
		Username: f.Username, Password: sec.Password,
		Header: f.Header, Key: sec.Key,
		Algorithms: orEmpty(f.Algorithms), Secret: sec.Secret, PublicKeyPEM: f.PublicKeyPEM, JWKSURL: f.JWKSURL,
		Issuer: f.Issuer, Audience: f.Audience, LeewayMs: f.LeewayMs,
		Token:    sec.Token,
		TokenURL: f.TokenURL, ClientID: f.ClientID, ClientSecret: sec.ClientSecret, Scopes: orEmpty(f.Scopes),
		CertPEM: f.CertPEM, KeyPEM: sec.KeyPEM,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(), Revision: r.Revision,
	}, nil
}

// sameSecurity reports whether b sets every field a stored definition a has.
func sameSecurity(a, b SecurityDefinition) bool {
	a.CreatedAt, a.UpdatedAt, a.Revision = b.CreatedAt, b.UpdatedAt, b.Revision
	a.Algorithms, b.Algorithms = orEmpty(a.Algorithms), orEmpty(b.Algorithms)
	a.Scopes, b.Scopes = orEmpty(a.Scopes), orEmpty(b.Scopes)
	return reflect.DeepEqual(a, b)
}

func orEmpty(l []string) []string {
	if l == nil {
		return []string{}
	}
	return slices.Clone(l)
}
