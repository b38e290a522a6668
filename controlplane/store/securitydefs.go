package store

import (
	"context"
	"fmt"
	"strings"

	"gorm.io/gorm"

	"github.com/weft-dev/weft/agent/shared/secdef"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// securityDefs are stored in weft_security_definitions, with no column
// but those every kind has; their secrets are sealed in the spec
// (sqlStore.securities).
var securityDefs = kind[*adminv1.SecurityDefinition]{
	table: "weft_security_definitions",
	word:  "security definition",
	keys:  func(*adminv1.SecurityDefinition) map[string]any { return map[string]any{} },
}

// securities is securityDefs, sealing and opening secrets with the
// store's keys.
func (s *sqlStore) securities() kind[*adminv1.SecurityDefinition] {
	k := securityDefs
	k.seal, k.open = s.seal, s.unseal
	return k
}

// CreateSecurityDefinition stores a new definition, sealing its secrets.
func (s *sqlStore) CreateSecurityDefinition(ctx context.Context, d *adminv1.SecurityDefinition) (*adminv1.SecurityDefinition, error) {
	var out *adminv1.SecurityDefinition
	_, err := s.change(ctx, "", func(tx *gorm.DB, rev int64) (string, error) {
		var n int64
		if err := tx.Table(securityDefs.table).Where("name = ?", d.GetName()).Count(&n).Error; err != nil {
			return "", fmt.Errorf("create security definition %q: %w", d.GetName(), err)
		}
		if n > 0 {
			return "", fmt.Errorf("security definition %q already exists: %w", d.GetName(), ErrConflict)
		}
		var err error
		out, err = s.securities().insert(tx, rev, d)
		return fmt.Sprintf("create security definition %q", d.GetName()), err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetSecurityDefinition reads a definition by name, secrets in clear.
func (s *sqlStore) GetSecurityDefinition(ctx context.Context, name string) (*adminv1.SecurityDefinition, error) {
	_, d, err := s.securities().get(s.r.WithContext(ctx), name)
	return d, err
}

// ListSecurityDefinitions returns every definition sorted by name, secrets
// in clear.
func (s *sqlStore) ListSecurityDefinitions(ctx context.Context) ([]*adminv1.SecurityDefinition, error) {
	out, err := s.securities().list(s.r.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("list security definitions: %w", err)
	}
	return out, nil
}

// UpdateSecurityDefinition replaces the definition of the same name. An
// update that changes nothing leaves the revision as it is.
func (s *sqlStore) UpdateSecurityDefinition(ctx context.Context, d *adminv1.SecurityDefinition) (*adminv1.SecurityDefinition, error) {
	var out *adminv1.SecurityDefinition
	_, err := s.change(ctx, "", func(tx *gorm.DB, rev int64) (string, error) {
		k := s.securities()
		row, old, err := k.get(tx, d.GetName())
		if err != nil {
			return "", err
		}
		if k.same(old, d) {
			out = old
			return "", errNoChange
		}
		if err := checkSecurityUsers(tx, d); err != nil {
			return "", err
		}
		out, err = k.replace(tx, rev, row, d)
		return fmt.Sprintf("update security definition %q", d.GetName()), err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteSecurityDefinition removes a definition no channel or connection
// uses and returns the new revision.
func (s *sqlStore) DeleteSecurityDefinition(ctx context.Context, name string) (int64, error) {
	return s.change(ctx, "", func(tx *gorm.DB, rev int64) (string, error) {
		if _, _, err := securityDefs.get(tx, name); err != nil {
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
		if err := securityDefs.delete(tx, name); err != nil {
			return "", err
		}
		return fmt.Sprintf("delete security definition %q", name), nil
	})
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
func checkSecurityUsers(tx *gorm.DB, d *adminv1.SecurityDefinition) error {
	chans, conns, err := securityUsers(tx, d.GetName())
	if err != nil {
		return err
	}
	def := secdef.Of(d)
	var problems []string
	if len(chans) > 0 && !def.Inbound() {
		problems = append(problems, fmt.Sprintf("%s cannot verify inbound requests, and %s %s it%s",
			d.GetKind(), named("channel", chans), uses(chans), DirectionHint(d, true)))
	}
	if len(conns) > 0 && !def.Outbound() {
		problems = append(problems, fmt.Sprintf("%s cannot supply outbound credentials, and %s %s it%s",
			OutboundKind(d), named("outgoing connection", conns), uses(conns), DirectionHint(d, false)))
	}
	if len(problems) > 0 {
		return fmt.Errorf("security definition %q: %s; point them at another definition first: %w",
			d.GetName(), strings.Join(problems, "; "), ErrConflict)
	}
	return nil
}

// checkSecurityUse checks that user (`channel "x"` or `outgoing connection
// "y"`) may use the definition name: it exists, and verifies inbound
// requests (inbound) or supplies outbound credentials.
func (s *sqlStore) checkSecurityUse(tx *gorm.DB, user, name string, inbound bool) error {
	_, d, err := s.securities().get(tx, name)
	if err != nil {
		return fmt.Errorf("%s: %w", user, err)
	}
	def := secdef.Of(d)
	switch {
	case inbound && !def.Inbound():
		return fmt.Errorf("%s: security definition %q is %s, which cannot verify inbound requests%s: %w", user, name, d.GetKind(), DirectionHint(d, true), ErrWrongKind)
	case !inbound && !def.Outbound():
		return fmt.Errorf("%s: security definition %q is %s, which cannot supply outbound credentials%s: %w", user, name, OutboundKind(d), DirectionHint(d, false), ErrWrongKind)
	}
	return nil
}

// OutboundKind describes d's kind for a refusal to supply outbound
// credentials with it: a jwt definition signs outbound tokens only with an
// HS256 secret.
func OutboundKind(d *adminv1.SecurityDefinition) string {
	if d.GetKind() == string(secdef.KindJWT) {
		return "a jwt definition without an HS256 secret"
	}
	return d.GetKind()
}

// DirectionHint follows a refusal to use d inbound (or outbound) where
// d's fields, not its kind, decide: it says which field would make it
// usable, such as " (bearer checks inbound tokens with introspection_url)";
// "" for other kinds.
func DirectionHint(d *adminv1.SecurityDefinition, inbound bool) string {
	switch k := secdef.Kind(d.GetKind()); {
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
