//! File storage of the `files` interface: bytes on disk under `{files-dir}/{plugin-id}/`,
//! metadata in the `files` table (so `stat`, `list` and the quota never touch the disk).
//!
//! The root folder is opened once with `cap-std`; every later access is relative to that
//! handle, so no name (`..`, an absolute path, a symlink planted in the folder) can reach
//! anything outside it. Names are validated on top of that, and writes are atomic (a
//! temporary file renamed over the target).
//!
//! A store made by [`FileStore::staged`] (a `migrate` call) writes its metadata into the
//! call's transaction and holds its disk changes back until [`FileStore::finish_staged`]:
//! written files wait in their temporary file, deletions are deferred.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cap_std::ambient_authority;
use cap_std::fs::Dir;

use lutetia_db::files::FileRow;
use lutetia_db::{Database, DbError};
use lutetia_model::manifest::FilesCapability;

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
    staging: Option<Arc<Staging>>,
}

/// The disk changes of a staged store, in order: a file written (its temporary file) or
/// deleted (`temp: None`), per plugin and name. Dropped unfinished, the temporary files are
/// removed: nothing reaches the targets.
#[derive(Debug)]
struct Staging {
    root: Arc<Dir>,
    changes: std::sync::Mutex<Vec<Staged>>,
    finished: std::sync::atomic::AtomicBool,
}

#[derive(Debug)]
struct Staged {
    plugin: String,
    name: String,
    temp: Option<String>,
}

