//! Log lines, recorded by the host with the plugin's id (and truncated if too long).
//!
//! These functions call the host: outside it (in a native test) they panic.
//!
//! ```no_run
//! use lutetia_sdk::log;
//!
//! log::info("report created");
//! log::warn(format!("slow query: {} ms", 1200));
//! ```

use crate::__bindings::lutetia::plugin::log as wit;

/// The severity of a log line.
///
/// ```no_run
/// lutetia_sdk::log::log(lutetia_sdk::log::Level::Info, "hello");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Debugging information.
    Debug,
    /// Normal events.
    Info,
    /// Something unexpected that the plugin handled.
    Warn,
    /// A failure.
    Error,
}

impl From<Level> for wit::Level {
    fn from(level: Level) -> wit::Level {
        match level {
            Level::Trace => wit::Level::Trace,
            Level::Debug => wit::Level::Debug,
            Level::Info => wit::Level::Info,
            Level::Warn => wit::Level::Warn,
            Level::Error => wit::Level::Error,
        }
    }
}

/// Writes one log line at `level`.
///
/// ```no_run
/// use lutetia_sdk::log::{log, Level};
///
/// log(Level::Warn, "quota nearly used up");
/// ```
pub fn log(level: Level, message: impl AsRef<str>) {
    wit::log(level.into(), message.as_ref());
}

/// Writes a line at level trace.
///
/// ```no_run
/// lutetia_sdk::log::trace("entering handler");
/// ```
pub fn trace(message: impl AsRef<str>) {
    log(Level::Trace, message);
}

/// Writes a line at level debug.
///
/// ```no_run
/// lutetia_sdk::log::debug(format!("query: {}", "a=1"));
/// ```
pub fn debug(message: impl AsRef<str>) {
    log(Level::Debug, message);
}

/// Writes a line at level info.
///
/// ```no_run
/// lutetia_sdk::log::info("report created");
/// ```
pub fn info(message: impl AsRef<str>) {
    log(Level::Info, message);
}

/// Writes a line at level warn.
///
/// ```no_run
/// lutetia_sdk::log::warn("unknown form field ignored");
/// ```
pub fn warn(message: impl AsRef<str>) {
    log(Level::Warn, message);
}

/// Writes a line at level error.
///
/// ```no_run
/// lutetia_sdk::log::error("could not save the report");
/// ```
pub fn error(message: impl AsRef<str>) {
    log(Level::Error, message);
}
