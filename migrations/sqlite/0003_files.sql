-- Metadata of the files each plugin stores (the `files` interface); the bytes live on disk
-- under {files-dir}/{plugin-id}/. The table makes stat, list and the quota cheap and exact.
CREATE TABLE files (
    plugin_id     TEXT NOT NULL,
    name          TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    size          BIGINT NOT NULL,
    sha256        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (plugin_id, name)
);
