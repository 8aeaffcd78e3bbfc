//! The `quota_usage` rows (migration 0007) and the write transactions that keep a quota
//! exact under concurrent calls, on both backends and across hosts sharing PostgreSQL.
//!
//! Two shapes, never a read followed by an unguarded write:
//! - **counters** (`kv`): the usage row is changed by one conditional statement in the same
//!   transaction as the write it accounts for; a write whose growth does not fit changes no
//!   row and the transaction is rolled back.
//! - **locked checks** (`files`, `mail`, `events`): the transaction first locks the plugin's
//!   row for the service ([`LOCK_USAGE`]), then counts what the quota is about and writes;
//!   the lock serialises the plugin's writers of that service, so the count is exact.
//!
//! On SQLite every write transaction starts with `BEGIN IMMEDIATE` ([`begin_write`]): the
//! database's write lock is taken at once, so writers queue on `busy_timeout` instead of
//! failing to upgrade a read lock. On PostgreSQL (READ COMMITTED) each statement after the
//! lock sees every transaction committed before the lock was granted.

use super::Backend;

/// Creates the (plugin, service) row if needed and locks it until the end of the
/// transaction (`$1` plugin id, `$2` service): an `ON CONFLICT DO UPDATE` locks the row on
/// PostgreSQL, and SQLite already holds the write lock.
pub(crate) const LOCK_USAGE: &str = "INSERT INTO quota_usage (plugin_id, service) VALUES ($1, $2) \
     ON CONFLICT (plugin_id, service) DO UPDATE SET items = quota_usage.items";

/// The statement that begins a write transaction on `backend`.
pub(crate) fn begin_write(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "BEGIN IMMEDIATE",
        Backend::Postgres => "BEGIN",
    }
}

/// Begins the write transaction of a service call in whatever `on_pool!` hands it: a new
/// transaction on a pool (`BEGIN IMMEDIATE` on SQLite, see [`begin_write`]), or, inside a
/// `migrate` scope, a savepoint of the scope's transaction (which already holds SQLite's
/// write lock), so that every quota transaction is also all or nothing within a migrate.
pub(crate) trait BeginWrite<'c, DB: sqlx::Database> {
    /// The transaction (or savepoint) to run the call's statements in.
    async fn begin_write_in(self, statement: &'static str) -> Result<sqlx::Transaction<'c, DB>, sqlx::Error>;
}

impl<'c, DB: sqlx::Database> BeginWrite<'c, DB> for &'c sqlx::Pool<DB> {
    async fn begin_write_in(self, statement: &'static str) -> Result<sqlx::Transaction<'c, DB>, sqlx::Error> {
        self.begin_with(statement).await
    }
}

impl<'c> BeginWrite<'c, sqlx::Sqlite> for &'c mut sqlx::SqliteConnection {
    async fn begin_write_in(
        self,
        _: &'static str,
    ) -> Result<sqlx::Transaction<'c, sqlx::Sqlite>, sqlx::Error> {
        sqlx::Connection::begin(self).await
    }
}

impl<'c> BeginWrite<'c, sqlx::Postgres> for &'c mut sqlx::PgConnection {
    async fn begin_write_in(
        self,
        _: &'static str,
    ) -> Result<sqlx::Transaction<'c, sqlx::Postgres>, sqlx::Error> {
        sqlx::Connection::begin(self).await
    }
}

/// `n` as a database integer (sizes and counts are far below `i64::MAX`).
pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
