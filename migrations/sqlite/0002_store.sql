-- The document store (the `store` interface). Plugins never see these tables.
CREATE TABLE documents (
    plugin_id   TEXT NOT NULL,
    collection  TEXT NOT NULL,
    id          TEXT NOT NULL,
    version     BIGINT NOT NULL,
    -- A JSON object, as compact text; queried with json_extract.
    body        TEXT NOT NULL,
    size        BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (plugin_id, collection, id)
);

-- Indexes declared by plugins; each is a real expression index on `documents`, partial on
-- (plugin_id, collection), named `store_idx_<hash>`.
CREATE TABLE store_indexes (
    plugin_id   TEXT NOT NULL,
    collection  TEXT NOT NULL,
    name        TEXT NOT NULL,
    fields      TEXT NOT NULL,
    is_unique   BOOLEAN NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (plugin_id, name)
);

-- Exact usage per plugin, updated in the same transaction as every write (the quota), and
-- the row every write transaction of a plugin locks first.
CREATE TABLE store_usage (
    plugin_id   TEXT PRIMARY KEY NOT NULL,
    bytes       BIGINT NOT NULL,
    documents   BIGINT NOT NULL
);
