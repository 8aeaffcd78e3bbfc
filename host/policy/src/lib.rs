//! The rules the host applies to untrusted input at its edge, before it is sent on:
//! - [`sanitize`]: a plugin's page, cleaned to an allow-list of HTML in bounded work;
//! - [`headers`]: a plugin's status and headers, to an allow-list, with redirects that
//!   keep visitors on the site unless the operator granted other origins;
//! - [`request`]: what a plugin sees of a visitor's request (no credentials, no
//!   hop-by-hop headers, the path below its mount), and which plugin a path names.
//!
//! Everything here is a pure function of its input: no I/O, no async runtime, no wasm.
//! That is why it is a crate of its own: the fuzz targets (`host/fuzz`) and the
//! sanitiser's cost benchmark (`scripts/sanitize-cost`) build it alone, in a minute,
//! without the host's wasmtime and sqlx; `lutetia-web` applies it to real answers.

pub mod headers;
pub mod request;
pub mod sanitize;
mod site_url;

pub use site_url::is_site_relative;

/// The `http` crate these rules are written against (the one axum uses), for callers and
/// fuzz targets that build requests and headers.
pub use http;
