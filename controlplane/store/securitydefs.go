package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/weft-dev/weft/agent/shared/secdef"
)

// secretField is one secret field of a security definition: its name in
// errors (as the admin API names it) and where it is kept in the plain
// type and in the row.
type secretField struct {
	name  string
	plain func(*SecurityDefinition) *string
	row   func(*securityRow) *string
}

// secretFields are the fields the store seals, each in its own column.
var secretFields = []secretField{
	{"password", func(d *SecurityDefinition) *string { return &d.Password }, func(r *securityRow) *string { return &r.Password }},
	{"key", func(d *SecurityDefinition) *string { return &d.Key }, func(r *securityRow) *string { return &r.Key }},
	{"secret", func(d *SecurityDefinition) *string { return &d.Secret }, func(r *securityRow) *string { return &r.Secret }},
	{"token", func(d *SecurityDefinition) *string { return &d.Token }, func(r *securityRow) *string { return &r.Token }},
	{"client_secret", func(d *SecurityDefinition) *string { return &d.ClientSecret }, func(r *securityRow) *string { return &r.ClientSecret }},
	{"key_pem", func(d *SecurityDefinition) *string { return &d.KeyPEM }, func(r *securityRow) *string { return &r.KeyPEM }},
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
		var err error
		out, err = s.insertSecurity(tx, rev, d)
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

// ListSecurityDefinitions returns every definition sorted by name, secrets
// in clear.
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
		out, err = s.replaceSecurity(tx, rev, row, d)
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
		chans, conns, err := securityUsers(tx, name)
		if err != nil {
			return "", err
		}
		if len(chans)+len(conns) > 0 {
			var users []string
			if len(chans) > 0 {
				users = append(users, named("channel", chans))
			}
			if len(conns) > 0 {
				users = append(users, named("outgoing connection", conns))
			}
			return "", fmt.Errorf("security definition %q is used by %s; point them at another definition first: %w",
				name, strings.Join(users, " and "), ErrConflict)
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

// securityUsers returns the names of the channels and of the outgoing
// connections that use the definition name, each sorted.
func securityUsers(tx *gorm.DB, name string) (chans, conns []string, err error) {
	if err := tx.Table(channels.table).Where("security = ?", name).Order("name").Pluck("name", &chans).Error; err != nil {
		return nil, nil, fmt.Errorf("security definition %q: read channels: %w", name, err)
	}
	if err := tx.Table(outgoings.table).Where("security = ?", name).Order("name").Pluck("name", &conns).Error; err != nil {
		return nil, nil, fmt.Errorf("security definition %q: read outgoing connections: %w", name, err)
	}
	return chans, conns, nil
}

// checkSecurityUsers refuses a change to d that its users could no longer
// use: a channel needs a definition that verifies inbound requests, an
// outgoing connection one that supplies outbound credentials.
func checkSecurityUsers(tx *gorm.DB, d SecurityDefinition) error {
	chans, conns, err := securityUsers(tx, d.Name)
	if err != nil {
		return err
	}
	def := d.Definition()
	var problems []string
	if len(chans) > 0 && !def.Inbound() {
		problems = append(problems, fmt.Sprintf("%s cannot verify inbound requests, and %s %s it%s",
			d.Kind, named("channel", chans), uses(chans), d.DirectionHint(true)))
	}
	if len(conns) > 0 && !def.Outbound() {
		problems = append(problems, fmt.Sprintf("%s cannot supply outbound credentials, and %s %s it%s",
			d.OutboundKind(), named("outgoing connection", conns), uses(conns), d.DirectionHint(false)))
	}
	if len(problems) > 0 {
		return fmt.Errorf("security definition %q: %s; point them at another definition first: %w",
			d.Name, strings.Join(problems, "; "), ErrConflict)
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
		return fmt.Errorf("%s: %w", user, err)
	}
	def := d.Definition()
	switch {
	case inbound && !def.Inbound():
		return fmt.Errorf("%s: security definition %q is %s, which cannot verify inbound requests%s: %w", user, name, d.Kind, d.DirectionHint(true), ErrWrongKind)
	case !inbound && !def.Outbound():
		return fmt.Errorf("%s: security definition %q is %s, which cannot supply outbound credentials%s: %w", user, name, d.OutboundKind(), d.DirectionHint(false), ErrWrongKind)
	}
	return nil
}

// OutboundKind describes d's kind for a refusal to supply outbound
// credentials with it: a jwt definition signs outbound tokens only with an
// HS256 secret.
func (d SecurityDefinition) OutboundKind() string {
	if d.Kind == string(secdef.KindJWT) {
		return "a jwt definition without an HS256 secret"
	}
	return d.Kind
}

// DirectionHint follows a refusal to use d inbound (or outbound) where
// d's fields, not its kind, decide: it says which field would make it
// usable, such as " (bearer checks inbound tokens with introspection_url)";
// "" for other kinds.
func (d SecurityDefinition) DirectionHint(inbound bool) string {
	switch k := secdef.Kind(d.Kind); {
	case k == secdef.KindBearer && inbound:
		return " (bearer checks inbound tokens with introspection_url; this one sends a token)"
	case k == secdef.KindBearer:
		return " (bearer sends a token when token is set; this one checks inbound tokens with introspection_url)"
	case k == secdef.KindTLSClientCert && inbound:
		return " (tls_client_cert checks inbound client certificates with ca_pem; this one only presents a certificate)"
	case k == secdef.KindTLSClientCert:
		return " (tls_client_cert presents a certificate when cert_pem and key_pem are set; this one only checks inbound ones)"
	}
	return ""
}

// Definition is d as package agent/shared/secdef defines it: as agents use
// it, and for the direction checks (Inbound, Outbound).
func (d SecurityDefinition) Definition() secdef.Definition {
	return secdef.Definition{
		Name: d.Name, Kind: secdef.Kind(d.Kind),
		Username: d.Username, Password: d.Password,
		Header: d.Header, Key: d.Key,
		Algorithms: d.Algorithms, Secret: d.Secret, PublicKeyPEM: d.PublicKeyPEM, JWKSURL: d.JWKSURL,
		Issuer: d.Issuer, Audience: d.Audience, Leeway: time.Duration(d.LeewayMs) * time.Millisecond,
		Token:    d.Token,
		TokenURL: d.TokenURL, ClientID: d.ClientID, ClientSecret: d.ClientSecret, Scopes: d.Scopes,
		IntrospectionURL: d.IntrospectionURL, CacheSeconds: int(d.CacheSeconds),
		CertPEM: d.CertPEM, KeyPEM: d.KeyPEM,
		CAPEM: d.CAPEM, AllowedSubjects: d.AllowedSubjects, AllowedSANs: d.AllowedSANs,
	}
}

// named lists objects of one kind: `channel "a"`, `channels "a", "b"`.
func named(noun string, names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = fmt.Sprintf("%q", n)
	}
	if len(names) > 1 {
		noun += "s"
	}
	return noun + " " + strings.Join(quoted, ", ")
}

// uses is the verb that follows named(noun, names).
func uses(names []string) string {
	if len(names) > 1 {
		return "use"
	}
	return "uses"
}

// insertSecurity writes the new definition d at revision rev, sealing
// its secrets.
func (s *sqlStore) insertSecurity(tx *gorm.DB, rev int64, d SecurityDefinition) (SecurityDefinition, error) {
	t := now()
	row := securityRow{Name: d.Name, CreatedAt: t, UpdatedAt: t, Revision: rev}
	if err := s.fillSecurityRow(&row, d); err != nil {
		return SecurityDefinition{}, err
	}
	if err := tx.Create(&row).Error; err != nil {
		return SecurityDefinition{}, fmt.Errorf("create security definition %q: %w", d.Name, err)
	}
	return s.securityFromRow(&row)
}

// replaceSecurity writes d over its stored row at revision rev.
func (s *sqlStore) replaceSecurity(tx *gorm.DB, rev int64, row *securityRow, d SecurityDefinition) (SecurityDefinition, error) {
	if err := s.fillSecurityRow(row, d); err != nil {
		return SecurityDefinition{}, err
	}
	row.UpdatedAt, row.Revision = now(), rev
	if err := tx.Model(&securityRow{}).Where("id = ?", row.ID).Select("*").Omit("id").Updates(row).Error; err != nil {
		return SecurityDefinition{}, fmt.Errorf("update security definition %q: %w", d.Name, err)
	}
	return s.securityFromRow(row)
}

// fillSecurityRow sets every field of row but its id, name, times and
// revision from d, sealing the secrets.
func (s *sqlStore) fillSecurityRow(row *securityRow, d SecurityDefinition) error {
	algorithms, err := encodeList(d.Algorithms)
	if err != nil {
		return fmt.Errorf("security definition %q: algorithms: %w", d.Name, err)
	}
	scopes, err := encodeList(d.Scopes)
	if err != nil {
		return fmt.Errorf("security definition %q: scopes: %w", d.Name, err)
	}
	subjects, err := encodeList(d.AllowedSubjects)
	if err != nil {
		return fmt.Errorf("security definition %q: allowed_subjects: %w", d.Name, err)
	}
	sans, err := encodeList(d.AllowedSANs)
	if err != nil {
		return fmt.Errorf("security definition %q: allowed_sans: %w", d.Name, err)
	}
	row.Kind = d.Kind
	row.Username = d.Username
	row.Header = d.Header
	row.Algorithms = algorithms
	row.PublicKeyPEM = d.PublicKeyPEM
	row.JWKSURL = d.JWKSURL
	row.Issuer = d.Issuer
	row.Audience = d.Audience
	row.LeewayMs = d.LeewayMs
	row.TokenURL = d.TokenURL
	row.ClientID = d.ClientID
	row.Scopes = scopes
	row.CertPEM = d.CertPEM
	row.CAPEM = d.CAPEM
	row.AllowedSubjects = subjects
	row.AllowedSANs = sans
	row.IntrospectionURL = d.IntrospectionURL
	row.CacheSeconds = d.CacheSeconds
	for _, f := range secretFields {
		sealed, err := s.seal(d.Name, f.name, *f.plain(&d))
		if err != nil {
			return err
		}
		*f.row(row) = sealed
	}
	return nil
}

// seal seals the value of field of definition name; "" stays "".
func (s *sqlStore) seal(name, field, value string) (string, error) {
	if value == "" {
		return "", nil
	}
	if s.box == nil {
		return "", fmt.Errorf("security definition %q: %s: no secrets key configured, so secrets cannot be stored", name, field)
	}
	sealed, err := s.sealValue([]byte(value))
	if err != nil {
		return "", fmt.Errorf("security definition %q: seal %s: %w", name, field, err)
	}
	return sealed, nil
}

// unseal opens the stored value of field of definition name; "" stays "".
// Its errors wrap those of secrets.Box.Open.
func (s *sqlStore) unseal(name, field, stored string) (string, error) {
	if stored == "" {
		return "", nil
	}
	if s.box == nil {
		return "", fmt.Errorf("security definition %q: %s is sealed and no secrets key configured", name, field)
	}
	plain, err := s.openValue(stored)
	if err != nil {
		return "", fmt.Errorf("security definition %q: %s: %w (is the secrets key the one it was stored with?)", name, field, err)
	}
	return string(plain), nil
}

// securityFromRow reads a definition, opening its secrets.
func (s *sqlStore) securityFromRow(r *securityRow) (SecurityDefinition, error) {
	algorithms, err := decodeList(fmt.Sprintf("algorithms of security definition %q", r.Name), r.Algorithms)
	if err != nil {
		return SecurityDefinition{}, err
	}
	scopes, err := decodeList(fmt.Sprintf("scopes of security definition %q", r.Name), r.Scopes)
	if err != nil {
		return SecurityDefinition{}, err
	}
	subjects, err := decodeOptionalList(fmt.Sprintf("allowed_subjects of security definition %q", r.Name), r.AllowedSubjects)
	if err != nil {
		return SecurityDefinition{}, err
	}
	sans, err := decodeOptionalList(fmt.Sprintf("allowed_sans of security definition %q", r.Name), r.AllowedSANs)
	if err != nil {
		return SecurityDefinition{}, err
	}
	d := SecurityDefinition{
		Name:         r.Name,
		Kind:         r.Kind,
		Username:     r.Username,
		Header:       r.Header,
		Algorithms:   algorithms,
		PublicKeyPEM: r.PublicKeyPEM,
		JWKSURL:      r.JWKSURL,
		Issuer:       r.Issuer,
		Audience:     r.Audience,
		LeewayMs:     r.LeewayMs,
		TokenURL:     r.TokenURL,
		ClientID:     r.ClientID,
		Scopes:       scopes,
		CertPEM:      r.CertPEM,

		CAPEM:            r.CAPEM,
		AllowedSubjects:  subjects,
		AllowedSANs:      sans,
		IntrospectionURL: r.IntrospectionURL,
		CacheSeconds:     r.CacheSeconds,

		CreatedAt: r.CreatedAt.UTC(),
		UpdatedAt: r.UpdatedAt.UTC(),
		Revision:  r.Revision,
	}
	for _, f := range secretFields {
		plain, err := s.unseal(r.Name, f.name, *f.row(r))
		if err != nil {
			return SecurityDefinition{}, err
		}
		*f.plain(&d) = plain
	}
	return d, nil
}

// sameSecurity reports whether b sets every field a stored definition a has.
func sameSecurity(a, b SecurityDefinition) bool {
	a.CreatedAt, a.UpdatedAt, a.Revision = b.CreatedAt, b.UpdatedAt, b.Revision
	a.Algorithms, b.Algorithms = orEmpty(a.Algorithms), orEmpty(b.Algorithms)
	a.Scopes, b.Scopes = orEmpty(a.Scopes), orEmpty(b.Scopes)
	a.AllowedSubjects, b.AllowedSubjects = orEmpty(a.AllowedSubjects), orEmpty(b.AllowedSubjects)
	a.AllowedSANs, b.AllowedSANs = orEmpty(a.AllowedSANs), orEmpty(b.AllowedSANs)
	return reflect.DeepEqual(a, b)
}

// decodeOptionalList decodes a JSON array column that may be NULL (read
// as "", an empty list).
func decodeOptionalList(column, s string) ([]string, error) {
	if s == "" {
		return []string{}, nil
	}
	return decodeList(column, s)
}

// orEmpty is l, or an empty list for nil, so that the two compare equal.
func orEmpty(l []string) []string {
	if l == nil {
		return []string{}
	}
	return slices.Clone(l)
}
