//! The one place where host bindings for the `lutetia:plugin` contract are generated.
//!
//! Every import is `async` (host services such as `kv` talk to the database) and every
//! export is called asynchronously so that epoch deadlines and Tokio timeouts apply.

// Generated code: its documentation is the WIT's.
#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "lutetia:plugin/plugin",
    imports: { default: async },
    exports: { default: async },
});

pub use self::lutetia::plugin::types::{Error as PluginError, Headers, Page, Reply, Request, Response, User};
