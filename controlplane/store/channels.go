package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
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
		if err := s.checkChannelRefs(tx, ch); err != nil {
			return "", err
		}
		var err error
		out, err = insertChannel(tx, rev, ch)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("create channel %q", ch.Name), nil
	})
	if err != nil {
		return Channel{}, err
	}
	return out, nil
}

// checkChannelRefs checks that the path of ch is free, that its service and
// the services of its SOAP actions are deployed, and that its security
// definition exists and verifies inbound requests.
func (s *sqlStore) checkChannelRefs(tx *gorm.DB, ch Channel) error {
	var other []channelRow
	if err := tx.Where("path = ? AND name <> ?", ch.Path, ch.Name).Limit(1).Find(&other).Error; err != nil {
		return fmt.Errorf("channel %q: read paths: %w", ch.Name, err)
	}
	if len(other) > 0 {
		return fmt.Errorf("channel %q: path %q is already used by channel %q: %w", ch.Name, ch.Path, other[0].Name, ErrConflict)
	}
	if ch.Service != "" {
		if err := checkService(tx, ch.Name, "", ch.Service); err != nil {
			return err
		}
	}
	for _, op := range slices.Sorted(maps.Keys(ch.SOAPActions)) {
		if err := checkService(tx, ch.Name, fmt.Sprintf("SOAP action %q: ", op), ch.SOAPActions[op]); err != nil {
			return err
		}
	}
	if ch.Security != "" {
		return s.checkSecurityUse(tx, fmt.Sprintf("channel %q", ch.Name), ch.Security, true)
	}
	return nil
}

// channelCall is a channel and the services it calls of those asked about.
type channelCall struct {
	row   channelRow
	calls []string // sorted
}

// channelsCalling returns the channels (the active ones, when activeOnly)
// that call any of services, as their service or through a SOAP action,
// sorted by name.
func channelsCalling(tx *gorm.DB, services []string, activeOnly bool) ([]channelCall, error) {
	if len(services) == 0 {
		return nil, nil
	}
	q := tx.Order("name")
	if activeOnly {
		q = q.Where("active = ?", true)
	}
	var rows []channelRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("read channels: %w", err)
	}
	var out []channelCall
	for _, r := range rows {
		ch, err := channelFromRow(&r)
		if err != nil {
			return nil, err
		}
		var calls []string
		for _, svc := range append([]string{ch.Service}, slices.Collect(maps.Values(ch.SOAPActions))...) {
			if slices.Contains(services, svc) && !slices.Contains(calls, svc) {
				calls = append(calls, svc)
			}
		}
		if len(calls) > 0 {
			slices.Sort(calls)
			out = append(out, channelCall{row: r, calls: calls})
		}
	}
	return out, nil
}

// checkService checks that service, which channel calls (through what,
// such as `SOAP action "x": `), is deployed.
func checkService(tx *gorm.DB, channel, what, service string) error {
	var n int64
	if err := tx.Model(&serviceRow{}).Where("name = ?", service).Count(&n).Error; err != nil {
		return fmt.Errorf("channel %q: read services: %w", channel, err)
	}
	if n == 0 {
		return fmt.Errorf("channel %q: %sservice %q is not deployed: %w", channel, what, service, ErrNotFound)
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
		if err := s.checkChannelRefs(tx, ch); err != nil {
			return "", err
		}
		if out, err = replaceChannel(tx, rev, row, ch); err != nil {
			return "", err
		}
		return fmt.Sprintf("update channel %q", ch.Name), nil
	})
	if err != nil {
		return Channel{}, err
	}
	return out, nil
}

// insertChannel writes the new channel ch at revision rev.
func insertChannel(tx *gorm.DB, rev int64, ch Channel) (Channel, error) {
	t := now()
	row := channelRow{Name: ch.Name, CreatedAt: t, UpdatedAt: t, Revision: rev}
	if err := fillChannelRow(&row, ch); err != nil {
		return Channel{}, err
	}
	if err := tx.Create(&row).Error; err != nil {
		return Channel{}, fmt.Errorf("create channel %q: %w", ch.Name, err)
	}
	return channelFromRow(&row)
}

// replaceChannel writes ch over its stored row at revision rev.
func replaceChannel(tx *gorm.DB, rev int64, row *channelRow, ch Channel) (Channel, error) {
	if err := fillChannelRow(row, ch); err != nil {
		return Channel{}, err
	}
	row.UpdatedAt, row.Revision = now(), rev
	if err := tx.Model(&channelRow{}).Where("id = ?", row.ID).Select("*").Omit("id").Updates(row).Error; err != nil {
		return Channel{}, fmt.Errorf("update channel %q: %w", ch.Name, err)
	}
	return channelFromRow(row)
}

// fillChannelRow sets every field of row but its id, name, times and
// revision from ch.
func fillChannelRow(row *channelRow, ch Channel) error {
	methods, err := encodeList(ch.Methods)
	if err != nil {
		return fmt.Errorf("channel %q: methods: %w", ch.Name, err)
	}
	actions, err := encodeMap(ch.SOAPActions)
	if err != nil {
		return fmt.Errorf("channel %q: soap_actions: %w", ch.Name, err)
	}
	row.Path = ch.Path
	row.Methods = methods
	row.Service = ch.Service
	row.Active = ch.Active
	row.TimeoutMs = ch.TimeoutMs
	row.MaxBodyBytes = ch.MaxBodyBytes
	row.DataFormat = dataFormatOrDefault(ch.DataFormat)
	row.Security = ch.Security
	row.RateLimit = ch.RateLimit
	row.RateBurst = ch.RateBurst
	row.SOAPActions = actions
	return nil
}

// sameChannel reports whether b sets every field a stored channel a has.
func sameChannel(a, b Channel) bool {
	return a.Path == b.Path &&
		slices.Equal(a.Methods, b.Methods) &&
		a.Service == b.Service &&
		a.Active == b.Active &&
		a.TimeoutMs == b.TimeoutMs &&
		a.MaxBodyBytes == b.MaxBodyBytes &&
		a.DataFormat == b.DataFormat &&
		a.Security == b.Security &&
		a.RateLimit == b.RateLimit &&
		a.RateBurst == b.RateBurst &&
		maps.Equal(a.SOAPActions, b.SOAPActions)
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
