package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// goMigrations are the migrations that rewrite values with the store's
// own code, for both databases; their numbers have no SQL file.
func goMigrations(mysql bool) []*goose.Migration {
	var out []*goose.Migration
	for _, m := range specMigrations {
		run := func(ctx context.Context, q execQuerier) error { return m.run(ctx, q, mysql) }
		up := &goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error { return run(ctx, tx) }}
		if mysql {
			// MySQL commits each ALTER TABLE: the steps run outside a
			// transaction, each done again or skipped when a start stopped
			// half-way (under the schema lock).
			up = &goose.GoFunc{RunDB: func(ctx context.Context, db *sql.DB) error { return run(ctx, db) }}
		}
		out = append(out, goose.NewGoMigration(m.version, up, nil))
	}
	return out
}

// execQuerier is a transaction or a database.
type execQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// specMigration is a migration after which a kind is stored as its API
// message (kind, in objects.go): it adds the spec column, fills it from
// the columns of each field, and drops those but the kind's keys.
type specMigration struct {
	version int64
	table   string
	word    string
	read    string   // the columns the spec is made of, id first
	drop    []string // the columns the spec holds since
	indexes []string // indexes on dropped columns
	// scan reads one row of read into its message.
	scan func(rows *sql.Rows) (id int64, m proto.Message, err error)
}

// specMigrations are the kinds moved to a spec column, in order.
var specMigrations = []specMigration{
	{
		version: 2, table: "weft_channels", word: "channel",
		read: "`id`, `name`, `path`, `methods`, `service`, `active`, `timeout_ms`, " +
			"`max_body_bytes`, `data_format`, `security`, `rate_limit`, `rate_burst`, `soap_actions`",
		drop: []string{"methods", "service", "active", "timeout_ms", "max_body_bytes",
			"data_format", "rate_limit", "rate_burst", "soap_actions"},
		indexes: []string{"weft_channels_service"},
		scan: func(rows *sql.Rows) (int64, proto.Message, error) {
			var (
				id               int64
				ch               adminv1.Channel
				methods, actions sql.NullString
				active           bool
			)
			err := rows.Scan(&id, &ch.Name, &ch.Path, &methods, &ch.Service, &active, &ch.TimeoutMs,
				&ch.MaxBodyBytes, &ch.DataFormat, &ch.Security, &ch.RateLimit, &ch.RateBurst, &actions)
			if err != nil {
				return 0, nil, err
			}
			ch.Active = proto.Bool(active)
			if ch.Methods, err = decodeList("methods of channel "+ch.Name, methods.String); err == nil {
				ch.SoapActions, err = decodeMap("SOAP actions of channel "+ch.Name, actions.String)
			}
			return id, &ch, err
		},
	},
	{
		version: 3, table: "weft_outgoing_connections", word: "outgoing connection",
		read: "`id`, `name`, `address`, `path_template`, `method`, `data_format`, `soap_action`, " +
			"`timeout_ms`, `tls_skip_verify`, `ca_bundle_pem`, `security`, `pool_size`, `headers`, `active`",
		drop: []string{"address", "path_template", "method", "data_format", "soap_action", "timeout_ms",
			"tls_skip_verify", "ca_bundle_pem", "pool_size", "headers", "active"},
		scan: func(rows *sql.Rows) (int64, proto.Message, error) {
			var (
				id      int64
				c       adminv1.OutgoingConnection
				headers string
				active  bool
			)
			err := rows.Scan(&id, &c.Name, &c.Address, &c.PathTemplate, &c.Method, &c.DataFormat, &c.SoapAction,
				&c.TimeoutMs, &c.TlsSkipVerify, &c.CaBundlePem, &c.Security, &c.PoolSize, &headers, &active)
			if err != nil {
				return 0, nil, err
			}
			c.Active = proto.Bool(active)
			c.Headers, err = decodeMap(fmt.Sprintf("headers of outgoing connection %q", c.Name), headers)
			return id, &c, err
		},
	},
	{
		// The secrets stay as they are sealed: the spec holds them sealed
		// (sqlStore.securities).
		version: 4, table: "weft_security_definitions", word: "security definition",
		read: "`id`, `name`, `kind`, `username`, `password`, `header`, `api_key`, `algorithms`, `secret`, " +
			"`public_key_pem`, `jwks_url`, `issuer`, `audience`, `leeway_ms`, `token`, `token_url`, `client_id`, " +
			"`client_secret`, `scopes`, `cert_pem`, `key_pem`, `ca_pem`, `allowed_subjects`, `allowed_sans`, " +
			"`introspection_url`, `cache_seconds`",
		drop: []string{"kind", "username", "password", "header", "api_key", "algorithms", "secret",
			"public_key_pem", "jwks_url", "issuer", "audience", "leeway_ms", "token", "token_url", "client_id",
			"client_secret", "scopes", "cert_pem", "key_pem", "ca_pem", "allowed_subjects", "allowed_sans",
			"introspection_url", "cache_seconds"},
		scan: func(rows *sql.Rows) (int64, proto.Message, error) {
			var (
				id                                int64
				d                                 adminv1.SecurityDefinition
				algorithms, scopes                string
				ca, subjects, sans, introspection sql.NullString
			)
			err := rows.Scan(&id, &d.Name, &d.Kind, &d.Username, &d.Password, &d.Header, &d.Key, &algorithms,
				&d.Secret, &d.PublicKeyPem, &d.JwksUrl, &d.Issuer, &d.Audience, &d.LeewayMs, &d.Token, &d.TokenUrl,
				&d.ClientId, &d.ClientSecret, &scopes, &d.CertPem, &d.KeyPem, &ca, &subjects, &sans, &introspection,
				&d.CacheSeconds)
			if err != nil {
				return 0, nil, err
			}
			d.CaPem, d.IntrospectionUrl = ca.String, introspection.String
			list := func(field, value string) []string {
				var l []string
				if err == nil && value != "" { // NULL in rows from before the column
					l, err = decodeList(fmt.Sprintf("%s of security definition %q", field, d.Name), value)
				}
				return l
			}
			d.Algorithms, d.Scopes = list("algorithms", algorithms), list("scopes", scopes)
			d.AllowedSubjects, d.AllowedSans = list("allowed_subjects", subjects.String), list("allowed_sans", sans.String)
			return id, &d, err
		},
	},
	{
		version: 5, table: "weft_jobs", word: "job",
		read: "`id`, `name`, `service`, `type`, `start_at`, `interval_ms`, `repeats`, `cron`, `time_zone`, " +
			"`payload`, `active`, `agent_labels`, `placement`, `run_missed`, `timeout_ms`",
		drop: []string{"type", "start_at", "interval_ms", "repeats", "cron", "time_zone", "payload", "active",
			"agent_labels", "placement", "run_missed", "timeout_ms"},
		scan: func(rows *sql.Rows) (int64, proto.Message, error) {
			var (
				id         int64
				j          adminv1.Job
				start      time.Time
				intervalMs int64
				active     bool
				labels     string
			)
			err := rows.Scan(&id, &j.Name, &j.Service, &j.Type, &start, &intervalMs, &j.Repeats, &j.Cron,
				&j.TimeZone, &j.Payload, &active, &labels, &j.Placement, &j.RunMissed, &j.TimeoutMs)
			if err != nil {
				return 0, nil, err
			}
			j.Active = proto.Bool(active)
			if !start.IsZero() {
				j.StartAt = timestamppb.New(start)
			}
			if s := intervalMs / 1000; s > 0 { // as weeks, days, hours, minutes and seconds
				j.Interval = &adminv1.JobInterval{Weeks: s / (7 * 86400), Days: s % (7 * 86400) / 86400,
					Hours: s % 86400 / 3600, Minutes: s % 3600 / 60, Seconds: s % 60}
			}
			j.AgentLabels, err = decodeMap("agent_labels of job "+j.Name, labels)
			return id, &j, err
		},
	},
}

