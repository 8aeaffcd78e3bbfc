//! The integration tests, one binary with a module per topic (as wasmtime's `tests/all`):
//! one link step instead of one per topic, and the test plugins are built once per run.
//! Each test starts the real `lutetia-test-host` process on a free loopback port with its
//! own database (SQLite file or PostgreSQL database) and talks HTTP to it.
//!
//! One topic: `cargo test -p lutetia-tests --test all store::` (a module path filter).

mod contract;
mod events_schedule;
mod examples;
mod files;
mod foundation;
mod http_edges;
mod isolation;
mod kv_store;
mod layering;
mod lifecycle;
mod mail;
mod plugin_guide;
mod quotas;
mod store;
