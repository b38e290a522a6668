package store

import (
	"context"
	"fmt"

	"gorm.io/gorm"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// outgoings are stored in weft_outgoing_connections, with the column of
// the security definition they name, which a definition's delete looks
// up.
var outgoings = kind[*adminv1.OutgoingConnection]{
	table: "weft_outgoing_connections",
	word:  "outgoing connection",
	keys: func(c *adminv1.OutgoingConnection) map[string]any {
		return map[string]any{"security": c.GetSecurity()}
	},
	note: addressMoved,
}

// CreateOutgoingConnection stores a new connection.
func (s *sqlStore) CreateOutgoingConnection(ctx context.Context, c *adminv1.OutgoingConnection) (*adminv1.OutgoingConnection, error) {
	var out *adminv1.OutgoingConnection
	_, err := s.change(ctx, "", func(tx *gorm.DB, rev int64) (string, error) {
		var n int64
		if err := tx.Table(outgoings.table).Where("name = ?", c.GetName()).Count(&n).Error; err != nil {
			return "", fmt.Errorf("create outgoing connection %q: %w", c.GetName(), err)
		}
		if n > 0 {
			return "", fmt.Errorf("outgoing connection %q already exists: %w", c.GetName(), ErrConflict)
		}
		if err := s.checkOutgoingRefs(tx, c); err != nil {
			return "", err
		}
		var err error
		if out, err = outgoings.insert(tx, rev, c); err != nil {
			return "", err
		}
		return fmt.Sprintf("create outgoing connection %q", c.GetName()), checkCredentialOrigins(tx)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetOutgoingConnection reads a connection by name.
func (s *sqlStore) GetOutgoingConnection(ctx context.Context, name string) (*adminv1.OutgoingConnection, error) {
	_, c, err := outgoings.get(s.r.WithContext(ctx), name)
	return c, err
}

// ListOutgoingConnections returns every connection sorted by name.
func (s *sqlStore) ListOutgoingConnections(ctx context.Context) ([]*adminv1.OutgoingConnection, error) {
	out, err := outgoings.list(s.r.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("list outgoing connections: %w", err)
	}
	return out, nil
}

// UpdateOutgoingConnection replaces the connection of the same name. An
// update that changes nothing leaves the revision as it is.
func (s *sqlStore) UpdateOutgoingConnection(ctx context.Context, c *adminv1.OutgoingConnection) (*adminv1.OutgoingConnection, error) {
	var out *adminv1.OutgoingConnection
	_, err := s.change(ctx, "", func(tx *gorm.DB, rev int64) (string, error) {
		row, old, err := outgoings.get(tx, c.GetName())
		if err != nil {
			return "", err
		}
		if outgoings.same(old, c) {
			out = old
			return "", errNoChange
		}
		if err := s.checkOutgoingRefs(tx, c); err != nil {
			return "", err
		}
		if out, err = outgoings.replace(tx, rev, row, c); err != nil {
			return "", err
		}
		if err := checkCredentialOrigins(tx); err != nil {
			return "", err
		}
		if moved := addressMoved(old, c); moved != "" {
			return "update " + moved, nil
		}
		return fmt.Sprintf("update outgoing connection %q", c.GetName()), nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteOutgoingConnection removes a connection and returns the new
// revision.
func (s *sqlStore) DeleteOutgoingConnection(ctx context.Context, name string) (int64, error) {
	return s.change(ctx, "", func(tx *gorm.DB, rev int64) (string, error) {
		if err := outgoings.delete(tx, name); err != nil {
			return "", err
		}
		return fmt.Sprintf("delete outgoing connection %q", name), nil
	})
}

// checkOutgoingRefs checks that c's security definition exists and
// supplies outbound credentials.
func (s *sqlStore) checkOutgoingRefs(tx *gorm.DB, c *adminv1.OutgoingConnection) error {
	if c.GetSecurity() == "" {
		return nil
	}
	return s.checkSecurityUse(tx, fmt.Sprintf("outgoing connection %q", c.GetName()), c.GetSecurity(), false)
}

// addressMoved says, for the revision log and so the audit trail, that a
// connection now sends its requests, and the credentials of its security
// definition, to another address; "" when the address stayed.
func addressMoved(old, c *adminv1.OutgoingConnection) string {
	if old.GetAddress() == c.GetAddress() {
		return ""
	}
	s := fmt.Sprintf("outgoing connection %q address %s → %s", c.GetName(), old.GetAddress(), c.GetAddress())
	if c.GetSecurity() != "" {
		s += fmt.Sprintf(" (security definition %q's credentials go there)", c.GetSecurity())
	}
	return s
}
