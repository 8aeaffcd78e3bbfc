//! The plugin's private binary files (capability `files`): photos of a street issue,
//! attachments. The host checks each file against the plugin's grant: names are 1-200
//! characters of `[A-Za-z0-9._-]` not starting with a dot, the media type must be one the
//! manifest lists (`image/*`, `application/pdf`...) and the content must look like it
//! ([`Error::Invalid`] otherwise); a file over `max-size`, or over the plugin's
//! `max-total-bytes`, is [`Error::QuotaExceeded`].
//!
//! Stored files are served to browsers at [`url`]: `/p/{plugin}/_files/{name}`.
//!
//! ```no_run
//! use lutetia_sdk::{files, Request};
//!
//! # let req = Request::new("GET", "/");
//! # let jpeg_bytes: Vec<u8> = Vec::new();
//! let info = files::put("pothole-42.jpg", "image/jpeg", &jpeg_bytes)?;
//! let img = format!("<img src=\"{}\" alt=\"\">", files::url(&req, &info.name));
//! # Ok::<(), lutetia_sdk::Error>(())
//! ```

use crate::__bindings::lutetia::plugin::files as wit;
use crate::{Error, Request};

/// What the host knows of a stored file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// The file's name.
    pub name: String,
    /// Its media type, as checked when stored (`image/jpeg`).
    pub content_type: String,
    /// Size in bytes.
    pub size: u64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    /// When it was stored, milliseconds since the Unix epoch.
    pub created_at: u64,
}

impl From<wit::FileInfo> for FileInfo {
    fn from(f: wit::FileInfo) -> FileInfo {
        FileInfo {
            name: f.name,
            content_type: f.content_type,
            size: f.size,
            sha256: f.sha256,
            created_at: f.created_at,
        }
    }
}

/// Stores a file, replacing any file of the same name.
///
/// ```no_run
/// let info = lutetia_sdk::files::put("notes.txt", "text/plain", "Bonjour")?;
/// assert_eq!(info.size, 7);
/// # Ok::<(), lutetia_sdk::Error>(())
/// ```
pub fn put(name: &str, content_type: &str, data: impl AsRef<[u8]>) -> Result<FileInfo, Error> {
    Ok(wit::put(name, content_type, data.as_ref())?.into())
}

/// Reads a file and its description, or `None` if there is none.
///
/// ```no_run
/// if let Some((info, bytes)) = lutetia_sdk::files::get("notes.txt")? {
///     assert_eq!(info.size as usize, bytes.len());
/// }
/// # Ok::<(), lutetia_sdk::Error>(())
/// ```
pub fn get(name: &str) -> Result<Option<(FileInfo, Vec<u8>)>, Error> {
    Ok(wit::get(name)?.map(|(info, data)| (info.into(), data)))
}

/// Reads a file's description only.
///
/// ```no_run
/// let exists = lutetia_sdk::files::stat("notes.txt")?.is_some();
/// # Ok::<(), lutetia_sdk::Error>(())
/// ```
pub fn stat(name: &str) -> Result<Option<FileInfo>, Error> {
    Ok(wit::stat(name)?.map(Into::into))
}

/// Deletes a file; returns whether it existed.
///
/// ```no_run
/// let existed = lutetia_sdk::files::delete("notes.txt")?;
/// # Ok::<(), lutetia_sdk::Error>(())
/// ```
pub fn delete(name: &str) -> Result<bool, Error> {
    Ok(wit::delete(name)?)
}

/// Lists, in name order, at most `limit` (1-1000) files whose name starts with `prefix`.
///
/// ```no_run
/// for photo in lutetia_sdk::files::list("photo-", 100)? {
///     println!("{} ({} bytes)", photo.name, photo.size);
/// }
/// # Ok::<(), lutetia_sdk::Error>(())
/// ```
pub fn list(prefix: &str, limit: u32) -> Result<Vec<FileInfo>, Error> {
    Ok(wit::list(prefix, limit)?.into_iter().map(Into::into).collect())
}

/// The address where browsers get the file `name`: `/p/{plugin}/_files/{name}`.
///
/// ```
/// use lutetia_sdk::{files, Request};
///
/// let req = Request::new("GET", "/").with_mount("/p/hello");
/// assert_eq!(files::url(&req, "cat.png"), "/p/hello/_files/cat.png");
/// ```
pub fn url(req: &Request, name: &str) -> String {
    req.link(&format!("_files/{}", crate::url::encode(name)))
}
