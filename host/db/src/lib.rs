//! `lutetia-db`, persistence: one `Database` over SQLite (embedded default) or PostgreSQL,
//! and one module per service's tables (`kv`, `store`, `files`, `outbox`, `events`, `jobs`,
//! `plugins`, `quota`). The only crate that uses sqlx.
//!
//! Depends on `lutetia-model` only; never on wasmtime or axum.
//!
//! Each query is written once with `$N` placeholders, which both backends accept, and run
//! on whichever pool is configured (`on_pool!`), or inside a [`Scope`]: the one transaction
//! of a plugin call whose writes must be all or nothing (`migrate`). Each backend has its
//! own migrations folder.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

pub mod events;
pub mod files;
pub mod jobs;
pub mod kv;
pub mod outbox;
pub mod plugins;
pub mod quota;
pub mod store;

pub use plugins::{PluginChanges, PluginRow, ServedState, StoredPlugin, VersionRow};

/// Why a database operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL could not be parsed or the database could not be reached.
    #[error("cannot open database {url}: {source}")]
    Connect {
        /// The URL, without credentials.
        url: String,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// Creating the folder of the SQLite file failed.
    #[error("cannot create database folder {path}: {source}")]
    CreateDir {
        /// The folder.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Applying the migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    /// Too many concurrent writers kept winning an optimistic retry loop.
    #[error("too much contention on {0}")]
    Contention(&'static str),
    /// A [`Scope`] was used the wrong way (nested, or after it ended).
    #[error("call transaction: {0}")]
    Scope(&'static str),
}

/// Which backend a [`Database`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file, WAL mode.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// A connection pool on one of the supported backends, or a [`Scope`] over one.
#[derive(Debug, Clone)]
pub enum Database {
    /// SQLite.
    Sqlite(SqlitePool),
    /// PostgreSQL.
    Postgres(PgPool),
    /// Every query in one transaction, committed only if the call that made them succeeded.
    Scoped(Arc<Scope>),
}

/// Runs `$body` with `$pool` bound to an executor of the concrete backend: the pool, or the
/// connection of a [`Scope`]. In a scope each body runs in a savepoint, so a statement that
/// fails (a unique violation a retry loop expects, say) is undone alone, as it would be on
/// its own on the pool, instead of aborting the scope's transaction (PostgreSQL aborts a
/// transaction on any error). A body that returns early with `?` drops its savepoint: sqlx
/// rolls it back before the connection's next statement.
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::Database::Sqlite($pool) => $body,
            $crate::Database::Postgres($pool) => $body,
            $crate::Database::Scoped(scope) => match scope.connection().await {
                Err(e) => Err(e.into()),
                Ok($crate::ScopedConnection::Sqlite(mut conn)) => {
                    match sqlx::Connection::begin(&mut *conn).await {
                        Err(e) => Err(e.into()),
                        Ok(mut savepoint) => {
                            let $pool = &mut *savepoint;
                            let done = $body;
                            let ended = if done.is_ok() {
                                savepoint.commit().await
                            } else {
                                savepoint.rollback().await
                            };
                            match ended {
                                Ok(()) => done,
                                Err(e) => Err(e.into()),
                            }
                        }
                    }
                }
                Ok($crate::ScopedConnection::Postgres(mut conn)) => {
                    match sqlx::Connection::begin(&mut *conn).await {
                        Err(e) => Err(e.into()),
                        Ok(mut savepoint) => {
                            let $pool = &mut *savepoint;
                            let done = $body;
                            let ended = if done.is_ok() {
                                savepoint.commit().await
                            } else {
                                savepoint.rollback().await
                            };
                            match ended {
                                Ok(()) => done,
                                Err(e) => Err(e.into()),
                            }
                        }
                    }
                }
            },
        }
    };
}
pub(crate) use on_pool;

/// PostgreSQL advisory lock namespace (first key) held exclusively by a [`Scope`] for its
/// plugin (second key, [`lock_key`]) while it is open, and shared by each of the plugin's
/// store writes: those fail fast while the plugin migrates instead of queueing on its locked
/// rows with a pooled connection each.
pub(crate) const LOCK_MIGRATING: i32 = 0x4c75_0001;
/// PostgreSQL advisory lock namespace serialising the index builds and drops of a plugin.
pub(crate) const LOCK_INDEXES: i32 = 0x4c75_0002;

