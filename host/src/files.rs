//! File storage of the `files` interface: bytes on disk under `{files-dir}/{plugin-id}/`,
//! metadata in the `files` table (so `stat`, `list` and the quota never touch the disk).
//!
//! The root folder is opened once with `cap-std`; every later access is relative to that
//! handle, so no name (`..`, an absolute path, a symlink planted in the folder) can reach
//! anything outside it. Names are validated on top of that, and writes are atomic (a
//! temporary file renamed over the target).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cap_std::ambient_authority;
use cap_std::fs::Dir;

use crate::db::files::FileRow;
use crate::db::{Database, DbError};
use crate::manifest::FilesCapability;

/// Longest file name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// How long an upload's reservation counts if its process dies before releasing it.
const RESERVATION_LIFETIME_MS: i64 = 3_600_000;

/// Why a file operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// The plugin's input is not acceptable; the message says why.
    #[error("{0}")]
    Invalid(String),
    /// Over the size or total quota of the plugin's grant.
    #[error("{0}")]
    QuotaExceeded(String),
    /// The files folder could not be opened or used.
    #[error("file storage error on {path}: {source}")]
    Io {
        /// What was being accessed (relative to the files folder).
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The metadata could not be read or written.
    #[error(transparent)]
    Db(#[from] DbError),
}

fn io_error(path: impl Into<String>) -> impl FnOnce(std::io::Error) -> FilesError {
    let path = path.into();
    move |source| FilesError::Io { path, source }
}

/// The files folder and the metadata table.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: Arc<Dir>,
    root_path: PathBuf,
    db: Database,
}

impl FileStore {
    /// Creates `path` if needed and opens it: the only access that uses ambient authority.
    pub fn open(path: &Path, db: Database) -> Result<FileStore, FilesError> {
        std::fs::create_dir_all(path).map_err(io_error(path.display().to_string()))?;
        let root =
            Dir::open_ambient_dir(path, ambient_authority()).map_err(io_error(path.display().to_string()))?;
        Ok(FileStore {
            root: Arc::new(root),
            root_path: path.to_owned(),
            db,
        })
    }

    /// The folder given to [`FileStore::open`].
    pub fn root_path(&self) -> &Path {
        &self.root_path
    }

    /// Stores a file after checking its name, type, content and the plugin's quota.
    ///
    /// The work runs in its own task: a call cancelled meanwhile (deadline, client gone)
    /// never leaves a file written but not recorded, nor a reservation held.
    pub async fn put(
        &self,
        plugin: &str,
        grant: &FilesCapability,
        name: &str,
        content_type: &str,
        data: Vec<u8>,
    ) -> Result<FileRow, FilesError> {
        check_name(name)?;
        let content_type = check_content_type(grant, content_type, &data)?;
        let size = data.len() as u64;
        if size > grant.max_size {
            return Err(FilesError::QuotaExceeded(format!(
                "the file is {size} bytes; the limit is {}",
                grant.max_size
            )));
        }
        let store = self.clone();
        let (plugin, name_owned, max_total) = (plugin.to_owned(), name.to_owned(), grant.max_total_bytes);
        tokio::spawn(async move {
            store
                .put_reserved(&plugin, &name_owned, content_type, data, max_total)
                .await
        })
        .await
        .map_err(|e| FilesError::Io {
            path: name.to_owned(),
            source: std::io::Error::other(e),
        })?
    }

    /// Reserves the bytes, writes, records: see [`crate::db::files`].
    async fn put_reserved(
        &self,
        plugin: &str,
        name: &str,
        content_type: String,
        data: Vec<u8>,
        max_total: u64,
    ) -> Result<FileRow, FilesError> {
        static RESERVATIONS: AtomicU64 = AtomicU64::new(0);
        let size = data.len() as u64;
        let reservation = format!(
            "{}-{}",
            crate::events::node_id(),
            RESERVATIONS.fetch_add(1, Ordering::Relaxed)
        );
        let expires_at = crate::db::now_ms().saturating_add(RESERVATION_LIFETIME_MS);
        if let Err(total) = self
            .db
            .file_reserve(plugin, name, &reservation, size, max_total, expires_at)
            .await?
        {
            return Err(FilesError::QuotaExceeded(format!(
                "the plugin's files would take {total} bytes; the limit is {max_total}"
            )));
        }
        let written = self
            .write_and_record(plugin, name, content_type, data, &reservation)
            .await;
        if written.is_err()
            && let Err(e) = self.db.file_release(&reservation).await
        {
            // It expires on its own; until then it counts against the plugin's quota.
            tracing::error!(plugin, error = %e, "cannot release a file reservation");
        }
        written
    }

