//! Installed plugins, their grants and their stored versions.
//!
//! `plugins` holds one row per installed plugin (current version, enabled, grants, the
//! version before the last change, an upgrade waiting for a grant); `plugin_versions` every
//! version's bytes, hash and manifest, kept for rollback and for the other nodes. On
//! PostgreSQL every change is announced on the [`PLUGINS_CHANNEL`] channel.

// `Connection::begin` for the scoped arm of `on_pool!` (a savepoint in a call's transaction).
use sqlx::Connection as _;

use super::{Backend, Database, DbError, now_ms, on_pool};

/// The PostgreSQL `NOTIFY` channel announcing plugin changes (the payload is the id).
pub const PLUGINS_CHANNEL: &str = "lutetia_plugins";

/// A plugin version as stored in the database, with the plugin's state.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredPlugin {
    /// Plugin id.
    pub id: String,
    /// Version (semver text).
    pub version: String,
    /// Hex SHA-256 of `wasm`.
    pub sha256: String,
    /// The manifest, as TOML text.
    pub manifest: String,
    /// The component's bytes.
    pub wasm: Vec<u8>,
    /// Whether the plugin is served.
    pub enabled: bool,
    /// Granted capabilities, comma-separated (`kv,store`).
    pub grants: String,
}

/// One installed plugin's state (the `plugins` row).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PluginRow {
    /// Plugin id.
    pub id: String,
    /// The version served.
    pub version: String,
    /// Whether it is served.
    pub enabled: bool,
    /// Granted capabilities, comma-separated.
    pub grants: String,
    /// The version served before the last upgrade or rollback.
    pub previous_version: Option<String>,
    /// An uploaded version waiting for the operator to grant what it asks for.
    pub pending_version: Option<String>,
    /// Last change, milliseconds since the Unix epoch.
    pub updated_at: i64,
}

/// A stored version (the `plugin_versions` row).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VersionRow {
    /// Plugin id.
    pub plugin_id: String,
    /// Version (semver text).
    pub version: String,
    /// Hex SHA-256 of `wasm`.
    pub sha256: String,
    /// The manifest, as TOML text.
    pub manifest: String,
    /// The component's bytes.
    pub wasm: Vec<u8>,
    /// Who stored it.
    pub installed_by: String,
    /// When, milliseconds since the Unix epoch.
    pub installed_at: i64,
}

/// What the served set depends on, for each enabled plugin: compared by `Registry::sync`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ServedState {
    /// Plugin id.
    pub id: String,
    /// Version.
    pub version: String,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    /// Granted capabilities.
    pub grants: String,
}

const SELECT_ROW: &str =
    "SELECT id, version, enabled, grants, previous_version, pending_version, updated_at FROM plugins";

impl Database {
    /// Every enabled plugin at its current version.
    pub async fn enabled_plugins(&self) -> Result<Vec<StoredPlugin>, DbError> {
        let rows = on_pool!(self, pool => {
            sqlx::query_as::<_, StoredPlugin>(
                "SELECT p.id, p.version, v.sha256, v.manifest, v.wasm, p.enabled, p.grants \
                 FROM plugins p JOIN plugin_versions v ON v.plugin_id = p.id AND v.version = p.version \
                 WHERE p.enabled ORDER BY p.id",
            )
            .fetch_all(pool)
            .await
        })?;
        Ok(rows)
    }

    /// Id, version, hash and grants of every enabled plugin (no bytes: cheap to poll).
    pub async fn served_states(&self) -> Result<Vec<ServedState>, DbError> {
        let rows = on_pool!(self, pool => {
            sqlx::query_as::<_, ServedState>(
                "SELECT p.id, p.version, v.sha256, p.grants \
                 FROM plugins p JOIN plugin_versions v ON v.plugin_id = p.id AND v.version = p.version \
                 WHERE p.enabled ORDER BY p.id",
            )
            .fetch_all(pool)
            .await
        })?;
        Ok(rows)
    }

