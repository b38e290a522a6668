package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"

	"gorm.io/gorm"
)

// outgoingConfig is the stored Config column of an outgoing connection.
type outgoingConfig struct {
	Address       string            `json:"address"`
	PathTemplate  string            `json:"path_template,omitempty"`
	Method        string            `json:"method,omitempty"`
	DataFormat    string            `json:"data_format,omitempty"`
	SOAPAction    string            `json:"soap_action,omitempty"`
	TimeoutMs     int64             `json:"timeout_ms,omitempty"`
	TLSSkipVerify bool              `json:"tls_skip_verify,omitempty"`
	CABundlePEM   string            `json:"ca_bundle_pem,omitempty"`
	PoolSize      int32             `json:"pool_size,omitempty"`
	Headers       map[string]string `json:"headers,omitempty"`
}

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
		t := now()
		row := outgoingRow{Name: c.Name, CreatedAt: t, UpdatedAt: t, Revision: rev}
		if err := fillOutgoingRow(&row, c); err != nil {
			return "", err
		}
		if err := tx.Create(&row).Error; err != nil {
			return "", fmt.Errorf("create outgoing connection %q: %w", c.Name, err)
		}
		var err error
		out, err = outgoingFromRow(&row)
		return fmt.Sprintf("create outgoing connection %q", c.Name), err
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
		if err := fillOutgoingRow(row, c); err != nil {
			return "", err
		}
		row.UpdatedAt, row.Revision = now(), rev
		if err := tx.Model(&outgoingRow{}).Where("id = ?", row.ID).Select("*").Omit("id").Updates(row).Error; err != nil {
			return "", fmt.Errorf("update outgoing connection %q: %w", c.Name, err)
		}
		out, err = outgoingFromRow(row)
		return fmt.Sprintf("update outgoing connection %q", c.Name), err
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

func fillOutgoingRow(row *outgoingRow, c OutgoingConnection) error {
	cfg, err := encodeJSON(outgoingConfig{
		Address: c.Address, PathTemplate: c.PathTemplate, Method: c.Method, DataFormat: c.DataFormat,
		SOAPAction: c.SOAPAction, TimeoutMs: c.TimeoutMs, TLSSkipVerify: c.TLSSkipVerify,
		CABundlePEM: c.CABundlePEM, PoolSize: c.PoolSize, Headers: c.Headers,
	})
	if err != nil {
		return fmt.Errorf("outgoing connection %q: %w", c.Name, err)
	}
	row.Security, row.Active, row.Config = c.Security, c.Active, cfg
	return nil
}

func outgoingFromRow(r *outgoingRow) (OutgoingConnection, error) {
	var cfg outgoingConfig
	if err := json.Unmarshal([]byte(r.Config), &cfg); err != nil {
		return OutgoingConnection{}, fmt.Errorf("decode outgoing connection %q: %w", r.Name, err)
	}
	if cfg.Headers == nil {
		cfg.Headers = map[string]string{}
	}
	return OutgoingConnection{
		Name: r.Name, Address: cfg.Address, PathTemplate: cfg.PathTemplate, Method: cfg.Method,
		DataFormat: cfg.DataFormat, SOAPAction: cfg.SOAPAction, TimeoutMs: cfg.TimeoutMs,
		TLSSkipVerify: cfg.TLSSkipVerify, CABundlePEM: cfg.CABundlePEM, Security: r.Security,
		PoolSize: cfg.PoolSize, Headers: cfg.Headers, Active: r.Active,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(), Revision: r.Revision,
	}, nil
}

// sameOutgoing reports whether b sets every field a stored connection a has.
func sameOutgoing(a, b OutgoingConnection) bool {
	ha, hb := a.Headers, b.Headers
	a.Headers, b.Headers = nil, nil
	a.CreatedAt, a.UpdatedAt, a.Revision = b.CreatedAt, b.UpdatedAt, b.Revision
	return reflect.DeepEqual(a, b) && maps.Equal(ha, hb)
}
