package store

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"gorm.io/gorm"
)

// CreateChannel stores a new channel.
func (s *sqlStore) CreateChannel(ctx context.Context, ch Channel) (Channel, error) {
	ch.DataFormat = dataFormatOrDefault(ch.DataFormat)
	var out Channel
	_, err := s.change(ctx, "", func(tx *gorm.DB, rev int64) (string, error) {
		var n int64
		if err := tx.Model(&channelRow{}).Where("name = ?", ch.Name).Count(&n).Error; err != nil {
			return "", fmt.Errorf("create channel %q: %w", ch.Name, err)
		}
		if n > 0 {
			return "", fmt.Errorf("channel %q already exists: %w", ch.Name, ErrConflict)
		}
		if err := checkChannelRefs(tx, ch); err != nil {
			return "", err
		}
		methods, err := encodeList(ch.Methods)
		if err != nil {
			return "", fmt.Errorf("create channel %q: %w", ch.Name, err)
		}
		t := now()
		row := channelRow{
			Name:         ch.Name,
			Path:         ch.Path,
			Methods:      methods,
			Service:      ch.Service,
			Active:       ch.Active,
			TimeoutMs:    ch.TimeoutMs,
			MaxBodyBytes: ch.MaxBodyBytes,
			DataFormat:   ch.DataFormat,
			CreatedAt:    t,
			UpdatedAt:    t,
			Revision:     rev,
		}
		if err := tx.Create(&row).Error; err != nil {
			return "", fmt.Errorf("create channel %q: %w", ch.Name, err)
		}
		if out, err = channelFromRow(&row); err != nil {
			return "", err
		}
		return fmt.Sprintf("create channel %q", ch.Name), nil
	})
	if err != nil {
		return Channel{}, err
	}
	return out, nil
}

// checkChannelRefs checks that the path of ch is free and its service is
// deployed.
func checkChannelRefs(tx *gorm.DB, ch Channel) error {
	var other []channelRow
	if err := tx.Where("path = ? AND name <> ?", ch.Path, ch.Name).Limit(1).Find(&other).Error; err != nil {
		return fmt.Errorf("channel %q: read paths: %w", ch.Name, err)
	}
	if len(other) > 0 {
		return fmt.Errorf("channel %q: path %q is already used by channel %q: %w", ch.Name, ch.Path, other[0].Name, ErrConflict)
	}
	var n int64
	if err := tx.Model(&serviceRow{}).Where("name = ?", ch.Service).Count(&n).Error; err != nil {
		return fmt.Errorf("channel %q: read services: %w", ch.Name, err)
	}
	if n == 0 {
		return fmt.Errorf("channel %q: service %q is not deployed: %w", ch.Name, ch.Service, ErrNotFound)
	}
	return nil
}

// GetChannel reads a channel by name.
func (s *sqlStore) GetChannel(ctx context.Context, name string) (Channel, error) {
	row, err := getChannel(s.r.WithContext(ctx), name)
	if err != nil {
		return Channel{}, err
	}
	return channelFromRow(row)
}

func getChannel(tx *gorm.DB, name string) (*channelRow, error) {
	var row channelRow
	err := tx.Where("name = ?", name).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, fmt.Errorf("channel %q does not exist: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read channel %q: %w", name, err)
	}
	return &row, nil
}

// ListChannels returns every channel sorted by name.
func (s *sqlStore) ListChannels(ctx context.Context) ([]Channel, error) {
	out, err := listChannels(s.r.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("list channels: %w", err)
	}
	return out, nil
}

func listChannels(tx *gorm.DB) ([]Channel, error) {
	var rows []channelRow
	if err := tx.Order("name").Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]Channel, 0, len(rows))
	for i := range rows {
		ch, err := channelFromRow(&rows[i])
		if err != nil {
			return nil, err
		}
		out = append(out, ch)
	}
	return out, nil
}

// UpdateChannel replaces the channel of the same name. An update that
// changes nothing leaves the revision as it is.
func (s *sqlStore) UpdateChannel(ctx context.Context, ch Channel) (Channel, error) {
	ch.DataFormat = dataFormatOrDefault(ch.DataFormat)
	var out Channel
	_, err := s.change(ctx, "", func(tx *gorm.DB, rev int64) (string, error) {
		row, err := getChannel(tx, ch.Name)
		if err != nil {
			return "", err
		}
		old, err := channelFromRow(row)
		if err != nil {
			return "", err
		}
		if sameChannel(old, ch) {
			out = old
			return "", errNoChange
		}
		if err := checkChannelRefs(tx, ch); err != nil {
			return "", err
		}
		methods, err := encodeList(ch.Methods)
		if err != nil {
			return "", fmt.Errorf("update channel %q: %w", ch.Name, err)
		}
		row.Path = ch.Path
		row.Methods = methods
		row.Service = ch.Service
		row.Active = ch.Active
		row.TimeoutMs = ch.TimeoutMs
		row.MaxBodyBytes = ch.MaxBodyBytes
		row.DataFormat = ch.DataFormat
		row.UpdatedAt = now()
		row.Revision = rev
		err = tx.Model(&channelRow{}).Where("id = ?", row.ID).Select("*").Omit("id").Updates(row).Error
		if err != nil {
			return "", fmt.Errorf("update channel %q: %w", ch.Name, err)
		}
		if out, err = channelFromRow(row); err != nil {
			return "", err
		}
		return fmt.Sprintf("update channel %q", ch.Name), nil
	})
	if err != nil {
		return Channel{}, err
	}
	return out, nil
}

// sameChannel reports whether b sets every field a stored channel a has.
func sameChannel(a, b Channel) bool {
	return a.Path == b.Path &&
		slices.Equal(a.Methods, b.Methods) &&
		a.Service == b.Service &&
		a.Active == b.Active &&
		a.TimeoutMs == b.TimeoutMs &&
		a.MaxBodyBytes == b.MaxBodyBytes &&
		a.DataFormat == b.DataFormat
}

// DeleteChannel removes a channel and returns the new revision.
func (s *sqlStore) DeleteChannel(ctx context.Context, name string) (int64, error) {
	return s.change(ctx, "", func(tx *gorm.DB, rev int64) (string, error) {
		row, err := getChannel(tx, name)
		if err != nil {
			return "", err
		}
		if err := tx.Delete(&channelRow{}, row.ID).Error; err != nil {
			return "", fmt.Errorf("delete channel %q: %w", name, err)
		}
		return fmt.Sprintf("delete channel %q", name), nil
	})
}

// dataFormatOrDefault is the stored data format: json when none is given.
func dataFormatOrDefault(f string) string {
	if f == "" {
		return "json"
	}
	return f
}
