//! The plugin's settings: the defaults of its manifest's `[config]` table, overridden by
//! the operator.
//!
//! These functions call the host: outside it (in a native test) they panic.
//!
//! ```no_run
//! use lutetia_sdk::config;
//!
//! let greeting = config::get_or("greeting", "Bonjour");
//! let page_size: usize = config::get("page-size").and_then(|s| s.parse().ok()).unwrap_or(20);
//! # let _ = (greeting, page_size);
//! ```

use crate::__bindings::lutetia::plugin::config as wit;

/// The value of the setting `key`, or `None` if it is not set.
///
/// ```no_run
/// let contact: Option<String> = lutetia_sdk::config::get("contact-email");
/// ```
pub fn get(key: &str) -> Option<String> {
    wit::get(key)
}

/// The value of the setting `key`, or `default` if it is not set.
///
/// ```no_run
/// let greeting: String = lutetia_sdk::config::get_or("greeting", "Hello");
/// ```
pub fn get_or(key: &str, default: &str) -> String {
    get(key).unwrap_or_else(|| default.to_owned())
}

/// Every setting as `(key, value)` pairs, sorted by key.
///
/// ```no_run
/// for (key, value) in lutetia_sdk::config::all() {
///     lutetia_sdk::log::debug(format!("{key} = {value}"));
/// }
/// ```
pub fn all() -> Vec<(String, String)> {
    wit::get_all()
}