impl Staging {
    fn new(root: Arc<Dir>) -> Staging {
        Staging {
            root,
            changes: std::sync::Mutex::new(Vec::new()),
            finished: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Records a change of `name`, replacing (and removing the file of) an earlier one.
    fn record(&self, dir: &Dir, plugin: &str, name: &str, temp: Option<String>) {
        let Ok(mut changes) = self.changes.lock() else {
            return;
        };
        if let Some(i) = changes.iter().position(|c| c.plugin == plugin && c.name == name)
            && let Some(old) = changes.remove(i).temp
        {
            let _ = dir.remove_file(old);
        }
        changes.push(Staged {
            plugin: plugin.to_owned(),
            name: name.to_owned(),
            temp,
        });
    }

    /// The temporary file holding the staged content of `name`, if any.
    fn temp_of(&self, plugin: &str, name: &str) -> Option<String> {
        let changes = self.changes.lock().ok()?;
        changes
            .iter()
            .find(|c| c.plugin == plugin && c.name == name)
            .and_then(|c| c.temp.clone())
    }

    /// Applies the changes to the targets (`commit`) or removes the temporary files; once.
    fn finish(&self, commit: bool) -> std::io::Result<()> {
        if self.finished.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let changes = match self.changes.lock() {
            Ok(mut changes) => std::mem::take(&mut *changes),
            Err(_) => return Ok(()),
        };
        let mut first_error = None;
        for change in changes {
            let applied = self
                .root
                .open_dir(&change.plugin)
                .and_then(|dir| match (&change.temp, commit) {
                    (Some(temp), true) => dir.rename(temp, &dir, &change.name),
                    (Some(temp), false) => dir.remove_file(temp),
                    (None, true) => match dir.remove_file(&change.name) {
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                        other => other,
                    },
                    (None, false) => Ok(()),
                });
            if let Err(e) = applied {
                tracing::error!(plugin = %change.plugin, name = %change.name, commit, error = %e, "cannot finish a staged file change");
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = self.finish(false);
    }
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
            staging: None,
        })
    }

    /// The same folder for one `migrate` call: metadata read and written through `db` (the
    /// call's scope), disk changes held back until [`FileStore::finish_staged`]. Its own
    /// reads see its staged files; everyone else sees the files as they were.
    pub fn staged(&self, db: Database) -> FileStore {
        FileStore {
            root: self.root.clone(),
            root_path: self.root_path.clone(),
            db,
            staging: Some(Arc::new(Staging::new(self.root.clone()))),
        }
    }

    /// Applies a staged store's changes to the folder once its metadata committed
    /// (`commit`), or discards them; nothing for a store that is not staged.
    pub async fn finish_staged(&self, commit: bool) -> Result<(), FilesError> {
        let Some(staging) = self.staging.clone() else {
            return Ok(());
        };
        tokio::task::spawn_blocking(move || staging.finish(commit))
            .await
            .map_err(|e| FilesError::Io {
                path: "staged files".into(),
                source: std::io::Error::other(e),
            })?
            .map_err(io_error("staged files"))
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

    /// Reserves the bytes, writes, records: see [`lutetia_db::files`].
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
            crate::node::node_id(),
            RESERVATIONS.fetch_add(1, Ordering::Relaxed)
        );
        let expires_at = lutetia_db::now_ms().saturating_add(RESERVATION_LIFETIME_MS);
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
        let sha256 = lutetia_model::hash::sha256_hex(&data);
        let dir = self.plugin_dir(plugin, true).await?;
        let target = name.to_owned();
        let staging = self.staging.clone();
        let owner = plugin.to_owned();
        tokio::task::spawn_blocking(move || match staging {
            None => write_atomically(&dir, &target, &data),
            Some(staging) => {
                let temp = write_temp(&dir, &data).map_err(io_error(target.as_str()))?;
                staging.record(&dir, &owner, &target, Some(temp));
                Ok(())
            }
        })
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
            created_at: lutetia_db::now_ms(),
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
        let target = self
            .staging
            .as_ref()
            .and_then(|s| s.temp_of(plugin, name))
            .unwrap_or_else(|| name.to_owned());
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
        if let Some(staging) = self.staging.clone() {
            let owner = plugin.to_owned();
            tokio::task::spawn_blocking(move || staging.record(&dir, &owner, &target, None))
                .await
                .map_err(|e| FilesError::Io {
                    path: name.to_owned(),
                    source: std::io::Error::other(e),
                })?;
            return Ok(existed);
        }
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
    let temp = write_temp(dir, data).map_err(io_error(name))?;
    let renamed = dir.rename(&temp, dir, name);
    if renamed.is_err() {
        let _ = dir.remove_file(&temp);
    }
    renamed.map_err(io_error(name))
}

/// Writes `data` to a new temporary file of `dir`, flushed; returns its name.
fn write_temp(dir: &Dir, data: &[u8]) -> std::io::Result<String> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // A leading dot: never a valid file name, so never listed nor served.
    let temp = format!(
        ".tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let written = (|| {
        let mut file = dir.create(&temp)?;
        file.write_all(data)?;
        file.sync_all()
    })();
    match written {
        Ok(()) => Ok(temp),
        Err(e) => {
            let _ = dir.remove_file(&temp);
            Err(e)
        }
    }
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
    fn staged_changes_reach_the_files_only_when_committed() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = Arc::new(Dir::open_ambient_dir(tmp.path(), ambient_authority()).expect("root"));
        root.create_dir_all("p").expect("mkdir");
        let dir = root.open_dir("p").expect("dir");
        dir.write("kept.txt", "old").expect("write");
        dir.write("gone.txt", "old").expect("write");
        let temps = |dir: &Dir| {
            dir.entries()
                .expect("list")
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
                .count()
        };

        let staging = Staging::new(root.clone());
        let first = write_temp(&dir, b"first").expect("temp");
        staging.record(&dir, "p", "kept.txt", Some(first.clone()));
        let second = write_temp(&dir, b"second").expect("temp");
        staging.record(&dir, "p", "kept.txt", Some(second.clone()));
        assert!(!dir.exists(&first), "a replaced staged write is removed");
        assert_eq!(staging.temp_of("p", "kept.txt"), Some(second));
        staging.record(&dir, "p", "gone.txt", None);
        assert_eq!(staging.temp_of("p", "gone.txt"), None);
        assert_eq!(
            dir.read_to_string("kept.txt").expect("read"),
            "old",
            "nothing reached the files yet"
        );
        assert!(dir.exists("gone.txt"));
        staging.finish(true).expect("commit");
        assert_eq!(dir.read_to_string("kept.txt").expect("read"), "second");
        assert!(!dir.exists("gone.txt"));
        assert_eq!(temps(&dir), 0);

        // Dropped unfinished (a failed migration): the staged files go, the files stay.
        let staging = Staging::new(root.clone());
        let third = write_temp(&dir, b"third").expect("temp");
        staging.record(&dir, "p", "kept.txt", Some(third));
        staging.record(
            &dir,
            "p",
            "new.txt",
            Some(write_temp(&dir, b"new").expect("temp")),
        );
        drop(staging);
        assert_eq!(dir.read_to_string("kept.txt").expect("read"), "second");
        assert!(!dir.exists("new.txt"));
        assert_eq!(temps(&dir), 0);
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
