//! Write [Lutetia](https://example.invalid/lutetia) plugins in Rust.
//!
//! A Lutetia plugin is a WebAssembly component (target `wasm32-wasip2`) that targets the
//! `lutetia:plugin@0.1.0` world: the host calls it once per HTTP request under
//! `/p/{plugin-id}/`, and the plugin answers with a raw [`Response`] or with a [`Page`]
//! that the host wraps in the site layout. A fresh instance serves each request, so keep
//! state in the host's services ([`kv`], [`config`]), not in globals.
//!
//! With this crate a plugin is a [`Plugin`] impl plus one [`export!`] call; the generated
//! component-model bindings stay hidden, and the plugin crate needs no other dependency.
//!
//! ```no_run
//! use lutetia_sdk::{config, html, kv, Page, Plugin, Reply, Request, Response};
//!
//! struct Hello;
//!
//! impl Plugin for Hello {
//!     fn handle(req: Request) -> Reply {
//!         match (req.method(), req.segments().as_slice()) {
//!             ("GET", []) => {
//!                 let greeting = config::get_or("greeting", "Hello");
//!                 let visits = kv::increment("visits", 1).unwrap_or(0);
//!                 let body = format!("<p>{}</p><p>Visits: {visits}</p>", html::escape(&greeting));
//!                 Page::new("Hello", body).into()
//!             }
//!             ("GET", ["api", "ping"]) => Response::json(&"pong").into(),
//!             _ => Response::not_found().into(),
//!         }
//!     }
//! }
//!
//! lutetia_sdk::export!(Hello);
//! ```
//!
//! Build the plugin crate (a `cdylib`) with
//! `cargo build --release --target wasm32-wasip2`; the `.wasm` file it produces is the
//! component the host loads, next to its `plugin.toml` manifest.
//!
//! The host's services ([`kv`], [`config`], [`log`]) only exist inside the host: called
//! from a native program (a unit test, a doctest) they panic. The pure helpers
//! ([`Request`], [`Reply`], [`html`], [`url`]) work everywhere, so handlers that do not
//! touch the services can be unit-tested natively with [`Request::new`].
#![deny(missing_docs)]

pub mod config;
mod error;
pub mod events;
pub mod files;
pub mod html;
pub mod kv;
pub mod limits;
pub mod log;
pub mod mail;
pub mod multipart;
mod reply;
mod request;
pub mod store;
pub mod url;

use std::marker::PhantomData;

pub use error::Error;
pub use events::{Event, Job};
pub use reply::{Page, Reply, Response};
pub use request::{Request, User};

/// The `serde` crate, re-exported so plugins can name its traits without depending on it
/// (its derive macros, though, need the plugin to depend on `serde` itself).
#[doc(no_inline)]
pub use serde;
/// The `serde_json` crate, re-exported so plugins can build JSON without depending on it:
/// `lutetia_sdk::serde_json::json!({ "ok": true })`.
#[doc(no_inline)]
pub use serde_json;

/// The version of the `lutetia:plugin` WIT package this SDK targets: the value to put in
/// the `api` field of a plugin's `plugin.toml`.
///
/// ```
/// assert_eq!(lutetia_sdk::API_VERSION, "0.1.0");
/// ```
pub const API_VERSION: &str = "0.1.0";

/// A Lutetia plugin: answers the HTTP requests routed to it.
///
/// Implement it on a type (usually a unit struct) and export that type with [`export!`].
///
/// ```no_run
/// use lutetia_sdk::{Plugin, Reply, Request, Response};
///
/// struct Ping;
///
/// impl Plugin for Ping {
///     fn handle(req: Request) -> Reply {
///         if req.path() == "/ping" {
///             Response::text("pong").into()
///         } else {
///             Response::not_found().into()
///         }
///     }
/// }
///
/// lutetia_sdk::export!(Ping);
/// ```
pub trait Plugin {
    /// Handles one request. A fresh instance serves each request.
    ///
    /// A panic aborts the call: the host answers with an error page and logs it.
    fn handle(req: Request) -> Reply;

    /// Receives an event published on a topic the plugin subscribes to (in its manifest's
    /// `[capabilities.events] subscribe`). An `Err` (or a panic) makes the host deliver it
    /// again later; later events of the same topic wait. The default ignores events.
    fn on_event(event: Event) -> Result<(), String> {
        let _ = event;
        Ok(())
    }

    /// Runs one of the jobs declared in the manifest's `[[capabilities.jobs]]`. An `Err` is
    /// logged by the host. The default does nothing.
    fn on_schedule(job: Job) -> Result<(), String> {
        let _ = job;
        Ok(())
    }

    /// Brings the plugin's stored data up to date when this version is installed (with
    /// `from_version` `None`), upgraded to or rolled back to (with the version that served
    /// until now). It runs before the version serves any request; an `Err` or a panic
    /// cancels the operation and the previous version keeps serving. The default does
    /// nothing.
    fn migrate(from_version: Option<String>) -> Result<(), String> {
        let _ = from_version;
        Ok(())
    }
}

/// Exports a [`Plugin`] implementation as the component's `lutetia:plugin/handler`.
///
/// Call it once, at the root of a `cdylib` crate, with the type implementing [`Plugin`]:
///
/// ```no_run
/// # use lutetia_sdk::{Plugin, Reply, Request, Response};
/// struct MyPlugin;
/// # impl Plugin for MyPlugin {
/// #     fn handle(_req: Request) -> Reply { Response::not_found().into() }
/// # }
/// lutetia_sdk::export!(MyPlugin);
/// ```
#[macro_export]
macro_rules! export {
    ($plugin:ty $(,)?) => {
        const _: () = {
            type __LutetiaPluginExport = $crate::__Export<$plugin>;
            $crate::__bindings::__export_lutetia_plugin!(
                __LutetiaPluginExport with_types_in $crate::__bindings
            );
        };
    };
}

/// Bindings generated by `wit-bindgen` from `wit/`: an implementation detail of
/// [`export!`] and of the service modules, not part of the SDK's API.
#[doc(hidden)]
#[allow(
    missing_docs,
    unsafe_code,
    unused_qualifications,
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used
)]
pub mod __bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "plugin",
        pub_export_macro: true,
        export_macro_name: "__export_lutetia_plugin",
        default_bindings_module: "::lutetia_sdk::__bindings",
    });
}

/// Adapts a [`Plugin`] to the generated handler trait; used by [`export!`].
#[doc(hidden)]
pub struct __Export<P>(PhantomData<P>);

impl<P: Plugin> __bindings::exports::lutetia::plugin::handler::Guest for __Export<P> {
    fn handle(
        request: __bindings::lutetia::plugin::types::Request,
    ) -> __bindings::lutetia::plugin::types::Reply {
        P::handle(Request::from(request)).into()
    }
}

impl<P: Plugin> __bindings::exports::lutetia::plugin::subscriber::Guest for __Export<P> {
    fn on_event(event: __bindings::exports::lutetia::plugin::subscriber::Event) -> Result<(), String> {
        P::on_event(Event::from(event))
    }
}

impl<P: Plugin> __bindings::exports::lutetia::plugin::scheduler::Guest for __Export<P> {
    fn on_schedule(job: __bindings::exports::lutetia::plugin::scheduler::Job) -> Result<(), String> {
        P::on_schedule(Job::from(job))
    }
}

impl<P: Plugin> __bindings::exports::lutetia::plugin::lifecycle::Guest for __Export<P> {
    fn migrate(from_version: Option<String>) -> Result<(), String> {
        P::migrate(from_version)
    }
}