    /// Every installed plugin's row, by id.
    pub async fn plugin_rows(&self) -> Result<Vec<PluginRow>, DbError> {
        let sql = sqlx::AssertSqlSafe(format!("{SELECT_ROW} ORDER BY id"));
        let rows = on_pool!(self, pool => {
            sqlx::query_as::<_, PluginRow>(sql).fetch_all(pool).await
        })?;
        Ok(rows)
    }

    /// One installed plugin's row.
    pub async fn plugin_row(&self, id: &str) -> Result<Option<PluginRow>, DbError> {
        let sql = sqlx::AssertSqlSafe(format!("{SELECT_ROW} WHERE id = $1"));
        let row = on_pool!(self, pool => {
            sqlx::query_as::<_, PluginRow>(sql).bind(id).fetch_optional(pool).await
        })?;
        Ok(row)
    }

    /// One stored version.
    pub async fn plugin_version(&self, id: &str, version: &str) -> Result<Option<VersionRow>, DbError> {
        let row = on_pool!(self, pool => {
            sqlx::query_as::<_, VersionRow>(
                "SELECT plugin_id, version, sha256, manifest, wasm, installed_by, installed_at \
                 FROM plugin_versions WHERE plugin_id = $1 AND version = $2",
            )
            .bind(id)
            .bind(version)
            .fetch_optional(pool)
            .await
        })?;
        Ok(row)
    }

    /// Every stored version of a plugin, oldest first.
    pub async fn plugin_versions(&self, id: &str) -> Result<Vec<VersionRow>, DbError> {
        let rows = on_pool!(self, pool => {
            sqlx::query_as::<_, VersionRow>(
                "SELECT plugin_id, version, sha256, manifest, wasm, installed_by, installed_at \
                 FROM plugin_versions WHERE plugin_id = $1 ORDER BY installed_at, version",
            )
            .bind(id)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows)
    }

    /// Stores `version` (if given) and writes `row`, in one transaction, then announces
    /// the change. `expected_updated_at` guards against a concurrent change: the write
    /// fails with [`DbError::Contention`] if the row changed since it was read (`None`:
    /// the plugin must not exist yet).
    pub async fn save_plugin(
        &self,
        row: &PluginRow,
        version: Option<&VersionRow>,
        expected_updated_at: Option<i64>,
    ) -> Result<(), DbError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            if let Some(v) = version {
                sqlx::query(
                    "INSERT INTO plugin_versions (plugin_id, version, sha256, manifest, wasm, installed_by, installed_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (plugin_id, version) DO UPDATE SET sha256 = excluded.sha256, \
                     manifest = excluded.manifest, wasm = excluded.wasm, installed_by = excluded.installed_by, \
                     installed_at = excluded.installed_at",
                )
                .bind(&v.plugin_id)
                .bind(&v.version)
                .bind(&v.sha256)
                .bind(&v.manifest)
                .bind(&v.wasm)
                .bind(&v.installed_by)
                .bind(v.installed_at)
                .execute(&mut *tx)
                .await?;
            }
            let insert = sqlx::query(
                "INSERT INTO plugins (id, version, enabled, grants, previous_version, pending_version, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
            );
            let update = sqlx::query(
                "UPDATE plugins SET version = $2, enabled = $3, grants = $4, previous_version = $5, \
                 pending_version = $6, updated_at = $7 WHERE id = $1 AND updated_at = $8",
            );
            let query = match expected_updated_at {
                None => insert,
                Some(_) => update,
            }
            .bind(&row.id)
            .bind(&row.version)
            .bind(row.enabled)
            .bind(&row.grants)
            .bind(&row.previous_version)
            .bind(&row.pending_version)
            .bind(row.updated_at);
            let query = match expected_updated_at {
                Some(expected) => query.bind(expected),
                None => query,
            };
            let changed = query.execute(&mut *tx).await?.rows_affected();
            if changed != 1 {
                return Err(DbError::Contention("plugins"));
            }
            tx.commit().await?;
            Ok::<(), DbError>(())
        })?;
        self.notify_plugin_change(&row.id).await;
        Ok(())
    }

    /// Deletes a plugin and its versions; with `purge`, also its data (kv, documents,
    /// files metadata, job runs). Returns whether it existed.
    pub async fn delete_plugin(&self, id: &str, purge: bool) -> Result<bool, DbError> {
        let mut statements = vec![
            "DELETE FROM plugin_versions WHERE plugin_id = $1",
            "DELETE FROM plugins WHERE id = $1",
        ];
        if purge {
            statements.extend([
                "DELETE FROM kv WHERE plugin_id = $1",
                "DELETE FROM documents WHERE plugin_id = $1",
                "DELETE FROM store_usage WHERE plugin_id = $1",
                "DELETE FROM files WHERE plugin_id = $1",
                "DELETE FROM job_runs WHERE plugin_id = $1",
                "DELETE FROM event_cursors WHERE subscriber = $1",
                "DELETE FROM quota_usage WHERE plugin_id = $1",
                "DELETE FROM file_reservations WHERE plugin_id = $1",
            ]);
        }
        let existed = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let mut existed = false;
            for sql in statements {
                let n = sqlx::query(sql).bind(id).execute(&mut *tx).await?.rows_affected();
                if sql.starts_with("DELETE FROM plugins ") {
                    existed = n > 0;
                }
            }
            tx.commit().await?;
            Ok::<bool, sqlx::Error>(existed)
        })?;
        self.notify_plugin_change(id).await;
        Ok(existed)
    }

    /// Tells the other nodes (PostgreSQL `NOTIFY`) that plugin `id` changed. Best effort:
    /// they also re-check periodically. In a scope the notification leaves when (and if)
    /// the scope commits.
    async fn notify_plugin_change(&self, id: &str) {
        if self.backend() != Backend::Postgres {
            return;
        }
        let sent: Result<(), sqlx::Error> = on_pool!(self, pool => {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(PLUGINS_CHANNEL)
                .bind(id)
                .execute(pool)
                .await
                .map(|_| ())
        });
        if let Err(e) = sent {
            tracing::warn!(plugin = %id, error = %e, "cannot notify the other nodes");
        }
    }
}