/// The second key of a plugin's advisory locks: 32 bits of the SHA-256 of its id (two
/// plugins sharing a key only wait for each other, never share data).
pub(crate) fn lock_key(plugin: &str) -> i32 {
    let digest = Sha256::digest(plugin.as_bytes());
    i32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// The transaction of one plugin call whose writes are all or nothing (`lifecycle.migrate`),
/// seen as a [`Database`] by the host services ([`Scope::database`]), so kv, store, events,
/// mail and file metadata all write into it and read their own writes.
///
/// It is opened at the first query (a call that never touches the database locks nothing)
/// and ended by [`Scope::commit`] or [`Scope::rollback`]; dropped unended, it is rolled back.
/// On SQLite it starts with `BEGIN IMMEDIATE`: it holds the database's write lock until it
/// ends, so every other write of the host waits for it (up to the busy timeout), reads do
/// not. On PostgreSQL it holds the row locks of what it wrote plus the plugin's
/// [`LOCK_MIGRATING`] lock; other plugins are not affected.
pub struct Scope {
    plugin: String,
    conn: ScopeConn,
    /// Indexes declared in the scope and built after it commits (PostgreSQL).
    pub(crate) pending_indexes: std::sync::Mutex<Vec<store::PendingIndex>>,
}

impl std::fmt::Debug for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope")
            .field("plugin", &self.plugin)
            .finish_non_exhaustive()
    }
}

enum ScopeConn {
    Sqlite {
        pool: SqlitePool,
        tx: Mutex<TxState<sqlx::Sqlite>>,
    },
    Postgres {
        pool: PgPool,
        tx: Mutex<TxState<sqlx::Postgres>>,
    },
}

enum TxState<DB: sqlx::Database> {
    /// Nothing queried yet.
    Idle,
    Open(sqlx::Transaction<'static, DB>),
    Ended,
}

/// The connection of an open scope, locked for one statement (or one nested transaction).
pub(crate) enum ScopedConnection<'a> {
    Sqlite(MappedMutexGuard<'a, SqliteConnection>),
    Postgres(MappedMutexGuard<'a, PgConnection>),
}

fn scope_ended() -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::other("the call's transaction has already ended"))
}

fn open_connection<DB: sqlx::Database>(
    state: MutexGuard<'_, TxState<DB>>,
) -> Result<MappedMutexGuard<'_, DB::Connection>, sqlx::Error> {
    MutexGuard::try_map(state, |s| match s {
        TxState::Open(tx) => Some(&mut **tx),
        _ => None,
    })
    .map_err(|_| scope_ended())
}

impl Scope {
    /// The plugin whose call this is.
    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    /// This scope as the database of a call.
    pub fn database(self: &Arc<Self>) -> Database {
        Database::Scoped(self.clone())
    }

    fn backend(&self) -> Backend {
        match self.conn {
            ScopeConn::Sqlite { .. } => Backend::Sqlite,
            ScopeConn::Postgres { .. } => Backend::Postgres,
        }
    }

    /// The pool the scope runs on (for the work that follows a commit).
    pub fn pool(&self) -> Database {
        match &self.conn {
            ScopeConn::Sqlite { pool, .. } => Database::Sqlite(pool.clone()),
            ScopeConn::Postgres { pool, .. } => Database::Postgres(pool.clone()),
        }
    }

    /// The scope's connection, opening its transaction on first use.
    pub(crate) async fn connection(&self) -> Result<ScopedConnection<'_>, sqlx::Error> {
        match &self.conn {
            ScopeConn::Sqlite { pool, tx } => {
                let mut state = tx.lock().await;
                if matches!(*state, TxState::Idle) {
                    // The write lock at BEGIN: a read-then-write transaction would otherwise
                    // fail with SQLITE_BUSY_SNAPSHOT when another connection wrote meanwhile.
                    *state = TxState::Open(pool.begin_with("BEGIN IMMEDIATE").await?);
                }
                open_connection(state).map(ScopedConnection::Sqlite)
            }
            ScopeConn::Postgres { pool, tx } => {
                let mut state = tx.lock().await;
                if matches!(*state, TxState::Idle) {
                    let mut begun = pool.begin().await?;
                    // Waits for the plugin's store writes in progress, then makes new ones
                    // answer `unavailable` at once until this transaction ends.
                    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
                        .bind(LOCK_MIGRATING)
                        .bind(lock_key(&self.plugin))
                        .execute(&mut *begun)
                        .await?;
                    *state = TxState::Open(begun);
                }
                open_connection(state).map(ScopedConnection::Postgres)
            }
        }
    }

    /// Commits everything written through the scope. A scope never used commits nothing.
    pub async fn commit(&self) -> Result<(), DbError> {
        match &self.conn {
            ScopeConn::Sqlite { tx, .. } => match std::mem::replace(&mut *tx.lock().await, TxState::Ended) {
                TxState::Open(t) => t.commit().await?,
                TxState::Idle => {}
                TxState::Ended => return Err(DbError::Scope("committed after it ended")),
            },
            ScopeConn::Postgres { tx, .. } => {
                match std::mem::replace(&mut *tx.lock().await, TxState::Ended) {
                    TxState::Open(t) => t.commit().await?,
                    TxState::Idle => {}
                    TxState::Ended => return Err(DbError::Scope("committed after it ended")),
                }
            }
        }
        Ok(())
    }

    /// Undoes everything written through the scope (idempotent).
    pub async fn rollback(&self) -> Result<(), DbError> {
        if let Ok(mut pending) = self.pending_indexes.lock() {
            pending.clear();
        }
        match &self.conn {
            ScopeConn::Sqlite { tx, .. } => {
                if let TxState::Open(t) = std::mem::replace(&mut *tx.lock().await, TxState::Ended) {
                    t.rollback().await?;
                }
            }
            ScopeConn::Postgres { tx, .. } => {
                if let TxState::Open(t) = std::mem::replace(&mut *tx.lock().await, TxState::Ended) {
                    t.rollback().await?;
                }
            }
        }
        Ok(())
    }
}

