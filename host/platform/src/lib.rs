//! `lutetia-platform`: what a running host is, minus the web. [`platform::Platform`] opens
//! the settings, database, runtime and plugins together; [`registry`] holds the plugins being
//! served; [`lifecycle`] is the operator's operations (install, upgrade, grant, ...), shared
//! by the command line and the admin API; [`background`] starts the tasks: the event
//! [`dispatcher`], the job [`scheduler`], the mail sender and the plugin sync.
//!
//! Depends on `lutetia-model`, `lutetia-db`, `lutetia-services` and `lutetia-runtime`;
//! never on axum or any web crate (the web layer is above it), nor on wasmtime directly.

pub mod background;
pub mod dispatcher;
pub mod lifecycle;
pub mod platform;
pub mod registry;
pub mod scheduler;
