package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"

	"gorm.io/gorm"
)

// CreateOutgoingConnection stores a new connection.
func (s *sqlStore) CreateOutgoingConnection(ctx context.Context, c OutgoingConnection) (OutgoingConnection, error) {
	var out OutgoingConnection
	_, err := s.change(ctx, "", func(tx *gorm.DB, rev int64) (string, error) {
		var n int64
		if err := tx.Model(&outgoingRow{}).Where("name = ?", c.Name).Count(&n).Error; err != nil {
			return "", fmt.Errorf("create outgoing connection %q: %w", c.Name, err)
		}
		if n > 0 {
			return "", fmt.Errorf("outgoing connection %q already exists: %w", c.Name, ErrConflict)
		}
		if err := s.checkOutgoingRefs(tx, c); err != nil {
			return "", err
		}
		var err error
		if out, err = insertOutgoing(tx, rev, c); err != nil {
			return "", err
		}
		return fmt.Sprintf("create outgoing connection %q", c.Name), checkCredentialOrigins(tx)
	})
	if err != nil {
		return OutgoingConnection{}, err
	}
	return out, nil
}

// GetOutgoingConnection reads a connection by name.
func (s *sqlStore) GetOutgoingConnection(ctx context.Context, name string) (OutgoingConnection, error) {
	row, err := getOutgoing(s.r.WithContext(ctx), name)
	if err != nil {
		return OutgoingConnection{}, err
	}
	return outgoingFromRow(row)
}

// ListOutgoingConnections returns every connection sorted by name.
func (s *sqlStore) ListOutgoingConnections(ctx context.Context) ([]OutgoingConnection, error) {
	out, err := listOutgoing(s.r.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("list outgoing connections: %w", err)
	}
	return out, nil
}

func listOutgoing(tx *gorm.DB) ([]OutgoingConnection, error) {
	var rows []outgoingRow
	if err := tx.Order("name").Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]OutgoingConnection, 0, len(rows))
	for i := range rows {
		c, err := outgoingFromRow(&rows[i])
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// UpdateOutgoingConnection replaces the connection of the same name. An
// update that changes nothing leaves the revision as it is.
func (s *sqlStore) UpdateOutgoingConnection(ctx context.Context, c OutgoingConnection) (OutgoingConnection, error) {
	var out OutgoingConnection
	_, err := s.change(ctx, "", func(tx *gorm.DB, rev int64) (string, error) {
		row, err := getOutgoing(tx, c.Name)
		if err != nil {
			return "", err
		}
		old, err := outgoingFromRow(row)
		if err != nil {
			return "", err
		}
		if sameOutgoing(old, c) {
			out = old
			return "", errNoChange
		}
		if err := s.checkOutgoingRefs(tx, c); err != nil {
			return "", err
		}
		if out, err = replaceOutgoing(tx, rev, row, c); err != nil {
			return "", err
		}
		if err := checkCredentialOrigins(tx); err != nil {
			return "", err
		}
		if moved := addressMoved(old, c); moved != "" {
			return "update " + moved, nil
		}
		return fmt.Sprintf("update outgoing connection %q", c.Name), nil
	})
	if err != nil {
		return OutgoingConnection{}, err
	}
	return out, nil
}

// DeleteOutgoingConnection removes a connection and returns the new
// revision.
func (s *sqlStore) DeleteOutgoingConnection(ctx context.Context, name string) (int64, error) {
	return s.change(ctx, "", func(tx *gorm.DB, rev int64) (string, error) {
		row, err := getOutgoing(tx, name)
		if err != nil {
			return "", err
		}
		if err := tx.Delete(&outgoingRow{}, row.ID).Error; err != nil {
			return "", fmt.Errorf("delete outgoing connection %q: %w", name, err)
		}
		return fmt.Sprintf("delete outgoing connection %q", name), nil
	})
}

func getOutgoing(tx *gorm.DB, name string) (*outgoingRow, error) {
	var row outgoingRow
	err := tx.Where("name = ?", name).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, fmt.Errorf("outgoing connection %q does not exist: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read outgoing connection %q: %w", name, err)
	}
	return &row, nil
}

