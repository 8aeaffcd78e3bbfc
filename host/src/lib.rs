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
pub mod registry;
pub mod runtime;
pub mod schedule;
pub mod settings;
pub mod toolchain;

/// Entry points of the fuzz targets (`host/fuzz`) into code that is private to the host:
/// hidden, not an API. [`crate::manifest`] and [`crate::package`] are public already.
#[doc(hidden)]
pub mod fuzzing {
    /// The sanitiser of plugin pages (`http::sanitize::fragment`).
    pub use crate::fuzzing_sanitize::fragment as sanitize_fragment;
}

// `http::sanitize` is private to `http`, so the fuzz entry point compiles the same source
// file as a module of its own (a second `OnceLock` cleaner, identical rules). Once
// `http.rs` declares `pub(crate) mod sanitize;`, re-export `crate::http::sanitize::fragment`
// instead and drop this.
#[path = "http/sanitize.rs"]
mod fuzzing_sanitize;
