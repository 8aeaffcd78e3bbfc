//! Storage of the `kv` interface: one row per (plugin, key).

use super::{Database, DbError, now_ms, on_pool};

/// Attempts of the optimistic read-modify-write loop of [`Database::kv_increment`].
const INCREMENT_ATTEMPTS: usize = 200;

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

    /// Writes a value, replacing any previous one.
    pub async fn kv_set(&self, plugin: &str, key: &str, value: &[u8]) -> Result<(), DbError> {
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO kv (plugin_id, key, value, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (plugin_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            )
            .bind(plugin)
            .bind(key)
            .bind(value)
            .bind(now_ms())
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }

    /// Deletes a value; returns whether it existed.
    pub async fn kv_delete(&self, plugin: &str, key: &str) -> Result<bool, DbError> {
        let done = on_pool!(self, pool => {
            sqlx::query("DELETE FROM kv WHERE plugin_id = $1 AND key = $2")
                .bind(plugin)
                .bind(key)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(done > 0)
    }

    /// Sets `key` to `new` only if its value is `expected` (`None`: absent), atomically.
    pub async fn kv_compare_and_swap(
        &self,
        plugin: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, DbError> {
        let now = now_ms();
        let changed = match expected {
            None => on_pool!(self, pool => {
                sqlx::query(
                    "INSERT INTO kv (plugin_id, key, value, updated_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (plugin_id, key) DO NOTHING",
                )
                .bind(plugin)
                .bind(key)
                .bind(new)
                .bind(now)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
            })?,
            Some(old) => on_pool!(self, pool => {
                sqlx::query(
                    "UPDATE kv SET value = $3, updated_at = $4 \
                     WHERE plugin_id = $1 AND key = $2 AND value = $5",
                )
                .bind(plugin)
                .bind(key)
                .bind(new)
                .bind(now)
                .bind(old)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
            })?,
        };
        Ok(changed == 1)
    }

    /// Adds `delta` to the decimal integer at `key` (absent counts as 0), atomically.
    ///
    /// An optimistic compare-and-swap loop: identical on both backends, no lock held across
    /// round trips, and correct under any number of concurrent writers.
    pub async fn kv_increment(&self, plugin: &str, key: &str, delta: i64) -> Result<Increment, DbError> {
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
                .kv_compare_and_swap(plugin, key, current.as_deref(), next.to_string().as_bytes())
                .await?
            {
                return Ok(Increment::Value(next));
            }
            tokio::task::yield_now().await;
        }
        Err(DbError::Contention("kv increment"))
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
