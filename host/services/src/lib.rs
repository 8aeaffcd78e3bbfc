//! `lutetia-services`: the host services behind plugin imports that need no WebAssembly:
//! the files folder (`files`), the mail outbox and its sender (`mail`), the event bus's
//! in-process signals (`bus`), this process's node id (`node`) and the host's metrics
//! (`metrics`, counted by the runtime and the web layer, rendered by the web layer).
//!
//! Depends on `lutetia-model` and `lutetia-db` only; never on wasmtime (the runtime calls
//! these services, not the other way round) nor on axum.

pub mod bus;
pub mod files;
pub mod mail;
pub mod metrics;
pub mod node;
