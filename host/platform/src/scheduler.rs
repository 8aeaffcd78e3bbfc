//! Scheduled jobs (Lutèce's daemons): the `every`/`cron` parsers used by manifest validation,
//! and the scheduler task that calls each plugin's `scheduler.on-schedule` once per period.
//!
//! Each due period is claimed by inserting a `job_runs (plugin_id, job, period_start)` row:
//! the primary key lets exactly one insert succeed, so on PostgreSQL a period runs once per
//! cluster whatever the number of host processes; on SQLite (one process per file) once per
//! process. The outcome (ok / plugin error / trap) and duration are recorded in that row.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use tokio::sync::watch;

use crate::app::App;
use crate::db::jobs::JobOutcome;
use crate::manifest::JobSpec;
use crate::runtime::{Job, LoadedPlugin};

/// Shortest interval a job may declare.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// How often the scheduler looks for due periods.
const TICK: Duration = Duration::from_millis(250);

/// When a job runs.
#[derive(Debug, Clone)]
pub enum Cadence {
    /// Aligned periods of this length: a run is due at every multiple of it since the epoch.
    Every(Duration),
    /// The instants of a cron expression (6 fields, with seconds), in UTC.
    Cron(Box<cron::Schedule>),
}

impl Cadence {
    /// Parses a manifest job: exactly one of `every` and `cron`.
    pub fn of(job: &JobSpec) -> Result<Cadence, String> {
        match (&job.every, &job.cron) {
            (Some(every), None) => parse_interval(every).map(Cadence::Every),
            (None, Some(expr)) => parse_cron(expr).map(|s| Cadence::Cron(Box::new(s))),
            (Some(_), Some(_)) => Err("sets both `every` and `cron`: choose one".into()),
            (None, None) => Err("needs `every` (such as \"5m\") or `cron` (such as \"0 0 3 * * *\")".into()),
        }
    }

    /// The start of the latest period due at `now_ms` (milliseconds since the epoch): for an
    /// interval, `floor(now / every) * every`; for cron, the latest instant at or before now.
    pub fn due_at(&self, now_ms: i64) -> Option<i64> {
        match self {
            Cadence::Every(every) => {
                let every = i64::try_from(every.as_millis()).ok()?.max(1);
                Some(now_ms.div_euclid(every) * every)
            }
            Cadence::Cron(schedule) => {
                // `next_back` yields instants strictly before its start: start one second
                // after `now`, truncated to the second, to include an instant equal to now.
                let next_second = (now_ms.div_euclid(1000) + 1) * 1000;
                let from: DateTime<Utc> = Utc.timestamp_millis_opt(next_second).single()?;
                schedule.after(&from).next_back().map(|t| t.timestamp_millis())
            }
        }
    }
}

/// Parses `90s`, `5m`, `1h`, `1d` (a positive integer and one unit), at least one second.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not an interval: write a number and a unit, such as \"90s\", \"5m\", \"1h\" or \"1d\""))?;
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!("{text:?} has an unknown unit {unit:?}: use s, m, h or d"));
        }
    };
    let secs = n
        .checked_mul(unit_secs)
        .ok_or_else(|| format!("{text:?} is too long an interval"))?;
    let interval = Duration::from_secs(secs);
    if interval < MIN_INTERVAL {
        return Err(format!("{text:?} is shorter than the minimum of 1s"));
    }
    Ok(interval)
}

/// Parses a cron expression with seconds (`sec min hour day-of-month month day-of-week`,
/// optionally a year), evaluated in UTC.
pub fn parse_cron(expr: &str) -> Result<cron::Schedule, String> {
    let fields = expr.split_whitespace().count();
    if !(6..=7).contains(&fields) {
        return Err(format!(
            "{expr:?} has {fields} fields; write 6 (with seconds first), such as \"0 0 3 * * *\""
        ));
    }
    cron::Schedule::from_str(expr).map_err(|e| format!("{expr:?} is not a valid cron expression: {e}"))
}

/// A job run in progress in this process, so a slow run is not started again.
type Running = Arc<Mutex<HashSet<(String, String)>>>;

/// Starts the scheduler task; it stops when `stop` turns true.
pub fn start(app: Arc<App>, mut stop: watch::Receiver<bool>) {
    let node = crate::events::node_id();
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
            let now = crate::db::now_ms();
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
    app: Arc<App>,
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
            let shown = crate::runtime::one_log_line(&message);
            tracing::warn!(plugin = %id, job = %name, period, duration_ms, error = %shown, "job answered an error");
            JobOutcome::PluginError(message)
        }
        Err(e) => {
            let shown = crate::runtime::one_log_line(&e.to_string());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_interval("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_interval("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_interval("1d"), Ok(Duration::from_secs(86_400)));
        for bad in [
            "",
            "0s",
            "5",
            "m",
            "1.5h",
            "-1s",
            "5 minutes",
            "99999999999999999999d",
        ] {
            assert!(parse_interval(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn interval_periods_are_aligned() {
        let c = Cadence::Every(Duration::from_secs(60));
        assert_eq!(c.due_at(125_000), Some(120_000));
        assert_eq!(c.due_at(120_000), Some(120_000));
    }

    #[test]
    fn cron_gives_the_previous_instant() {
        let c = Cadence::Cron(Box::new(parse_cron("0 */5 * * * *").expect("valid")));
        // 1970-01-01T00:07:30Z → 00:05:00
        assert_eq!(c.due_at(450_000), Some(300_000));
        // Exactly on an instant: that instant.
        assert_eq!(c.due_at(600_000), Some(600_000));
        assert!(parse_cron("*/5 * * * *").is_err(), "5 fields are refused");
        assert!(parse_cron("0 0 25 * * *").is_err());
    }
}
