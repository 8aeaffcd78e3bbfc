//! The mail outbox: messages queued by plugins and their delivery state.
//!
//! A sender claims a due message by setting `claimed_until` (a lease) in one conditional
//! `UPDATE`; the condition is re-checked on the locked row by both backends, so with several
//! host processes only one of them gets a given message.

use super::quota::{LOCK_USAGE, begin_write};
use super::{Database, DbError, now_ms, on_pool};

/// A message to insert in the outbox.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    /// Message id.
    pub id: &'a str,
    /// Plugin that queued it.
    pub plugin_id: &'a str,
    /// Recipients, comma separated, for listings.
    pub recipients: &'a str,
    /// Subject, for listings.
    pub subject: &'a str,
    /// The serialized message.
    pub message: &'a [u8],
}

/// One row of the outbox.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxRow {
    /// Message id.
    pub id: String,
    /// Plugin that queued it.
    pub plugin_id: String,
    /// Recipients, comma separated.
    pub recipients: String,
    /// Subject.
    pub subject: String,
    /// `queued`, `sent` or `failed`.
    pub status: String,
    /// Delivery attempts so far.
    pub attempts: i32,
    /// Error of the last failed attempt.
    pub last_error: Option<String>,
    /// Queued at, milliseconds since the Unix epoch.
    pub created_at: i64,
    /// Sent at, milliseconds since the Unix epoch.
    pub sent_at: Option<i64>,
}

/// A message claimed for delivery.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedMessage {
    /// Message id.
    pub id: String,
    /// Plugin that queued it.
    pub plugin_id: String,
    /// The serialized message.
    pub message: Vec<u8>,
    /// Delivery attempts before this one.
    pub attempts: i32,
}

/// Outcome of [`Database::outbox_enqueue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// The message is in the outbox.
    Queued,
    /// The plugin already queued `recent` messages in the last hour; nothing was queued.
    RateExceeded {
        /// Messages of the last hour.
        recent: i64,
    },
}

/// The window of the mail rate, in milliseconds.
const HOUR_MS: i64 = 3_600_000;

impl Database {
    /// Queues a message, due now, unless the plugin already queued `max_per_hour` in the
    /// last hour. One transaction that first locks the plugin's `mail` row of
    /// `quota_usage`: concurrent senders of a plugin (on any host) are counted one after
    /// the other, so the rate is exact.
    pub async fn outbox_enqueue(
        &self,
        message: &NewMessage<'_>,
        max_per_hour: u32,
    ) -> Result<Enqueued, DbError> {
        let now = now_ms();
        let begin = begin_write(self.backend());
        let outcome = on_pool!(self, pool => {
            let mut tx = super::quota::BeginWrite::begin_write_in(pool, begin).await?;
            sqlx::query(LOCK_USAGE)
                .bind(message.plugin_id)
                .bind("mail")
                .execute(&mut *tx)
                .await?;
            let recent: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE plugin_id = $1 AND created_at > $2")
                    .bind(message.plugin_id)
                    .bind(now - HOUR_MS)
                    .fetch_one(&mut *tx)
                    .await?;
            if recent >= i64::from(max_per_hour) {
                Ok::<Enqueued, sqlx::Error>(Enqueued::RateExceeded { recent })
            } else {
                sqlx::query(
                    "INSERT INTO outbox (id, plugin_id, recipients, subject, message, status, attempts, \
                     next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $6)",
                )
                .bind(message.id)
                .bind(message.plugin_id)
                .bind(message.recipients)
                .bind(message.subject)
                .bind(message.message)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(Enqueued::Queued)
            }
        })?;
        Ok(outcome)
    }

    /// Claims the next due message for `lease_ms`, or `None` if nothing is due.
    pub async fn outbox_claim(&self, lease_ms: i64) -> Result<Option<ClaimedMessage>, DbError> {
        let now = now_ms();
        let claimed = on_pool!(self, pool => {
            sqlx::query_as(
                "UPDATE outbox SET claimed_until = $2 WHERE id = ( \
                   SELECT id FROM outbox WHERE status = 'queued' AND next_attempt_at <= $1 \
                   AND (claimed_until IS NULL OR claimed_until < $1) \
                   ORDER BY next_attempt_at, id LIMIT 1) \
                 AND status = 'queued' AND (claimed_until IS NULL OR claimed_until < $1) \
                 RETURNING id, plugin_id, message, attempts",
            )
            .bind(now)
            .bind(now.saturating_add(lease_ms))
            .fetch_optional(pool)
            .await
        })?;
        Ok(claimed)
    }

    /// Records a successful delivery.
    pub async fn outbox_mark_sent(&self, id: &str) -> Result<(), DbError> {
        on_pool!(self, pool => {
            sqlx::query(
                "UPDATE outbox SET status = 'sent', attempts = attempts + 1, sent_at = $2, \
                 claimed_until = NULL, last_error = NULL WHERE id = $1",
            )
            .bind(id)
            .bind(now_ms())
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }

    /// Records a failed attempt: due again at `next_attempt_at`, or `failed` for good when
    /// `next_attempt_at` is `None`.
    pub async fn outbox_mark_failed(
        &self,
        id: &str,
        error: &str,
        next_attempt_at: Option<i64>,
    ) -> Result<(), DbError> {
        let status = if next_attempt_at.is_some() {
            "queued"
        } else {
            "failed"
        };
        on_pool!(self, pool => {
            sqlx::query(
                "UPDATE outbox SET status = $2, attempts = attempts + 1, last_error = $3, \
                 next_attempt_at = $4, claimed_until = NULL WHERE id = $1",
            )
            .bind(id)
            .bind(status)
            .bind(error)
            .bind(next_attempt_at.unwrap_or_else(now_ms))
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }

    /// The outbox, newest first, optionally only one status.
    pub async fn outbox_list(&self, status: Option<&str>, limit: u32) -> Result<Vec<OutboxRow>, DbError> {
        let rows = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, plugin_id, recipients, subject, status, attempts, last_error, created_at, \
                 sent_at FROM outbox WHERE ($1 IS NULL OR status = $1) \
                 ORDER BY created_at DESC, id LIMIT $2",
            )
                .bind(status)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
        })?;
        Ok(rows)
    }
}
