//! Metadata of the `files` interface: one row per (plugin, name); the bytes are on disk.

use super::{Database, DbError, on_pool};

/// What the database knows of one stored file.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FileRow {
    /// File name.
    pub name: String,
    /// Media type checked at upload.
    pub content_type: String,
    /// Size in bytes.
    pub size: i64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
}

impl Database {
    /// The description of one file.
    pub async fn file_stat(&self, plugin: &str, name: &str) -> Result<Option<FileRow>, DbError> {
        let row = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT name, content_type, size, sha256, created_at FROM files \
                 WHERE plugin_id = $1 AND name = $2",
            )
            .bind(plugin)
            .bind(name)
            .fetch_optional(pool)
            .await
        })?;
        Ok(row)
    }

    /// Total bytes stored by `plugin`, not counting the file `except` (the one being replaced).
    pub async fn files_total_bytes(&self, plugin: &str, except: &str) -> Result<i64, DbError> {
        let (total,): (i64,) = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM files \
                 WHERE plugin_id = $1 AND name <> $2",
            )
            .bind(plugin)
            .bind(except)
            .fetch_one(pool)
            .await
        })?;
        Ok(total)
    }

    /// Records a file, replacing the row of a file of the same name.
    pub async fn file_upsert(&self, plugin: &str, row: &FileRow) -> Result<(), DbError> {
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO files (plugin_id, name, content_type, size, sha256, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (plugin_id, name) DO UPDATE SET content_type = excluded.content_type, \
                 size = excluded.size, sha256 = excluded.sha256, created_at = excluded.created_at",
            )
            .bind(plugin)
            .bind(&row.name)
            .bind(&row.content_type)
            .bind(row.size)
            .bind(&row.sha256)
            .bind(row.created_at)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }

    /// Forgets a file; returns whether it was recorded.
    pub async fn file_delete(&self, plugin: &str, name: &str) -> Result<bool, DbError> {
        let done = on_pool!(self, pool => {
            sqlx::query("DELETE FROM files WHERE plugin_id = $1 AND name = $2")
                .bind(plugin)
                .bind(name)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(done > 0)
    }

    /// Files of `plugin` whose name starts with `prefix`, in name order.
    pub async fn file_list(&self, plugin: &str, prefix: &str, limit: u32) -> Result<Vec<FileRow>, DbError> {
        // A range scan on the primary key: names are `[A-Za-z0-9._-]`, so no LIKE escaping.
        let rows: Vec<FileRow> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT name, content_type, size, sha256, created_at FROM files \
                 WHERE plugin_id = $1 AND name >= $2 ORDER BY name LIMIT $3",
            )
            .bind(plugin)
            .bind(prefix)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })?;
        Ok(rows
            .into_iter()
            .take_while(|r| r.name.starts_with(prefix))
            .collect())
    }
}
