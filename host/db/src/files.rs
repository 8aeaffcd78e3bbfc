//! Metadata of the `files` interface: one row per (plugin, name); the bytes are on disk.
//!
//! The `max-total-bytes` quota is exact under concurrent uploads: an upload first reserves
//! its size ([`Database::file_reserve`], checked under the plugin's `files` lock against
//! the recorded files *and* the other uploads' reservations), writes, then records the file
//! and drops its reservation in one transaction ([`Database::file_commit`]), or releases it
//! on failure ([`Database::file_release`]).

use super::quota::{LOCK_USAGE, begin_write, to_i64};
use super::{Database, DbError, now_ms, on_pool};

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

    /// Reserves `size` bytes for the upload `reservation` of the file `name`, if the
    /// plugin's recorded files (the file being replaced aside) plus the live reservations
    /// plus `size` fit `max_total`; otherwise answers the total it would have reached.
    /// Reservations expire at `expires_at` (a process that died never releases its own).
    pub async fn file_reserve(
        &self,
        plugin: &str,
        name: &str,
        reservation: &str,
        size: u64,
        max_total: u64,
        expires_at: i64,
    ) -> Result<Result<(), u64>, DbError> {
        let begin = begin_write(self.backend());
        let now = now_ms();
        let outcome = on_pool!(self, pool => {
            let mut tx = super::quota::BeginWrite::begin_write_in(pool, begin).await?;
            sqlx::query(LOCK_USAGE)
                .bind(plugin)
                .bind("files")
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM file_reservations WHERE plugin_id = $1 AND expires_at <= $2")
                .bind(plugin)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            // One statement, so one snapshot: a file committed meanwhile is counted once.
            let used: i64 = sqlx::query_scalar(
                "SELECT CAST(\
                   (SELECT COALESCE(SUM(size), 0) FROM files WHERE plugin_id = $1 AND name <> $2) + \
                   (SELECT COALESCE(SUM(bytes), 0) FROM file_reservations WHERE plugin_id = $1) \
                 AS BIGINT)",
            )
            .bind(plugin)
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
            let total = u64::try_from(used).unwrap_or(0).saturating_add(size);
            if total > max_total {
                Ok::<_, sqlx::Error>(Err(total))
            } else {
                sqlx::query(
                    "INSERT INTO file_reservations (id, plugin_id, bytes, expires_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(reservation)
                .bind(plugin)
                .bind(to_i64(size))
                .bind(expires_at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(Ok(()))
            }
        })?;
        Ok(outcome)
    }

    /// Records a file (replacing the row of a file of the same name) and drops the
    /// reservation that was holding its bytes, in one transaction.
    pub async fn file_commit(&self, plugin: &str, row: &FileRow, reservation: &str) -> Result<(), DbError> {
        let begin = begin_write(self.backend());
        on_pool!(self, pool => {
            let mut tx = super::quota::BeginWrite::begin_write_in(pool, begin).await?;
            sqlx::query(LOCK_USAGE)
                .bind(plugin)
                .bind("files")
                .execute(&mut *tx)
                .await?;
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
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM file_reservations WHERE id = $1")
                .bind(reservation)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        })?;
        Ok(())
    }

    /// Releases a reservation whose upload failed.
    pub async fn file_release(&self, reservation: &str) -> Result<(), DbError> {
        on_pool!(self, pool => {
            sqlx::query("DELETE FROM file_reservations WHERE id = $1")
                .bind(reservation)
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        Ok(())
    }

    /// Total bytes of the plugin's recorded files.
    pub async fn files_total_bytes(&self, plugin: &str) -> Result<u64, DbError> {
        let total: i64 = on_pool!(self, pool => {
            sqlx::query_scalar("SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM files WHERE plugin_id = $1")
                .bind(plugin)
                .fetch_one(pool)
                .await
        })?;
        Ok(u64::try_from(total).unwrap_or(0))
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
