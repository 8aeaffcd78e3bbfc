-- Installed plugins and every stored version of each (bytes kept for rollback and for other nodes).
CREATE TABLE plugins (
    id          TEXT PRIMARY KEY NOT NULL,
    version     TEXT NOT NULL,
    enabled     BOOLEAN NOT NULL DEFAULT TRUE,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE plugin_versions (
    plugin_id     TEXT NOT NULL,
    version       TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    manifest      TEXT NOT NULL,
    wasm          BYTEA NOT NULL,
    installed_by  TEXT NOT NULL,
    installed_at  BIGINT NOT NULL,
    PRIMARY KEY (plugin_id, version)
);

-- The per-plugin key-value store (the `kv` interface). Plugins never see this table.
CREATE TABLE kv (
    plugin_id   TEXT NOT NULL,
    key         TEXT COLLATE "C" NOT NULL,
    value       BYTEA NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (plugin_id, key)
);
