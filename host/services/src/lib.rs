//! `lutetia-services`: the host services behind plugin imports that need no WebAssembly:
//! the files folder (`files`), the mail outbox and its sender (`mail`), the event bus's
//! in-process signals (`bus`) and this process's node id (`node`).
//!
//! Depends on `lutetia-model` and `lutetia-db` only; never on wasmtime (the runtime calls
//! these services, not the other way round) nor on axum.

pub mod bus;
pub mod files;
pub mod mail;
pub mod node;
