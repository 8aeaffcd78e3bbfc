//! Storage of scheduled job runs: one row per (plugin, job, period), claimed by one process.

use super::{Database, DbError, now_ms, on_pool};

/// How a job run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// `on-schedule` returned `ok`.
    Ok,
    /// `on-schedule` returned the plugin's own error.
    PluginError(String),
    /// The call trapped or overran its limits.
    Trap(String),
}

/// A recorded job run.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct JobRun {
    /// Plugin.
    pub plugin_id: String,
    /// Job name.
    pub job: String,
    /// Start of the period, milliseconds since the Unix epoch (the `scheduled-at` passed).
    pub period_start: i64,
    /// The host process that ran it.
    pub node: String,
    /// `ok`, `plugin-error`, `trap`, or none while it runs.
    pub outcome: Option<String>,
    /// The error, if any.
    pub error: Option<String>,
    /// How long the call took.
    pub duration_ms: Option<i64>,
}

impl Database {
    /// Claims the run of `job` for the period starting at `period_start`; `true` for the one
    /// caller whose insert succeeds, `false` if that period is already claimed.
    pub async fn claim_job_run(
        &self,
        plugin: &str,
        job: &str,
        period_start: i64,
        node: &str,
    ) -> Result<bool, DbError> {
        let inserted = on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO job_runs (plugin_id, job, period_start, node, started_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (plugin_id, job, period_start) DO NOTHING",
            )
            .bind(plugin)
            .bind(job)
            .bind(period_start)
            .bind(node)
            .bind(now_ms())
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(inserted == 1)
    }

    /// Records how a claimed run ended.
    pub async fn finish_job_run(
        &self,
        plugin: &str,
        job: &str,
        period_start: i64,
        outcome: &JobOutcome,
        duration_ms: i64,
    ) -> Result<(), DbError> {
        let (label, error) = match outcome {
            JobOutcome::Ok => ("ok", None),
            JobOutcome::PluginError(e) => ("plugin-error", Some(e.as_str())),
            JobOutcome::Trap(e) => ("trap", Some(e.as_str())),
        };
        on_pool!(self, pool => {
            sqlx::query(
                "UPDATE job_runs SET outcome = $4, error = $5, duration_ms = $6, finished_at = $7 \
                 WHERE plugin_id = $1 AND job = $2 AND period_start = $3",
            )
            .bind(plugin)
            .bind(job)
            .bind(period_start)
            .bind(label)
            .bind(error)
            .bind(duration_ms)
            .bind(now_ms())
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }

    /// The runs of a plugin's jobs, oldest period first.
    pub async fn job_runs(&self, plugin: &str) -> Result<Vec<JobRun>, DbError> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT plugin_id, job, period_start, node, outcome, error, duration_ms FROM job_runs \
                 WHERE plugin_id = $1 ORDER BY job, period_start",
            )
            .bind(plugin)
            .fetch_all(pool)
            .await
        })?)
    }
}