impl Database {
    /// Opens a pool for `url` (`sqlite://PATH` or `postgres://...`), creating the SQLite
    /// file and its folder if needed.
    pub async fn connect(url: &str) -> Result<Database, DbError> {
        let shown = lutetia_model::settings::redact_url(url);
        let connect_err = |source| DbError::Connect {
            url: shown.clone(),
            source,
        };
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await
                .map_err(connect_err)?;
            return Ok(Database::Postgres(pool));
        }
        let options = SqliteConnectOptions::from_str(url)
            .map_err(connect_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL keeps every commit across an application crash; an OS crash or
            // power loss may lose the last commits (see docs/operator-guide.md).
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            // Keeps the planner's statistics current (the document store's expression
            // indexes need them), as SQLite recommends: `PRAGMA optimize` when a connection
            // closes, bounded by `analysis_limit`.
            .optimize_on_close(true, 1000)
            .foreign_keys(true);
        let path = options.get_filename();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| DbError::CreateDir {
                path: parent.display().to_string(),
                source,
            })?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            // Recycled connections load fresh statistics and schema.
            .max_lifetime(Duration::from_secs(600))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(connect_err)?;
        Ok(Database::Sqlite(pool))
    }

    /// Applies the pending migrations of this backend.
    pub async fn migrate(&self) -> Result<(), DbError> {
        match self {
            Database::Sqlite(pool) => sqlx::migrate!("../../migrations/sqlite").run(pool).await?,
            Database::Postgres(pool) => sqlx::migrate!("../../migrations/postgres").run(pool).await?,
            Database::Scoped(_) => return Err(DbError::Scope("schema migrations run on the pool")),
        }
        Ok(())
    }

    /// A scope over this pool for a call of `plugin`: see [`Scope`].
    pub fn scope(&self, plugin: &str) -> Result<Arc<Scope>, DbError> {
        let conn = match self {
            Database::Sqlite(pool) => ScopeConn::Sqlite {
                pool: pool.clone(),
                tx: Mutex::new(TxState::Idle),
            },
            Database::Postgres(pool) => ScopeConn::Postgres {
                pool: pool.clone(),
                tx: Mutex::new(TxState::Idle),
            },
            Database::Scoped(_) => return Err(DbError::Scope("scopes do not nest")),
        };
        Ok(Arc::new(Scope {
            plugin: plugin.to_owned(),
            conn,
            pending_indexes: std::sync::Mutex::new(Vec::new()),
        }))
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        match self {
            Database::Sqlite(_) => Backend::Sqlite,
            Database::Postgres(_) => Backend::Postgres,
            Database::Scoped(scope) => scope.backend(),
        }
    }

    /// Checks the database answers.
    pub async fn ping(&self) -> Result<(), DbError> {
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Closes every connection, waiting for those in use (a scope's pool is not closed).
    pub async fn close(&self) {
        match self {
            Database::Sqlite(pool) => pool.close().await,
            Database::Postgres(pool) => pool.close().await,
            Database::Scoped(_) => {}
        }
    }
}

/// Milliseconds since the Unix epoch, the timestamp format of every table.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::lock_key;

    #[test]
    fn lock_keys_are_stable_and_spread() {
        // Two processes (or a host and the command line) must compute the same key.
        assert_eq!(lock_key("hello"), lock_key("hello"));
        assert_ne!(lock_key("hello"), lock_key("hello-b"));
    }
}