/// Notifications of plugin changes made by any node (PostgreSQL `LISTEN`).
#[derive(Debug)]
pub struct PluginChanges(sqlx::postgres::PgListener);

impl PluginChanges {
    /// Waits for the next change; returns the plugin id. After a lost connection the
    /// listener reconnects by itself (changes meanwhile are caught by the periodic check).
    pub async fn next(&mut self) -> Result<String, DbError> {
        Ok(self.0.recv().await?.payload().to_owned())
    }
}

impl Database {
    /// Listens for plugin changes, on PostgreSQL; `None` on SQLite (one node).
    pub async fn plugin_changes(&self) -> Result<Option<PluginChanges>, DbError> {
        let Database::Postgres(pool) = self else {
            return Ok(None);
        };
        let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
        listener.listen(PLUGINS_CHANNEL).await?;
        Ok(Some(PluginChanges(listener)))
    }

    /// Whether any admin API token exists.
    pub async fn has_admin_token(&self) -> Result<bool, DbError> {
        let n: i64 = on_pool!(self, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM admin_tokens").fetch_one(pool).await
        })?;
        Ok(n > 0)
    }

    /// Records an admin API token by its hex SHA-256.
    pub async fn add_admin_token(&self, token_sha256: &str) -> Result<(), DbError> {
        on_pool!(self, pool => {
            sqlx::query("INSERT INTO admin_tokens (token_sha256, created_at) VALUES ($1, $2)")
                .bind(token_sha256)
                .bind(now_ms())
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        Ok(())
    }

    /// Whether `token_sha256` is the hash of a known admin API token.
    pub async fn admin_token_exists(&self, token_sha256: &str) -> Result<bool, DbError> {
        let n: i64 = on_pool!(self, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM admin_tokens WHERE token_sha256 = $1")
                .bind(token_sha256)
                .fetch_one(pool)
                .await
        })?;
        Ok(n > 0)
    }
}
