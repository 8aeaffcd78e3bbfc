-- Quotas (see docs/ARCHITECTURE.md, "Quotas").
--
-- quota_usage: one row per (plugin, service). For `kv` it holds the exact usage (items =
-- keys, bytes = bytes of keys and values), updated in the same transaction as every write
-- with a conditional update. For `files`, `mail` and `events` the row holds no count: a
-- writer locks it so that the check of the plugin's quota and its write are one step.
CREATE TABLE quota_usage (
    plugin_id  TEXT NOT NULL,
    service    TEXT NOT NULL,
    items      BIGINT NOT NULL DEFAULT 0,
    bytes      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (plugin_id, service)
);

-- The kv usage of what plugins stored before this migration.
INSERT INTO quota_usage (plugin_id, service, items, bytes)
SELECT plugin_id, 'kv', COUNT(*),
       COALESCE(SUM(length(CAST(key AS BLOB)) + length(CAST(value AS BLOB))), 0)
FROM kv GROUP BY plugin_id;

-- Bytes reserved by uploads being written, counted by the files quota until the file is
-- recorded (or the reservation released). A reservation left by a process that died is
-- ignored once it expires.
CREATE TABLE file_reservations (
    id          TEXT PRIMARY KEY NOT NULL,
    plugin_id   TEXT NOT NULL,
    bytes       BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX file_reservations_plugin ON file_reservations (plugin_id, expires_at);

-- The publishing rate counts a plugin's events of the last minute.
CREATE INDEX events_publisher_time ON events (publisher, published_at);
