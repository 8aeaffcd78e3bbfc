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

/// `n` as a database integer (sizes and counts are far below `i64::MAX`).
pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
