package store

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"google.golang.org/protobuf/proto"
	"gorm.io/gorm"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// channels are stored in weft_channels, with the columns of their unique
// path and of the security definition they name, which a definition's
// delete looks up.
var channels = kind[*adminv1.Channel]{
	table: "weft_channels",
	word:  "channel",
	keys: func(c *adminv1.Channel) map[string]any {
		return map[string]any{"path": c.GetPath(), "security": c.GetSecurity()}
	},
}

// CreateChannel stores a new channel.
func (s *sqlStore) CreateChannel(ctx context.Context, ch *adminv1.Channel) (*adminv1.Channel, error) {
	var out *adminv1.Channel
	_, err := s.change(ctx, "", func(tx *gorm.DB, rev int64) (string, error) {
		var n int64
		if err := tx.Table(channels.table).Where("name = ?", ch.GetName()).Count(&n).Error; err != nil {
			return "", fmt.Errorf("create channel %q: %w", ch.GetName(), err)
		}
		if n > 0 {
			return "", fmt.Errorf("channel %q already exists: %w", ch.GetName(), ErrConflict)
		}
		if err := s.checkChannelRefs(tx, ch); err != nil {
			return "", err
		}
		var err error
		if out, err = channels.insert(tx, rev, ch); err != nil {
			return "", err
		}
		return fmt.Sprintf("create channel %q", ch.GetName()), nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// checkChannelRefs checks that the path of ch is free, that its service and
// the services of its SOAP actions are deployed, and that its security
// definition exists and verifies inbound requests.
func (s *sqlStore) checkChannelRefs(tx *gorm.DB, ch *adminv1.Channel) error {
	var other []string
	if err := tx.Table(channels.table).Where("path = ? AND name <> ?", ch.GetPath(), ch.GetName()).
		Limit(1).Pluck("name", &other).Error; err != nil {
		return fmt.Errorf("channel %q: read paths: %w", ch.GetName(), err)
	}
	if len(other) > 0 {
		return fmt.Errorf("channel %q: path %q is already used by channel %q: %w", ch.GetName(), ch.GetPath(), other[0], ErrConflict)
	}
	if ch.GetService() != "" {
		if err := checkService(tx, ch.GetName(), "", ch.GetService()); err != nil {
			return err
		}
	}
	actions := ch.GetSoapActions()
	for _, op := range slices.Sorted(maps.Keys(actions)) {
		if err := checkService(tx, ch.GetName(), fmt.Sprintf("SOAP action %q: ", op), actions[op]); err != nil {
			return err
		}
	}
	if ch.GetSecurity() != "" {
		return s.checkSecurityUse(tx, fmt.Sprintf("channel %q", ch.GetName()), ch.GetSecurity(), true)
	}
	return nil
}

// channelCall is a channel and the services it calls of those asked about.
type channelCall struct {
	name  string
	calls []string // sorted
}

// channelsCalling returns the channels (the active ones, when activeOnly)
// that call any of services, as their service or through a SOAP action,
// sorted by name.
func channelsCalling(tx *gorm.DB, services []string, activeOnly bool) ([]channelCall, error) {
	if len(services) == 0 {
		return nil, nil
	}
	chs, err := channels.list(tx)
	if err != nil {
		return nil, err
	}
	var out []channelCall
	for _, ch := range chs {
		if activeOnly && !ch.GetActive() {
			continue
		}
		var calls []string
		for _, svc := range append([]string{ch.GetService()}, slices.Collect(maps.Values(ch.GetSoapActions()))...) {
			if slices.Contains(services, svc) && !slices.Contains(calls, svc) {
				calls = append(calls, svc)
			}
		}
		if len(calls) > 0 {
			slices.Sort(calls)
			out = append(out, channelCall{name: ch.GetName(), calls: calls})
		}
	}
	return out, nil
}

// deactivateChannel makes the channel name inactive at revision rev.
func deactivateChannel(tx *gorm.DB, rev int64, name string) error {
	row, ch, err := channels.get(tx, name)
	if err != nil {
		return err
	}
	ch.Active = proto.Bool(false)
	_, err = channels.replace(tx, rev, row, ch)
	return err
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
func (s *sqlStore) GetChannel(ctx context.Context, name string) (*adminv1.Channel, error) {
	_, ch, err := channels.get(s.r.WithContext(ctx), name)
	return ch, err
}

// ListChannels returns every channel sorted by name.
func (s *sqlStore) ListChannels(ctx context.Context) ([]*adminv1.Channel, error) {
	out, err := channels.list(s.r.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("list channels: %w", err)
	}
	return out, nil
}

// UpdateChannel replaces the channel of the same name. An update that
// changes nothing leaves the revision as it is.
func (s *sqlStore) UpdateChannel(ctx context.Context, ch *adminv1.Channel) (*adminv1.Channel, error) {
	var out *adminv1.Channel
	_, err := s.change(ctx, "", func(tx *gorm.DB, rev int64) (string, error) {
		row, old, err := channels.get(tx, ch.GetName())
		if err != nil {
			return "", err
		}
		if channels.same(old, ch) {
			out = old
			return "", errNoChange
		}
		if err := s.checkChannelRefs(tx, ch); err != nil {
			return "", err
		}
		if out, err = channels.replace(tx, rev, row, ch); err != nil {
			return "", err
		}
		return fmt.Sprintf("update channel %q", ch.GetName()), nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteChannel removes a channel and returns the new revision.
func (s *sqlStore) DeleteChannel(ctx context.Context, name string) (int64, error) {
	return s.change(ctx, "", func(tx *gorm.DB, rev int64) (string, error) {
		if err := channels.delete(tx, name); err != nil {
			return "", err
		}
		return fmt.Sprintf("delete channel %q", name), nil
	})
}
