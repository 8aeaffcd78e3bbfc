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
