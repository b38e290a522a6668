-- Version 1: the schema as gorm's AutoMigrate made it before schema
-- versions, column for column and index for index. A database made then
-- is brought to version 1 when first opened, without running this: Open
-- reads from this file the tables and columns it lacks and adds them (see
-- migrate.go), so each column or index here stays on a line of its own.
-- Strings are TEXT, times DATETIME (written as text, in UTC), booleans
-- NUMERIC.

-- +goose Up
CREATE TABLE `weft_meta` (
  `id` integer,
  `revision` integer NOT NULL DEFAULT 0,
  `key_check` text NOT NULL DEFAULT '',
  PRIMARY KEY (`id`)
);
INSERT INTO `weft_meta` (`id`, `revision`, `key_check`) VALUES (1, 0, '');

CREATE TABLE `weft_changes` (
  `revision` integer,
  `at` datetime NOT NULL,
  `author` text NOT NULL,
  `summary` text NOT NULL,
  PRIMARY KEY (`revision`)
);

CREATE TABLE `weft_audit` (
  `id` integer PRIMARY KEY AUTOINCREMENT,
  `revision` integer NOT NULL,
  `at` datetime NOT NULL,
  `author` text NOT NULL,
  `kind` text NOT NULL,
  `name` text NOT NULL,
  `action` text NOT NULL,
  `hash_before` text NOT NULL,
  `hash_after` text NOT NULL,
  `summary` text
);
CREATE INDEX `weft_audit_at` ON `weft_audit`(`at`);
CREATE INDEX `weft_audit_revision` ON `weft_audit`(`revision`);

CREATE TABLE `weft_packages` (
  `name` text,
  `current_version` integer NOT NULL,
  `current_version_id` integer NOT NULL,
  PRIMARY KEY (`name`)
);

CREATE TABLE `weft_package_versions` (
  `id` integer PRIMARY KEY AUTOINCREMENT,
  `name` text NOT NULL,
  `version` integer NOT NULL,
  `sha256` text NOT NULL,
  `author` text NOT NULL,
  `size_bytes` integer NOT NULL,
  `services` text NOT NULL,
  `revision` integer NOT NULL,
  `created_at` datetime NOT NULL
);
CREATE INDEX `weft_package_versions_revision` ON `weft_package_versions`(`revision`);
CREATE UNIQUE INDEX `weft_package_versions_name_version` ON `weft_package_versions`(`name`,`version`);

CREATE TABLE `weft_package_files` (
  `id` integer PRIMARY KEY AUTOINCREMENT,
  `version_id` integer NOT NULL,
  `name` text NOT NULL,
  `content` blob NOT NULL
);
CREATE UNIQUE INDEX `weft_package_files_version_name` ON `weft_package_files`(`version_id`,`name`);

CREATE TABLE `weft_services` (
  `name` text,
  `package` text NOT NULL,
  PRIMARY KEY (`name`)
);
CREATE INDEX `weft_services_package` ON `weft_services`(`package`);

CREATE TABLE `weft_channels` (
  `id` integer PRIMARY KEY AUTOINCREMENT,
  `name` text NOT NULL,
  `path` text NOT NULL,
  `methods` text NOT NULL,
  `service` text NOT NULL,
  `active` numeric NOT NULL,
  `timeout_ms` integer NOT NULL,
  `max_body_bytes` integer NOT NULL,
  `data_format` text NOT NULL DEFAULT 'json',
  `security` text NOT NULL DEFAULT '',
  `rate_limit` real NOT NULL DEFAULT 0,
  `rate_burst` integer NOT NULL DEFAULT 0,
  `soap_actions` text,
  `created_at` datetime NOT NULL,
  `updated_at` datetime NOT NULL,
  `revision` integer NOT NULL
);
CREATE INDEX `weft_channels_security` ON `weft_channels`(`security`);
CREATE INDEX `weft_channels_service` ON `weft_channels`(`service`);
CREATE UNIQUE INDEX `weft_channels_path` ON `weft_channels`(`path`);
CREATE UNIQUE INDEX `weft_channels_name` ON `weft_channels`(`name`);

CREATE TABLE `weft_agents` (
  `id` text,
  `labels` text NOT NULL,
  `build_version` text NOT NULL,
  `http_address` text NOT NULL,
  `pid` integer NOT NULL,
  `started_at` datetime,
  `connected` numeric NOT NULL,
  `applied_revision` integer NOT NULL,
  `applied_hash` text NOT NULL,
  `failed_revision` integer NOT NULL,
  `last_error` text NOT NULL,
  `first_seen` datetime NOT NULL,
  `last_seen` datetime NOT NULL,
  `not_persisted` text,
  `revoked_at` datetime,
  `cert_not_after` datetime,
  `cert_serial` text,
  `enrolled_by` text,
  `enrolled_labels` text,
  PRIMARY KEY (`id`)
);