    async fn write_and_record(
        &self,
        plugin: &str,
        name: &str,
        content_type: String,
        data: Vec<u8>,
        reservation: &str,
    ) -> Result<FileRow, FilesError> {
        let size = data.len() as u64;
        let sha256 = crate::registry::sha256_hex(&data);
        let dir = self.plugin_dir(plugin, true).await?;
        let target = name.to_owned();
        tokio::task::spawn_blocking(move || write_atomically(&dir, &target, &data))
            .await
            .map_err(|e| FilesError::Io {
                path: name.to_owned(),
                source: std::io::Error::other(e),
            })??;
        let row = FileRow {
            name: name.to_owned(),
            content_type,
            size: i64::try_from(size).unwrap_or(i64::MAX),
            sha256,
            created_at: crate::db::now_ms(),
        };
        self.db.file_commit(plugin, &row, reservation).await?;
        Ok(row)
    }

    /// Reads a file and its description.
    pub async fn get(&self, plugin: &str, name: &str) -> Result<Option<(FileRow, Vec<u8>)>, FilesError> {
        check_name(name)?;
        let Some(row) = self.db.file_stat(plugin, name).await? else {
            return Ok(None);
        };
        let dir = self.plugin_dir(plugin, false).await?;
        let target = name.to_owned();
        let read = tokio::task::spawn_blocking(move || dir.read(&target))
            .await
            .map_err(|e| FilesError::Io {
                path: name.to_owned(),
                source: std::io::Error::other(e),
            })?;
        match read {
            Ok(bytes) => Ok(Some((row, bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(plugin, name, "file recorded but missing on disk");
                Ok(None)
            }
            Err(e) => Err(io_error(format!("{plugin}/{name}"))(e)),
        }
    }

    /// A file's description.
    pub async fn stat(&self, plugin: &str, name: &str) -> Result<Option<FileRow>, FilesError> {
        check_name(name)?;
        Ok(self.db.file_stat(plugin, name).await?)
    }

    /// Deletes a file; returns whether it existed.
    pub async fn delete(&self, plugin: &str, name: &str) -> Result<bool, FilesError> {
        check_name(name)?;
        let existed = self.db.file_delete(plugin, name).await?;
        let dir = self.plugin_dir(plugin, false).await?;
        let target = name.to_owned();
        let removed = tokio::task::spawn_blocking(move || dir.remove_file(&target))
            .await
            .map_err(|e| FilesError::Io {
                path: name.to_owned(),
                source: std::io::Error::other(e),
            })?;
        match removed {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(existed),
            Err(e) => Err(io_error(format!("{plugin}/{name}"))(e)),
        }
    }

    /// Files whose name starts with `prefix`, in name order.
    pub async fn list(&self, plugin: &str, prefix: &str, limit: u32) -> Result<Vec<FileRow>, FilesError> {
        if prefix.len() > MAX_NAME_CHARS || !prefix.chars().all(is_name_char) {
            return Err(FilesError::Invalid(
                "prefix must be at most 200 characters of [A-Za-z0-9._-]".into(),
            ));
        }
        Ok(self.db.file_list(plugin, prefix, limit).await?)
    }

    /// The plugin's folder, relative to the root handle (created when `create`).
    async fn plugin_dir(&self, plugin: &str, create: bool) -> Result<Dir, FilesError> {
        // Plugin ids are validated by the manifest; checked again since they name a folder.
        check_name(plugin)?;
        let root = self.root.clone();
        let id = plugin.to_owned();
        tokio::task::spawn_blocking(move || {
            if create {
                root.create_dir_all(&id)?;
            }
            match root.open_dir(&id) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    root.create_dir_all(&id)?;
                    root.open_dir(&id)
                }
                other => other,
            }
        })
        .await
        .map_err(|e| FilesError::Io {
            path: plugin.to_owned(),
            source: std::io::Error::other(e),
        })?
        .map_err(io_error(plugin))
    }
}

