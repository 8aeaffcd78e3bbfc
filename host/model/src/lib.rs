//! `lutetia-model`: the data and the rules every other Lutetia crate shares, with no I/O
//! runtime: the plugin manifest and its capabilities, the one-file package format, the host
//! settings and their validation, the quotas and the limits that apply to a plugin, the
//! rules of event topics and job cadences, the content hash.
//!
//! The lowest layer: it depends on no other crate of the project, and never on tokio,
//! sqlx, wasmtime or axum (checked by `tests/tests/all/layering.rs`). Loading the settings
//! (`Settings::load`: the file, a secret file, the `LUTETIA_*` variables) is its only I/O,
//! plain `std` reads.

pub mod events;
pub mod hash;
pub mod limits;
pub mod manifest;
pub mod package;
pub mod quota;
pub mod schedule;
pub mod settings;
