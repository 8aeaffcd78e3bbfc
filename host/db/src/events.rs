//! Storage of events: the durable queue, the delivery cursors and the dead deliveries.

use super::quota::{LOCK_USAGE, begin_write, to_i64};
use super::{Database, DbError, now_ms, on_pool};

/// Attempts of [`Database::publish_event`] when concurrent publishers take the same number.
const PUBLISH_ATTEMPTS: usize = 50;
/// The window of the publishing rate, in milliseconds.
const RATE_WINDOW_MS: i64 = 60_000;

/// The quotas a publish is checked against.
#[derive(Debug, Clone, Copy)]
pub struct PublishQuota<'a> {
    /// Events the publisher may publish in any 60 seconds (all topics together).
    pub max_per_minute: u64,
    /// Undelivered events the topic may already hold.
    pub max_backlog: u64,
    /// The plugins subscribed to the topic: the backlog is what the slowest of them has not
    /// acknowledged yet (everything, when there is none: a later subscriber reads the
    /// topic from its start).
    pub subscribers: &'a [String],
}

/// Why an event was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Over the publisher's rate or the topic's backlog bound; nothing was published.
    #[error("{0}")]
    QuotaExceeded(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for PublishError {
    fn from(e: sqlx::Error) -> Self {
        PublishError::Db(DbError::Query(e))
    }
}

/// The backlog of a topic whose last event is `head`: events after the oldest
/// acknowledgement among `subscribers` (a subscriber without a cursor has read nothing).
pub fn backlog(head: i64, subscribers: &[String], cursors: &[(String, i64)]) -> i64 {
    let watermark = subscribers
        .iter()
        .map(|s| {
            cursors
                .iter()
                .find(|(subscriber, _)| subscriber == s)
                .map_or(0, |(_, delivered)| *delivered)
        })
        .min()
        .unwrap_or(0);
    head.saturating_sub(watermark).max(0)
}

/// An event of the queue.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredEvent {
    /// Unique id.
    pub id: i64,
    /// Topic.
    pub topic: String,
    /// Position in its topic: 1, 2, 3...
    pub seq: i64,
    /// Publishing plugin.
    pub publisher: String,
    /// JSON text.
    pub payload: String,
    /// Milliseconds since the Unix epoch.
    pub published_at: i64,
}

/// Where a subscriber is in a topic.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Cursor {
    /// Topic.
    pub topic: String,
    /// Sequence number of the last event acknowledged (or given up).
    pub delivered_seq: i64,
    /// Failed attempts on the next event.
    pub attempt: i32,
    /// Earliest time of the next attempt.
    pub next_attempt_at: i64,
    /// End of the current lease (0: none).
    pub lease_until: i64,
    /// Last error of the next event, if it failed.
    pub last_error: Option<String>,
}

/// A cursor leased by this process: it alone delivers the topic to the subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// Subscribing plugin.
    pub subscriber: String,
    /// Topic.
    pub topic: String,
    /// Last event acknowledged.
    pub delivered_seq: i64,
    /// Failed attempts on the next event.
    pub attempt: u32,
    /// The lease holder (this process).
    pub owner: String,
}

