-- Version 1: the schema as gorm's AutoMigrate made it before schema
-- versions, column for column and index for index. A database made then
-- is brought to version 1 when first opened, without running this: Open
-- reads from this file the tables and columns it lacks and adds them (see
-- migrate.go), so each column or index here stays on a line of its own.
-- Strings without a size are LONGTEXT and bytes LONGBLOB; every table is
-- utf8mb4 with binary collation, so names compare and sort byte by byte
-- as on SQLite.
--
-- MySQL commits each DDL statement by itself, so a first start that
-- stops half-way leaves some tables made: IF NOT EXISTS lets the next
-- start finish the job.

-- +goose NO TRANSACTION
-- +goose Up
CREATE TABLE IF NOT EXISTS `weft_meta` (
  `id` bigint,
  `revision` bigint NOT NULL DEFAULT 0,
  `key_check` varchar(255) NOT NULL DEFAULT '',
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

INSERT INTO `weft_meta` (`id`, `revision`, `key_check`) VALUES (1, 0, '')
  ON DUPLICATE KEY UPDATE `id` = `id`;

CREATE TABLE IF NOT EXISTS `weft_changes` (
  `revision` bigint,
  `at` datetime(3) NOT NULL,
  `author` varchar(255) NOT NULL,
  `summary` longtext NOT NULL,
  PRIMARY KEY (`revision`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS `weft_audit` (
  `id` bigint AUTO_INCREMENT,
  `revision` bigint NOT NULL,
  `at` datetime(3) NOT NULL,
  `author` varchar(255) NOT NULL,
  `kind` varchar(16) NOT NULL,
  `name` varchar(255) NOT NULL,
  `action` varchar(16) NOT NULL,
  `hash_before` varchar(64) NOT NULL,
  `hash_after` varchar(64) NOT NULL,
  `summary` longtext,
  PRIMARY KEY (`id`),
  INDEX `weft_audit_revision` (`revision`),
  INDEX `weft_audit_at` (`at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS `weft_packages` (
  `name` varchar(255),
  `current_version` bigint NOT NULL,
  `current_version_id` bigint NOT NULL,
  PRIMARY KEY (`name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS `weft_package_versions` (
  `id` bigint AUTO_INCREMENT,
  `name` varchar(255) NOT NULL,
  `version` bigint NOT NULL,
  `sha256` varchar(64) NOT NULL,
  `author` varchar(255) NOT NULL,
  `size_bytes` bigint NOT NULL,
  `services` longtext NOT NULL,
  `revision` bigint NOT NULL,
  `created_at` datetime(3) NOT NULL,
  PRIMARY KEY (`id`),
  UNIQUE INDEX `weft_package_versions_name_version` (`name`,`version`),
  INDEX `weft_package_versions_revision` (`revision`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS `weft_package_files` (
  `id` bigint AUTO_INCREMENT,
  `version_id` bigint NOT NULL,
  `name` varchar(255) NOT NULL,
  `content` longblob NOT NULL,
  PRIMARY KEY (`id`),
  UNIQUE INDEX `weft_package_files_version_name` (`version_id`,`name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS `weft_services` (
  `name` varchar(255),
  `package` varchar(255) NOT NULL,
  PRIMARY KEY (`name`),
  INDEX `weft_services_package` (`package`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS `weft_channels` (
  `id` bigint AUTO_INCREMENT,
  `name` varchar(255) NOT NULL,
  `path` varchar(512) NOT NULL,
  `methods` longtext NOT NULL,
  `service` varchar(255) NOT NULL,
  `active` boolean NOT NULL,
  `timeout_ms` bigint NOT NULL,
  `max_body_bytes` bigint NOT NULL,
  `data_format` varchar(16) NOT NULL DEFAULT 'json',
  `security` varchar(255) NOT NULL DEFAULT '',
  `rate_limit` double NOT NULL DEFAULT 0,
  `rate_burst` int NOT NULL DEFAULT 0,
  `soap_actions` longtext,
  `created_at` datetime(3) NOT NULL,
  `updated_at` datetime(3) NOT NULL,
  `revision` bigint NOT NULL,
  PRIMARY KEY (`id`),
  UNIQUE INDEX `weft_channels_name` (`name`),
  UNIQUE INDEX `weft_channels_path` (`path`),
  INDEX `weft_channels_service` (`service`),
  INDEX `weft_channels_security` (`security`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS `weft_agents` (
  `id` varchar(255),
  `labels` longtext NOT NULL,
  `build_version` varchar(255) NOT NULL,
  `http_address` varchar(255) NOT NULL,
  `pid` bigint NOT NULL,
  `started_at` datetime(3) NULL,
  `connected` boolean NOT NULL,
  `applied_revision` bigint NOT NULL,
  `applied_hash` varchar(255) NOT NULL,
  `failed_revision` bigint NOT NULL,
  `last_error` longtext NOT NULL,
  `first_seen` datetime(3) NOT NULL,
  `last_seen` datetime(3) NOT NULL,
  `not_persisted` longtext,
  `revoked_at` datetime(3) NULL,
  `cert_not_after` datetime(3) NULL,
  `cert_serial` varchar(64),
  `enrolled_by` varchar(255),
  `enrolled_labels` longtext,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS `weft_security_definitions` (
  `id` bigint AUTO_INCREMENT,
  `name` varchar(255) NOT NULL,
  `kind` varchar(64) NOT NULL,
  `username` longtext NOT NULL,
  `password` longtext NOT NULL,
  `header` longtext NOT NULL,
  `api_key` longtext NOT NULL,
  `algorithms` longtext NOT NULL,
  `secret` longtext NOT NULL,
  `public_key_pem` longtext NOT NULL,
  `jwks_url` longtext NOT NULL,
  `issuer` longtext NOT NULL,
  `audience` longtext NOT NULL,
  `leeway_ms` bigint NOT NULL,
  `token` longtext NOT NULL,
  `token_url` longtext NOT NULL,
  `client_id` longtext NOT NULL,
  `client_secret` longtext NOT NULL,
  `scopes` longtext NOT NULL,
  `cert_pem` longtext NOT NULL,
  `key_pem` longtext NOT NULL,
  `created_at` datetime(3) NOT NULL,
  `updated_at` datetime(3) NOT NULL,
  `revision` bigint NOT NULL,
  `ca_pem` longtext,
  `allowed_subjects` longtext,
  `allowed_sans` longtext,
  `introspection_url` longtext,
  `cache_seconds` int NOT NULL DEFAULT 0,
  PRIMARY KEY (`id`),
  UNIQUE INDEX `weft_security_definitions_name` (`name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS `weft_outgoing_connections` (
  `id` bigint AUTO_INCREMENT,
  `name` varchar(255) NOT NULL,
  `address` longtext NOT NULL,
  `path_template` longtext NOT NULL,
  `method` varchar(16) NOT NULL,
  `data_format` varchar(16) NOT NULL,
  `soap_action` longtext NOT NULL,
  `timeout_ms` bigint NOT NULL,
  `tls_skip_verify` boolean NOT NULL,
  `ca_bundle_pem` longtext NOT NULL,
  `security` varchar(255) NOT NULL,
  `pool_size` int NOT NULL,
  `headers` longtext NOT NULL,
  `active` boolean NOT NULL,
  `created_at` datetime(3) NOT NULL,
  `updated_at` datetime(3) NOT NULL,
  `revision` bigint NOT NULL,
  PRIMARY KEY (`id`),
  UNIQUE INDEX `weft_outgoing_connections_name` (`name`),
  INDEX `weft_outgoing_connections_security` (`security`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS `weft_jobs` (
  `id` bigint AUTO_INCREMENT,
  `name` varchar(255) NOT NULL,
  `service` varchar(255) NOT NULL,
  `type` varchar(16) NOT NULL,
  `start_at` datetime(3) NOT NULL,
  `interval_ms` bigint NOT NULL,
  `repeats` bigint NOT NULL,
  `cron` longtext NOT NULL,
  `time_zone` varchar(64) NOT NULL,
  `payload` longtext NOT NULL,
  `active` boolean NOT NULL,
  `agent_labels` longtext NOT NULL,
  `placement` varchar(16) NOT NULL,
  `run_missed` boolean NOT NULL,
  `timeout_ms` bigint NOT NULL,
  `created_at` datetime(3) NOT NULL,
  `updated_at` datetime(3) NOT NULL,
  `revision` bigint NOT NULL,
  PRIMARY KEY (`id`),
  UNIQUE INDEX `weft_jobs_name` (`name`),
  INDEX `weft_jobs_service` (`service`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS `weft_job_leases` (
  `job` varchar(255),
  `agent_id` varchar(255) NOT NULL,
  `expires_at_ms` bigint NOT NULL,
  `token` bigint NOT NULL,
  PRIMARY KEY (`job`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS `weft_job_runs` (
  `id` bigint AUTO_INCREMENT,
  `job` varchar(255) NOT NULL,
  `scheduled_at_ms` bigint NOT NULL,
  `slot` varchar(255) NOT NULL,
  `agent_id` varchar(255) NOT NULL,
  `cid` varchar(64) NOT NULL,
  `run_trigger` varchar(16) NOT NULL,
  `started_at_ms` bigint NOT NULL,
  `duration_us` bigint NOT NULL,
  `outcome` varchar(16) NOT NULL,
  `error` longtext NOT NULL,
  PRIMARY KEY (`id`),
  UNIQUE INDEX `weft_job_runs_firing` (`job`,`scheduled_at_ms`,`slot`),
  INDEX `weft_job_runs_job_id` (`job`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS `weft_stats` (
  `resolution` varchar(4),
  `start_ms` bigint,
  `agent_id` varchar(255),
  `kind` varchar(16),
  `name` varchar(255),
  `count` bigint NOT NULL,
  `errors` bigint NOT NULL,
  `sum_us` bigint NOT NULL,
  `max_us` bigint NOT NULL,
  `histogram` longtext NOT NULL,
  `statuses` longtext NOT NULL,
  `bytes_in` bigint NOT NULL,
  `bytes_out` bigint NOT NULL,
  PRIMARY KEY (`resolution`,`start_ms`,`agent_id`,`kind`,`name`),
  INDEX `weft_stats_object` (`resolution`,`kind`,`name`,`start_ms`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS `weft_stats_seen` (
  `agent_id` varchar(255),
  `epoch` varchar(64),
  `last_seq` bigint NOT NULL,
  `updated_at` datetime(3) NOT NULL,
  PRIMARY KEY (`agent_id`,`epoch`),
  INDEX `weft_stats_seen_updated` (`updated_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS `weft_ca` (
  `id` bigint,
  `cert_pem` longtext NOT NULL,
  `key_pem` longtext NOT NULL,
  `created_at` datetime(3) NOT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS `weft_tokens` (
  `name` varchar(255),
  `role` varchar(16) NOT NULL,
  `hash` varchar(64) NOT NULL,
  `created_at` datetime(3) NOT NULL,
  `expires_at` datetime(3) NULL,
  `revoked_at` datetime(3) NULL,
  `created_by` varchar(255) NOT NULL,
  PRIMARY KEY (`name`),
  UNIQUE INDEX `weft_tokens_hash` (`hash`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS `weft_join_tokens` (
  `id` varchar(255),
  `hash` varchar(64) NOT NULL,
  `labels` longtext NOT NULL,
  `created_at` datetime(3) NOT NULL,
  `expires_at` datetime(3) NULL,
  `uses` bigint NOT NULL,
  `used` bigint NOT NULL,
  `revoked_at` datetime(3) NULL,
  `created_by` varchar(255) NOT NULL,
  `agents` longtext NOT NULL,
  PRIMARY KEY (`id`),
  UNIQUE INDEX `weft_join_tokens_hash` (`hash`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS `weft_data_keys` (
  `id` bigint AUTO_INCREMENT,
  `sealed_key` varchar(255) NOT NULL,
  `created_at` datetime(3) NOT NULL,
  `retired_at` datetime(3) NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
