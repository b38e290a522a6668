-- Version 6: the control plane's replicas, each with its address and a
-- heartbeat, and which replica holds each agent's config stream. An agent
-- counts as connected only while the replica that holds it beats, so a
-- replica that dies takes its agents' "connected" with it. Each statement
-- may run again: MySQL commits each CREATE TABLE by itself.

-- +goose Up
CREATE TABLE IF NOT EXISTS `weft_replicas` (
  `id` varchar(255),
  `address` varchar(255) NOT NULL,
  `started_at` datetime(3) NOT NULL,
  `heartbeat_at` datetime(3) NOT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS `weft_agent_streams` (
  `agent_id` varchar(255),
  `replica_id` varchar(255) NOT NULL,
  PRIMARY KEY (`agent_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