CREATE TABLE `weft_security_definitions` (
  `id` integer PRIMARY KEY AUTOINCREMENT,
  `name` text NOT NULL,
  `kind` text NOT NULL,
  `username` text NOT NULL,
  `password` text NOT NULL,
  `header` text NOT NULL,
  `api_key` text NOT NULL,
  `algorithms` text NOT NULL,
  `secret` text NOT NULL,
  `public_key_pem` text NOT NULL,
  `jwks_url` text NOT NULL,
  `issuer` text NOT NULL,
  `audience` text NOT NULL,
  `leeway_ms` integer NOT NULL,
  `token` text NOT NULL,
  `token_url` text NOT NULL,
  `client_id` text NOT NULL,
  `client_secret` text NOT NULL,
  `scopes` text NOT NULL,
  `cert_pem` text NOT NULL,
  `key_pem` text NOT NULL,
  `created_at` datetime NOT NULL,
  `updated_at` datetime NOT NULL,
  `revision` integer NOT NULL,
  `ca_pem` text,
  `allowed_subjects` text,
  `allowed_sans` text,
  `introspection_url` text,
  `cache_seconds` integer NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX `weft_security_definitions_name` ON `weft_security_definitions`(`name`);

CREATE TABLE `weft_outgoing_connections` (
  `id` integer PRIMARY KEY AUTOINCREMENT,
  `name` text NOT NULL,
  `address` text NOT NULL,
  `path_template` text NOT NULL,
  `method` text NOT NULL,
  `data_format` text NOT NULL,
  `soap_action` text NOT NULL,
  `timeout_ms` integer NOT NULL,
  `tls_skip_verify` numeric NOT NULL,
  `ca_bundle_pem` text NOT NULL,
  `security` text NOT NULL,
  `pool_size` integer NOT NULL,
  `headers` text NOT NULL,
  `active` numeric NOT NULL,
  `created_at` datetime NOT NULL,
  `updated_at` datetime NOT NULL,
  `revision` integer NOT NULL
);
CREATE INDEX `weft_outgoing_connections_security` ON `weft_outgoing_connections`(`security`);
CREATE UNIQUE INDEX `weft_outgoing_connections_name` ON `weft_outgoing_connections`(`name`);

CREATE TABLE `weft_jobs` (
  `id` integer PRIMARY KEY AUTOINCREMENT,
  `name` text NOT NULL,
  `service` text NOT NULL,
  `type` text NOT NULL,
  `start_at` datetime NOT NULL,
  `interval_ms` integer NOT NULL,
  `repeats` integer NOT NULL,
  `cron` text NOT NULL,
  `time_zone` text NOT NULL,
  `payload` text NOT NULL,
  `active` numeric NOT NULL,
  `agent_labels` text NOT NULL,
  `placement` text NOT NULL,
  `run_missed` numeric NOT NULL,
  `timeout_ms` integer NOT NULL,
  `created_at` datetime NOT NULL,
  `updated_at` datetime NOT NULL,
  `revision` integer NOT NULL
);
CREATE INDEX `weft_jobs_service` ON `weft_jobs`(`service`);
CREATE UNIQUE INDEX `weft_jobs_name` ON `weft_jobs`(`name`);

CREATE TABLE `weft_job_leases` (
  `job` text,
  `agent_id` text NOT NULL,
  `expires_at_ms` integer NOT NULL,
  `token` integer NOT NULL,
  PRIMARY KEY (`job`)
);

CREATE TABLE `weft_job_runs` (
  `id` integer PRIMARY KEY AUTOINCREMENT,
  `job` text NOT NULL,
  `scheduled_at_ms` integer NOT NULL,
  `slot` text NOT NULL,
  `agent_id` text NOT NULL,
  `cid` text NOT NULL,
  `run_trigger` text NOT NULL,
  `started_at_ms` integer NOT NULL,
  `duration_us` integer NOT NULL,
  `outcome` text NOT NULL,
  `error` text NOT NULL
);
CREATE INDEX `weft_job_runs_job_id` ON `weft_job_runs`(`job`);
CREATE UNIQUE INDEX `weft_job_runs_firing` ON `weft_job_runs`(`job`,`scheduled_at_ms`,`slot`);

CREATE TABLE `weft_stats` (
  `resolution` text,
  `start_ms` integer,
  `agent_id` text,
  `kind` text,
  `name` text,
  `count` integer NOT NULL,
  `errors` integer NOT NULL,
  `sum_us` integer NOT NULL,
  `max_us` integer NOT NULL,
  `histogram` text NOT NULL,
  `statuses` text NOT NULL,
  `bytes_in` integer NOT NULL,
  `bytes_out` integer NOT NULL,
  PRIMARY KEY (`resolution`,`start_ms`,`agent_id`,`kind`,`name`)
);
CREATE INDEX `weft_stats_object` ON `weft_stats`(`resolution`,`kind`,`name`,`start_ms`);

CREATE TABLE `weft_stats_seen` (
  `agent_id` text,
  `epoch` text,
  `last_seq` integer NOT NULL,
  `updated_at` datetime NOT NULL,
  PRIMARY KEY (`agent_id`,`epoch`)
);
CREATE INDEX `weft_stats_seen_updated` ON `weft_stats_seen`(`updated_at`);

CREATE TABLE `weft_ca` (
  `id` integer,
  `cert_pem` text NOT NULL,
  `key_pem` text NOT NULL,
  `created_at` datetime NOT NULL,
  PRIMARY KEY (`id`)
);

CREATE TABLE `weft_tokens` (
  `name` text,
  `role` text NOT NULL,
  `hash` text NOT NULL,
  `created_at` datetime NOT NULL,
  `expires_at` datetime,
  `revoked_at` datetime,
  `created_by` text NOT NULL,
  PRIMARY KEY (`name`)
);
CREATE UNIQUE INDEX `weft_tokens_hash` ON `weft_tokens`(`hash`);

CREATE TABLE `weft_join_tokens` (
  `id` text,
  `hash` text NOT NULL,
  `labels` text NOT NULL,
  `created_at` datetime NOT NULL,
  `expires_at` datetime,
  `uses` integer NOT NULL,
  `used` integer NOT NULL,
  `revoked_at` datetime,
  `created_by` text NOT NULL,
  `agents` text NOT NULL,
  PRIMARY KEY (`id`)
);
CREATE UNIQUE INDEX `weft_join_tokens_hash` ON `weft_join_tokens`(`hash`);

CREATE TABLE `weft_data_keys` (
  `id` integer PRIMARY KEY AUTOINCREMENT,
  `sealed_key` text NOT NULL,
  `created_at` datetime NOT NULL,
  `retired_at` datetime
);