// run applies m to the database q.
func (m specMigration) run(ctx context.Context, q execQuerier, mysql bool) error {
	has := func(column string) (bool, error) {
		query := "SELECT COUNT(*) FROM pragma_table_info('" + m.table + "') WHERE name = ?"
		if mysql {
			query = "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() " +
				"AND TABLE_NAME = '" + m.table + "' AND COLUMN_NAME = ?"
		}
		var n int
		err := q.QueryRowContext(ctx, query, column).Scan(&n)
		return n > 0, err
	}
	if ok, err := has("spec"); err != nil {
		return err
	} else if !ok {
		add := "ALTER TABLE `" + m.table + "` ADD COLUMN `spec` blob NOT NULL DEFAULT x''"
		if mysql {
			add = "ALTER TABLE `" + m.table + "` ADD COLUMN `spec` longblob AFTER `name`"
		}
		if _, err := q.ExecContext(ctx, add); err != nil {
			return fmt.Errorf("add %s.spec: %w", m.table, err)
		}
	}
	if ok, err := has(m.drop[0]); err != nil || !ok {
		return err // done before a start stopped
	}
	if err := m.fill(ctx, q); err != nil {
		return err
	}
	var drop []string
	if mysql {
		var parts []string
		for _, i := range m.indexes {
			parts = append(parts, "DROP INDEX `"+i+"`")
		}
		for _, c := range m.drop {
			parts = append(parts, "DROP COLUMN `"+c+"`")
		}
		parts = append(parts, "MODIFY `spec` longblob NOT NULL")
		drop = []string{"ALTER TABLE `" + m.table + "` " + strings.Join(parts, ", ")}
	} else {
		for _, i := range m.indexes {
			drop = append(drop, "DROP INDEX `"+i+"`")
		}
		for _, c := range m.drop {
			drop = append(drop, "ALTER TABLE `"+m.table+"` DROP COLUMN `"+c+"`")
		}
	}
	for _, stmt := range drop {
		if _, err := q.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("drop the columns of %s the spec holds: %w", m.table, err)
		}
	}
	return nil
}

// fill sets the spec of every row from the columns of its fields, as the
// version before kept them.
func (m specMigration) fill(ctx context.Context, q execQuerier) error {
	rows, err := q.QueryContext(ctx, "SELECT "+m.read+" FROM `"+m.table+"`")
	if err != nil {
		return fmt.Errorf("read %ss: %w", m.word, err)
	}
	specs := map[int64][]byte{}
	for rows.Next() {
		id, msg, err := m.scan(rows)
		if err == nil {
			specs[id], err = encodeSpec(msg)
		}
		if err != nil {
			rows.Close()
			return fmt.Errorf("read %ss: %w", m.word, err)
		}
	}
	if err := rows.Close(); err != nil {
		return err
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read %ss: %w", m.word, err)
	}
	for id, spec := range specs {
		if _, err := q.ExecContext(ctx, "UPDATE `"+m.table+"` SET `spec` = ? WHERE `id` = ?", spec, id); err != nil {
			return fmt.Errorf("write the spec of %s %d: %w", m.word, id, err)
		}
	}
	return nil
}
