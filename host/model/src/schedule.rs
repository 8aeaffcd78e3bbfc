//! Scheduled jobs, the rules: a manifest's job declaration (`JobSpec`) and when it runs
//! (`Cadence`: `every` intervals or `cron` expressions in UTC). Used by manifest validation
//! and the platform's job scheduler.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// A scheduled job: `every` (an interval such as `90s`, `5m`, `1h`) or `cron` (a cron
/// expression with seconds: `0 0 3 * * *`), not both.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct JobSpec {
    /// Name passed to `on-schedule`.
    pub name: String,
    /// Interval between runs.
    #[serde(default)]
    pub every: Option<String>,
    /// Cron expression.
    #[serde(default)]
    pub cron: Option<String>,
}

/// Shortest interval a job may declare.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
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