impl Database {
    /// Appends an event to its topic, numbered after the last one, if the publisher's rate
    /// and the topic's backlog allow it.
    ///
    /// One transaction: lock the publisher's `events` row in `quota_usage` (so its own
    /// publishes are counted one after the other, on every host), count its events of the
    /// last minute, measure the topic's backlog, insert with `seq = head + 1`. A publisher of
    /// another plugin that took the same number makes the insert fail on `UNIQUE (topic,
    /// seq)`; the whole transaction is then tried again, and sees that event.
    pub async fn publish_event(
        &self,
        topic: &str,
        publisher: &str,
        payload: &str,
        quota: PublishQuota<'_>,
    ) -> Result<i64, PublishError> {
        let begin = begin_write(self.backend());
        for _ in 0..PUBLISH_ATTEMPTS {
            let now = now_ms();
            let attempt: Result<i64, PublishError> = on_pool!(self, pool => {
                let mut tx = super::quota::BeginWrite::begin_write_in(pool, begin).await?;
                sqlx::query(LOCK_USAGE)
                    .bind(publisher)
                    .bind("events")
                    .execute(&mut *tx)
                    .await?;
                let recent: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM events WHERE publisher = $1 AND published_at > $2",
                )
                .bind(publisher)
                .bind(now - RATE_WINDOW_MS)
                .fetch_one(&mut *tx)
                .await?;
                if recent >= to_i64(quota.max_per_minute) {
                    return Err(PublishError::QuotaExceeded(format!(
                        "{recent} events published in the last minute; the limit is {}",
                        quota.max_per_minute
                    )));
                }
                let head: i64 = sqlx::query_scalar(
                    "SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) FROM events WHERE topic = $1",
                )
                .bind(topic)
                .fetch_one(&mut *tx)
                .await?;
                let cursors: Vec<(String, i64)> = if quota.subscribers.is_empty() {
                    Vec::new()
                } else {
                    sqlx::query_as("SELECT subscriber, delivered_seq FROM event_cursors WHERE topic = $1")
                        .bind(topic)
                        .fetch_all(&mut *tx)
                        .await?
                };
                let waiting = backlog(head, quota.subscribers, &cursors);
                if waiting >= to_i64(quota.max_backlog) {
                    return Err(PublishError::QuotaExceeded(format!(
                        "topic {topic:?} holds {waiting} undelivered events; the limit is {}",
                        quota.max_backlog
                    )));
                }
                let inserted: Result<(i64,), sqlx::Error> = sqlx::query_as(
                    "INSERT INTO events (topic, seq, publisher, payload, published_at) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .bind(topic)
                .bind(head + 1)
                .bind(publisher)
                .bind(payload)
                .bind(now)
                .fetch_one(&mut *tx)
                .await;
                match inserted {
                    Ok((id,)) => {
                        tx.commit().await?;
                        Ok(id)
                    }
                    Err(e) => Err(e.into()),
                }
            });
            match attempt {
                Ok(id) => return Ok(id),
                // Another publisher took this number first: start again after it.
                Err(PublishError::Db(DbError::Query(sqlx::Error::Database(e))))
                    if e.is_unique_violation() =>
                {
                    tokio::task::yield_now().await;
                }
                Err(e) => return Err(e),
            }
        }
        Err(PublishError::Db(DbError::Contention("event publish")))
    }

