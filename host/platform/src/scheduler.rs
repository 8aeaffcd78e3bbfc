//! Scheduled jobs (Lutèce's daemons): the scheduler task that calls each plugin's
//! `scheduler.on-schedule` once per period (the `every`/`cron` rules are
//! `lutetia_model::schedule`).
//!
//! Each due period is claimed by inserting a `job_runs (plugin_id, job, period_start)` row:
//! the primary key lets exactly one insert succeed, so on PostgreSQL a period runs once per
//! cluster whatever the number of host processes; on SQLite (one process per file) once per
//! process. The outcome (ok / plugin error / trap) and duration are recorded in that row.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lutetia_db::jobs::JobOutcome;
use lutetia_model::schedule::Cadence;
use lutetia_runtime::{Job, LoadedPlugin};
use tokio::sync::watch;

use crate::platform::Platform;

/// How often the scheduler looks for due periods.
const TICK: Duration = Duration::from_millis(250);

/// A job run in progress in this process, so a slow run is not started again.
type Running = Arc<Mutex<HashSet<(String, String)>>>;

/// Starts the scheduler task; it stops when `stop` turns true.
pub fn start(app: Arc<Platform>, mut stop: watch::Receiver<bool>) {
    let node = lutetia_services::node::node_id();
    tokio::spawn(async move {
        let running: Running = Arc::default();
        // The last period this process claimed or saw claimed, per (plugin, job): the
        // database is asked once per period, not once per tick.
        let mut seen: std::collections::HashMap<(String, String), i64> = Default::default();
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stop.wait_for(|s| *s) => break,
            }
            let now = lutetia_db::now_ms();
            for plugin in app.registry.list() {
                for spec in &plugin.context.grants.jobs {
                    let Ok(cadence) = Cadence::of(spec) else { continue };
                    let Some(period) = cadence.due_at(now) else {
                        continue;
                    };
                    let key = (plugin.context.id.clone(), spec.name.clone());
                    if seen.get(&key) == Some(&period) {
                        continue;
                    }
                    seen.insert(key.clone(), period);
                    let is_running = running.lock().map(|r| r.contains(&key)).unwrap_or(false);
                    if is_running {
                        tracing::warn!(plugin = %key.0, job = %key.1, period, "job still running from the previous period: this period is skipped");
                        continue;
                    }
                    match app.db.claim_job_run(&key.0, &key.1, period, &node).await {
                        Ok(true) => {}
                        Ok(false) => continue,
                        Err(e) => {
                            tracing::error!(plugin = %key.0, job = %key.1, error = %e, "cannot claim a job run");
                            // Ask again at the next tick.
                            seen.remove(&key);
                            continue;
                        }
                    }
                    if let Ok(mut r) = running.lock() {
                        r.insert(key.clone());
                    }
                    tokio::spawn(run_one(app.clone(), plugin.clone(), key, period, running.clone()));
                }
            }
        }
    });
}

async fn run_one(
    app: Arc<Platform>,
    plugin: Arc<LoadedPlugin>,
    key: (String, String),
    period: i64,
    running: Running,
) {
    let (id, name) = &key;
    let job = Job {
        name: name.clone(),
        scheduled_at: u64::try_from(period).unwrap_or(0),
    };
    let started = Instant::now();
    let result = app.runtime.run_job(&plugin, job).await;
    let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let outcome = match result {
        Ok(Ok(())) => {
            tracing::debug!(plugin = %id, job = %name, period, duration_ms, "job ran");
            JobOutcome::Ok
        }
        Ok(Err(message)) => {
            // The plugin's own text: escaped so that it stays one log line.
            let shown = lutetia_runtime::one_log_line(&message);
            tracing::warn!(plugin = %id, job = %name, period, duration_ms, error = %shown, "job answered an error");
            JobOutcome::PluginError(message)
        }
        Err(e) => {
            let shown = lutetia_runtime::one_log_line(&e.to_string());
            tracing::error!(plugin = %id, job = %name, period, duration_ms, error = %shown, "job failed: the plugin trapped or overran its limits");
            JobOutcome::Trap(e.to_string())
        }
    };
    if let Err(e) = app
        .db
        .finish_job_run(id, name, period, &outcome, duration_ms)
        .await
    {
        tracing::error!(plugin = %id, job = %name, error = %e, "cannot record a job run's outcome");
    }
    if let Ok(mut r) = running.lock() {
        r.remove(&key);
    }
}
