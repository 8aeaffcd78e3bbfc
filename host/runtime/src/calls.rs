//! Calls of the `subscriber`, `scheduler` and `lifecycle` exports, under the same limits
//! and with the same error classification as `handler.handle`.
//!
//! All answer `Result<Result<(), String>, CallError>`: the outer error is a trap, a
//! timeout or a memory overrun (the plugin is broken), the inner one the plugin's own
//! answer. Callers log them differently.
//!
//! `migrate` runs in a [`Migration`]: everything it writes through the host services waits
//! in one database transaction (and, for files, in temporary files) that its caller commits
//! together with its own record of the change, or discards.

use std::future::Future;
use std::sync::Arc;

use super::{CallError, LoadedPlugin, Runtime};
use lutetia_db::{Database, DbError, Scope};
use lutetia_services::files::FileStore;

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

/// What a `migrate` call wrote, held back until its caller decides: [`Migration::commit`]
/// keeps it, together with what the caller wrote through [`Migration::database`] (the
/// record of the new version), in one transaction; [`Migration::rollback`] (or dropping
/// it) discards it all. Kv, store, events, mail and file metadata share the transaction
/// ([`Scope`]); file contents wait in temporary files ([`FileStore::staged`]).
#[derive(Debug)]
pub struct Migration {
    scope: Arc<Scope>,
    files: Option<FileStore>,
}

impl Runtime {
    /// A migration for plugin `plugin`, nothing written yet.
    pub fn begin_migration(&self, plugin: &str) -> Result<Migration, DbError> {
        let scope = self.db.scope(plugin)?;
        let files = self.files.as_ref().map(|f| f.staged(scope.database()));
        Ok(Migration { scope, files })
    }

    /// Calls the plugin's `lifecycle.migrate` in a fresh instance, under its limits, with
    /// its writes going to `migration`. A migrate that succeeds but leaves a unique index it
    /// declared violated (PostgreSQL builds those after the commit) answers an error.
    pub async fn migrate(
        &self,
        plugin: &LoadedPlugin,
        from_version: Option<String>,
        migration: &Migration,
    ) -> Result<Result<(), String>, CallError> {
        let call = self.invoke_with(
            plugin,
            migration.scope.database(),
            migration.files.clone(),
            move |store, instance| {
                Box::pin(async move {
                    instance
                        .lutetia_plugin_lifecycle()
                        .call_migrate(store, from_version.as_deref())
                        .await
                })
            },
        );
        let answer = super::metrics::metered(&plugin.context.metrics, call).await;
        match answer {
            Ok(Ok(())) => Ok(migration.scope.check_indexes().await),
            other => other,
        }
    }
}

impl Migration {
    /// The migration's transaction as a database, for the caller's own writes.
    pub fn database(&self) -> Database {
        self.scope.database()
    }

    /// Commits the migration's transaction, then moves its files into place, wakes the
    /// event dispatcher and builds the indexes it declared (PostgreSQL); failures of those
    /// are logged (the change is recorded: they are healed by the next `ensure-index`).
    ///
    /// If COMMIT itself reports an error, the transaction may still have committed (a
    /// connection lost after PostgreSQL received it): `committed` is then awaited to find
    /// out (the caller reads back its record), and the files follow what it says. Runs as a
    /// task of its own, so a caller that goes away (an admin request whose client left)
    /// cannot stop it between the commit and the files.
    pub async fn commit(self, committed: impl Future<Output = bool> + Send + 'static) -> Result<(), DbError> {
        let task = tokio::spawn(async move {
            match self.scope.commit().await {
                Ok(()) => {
                    self.after(true).await;
                    Ok(())
                }
                Err(e) => {
                    let happened = committed.await;
                    tracing::warn!(plugin = %self.scope.plugin(), error = %e, committed = happened, "the migration's commit failed");
                    self.after(happened).await;
                    if happened { Ok(()) } else { Err(e) }
                }
            }
        });
        task.await
            .map_err(|_| DbError::Scope("the commit task stopped"))?
    }

    /// Discards everything the migration wrote.
    pub async fn rollback(self) {
        if let Err(e) = self.scope.rollback().await {
            // The server rolls back a transaction whose connection is gone.
            tracing::warn!(plugin = %self.scope.plugin(), error = %e, "cannot roll back a migration");
        }
        self.after(false).await;
    }

    async fn after(&self, committed: bool) {
        let plugin = self.scope.plugin();
        if let Some(files) = &self.files
            && let Err(e) = files.finish_staged(committed).await
        {
            tracing::error!(plugin, committed, error = %e, "cannot finish the migration's files");
        }
        if !committed {
            return;
        }
        // Its events became visible with the commit.
        lutetia_services::bus::notify_published();
        for (index, error) in self.scope.build_indexes().await {
            tracing::warn!(plugin, %index, %error, "cannot build an index the migration declared");
        }
    }
}
