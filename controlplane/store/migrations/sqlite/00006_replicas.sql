-- Version 6: the control plane's replicas, each with its address and a
-- heartbeat, and which replica holds each agent's config stream. An agent
-- counts as connected only while the replica that holds it beats, so a
-- replica that dies takes its agents' "connected" with it.

-- +goose Up
CREATE TABLE IF NOT EXISTS `weft_replicas` (
  `id` text,
  `address` text NOT NULL,
  `started_at` datetime NOT NULL,
  `heartbeat_at` datetime NOT NULL,
  PRIMARY KEY (`id`)
);

CREATE TABLE IF NOT EXISTS `weft_agent_streams` (
  `agent_id` text,
  `replica_id` text NOT NULL,
  PRIMARY KEY (`agent_id`)
);
