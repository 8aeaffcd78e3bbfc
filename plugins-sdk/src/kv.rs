//! The plugin's private, persistent key-value store (capability `kv`).
//!
//! Keys are at most 512 bytes of UTF-8 and values at most 1 MiB; the host answers
//! [`Error::Invalid`] past that, [`Error::Denied`] if the plugin's manifest does not ask
//! for the `kv` capability (or the operator did not grant it) and
//! [`Error::QuotaExceeded`] when the plugin's storage quota is used up.
//!
//! These functions call the host: outside it (in a native test) they panic.
//!
//! ```no_run
//! use lutetia_sdk::kv;
//!
//! let visits = kv::increment("visits", 1)?;
//! kv::set_string("last-visitor", "Jeanne")?;
//! assert_eq!(kv::get_string("last-visitor")?.as_deref(), Some("Jeanne"));
//! # let _ = visits;
//! # Ok::<(), lutetia_sdk::Error>(())
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::__bindings::lutetia::plugin::kv as wit;
use crate::Error;

/// Reads the value stored at `key`, or `None` if there is none.
///
/// ```no_run
/// let bytes: Option<Vec<u8>> = lutetia_sdk::kv::get("logo.png")?;
/// # Ok::<(), lutetia_sdk::Error>(())
/// ```
pub fn get(key: &str) -> Result<Option<Vec<u8>>, Error> {
    Ok(wit::get(key)?)
}

/// Stores `value` at `key`, replacing any previous value.
///
/// ```no_run
/// lutetia_sdk::kv::set("greeting", "Bonjour")?;
/// lutetia_sdk::kv::set("bytes", [1, 2, 3])?;
/// # Ok::<(), lutetia_sdk::Error>(())
/// ```
pub fn set(key: &str, value: impl AsRef<[u8]>) -> Result<(), Error> {
    Ok(wit::set(key, value.as_ref())?)
}

/// Deletes the value at `key`; returns whether there was one.
///
/// ```no_run
/// let existed = lutetia_sdk::kv::delete("draft")?;
/// # Ok::<(), lutetia_sdk::Error>(())
/// ```
pub fn delete(key: &str) -> Result<bool, Error> {
    Ok(wit::delete(key)?)
}

/// Adds `delta` (possibly negative) to the decimal integer stored at `key` (a missing key
/// counts as 0) and returns the new value, atomically. [`Error::Invalid`] if the stored
/// value is not a decimal integer.
///
/// ```no_run
/// let visits = lutetia_sdk::kv::increment("visits", 1)?;
/// # Ok::<(), lutetia_sdk::Error>(())
/// ```
pub fn increment(key: &str, delta: i64) -> Result<i64, Error> {
    Ok(wit::increment(key, delta)?)
}

/// Stores `new` at `key` only if the current value is `expected` (`None`: the key is
/// absent); returns whether the swap happened. The building block of optimistic updates.
///
/// ```no_run
/// use lutetia_sdk::kv;
///
/// // Claim a name once: only the first caller wins.
/// let won = kv::compare_and_swap("owner", None, "jdupont")?;
/// // Replace a value only if nobody changed it since it was read.
/// let old = kv::get("state")?;
/// let swapped = kv::compare_and_swap("state", old.as_deref(), "closed")?;
/// # let _ = (won, swapped);
/// # Ok::<(), lutetia_sdk::Error>(())
/// ```
pub fn compare_and_swap(key: &str, expected: Option<&[u8]>, new: impl AsRef<[u8]>) -> Result<bool, Error> {
    Ok(wit::compare_and_swap(key, expected, new.as_ref())?)
}

/// Lists, in order, at most `limit` keys starting with `prefix` and coming after
/// `start_after` (if given): pass the last key of a page to get the next one.
///
/// ```no_run
/// use lutetia_sdk::kv;
///
/// let mut after: Option<String> = None;
/// loop {
///     let page = kv::list_keys("report:", after.as_deref(), 100)?;
///     // ... use the keys ...
///     match page.last() {
///         Some(last) if page.len() == 100 => after = Some(last.clone()),
///         _ => break,
///     }
/// }
/// # Ok::<(), lutetia_sdk::Error>(())
/// ```
pub fn list_keys(prefix: &str, start_after: Option<&str>, limit: u32) -> Result<Vec<String>, Error> {
    Ok(wit::list_keys(prefix, start_after, limit)?)
}

/// Reads the value at `key` as UTF-8 text; [`Error::Invalid`] if it is not UTF-8.
///
/// ```no_run
/// let name: Option<String> = lutetia_sdk::kv::get_string("name")?;
/// # Ok::<(), lutetia_sdk::Error>(())
/// ```
pub fn get_string(key: &str) -> Result<Option<String>, Error> {
    get(key)?
        .map(|bytes| {
            String::from_utf8(bytes)
                .map_err(|e| Error::Invalid(format!("the value of {key:?} is not UTF-8: {e}")))
        })
        .transpose()
}

/// Stores text at `key`.
///
/// ```no_run
/// lutetia_sdk::kv::set_string("name", "Jeanne")?;
/// # Ok::<(), lutetia_sdk::Error>(())
/// ```
pub fn set_string(key: &str, value: &str) -> Result<(), Error> {
    set(key, value)
}

/// Reads the value at `key` as JSON; [`Error::Invalid`] if it does not deserialize to `T`.
///
/// ```no_run
/// #[derive(serde::Deserialize)]
/// struct Settings {
///     open: bool,
/// }
/// let settings: Option<Settings> = lutetia_sdk::kv::get_json("settings")?;
/// # Ok::<(), lutetia_sdk::Error>(())
/// ```
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, Error> {
    get(key)?
        .map(|bytes| {
            serde_json::from_slice(&bytes)
                .map_err(|e| Error::Invalid(format!("the value of {key:?} is not the expected JSON: {e}")))
        })
        .transpose()
}

/// Stores `value` serialized as JSON at `key`; [`Error::Invalid`] if it cannot be
/// serialized.
///
/// ```no_run
/// #[derive(serde::Serialize)]
/// struct Settings {
///     open: bool,
/// }
/// lutetia_sdk::kv::set_json("settings", &Settings { open: true })?;
/// # Ok::<(), lutetia_sdk::Error>(())
/// ```
pub fn set_json<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<(), Error> {
    let bytes = serde_json::to_vec(value)
        .map_err(|e| Error::Invalid(format!("could not serialize the value of {key:?}: {e}")))?;
    set(key, bytes)
}
