-- The outbox of the `mail` interface: messages queued by plugins, sent by the host.
-- A sender claims a row by setting claimed_until (a lease), so with several host processes
-- each message is handed to SMTP by one of them only.
CREATE TABLE outbox (
    id               TEXT PRIMARY KEY NOT NULL,
    plugin_id        TEXT NOT NULL,
    recipients       TEXT NOT NULL,
    subject          TEXT NOT NULL,
    message          BLOB NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    claimed_until    BIGINT,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    sent_at          BIGINT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_plugin_created ON outbox (plugin_id, created_at);
