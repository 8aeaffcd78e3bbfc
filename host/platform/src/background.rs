//! The platform's background tasks, started once the platform is open and stopped together:
//! the mail sender, the event dispatcher, the job scheduler and the plugin sync.

use std::sync::Arc;

use tokio::sync::watch;

use crate::platform::Platform;

/// Starts every background task; they stop when `stop` turns true.
pub fn start(platform: &Arc<Platform>, stop: &watch::Sender<bool>) {
    lutetia_services::mail::spawn_sender(&platform.settings, platform.db.clone());
    crate::dispatcher::start(platform.clone(), stop.subscribe());
    crate::scheduler::start(platform.clone(), stop.subscribe());
    spawn_plugin_sync(platform.clone(), stop.subscribe());
}

/// How often a host re-checks the database for plugin changes (on SQLite the only way to
/// see a change made by the command line; on PostgreSQL a fallback behind `LISTEN`).
const PLUGIN_RECHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// Keeps the served plugins in step with the database: on every PostgreSQL notification
/// of a change and every [`PLUGIN_RECHECK`].
fn spawn_plugin_sync(app: Arc<Platform>, mut stop: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut changes = match app.db.plugin_changes().await {
            Ok(changes) => changes,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for plugin changes; re-checking every second only");
                None
            }
        };
        let mut tick = tokio::time::interval(PLUGIN_RECHECK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let notified = async {
                match changes.as_mut() {
                    Some(listener) => listener.next().await.map(Some),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = stop.wait_for(|stop| *stop) => return,
                _ = tick.tick() => {}
                got = notified => match got {
                    Ok(id) => tracing::debug!(plugin = %id.unwrap_or_default(), "plugin change notified"),
                    Err(e) => {
                        tracing::warn!(error = %e, "plugin change listener failed; re-checking every second only");
                        changes = None;
                    }
                },
            }
            if let Err(e) = app
                .registry
                .sync(&app.runtime, &app.db, &app.settings, Vec::new())
                .await
            {
                tracing::warn!(error = %e, "cannot re-check the installed plugins");
            }
        }
    });
}