/// Writes `data` to a temporary file beside `name`, flushes it and renames it over `name`.
fn write_atomically(dir: &Dir, name: &str, data: &[u8]) -> Result<(), FilesError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // A leading dot: never a valid file name, so never listed nor served.
    let temp = format!(
        ".tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let result = (|| {
        let mut file = dir.create(&temp)?;
        file.write_all(data)?;
        file.sync_all()?;
        dir.rename(&temp, dir, name)
    })();
    if result.is_err() {
        let _ = dir.remove_file(&temp);
    }
    result.map_err(io_error(name))
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// A file name: 1-200 characters of `[A-Za-z0-9._-]`, not starting with a dot.
pub fn check_name(name: &str) -> Result<(), FilesError> {
    if name.is_empty() || name.len() > MAX_NAME_CHARS {
        return Err(FilesError::Invalid(format!(
            "file name must be 1-{MAX_NAME_CHARS} characters; got {}",
            name.len()
        )));
    }
    if let Some(bad) = name.chars().find(|c| !is_name_char(*c)) {
        return Err(FilesError::Invalid(format!(
            "file name {name:?} contains {bad:?}; only [A-Za-z0-9._-] are allowed"
        )));
    }
    if name.starts_with('.') {
        return Err(FilesError::Invalid(format!(
            "file name {name:?} must not start with a dot"
        )));
    }
    Ok(())
}

/// The media type without parameters, lower-cased (`Image/JPEG; q=1` → `image/jpeg`).
pub fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Whether the grant allows `content_type` (exactly, or through a `type/*` pattern).
pub fn type_allowed(grant: &FilesCapability, content_type: &str) -> bool {
    let wanted = essence(content_type);
    let Some((major, _)) = wanted.split_once('/') else {
        return false;
    };
    grant.content_types.iter().any(|allowed| {
        let allowed = essence(allowed);
        allowed == wanted || allowed.strip_suffix("/*") == Some(major)
    })
}

/// Checks the declared type against the grant and the content against the declared type;
/// returns the type as stored.
fn check_content_type(grant: &FilesCapability, declared: &str, data: &[u8]) -> Result<String, FilesError> {
    let wanted = essence(declared);
    let well_formed = wanted.split_once('/').is_some_and(|(a, b)| {
        !a.is_empty()
            && !b.is_empty()
            && wanted
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/.+-_".contains(c))
    });
    if !well_formed {
        return Err(FilesError::Invalid(format!("{declared:?} is not a media type")));
    }
    if !type_allowed(grant, &wanted) {
        return Err(FilesError::Invalid(format!(
            "content type {wanted} is not allowed (allowed: {})",
            grant.content_types.join(", ")
        )));
    }
    let sniffed = infer::get(data).map(|kind| kind.mime_type());
    let looks_right = if wanted.starts_with("image/") || wanted == "application/pdf" {
        // Browsers say image/jpg and image/pjpeg too.
        let wanted = match wanted.as_str() {
            "image/jpg" | "image/pjpeg" => "image/jpeg",
            other => other,
        };
        sniffed == Some(wanted)
    } else if wanted.starts_with("text/") {
        std::str::from_utf8(data).is_ok()
    } else {
        true
    };
    if !looks_right {
        return Err(FilesError::Invalid(format!(
            "the content does not look like {wanted} (it looks like {})",
            sniffed.unwrap_or("unknown data")
        )));
    }
    Ok(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(types: &[&str]) -> FilesCapability {
        FilesCapability {
            max_size: 1000,
            max_total_bytes: 2000,
            content_types: types.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    #[test]
    fn names_are_checked() {
        for ok in ["a", "photo.jpg", "A-b_c.9", &"x".repeat(200)] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".hidden",
            "..",
            "../x",
            "a/b",
            "/etc/passwd",
            "a\\b",
            "é",
            &"x".repeat(201),
        ] {
            assert!(matches!(check_name(bad), Err(FilesError::Invalid(_))), "{bad}");
        }
    }

    #[test]
    fn types_match_the_grant_and_the_content() {
        let g = grant(&["image/*", "application/pdf", "text/plain"]);
        assert_eq!(
            check_content_type(&g, "image/png", PNG).expect("png"),
            "image/png"
        );
        assert_eq!(
            check_content_type(&g, "Image/PNG; x=y", PNG).expect("png"),
            "image/png"
        );
        assert!(check_content_type(&g, "image/jpeg", PNG).is_err());
        assert!(check_content_type(&g, "image/png", b"<script>").is_err());
        assert!(check_content_type(&g, "application/pdf", b"%PDF-1.7\n").is_ok());
        assert!(check_content_type(&g, "text/html", b"<p>").is_err());
        assert!(check_content_type(&g, "text/plain", b"\xff\xfe").is_err());
        assert!(check_content_type(&g, "nonsense", b"").is_err());
    }
}
