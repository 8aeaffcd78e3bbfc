-- Operators grant capabilities: what each plugin was granted (comma-separated names), the
-- version an upgrade left (for rollback), and an upgrade waiting for a wider grant.
ALTER TABLE plugins ADD COLUMN grants TEXT NOT NULL DEFAULT '';
ALTER TABLE plugins ADD COLUMN previous_version TEXT;
ALTER TABLE plugins ADD COLUMN pending_version TEXT;
-- Plugins recorded before grants existed were served with everything they asked for.
UPDATE plugins SET grants = 'kv,store,files,mail,events,jobs';

-- Tokens of the admin JSON API, stored as the hex SHA-256 of the secret.
CREATE TABLE admin_tokens (
    token_sha256  TEXT PRIMARY KEY NOT NULL,
    created_at    BIGINT NOT NULL
);
