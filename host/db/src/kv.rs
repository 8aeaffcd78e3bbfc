//! Storage of the `kv` interface: one row per (plugin, key), and the plugin's usage (keys,
//! bytes of keys and values) in `quota_usage`, changed in the same transaction as every
//! write by one conditional statement (see [`super::quota`]).

use super::quota::{begin_write, to_i64};
use super::{Backend, Database, DbError, now_ms, on_pool};
use lutetia_model::manifest::KvCapability;

/// Attempts of the optimistic read-modify-write loop of [`Database::kv_increment`].
const INCREMENT_ATTEMPTS: usize = 200;
/// Rounds of insert-or-update in [`Database::kv_set`] when concurrent deletes keep
/// removing the key between the two statements.
const SET_ATTEMPTS: usize = 20;

/// Adds (keys, bytes) to the plugin's kv usage when the growth fits the quota; shrinking
/// always passes. `$1` plugin, `$2` keys, `$3` bytes, `$4` max keys, `$5` max bytes. The
/// first write of a plugin inserts the row (its growth is checked before, in Rust).
const CHARGE: &str = "INSERT INTO quota_usage (plugin_id, service, items, bytes) VALUES ($1, 'kv', $2, $3) \
     ON CONFLICT (plugin_id, service) DO UPDATE SET items = quota_usage.items + excluded.items, \
     bytes = quota_usage.bytes + excluded.bytes \
     WHERE (excluded.items <= 0 OR quota_usage.items + excluded.items <= $4) \
     AND (excluded.bytes <= 0 OR quota_usage.bytes + excluded.bytes <= $5)";

/// Outcome of [`Database::kv_increment`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Increment {
    /// The new value.
    Value(i64),
    /// The stored value is not a decimal integer.
    NotAnInteger,
    /// The sum overflows a signed 64-bit integer.
    Overflow,
}

