//! Calls of the `subscriber` and `scheduler` exports, under the same limits and with the
//! same error classification as `handler.handle`.
//!
//! Both answer `Result<Result<(), String>, CallError>`: the outer error is a trap, a
//! timeout or a memory overrun (the plugin is broken), the inner one the plugin's own
//! answer. Callers log them differently.

use super::{CallError, LoadedPlugin, Runtime};

/// A scheduled job run (the WIT `scheduler.job` record).
pub use super::bindings::exports::lutetia::plugin::scheduler::Job;
/// An event delivered to a subscriber (the WIT `subscriber.event` record).
pub use super::bindings::exports::lutetia::plugin::subscriber::Event;

impl Runtime {
    /// Calls the plugin's `subscriber.on-event` in a fresh instance, under its limits.
    pub async fn deliver_event(
        &self,
        plugin: &LoadedPlugin,
        event: Event,
    ) -> Result<Result<(), String>, CallError> {
        self.invoke(plugin, move |store, instance| {
            Box::pin(async move {
                instance
                    .lutetia_plugin_subscriber()
                    .call_on_event(store, &event)
                    .await
            })
        })
        .await
    }

    /// Calls the plugin's `scheduler.on-schedule` in a fresh instance, under its limits.
    pub async fn run_job(&self, plugin: &LoadedPlugin, job: Job) -> Result<Result<(), String>, CallError> {
        self.invoke(plugin, move |store, instance| {
            Box::pin(async move {
                instance
                    .lutetia_plugin_scheduler()
                    .call_on_schedule(store, &job)
                    .await
            })
        })
        .await
    }
}

impl Runtime {
    /// Calls the plugin's `lifecycle.migrate` in a fresh instance, under its limits.
    pub async fn migrate(
        &self,
        plugin: &LoadedPlugin,
        from_version: Option<String>,
    ) -> Result<Result<(), String>, CallError> {
        self.invoke(plugin, move |store, instance| {
            Box::pin(async move {
                instance
                    .lutetia_plugin_lifecycle()
                    .call_migrate(store, from_version.as_deref())
                    .await
            })
        })
        .await
    }
}
