-- Events between plugins: the durable queue. `seq` numbers the events of a topic 1, 2, 3...
-- with no gap (publish inserts MAX(seq) + 1; the unique key makes a concurrent publisher retry).
CREATE TABLE events (
    id            BIGSERIAL PRIMARY KEY,
    topic         TEXT COLLATE "C" NOT NULL,
    seq           BIGINT NOT NULL,
    publisher     TEXT NOT NULL,
    payload       TEXT NOT NULL,
    published_at  BIGINT NOT NULL,
    UNIQUE (topic, seq)
);

-- One delivery cursor per (subscriber, topic): the last event acknowledged, the attempts
-- made on the next one, when to retry it, and the lease of the process delivering it.
CREATE TABLE event_cursors (
    subscriber       TEXT NOT NULL,
    topic            TEXT NOT NULL,
    delivered_seq    BIGINT NOT NULL DEFAULT 0,
    attempt          INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    next_attempt_at  BIGINT NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_until      BIGINT NOT NULL DEFAULT 0,
    updated_at       BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (subscriber, topic)
);

-- Deliveries given up after too many failed attempts.
CREATE TABLE event_dead (
    subscriber  TEXT NOT NULL,
    event_id    BIGINT NOT NULL,
    topic       TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    attempts    INTEGER NOT NULL,
    last_error  TEXT NOT NULL,
    dead_at     BIGINT NOT NULL,
    PRIMARY KEY (subscriber, event_id)
);

-- Scheduled job runs: the primary key lets one process only claim a period.
CREATE TABLE job_runs (
    plugin_id     TEXT NOT NULL,
    job           TEXT NOT NULL,
    period_start  BIGINT NOT NULL,
    node          TEXT NOT NULL,
    started_at    BIGINT NOT NULL,
    finished_at   BIGINT,
    outcome       TEXT,
    error         TEXT,
    duration_ms   BIGINT,
    PRIMARY KEY (plugin_id, job, period_start)
);