/// Why a kv write was refused.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// The write would take the plugin past its key or byte quota; nothing was written.
    #[error("{0}")]
    QuotaExceeded(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for KvError {
    fn from(e: sqlx::Error) -> Self {
        KvError::Db(DbError::Query(e))
    }
}

fn quota_exceeded(quota: KvCapability, keys: i64, bytes: i64) -> KvError {
    KvError::QuotaExceeded(format!(
        "a write of {keys:+} key(s) and {bytes:+} bytes does not fit the kv quota of {} keys and {} bytes",
        quota.max_keys, quota.max_bytes
    ))
}

/// Size of a key and its value, as the quota counts it.
fn entry_size(key: &str, value: &[u8]) -> i64 {
    to_i64((key.len() + value.len()) as u64)
}

/// Charges (keys, bytes) to the plugin's usage within the transaction `$tx`, or answers
/// `QuotaExceeded` (the caller then drops the transaction: nothing is kept).
macro_rules! charge {
    ($tx:ident, $plugin:expr, $quota:expr, $keys:expr, $bytes:expr) => {{
        let (keys, bytes): (i64, i64) = ($keys, $bytes);
        let quota: KvCapability = $quota;
        if keys == 0 && bytes == 0 {
            Ok(())
        } else if (keys > 0 && keys > to_i64(quota.max_keys))
            || (bytes > 0 && bytes > to_i64(quota.max_bytes))
        {
            Err(quota_exceeded(quota, keys, bytes))
        } else {
            let charged = sqlx::query(CHARGE)
                .bind($plugin)
                .bind(keys)
                .bind(bytes)
                .bind(to_i64(quota.max_keys))
                .bind(to_i64(quota.max_bytes))
                .execute(&mut *$tx)
                .await?
                .rows_affected();
            if charged == 1 {
                Ok(())
            } else {
                Err(quota_exceeded(quota, keys, bytes))
            }
        }
    }};
}

impl Database {
    /// Reads a value.
    pub async fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, DbError> {
        let row: Option<(Vec<u8>,)> = on_pool!(self, pool => {
            sqlx::query_as("SELECT value FROM kv WHERE plugin_id = $1 AND key = $2")
                .bind(plugin)
                .bind(key)
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(|(v,)| v))
    }

    /// Writes a value, replacing any previous one, within the plugin's quota.
    pub async fn kv_set(
        &self,
        plugin: &str,
        quota: KvCapability,
        key: &str,
        value: &[u8],
    ) -> Result<(), KvError> {
        let old_size = match self.backend() {
            Backend::Sqlite => {
                "SELECT CAST(length(value) AS BIGINT) FROM kv WHERE plugin_id = $1 AND key = $2"
            }
            Backend::Postgres => {
                "SELECT CAST(length(value) AS BIGINT) FROM kv WHERE plugin_id = $1 AND key = $2 FOR UPDATE"
            }
        };
        let begin = begin_write(self.backend());
        let now = now_ms();
        on_pool!(self, pool => {
            let mut tx = super::quota::BeginWrite::begin_write_in(pool, begin).await?;
            let mut delta = None;
            for _ in 0..SET_ATTEMPTS {
                // A new key is an insert (waiting, on PostgreSQL, for a concurrent insert of
                // the same key to commit or roll back); an existing one is locked and updated.
                let inserted = sqlx::query(
                    "INSERT INTO kv (plugin_id, key, value, updated_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (plugin_id, key) DO NOTHING",
                )
                .bind(plugin)
                .bind(key)
                .bind(value)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 1 {
                    delta = Some((1, entry_size(key, value)));
                    break;
                }
                let old: Option<i64> = sqlx::query_scalar(old_size)
                    .bind(plugin)
                    .bind(key)
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some(old) = old {
                    sqlx::query("UPDATE kv SET value = $3, updated_at = $4 WHERE plugin_id = $1 AND key = $2")
                        .bind(plugin)
                        .bind(key)
                        .bind(value)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    delta = Some((0, to_i64(value.len() as u64) - old));
                    break;
                }
                // Deleted by a concurrent writer between the two statements: insert again.
            }
            let Some((keys, bytes)) = delta else {
                return Err(KvError::Db(DbError::Contention("kv set")));
            };
            charge!(tx, plugin, quota, keys, bytes)?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Deletes a value, freeing its share of the quota; returns whether it existed.
    pub async fn kv_delete(&self, plugin: &str, quota: KvCapability, key: &str) -> Result<bool, KvError> {
        let begin = begin_write(self.backend());
        on_pool!(self, pool => {
            let mut tx = super::quota::BeginWrite::begin_write_in(pool, begin).await?;
            let removed: Option<i64> = sqlx::query_scalar(
                "DELETE FROM kv WHERE plugin_id = $1 AND key = $2 RETURNING CAST(length(value) AS BIGINT)",
            )
            .bind(plugin)
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(size) = removed {
                charge!(tx, plugin, quota, -1, -(to_i64(key.len() as u64) + size))?;
                tx.commit().await?;
            }
            Ok(removed.is_some())
        })
    }

    /// Sets `key` to `new` only if its value is `expected` (`None`: absent), atomically and
    /// within the plugin's quota.
    pub async fn kv_compare_and_swap(
        &self,
        plugin: &str,
        quota: KvCapability,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, KvError> {
        let begin = begin_write(self.backend());
        let now = now_ms();
        on_pool!(self, pool => {
            let mut tx = super::quota::BeginWrite::begin_write_in(pool, begin).await?;
            let (changed, keys, bytes) = match expected {
                None => {
                    let n = sqlx::query(
                        "INSERT INTO kv (plugin_id, key, value, updated_at) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (plugin_id, key) DO NOTHING",
                    )
                    .bind(plugin)
                    .bind(key)
                    .bind(new)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    (n == 1, 1, entry_size(key, new))
                }
                Some(old) => {
                    let n = sqlx::query(
                        "UPDATE kv SET value = $3, updated_at = $4 \
                         WHERE plugin_id = $1 AND key = $2 AND value = $5",
                    )
                    .bind(plugin)
                    .bind(key)
                    .bind(new)
                    .bind(now)
                    .bind(old)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    (n == 1, 0, to_i64(new.len() as u64) - to_i64(old.len() as u64))
                }
            };
            if changed {
                charge!(tx, plugin, quota, keys, bytes)?;
                tx.commit().await?;
            }
            Ok(changed)
        })
    }

    /// The plugin's kv usage: (keys, bytes of keys and values).
    pub async fn kv_usage(&self, plugin: &str) -> Result<(u64, u64), DbError> {
        let row: Option<(i64, i64)> = on_pool!(self, pool => {
            sqlx::query_as("SELECT items, bytes FROM quota_usage WHERE plugin_id = $1 AND service = 'kv'")
                .bind(plugin)
                .fetch_optional(pool)
                .await
        })?;
        let (keys, bytes) = row.unwrap_or((0, 0));
        Ok((
            u64::try_from(keys).unwrap_or(0),
            u64::try_from(bytes).unwrap_or(0),
        ))
    }

    /// Adds `delta` to the decimal integer at `key` (absent counts as 0), atomically.
    ///
    /// An optimistic compare-and-swap loop: identical on both backends, no lock held across
    /// round trips, and correct under any number of concurrent writers.
    pub async fn kv_increment(
        &self,
        plugin: &str,
        quota: KvCapability,
        key: &str,
        delta: i64,
    ) -> Result<Increment, KvError> {
        // SQLite has one writer at a time and its busy handler sleeps with backoff: many
        // increments of one hot key (a visit counter) racing through the loop would wait
        // seconds on each other. Within this process they queue here instead, in order.
        static SQLITE_INCREMENTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _queued = match self {
            Database::Sqlite(_) => Some(SQLITE_INCREMENTS.lock().await),
            // A scope holds SQLite's write lock: queueing behind increments that wait for it
            // would stall both until the busy timeout.
            Database::Postgres(_) | Database::Scoped(_) => None,
        };
        for _ in 0..INCREMENT_ATTEMPTS {
            let current = self.kv_get(plugin, key).await?;
            let base = match &current {
                None => 0,
                Some(bytes) => match std::str::from_utf8(bytes)
                    .ok()
                    .and_then(|s| s.trim().parse::<i64>().ok())
                {
                    Some(n) => n,
                    None => return Ok(Increment::NotAnInteger),
                },
            };
            let Some(next) = base.checked_add(delta) else {
                return Ok(Increment::Overflow);
            };
            if self
                .kv_compare_and_swap(
                    plugin,
                    quota,
                    key,
                    current.as_deref(),
                    next.to_string().as_bytes(),
                )
                .await?
            {
                return Ok(Increment::Value(next));
            }
            tokio::task::yield_now().await;
        }
        Err(KvError::Db(DbError::Contention("kv increment")))
    }

    /// Keys of `plugin` starting with `prefix`, in byte order, after `start_after`.
    pub async fn kv_list_keys(
        &self,
        plugin: &str,
        prefix: &str,
        start_after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, DbError> {
        // Range scan on the primary key instead of LIKE, so `%` and `_` in a prefix are literal.
        let lower = match start_after {
            Some(after) if after >= prefix => after.to_owned(),
            _ => String::new(),
        };
        let rows: Vec<(String,)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT key FROM kv WHERE plugin_id = $1 AND key >= $2 AND key > $3 \
                 ORDER BY key LIMIT $4",
            )
            .bind(plugin)
            .bind(prefix)
            .bind(&lower)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })?;
        Ok(rows
            .into_iter()
            .map(|(k,)| k)
            .take_while(|k| k.starts_with(prefix))
            .collect())
    }
}