    /// The last sequence number of every topic.
    pub async fn event_topic_heads(&self) -> Result<Vec<(String, i64)>, DbError> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as("SELECT topic, MAX(seq) FROM events GROUP BY topic")
                .fetch_all(pool)
                .await
        })?)
    }

    /// The cursors of a subscriber.
    pub async fn event_cursors(&self, subscriber: &str) -> Result<Vec<Cursor>, DbError> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT topic, delivered_seq, attempt, next_attempt_at, lease_until, last_error \
                 FROM event_cursors WHERE subscriber = $1",
            )
            .bind(subscriber)
            .fetch_all(pool)
            .await
        })?)
    }

    /// Leases the cursor of (subscriber, topic) for `lease_ms` if nobody holds it and its
    /// retry is due; creates it (at the start of the topic) if needed. `None`: not now.
    pub async fn claim_event_cursor(
        &self,
        subscriber: &str,
        topic: &str,
        owner: &str,
        lease_ms: i64,
    ) -> Result<Option<Claim>, DbError> {
        let now = now_ms();
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO event_cursors (subscriber, topic, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (subscriber, topic) DO NOTHING",
            )
            .bind(subscriber)
            .bind(topic)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        // A conditional update is atomic on both backends: one process only wins the lease.
        let row: Option<(i64, i32)> = on_pool!(self, pool => {
            sqlx::query_as(
                "UPDATE event_cursors SET lease_owner = $3, lease_until = $4, updated_at = $5 \
                 WHERE subscriber = $1 AND topic = $2 AND lease_until <= $5 AND next_attempt_at <= $5 \
                 RETURNING delivered_seq, attempt",
            )
            .bind(subscriber)
            .bind(topic)
            .bind(owner)
            .bind(now.saturating_add(lease_ms))
            .bind(now)
            .fetch_optional(pool)
            .await
        })?;
        Ok(row.map(|(delivered_seq, attempt)| Claim {
            subscriber: subscriber.to_owned(),
            topic: topic.to_owned(),
            delivered_seq,
            attempt: u32::try_from(attempt).unwrap_or(0),
            owner: owner.to_owned(),
        }))
    }

    /// The first event of `topic` after `seq`.
    pub async fn event_after(&self, topic: &str, seq: i64) -> Result<Option<StoredEvent>, DbError> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, topic, seq, publisher, payload, published_at FROM events \
                 WHERE topic = $1 AND seq > $2 ORDER BY seq LIMIT 1",
            )
            .bind(topic)
            .bind(seq)
            .fetch_optional(pool)
            .await
        })?)
    }

    /// Records that the event `seq` was handled and extends the lease; `false` if the lease
    /// was lost meanwhile.
    pub async fn ack_event(&self, claim: &mut Claim, seq: i64, lease_ms: i64) -> Result<bool, DbError> {
        let now = now_ms();
        let done = on_pool!(self, pool => {
            sqlx::query(
                "UPDATE event_cursors SET delivered_seq = $3, attempt = 0, last_error = NULL, \
                 next_attempt_at = 0, lease_until = $4, updated_at = $5 \
                 WHERE subscriber = $1 AND topic = $2 AND lease_owner = $6 AND delivered_seq = $7",
            )
            .bind(&claim.subscriber)
            .bind(&claim.topic)
            .bind(seq)
            .bind(now.saturating_add(lease_ms))
            .bind(now)
            .bind(&claim.owner)
            .bind(claim.delivered_seq)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        if done == 1 {
            claim.delivered_seq = seq;
            claim.attempt = 0;
        }
        Ok(done == 1)
    }

    /// Records a failed attempt on the next event, releases the lease and sets the retry.
    pub async fn fail_event(
        &self,
        claim: &Claim,
        attempt: u32,
        error: &str,
        retry_at: i64,
    ) -> Result<(), DbError> {
        on_pool!(self, pool => {
            sqlx::query(
                "UPDATE event_cursors SET attempt = $3, last_error = $4, next_attempt_at = $5, \
                 lease_owner = NULL, lease_until = 0, updated_at = $6 \
                 WHERE subscriber = $1 AND topic = $2 AND lease_owner = $7",
            )
            .bind(&claim.subscriber)
            .bind(&claim.topic)
            .bind(i32::try_from(attempt).unwrap_or(i32::MAX))
            .bind(error)
            .bind(retry_at)
            .bind(now_ms())
            .bind(&claim.owner)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }

    /// Gives an event up for this subscriber (recorded in `event_dead`) and moves on.
    pub async fn bury_event(
        &self,
        claim: &mut Claim,
        event: &StoredEvent,
        attempts: u32,
        error: &str,
        lease_ms: i64,
    ) -> Result<bool, DbError> {
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO event_dead (subscriber, event_id, topic, seq, attempts, last_error, dead_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (subscriber, event_id) DO NOTHING",
            )
            .bind(&claim.subscriber)
            .bind(event.id)
            .bind(&event.topic)
            .bind(event.seq)
            .bind(i32::try_from(attempts).unwrap_or(i32::MAX))
            .bind(error)
            .bind(now_ms())
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        self.ack_event(claim, event.seq, lease_ms).await
    }

    /// Gives the lease up.
    pub async fn release_event_cursor(&self, claim: &Claim) -> Result<(), DbError> {
        on_pool!(self, pool => {
            sqlx::query(
                "UPDATE event_cursors SET lease_owner = NULL, lease_until = 0 \
                 WHERE subscriber = $1 AND topic = $2 AND lease_owner = $3",
            )
            .bind(&claim.subscriber)
            .bind(&claim.topic)
            .bind(&claim.owner)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }

    /// Deliveries given up: (subscriber, event id, attempts, last error).
    pub async fn dead_events(&self) -> Result<Vec<(String, i64, i32, String)>, DbError> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT subscriber, event_id, attempts, last_error FROM event_dead ORDER BY dead_at",
            )
            .fetch_all(pool)
            .await
        })?)
    }
}
