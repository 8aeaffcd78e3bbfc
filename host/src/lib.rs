//! Lutetia: a platform for city e-services whose plugins are sandboxed WebAssembly
//! components. See `docs/ARCHITECTURE.md` for the map of this crate.
//!
//! The request path: [`http`] (axum) → [`registry`] (which plugin) → [`runtime`] (wasmtime,
//! one fresh instance per call) → host services in `runtime::host_*` → [`db`] (sqlx).

pub mod app;
pub mod cli;
pub mod db;
pub mod events;
pub mod files;
pub mod http;
pub mod lifecycle;
pub mod mail;
pub mod manifest;
pub mod package;
pub mod quota;
pub mod registry;
pub mod runtime;
pub mod schedule;
pub mod settings;
pub mod toolchain;

/// Entry points of the fuzz targets (`host/fuzz`) into code that is private to the host:
/// hidden, not an API. [`crate::manifest`] and [`crate::package`] are public already; the
/// HTTP layer's pure functions are in [`crate::http::fuzzing`].
#[doc(hidden)]
pub mod fuzzing {
    /// The sanitiser of plugin pages (`http::sanitize::fragment`).
    pub use crate::http::fuzzing::fragment as sanitize_fragment;
}
