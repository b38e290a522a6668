package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/pressly/goose/v3"
	"google.golang.org/protobuf/proto"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// goMigrations are the migrations that rewrite values with the store's
// own code, for both databases; their numbers have no SQL file.
func goMigrations(mysql bool) []*goose.Migration {
	run := func(ctx context.Context, q execQuerier) error { return channelSpecs(ctx, q, mysql) }
	up := &goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error { return run(ctx, tx) }}
	if mysql {
		// MySQL commits each ALTER TABLE: the steps run outside a
		// transaction, each done again or skipped when a start stopped
		// half-way (under the schema lock).
		up = &goose.GoFunc{RunDB: func(ctx context.Context, db *sql.DB) error { return run(ctx, db) }}
	}
	return []*goose.Migration{goose.NewGoMigration(2, up, nil)}
}

// execQuerier is a transaction or a database.
type execQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// channelOnlyColumns are the columns of weft_channels before version 2
// that the spec column holds since.
var channelOnlyColumns = []string{"methods", "service", "active", "timeout_ms", "max_body_bytes",
	"data_format", "rate_limit", "rate_burst", "soap_actions"}

// channelSpecs is migration 2: a channel is stored as its API message
// (kind, in objects.go). It adds the spec column, fills it from the
// columns of each field, and drops those but path and security, which
// uniqueness and queries need.
func channelSpecs(ctx context.Context, q execQuerier, mysql bool) error {
	has := func(column string) (bool, error) {
		query := "SELECT COUNT(*) FROM pragma_table_info('weft_channels') WHERE name = ?"
		if mysql {
			query = "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() " +
				"AND TABLE_NAME = 'weft_channels' AND COLUMN_NAME = ?"
		}
		var n int
		err := q.QueryRowContext(ctx, query, column).Scan(&n)
		return n > 0, err
	}
	if ok, err := has("spec"); err != nil {
		return err
	} else if !ok {
		add := "ALTER TABLE `weft_channels` ADD COLUMN `spec` blob NOT NULL DEFAULT x''"
		if mysql {
			add = "ALTER TABLE `weft_channels` ADD COLUMN `spec` longblob AFTER `name`"
		}
		if _, err := q.ExecContext(ctx, add); err != nil {
			return fmt.Errorf("add weft_channels.spec: %w", err)
		}
	}
	if ok, err := has("methods"); err != nil || !ok {
		return err // done before a start stopped
	}
	if err := fillChannelSpecs(ctx, q); err != nil {
		return err
	}
	var drop []string
	if mysql {
		drop = []string{"ALTER TABLE `weft_channels` DROP INDEX `weft_channels_service`, DROP COLUMN `" +
			strings.Join(channelOnlyColumns, "`, DROP COLUMN `") + "`, MODIFY `spec` longblob NOT NULL"}
	} else {
		drop = []string{"DROP INDEX `weft_channels_service`"}
		for _, c := range channelOnlyColumns {
			drop = append(drop, "ALTER TABLE `weft_channels` DROP COLUMN `"+c+"`")
		}
	}
	for _, stmt := range drop {
		if _, err := q.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("drop the columns of weft_channels the spec holds: %w", err)
		}
	}
	return nil
}

// fillChannelSpecs sets the spec of every channel from the columns of its
// fields, as version 1 kept them.
func fillChannelSpecs(ctx context.Context, q execQuerier) error {
	rows, err := q.QueryContext(ctx, "SELECT `id`, `name`, `path`, `methods`, `service`, `active`, `timeout_ms`, "+
		"`max_body_bytes`, `data_format`, `security`, `rate_limit`, `rate_burst`, `soap_actions` FROM `weft_channels`")
	if err != nil {
		return fmt.Errorf("read channels: %w", err)
	}
	specs := map[int64][]byte{}
	for rows.Next() {
		var (
			id               int64
			ch               adminv1.Channel
			methods, actions sql.NullString
			active           bool
		)
		err := rows.Scan(&id, &ch.Name, &ch.Path, &methods, &ch.Service, &active, &ch.TimeoutMs,
			&ch.MaxBodyBytes, &ch.DataFormat, &ch.Security, &ch.RateLimit, &ch.RateBurst, &actions)
		if err != nil {
			rows.Close()
			return fmt.Errorf("read channels: %w", err)
		}
		ch.Active = proto.Bool(active)
		if ch.Methods, err = decodeList("methods of channel "+ch.Name, methods.String); err == nil {
			ch.SoapActions, err = decodeMap("SOAP actions of channel "+ch.Name, actions.String)
		}
		if err == nil {
			specs[id], err = encodeSpec(&ch)
		}
		if err != nil {
			rows.Close()
			return err
		}
	}
	if err := rows.Close(); err != nil {
		return err
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read channels: %w", err)
	}
	for id, spec := range specs {
		if _, err := q.ExecContext(ctx, "UPDATE `weft_channels` SET `spec` = ? WHERE `id` = ?", spec, id); err != nil {
			return fmt.Errorf("write the spec of channel %d: %w", id, err)
		}
	}
	return nil
}
