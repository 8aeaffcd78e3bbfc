//! Installed plugins and their stored versions.

use super::{Database, DbError, now_ms, on_pool};

/// A plugin version as stored in the database.
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
}

impl Database {
    /// Every enabled plugin at its current version.
    pub async fn enabled_plugins(&self) -> Result<Vec<StoredPlugin>, DbError> {
        let rows = on_pool!(self, pool => {
            sqlx::query_as::<_, StoredPlugin>(
                "SELECT p.id, p.version, v.sha256, v.manifest, v.wasm, p.enabled \
                 FROM plugins p JOIN plugin_versions v ON v.plugin_id = p.id AND v.version = p.version \
                 WHERE p.enabled ORDER BY p.id",
            )
            .fetch_all(pool)
            .await
        })?;
        Ok(rows)
    }

    /// Stores a version and makes it the current, enabled one, in one transaction.
    pub async fn record_plugin_version(
        &self,
        plugin: &StoredPlugin,
        installed_by: &str,
    ) -> Result<(), DbError> {
        let now = now_ms();
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO plugin_versions (plugin_id, version, sha256, manifest, wasm, installed_by, installed_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (plugin_id, version) DO UPDATE SET sha256 = excluded.sha256, \
                 manifest = excluded.manifest, wasm = excluded.wasm, installed_by = excluded.installed_by, \
                 installed_at = excluded.installed_at",
            )
            .bind(&plugin.id)
            .bind(&plugin.version)
            .bind(&plugin.sha256)
            .bind(&plugin.manifest)
            .bind(&plugin.wasm)
            .bind(installed_by)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO plugins (id, version, enabled, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (id) DO UPDATE SET version = excluded.version, enabled = excluded.enabled, \
                 updated_at = excluded.updated_at",
            )
            .bind(&plugin.id)
            .bind(&plugin.version)
            .bind(plugin.enabled)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        })?;
        Ok(())
    }
}