// checkOutgoingRefs checks that c's security definition exists and
// supplies outbound credentials.
func (s *sqlStore) checkOutgoingRefs(tx *gorm.DB, c OutgoingConnection) error {
	if c.Security == "" {
		return nil
	}
	return s.checkSecurityUse(tx, fmt.Sprintf("outgoing connection %q", c.Name), c.Security, false)
}

// insertOutgoing writes the new connection c at revision rev.
func insertOutgoing(tx *gorm.DB, rev int64, c OutgoingConnection) (OutgoingConnection, error) {
	t := now()
	row := outgoingRow{Name: c.Name, CreatedAt: t, UpdatedAt: t, Revision: rev}
	if err := fillOutgoingRow(&row, c); err != nil {
		return OutgoingConnection{}, err
	}
	if err := tx.Create(&row).Error; err != nil {
		return OutgoingConnection{}, fmt.Errorf("create outgoing connection %q: %w", c.Name, err)
	}
	return outgoingFromRow(&row)
}

// replaceOutgoing writes c over its stored row at revision rev.
func replaceOutgoing(tx *gorm.DB, rev int64, row *outgoingRow, c OutgoingConnection) (OutgoingConnection, error) {
	if err := fillOutgoingRow(row, c); err != nil {
		return OutgoingConnection{}, err
	}
	row.UpdatedAt, row.Revision = now(), rev
	if err := tx.Model(&outgoingRow{}).Where("id = ?", row.ID).Select("*").Omit("id").Updates(row).Error; err != nil {
		return OutgoingConnection{}, fmt.Errorf("update outgoing connection %q: %w", c.Name, err)
	}
	return outgoingFromRow(row)
}

// fillOutgoingRow sets every field of row but its id, name, times and
// revision from c.
func fillOutgoingRow(row *outgoingRow, c OutgoingConnection) error {
	headers, err := encodeMap(c.Headers)
	if err != nil {
		return fmt.Errorf("outgoing connection %q: headers: %w", c.Name, err)
	}
	row.Address = c.Address
	row.PathTemplate = c.PathTemplate
	row.Method = c.Method
	row.DataFormat = c.DataFormat
	row.SOAPAction = c.SOAPAction
	row.TimeoutMs = c.TimeoutMs
	row.TLSSkipVerify = c.TLSSkipVerify
	row.CABundlePEM = c.CABundlePEM
	row.Security = c.Security
	row.PoolSize = c.PoolSize
	row.Headers = headers
	row.Active = c.Active
	return nil
}

func outgoingFromRow(r *outgoingRow) (OutgoingConnection, error) {
	headers, err := decodeMap(fmt.Sprintf("headers of outgoing connection %q", r.Name), r.Headers)
	if err != nil {
		return OutgoingConnection{}, err
	}
	return OutgoingConnection{
		Name:          r.Name,
		Address:       r.Address,
		PathTemplate:  r.PathTemplate,
		Method:        r.Method,
		DataFormat:    r.DataFormat,
		SOAPAction:    r.SOAPAction,
		TimeoutMs:     r.TimeoutMs,
		TLSSkipVerify: r.TLSSkipVerify,
		CABundlePEM:   r.CABundlePEM,
		Security:      r.Security,
		PoolSize:      r.PoolSize,
		Headers:       headers,
		Active:        r.Active,
		CreatedAt:     r.CreatedAt.UTC(),
		UpdatedAt:     r.UpdatedAt.UTC(),
		Revision:      r.Revision,
	}, nil
}

// sameOutgoing reports whether b sets every field a stored connection a has.
func sameOutgoing(a, b OutgoingConnection) bool {
	ha, hb := a.Headers, b.Headers
	a.Headers, b.Headers = nil, nil
	a.CreatedAt, a.UpdatedAt, a.Revision = b.CreatedAt, b.UpdatedAt, b.Revision
	return reflect.DeepEqual(a, b) && maps.Equal(ha, hb)
}

// addressMoved says, for the revision log and so the audit trail, that a
// connection now sends its requests, and the credentials of its security
// definition, to another address; "" when the address stayed.
func addressMoved(old, c OutgoingConnection) string {
	if old.Address == c.Address {
		return ""
	}
	s := fmt.Sprintf("outgoing connection %q address %s → %s", c.Name, old.Address, c.Address)
	if c.Security != "" {
		s += fmt.Sprintf(" (security definition %q's credentials go there)", c.Security)
	}
	return s
}
