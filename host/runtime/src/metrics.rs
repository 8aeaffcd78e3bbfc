//! Counting calls where they are classified: [`metered`] wraps `Runtime::invoke_with`'s
//! classified result (and counts a call dropped before it ended as `cancelled`), the host
//! imports count their operations through [`HostState::counted`], and [`LoadedPlugin::load`]
//! reads the gauges a scrape shows. The series themselves are `lutetia_services::metrics`.

use std::future::Future;
use std::time::Instant;

use lutetia_services::metrics::{CallOutcome, PluginLoad, PluginMetrics, Service, ServiceError};

use super::bindings::lutetia::plugin::types::Error;
use super::state::HostState;
use super::{CallError, LoadedPlugin, Reply};

/// What a call's answer says about the plugin: whether it answered an error of its own.
pub(crate) trait Answered {
    /// `true` when the plugin answered, but with an error of its own.
    fn plugin_failed(&self) -> bool;
}

/// A request handler's answer is its own error when its status is 5xx.
impl Answered for Reply {
    fn plugin_failed(&self) -> bool {
        let status = match self {
            Reply::Response(response) => response.status,
            Reply::Page(page) => page.status,
        };
        status >= 500
    }
}

/// Events, jobs and `migrate` answer `Err(reason)` when they failed.
impl Answered for Result<(), String> {
    fn plugin_failed(&self) -> bool {
        self.is_err()
    }
}

/// The outcome label of a classified call.
fn outcome<T: Answered>(result: &Result<T, CallError>) -> CallOutcome {
    match result {
        Ok(answer) if answer.plugin_failed() => CallOutcome::PluginError,
        Ok(_) => CallOutcome::Ok,
        Err(CallError::Trap(_)) => CallOutcome::Trap,
        Err(CallError::Timeout(_)) => CallOutcome::Timeout,
        Err(CallError::MemoryExceeded(_)) => CallOutcome::Memory,
        Err(CallError::Overloaded(_)) => CallOutcome::Overloaded,
    }
}

/// Counts a call that is dropped before it ends (its caller went away) as `cancelled`.
struct Unfinished<'a>(Option<&'a PluginMetrics>);

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        if let Some(metrics) = self.0 {
            metrics.call(CallOutcome::Cancelled, None);
        }
    }
}

/// Runs `call` and counts how it ended, with its duration (admission wait included).
pub(crate) async fn metered<T: Answered>(
    metrics: &PluginMetrics,
    call: impl Future<Output = Result<T, CallError>>,
) -> Result<T, CallError> {
    let started = Instant::now();
    let mut unfinished = Unfinished(Some(metrics));
    let result = call.await;
    unfinished.0 = None;
    metrics.call(outcome(&result), Some(started.elapsed()));
    result
}

impl LoadedPlugin {
    /// Its calls running and waiting now, for the gauges of a scrape.
    pub fn load(&self) -> PluginLoad {
        let free = self.admission.running.available_permits();
        PluginLoad {
            plugin: self.context.id.clone(),
            in_use: self.admission.max.saturating_sub(free) as u64,
            queued: self.admission.waiting.load(std::sync::atomic::Ordering::Relaxed) as u64,
        }
    }
}

/// The metrics label of a WIT error.
fn error_kind(error: &Error) -> ServiceError {
    match error {
        Error::NotFound => ServiceError::NotFound,
        Error::Denied => ServiceError::Denied,
        Error::Conflict => ServiceError::Conflict,
        Error::Invalid(_) => ServiceError::Invalid,
        Error::QuotaExceeded => ServiceError::QuotaExceeded,
        Error::Unavailable(_) => ServiceError::Unavailable,
    }
}

impl HostState {
    /// Counts one operation of `service` by this call's plugin, and its error if any;
    /// returns `answer` unchanged. Each host function runs its body as an `async move`
    /// block over `&mut *self` and hands the result here (a block borrowing `self` shared
    /// would need `HostState: Sync`, which WASI's context is not).
    pub(crate) fn counted<T>(&self, service: Service, answer: Result<T, Error>) -> Result<T, Error> {
        let error = answer.as_ref().err().map(error_kind);
        self.plugin.metrics.service(service, error);
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn reply(status: u16) -> Reply {
        Reply::Response(crate::Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        })
    }

    #[test]
    fn outcomes_follow_the_classification() {
        assert_eq!(outcome(&Ok(reply(200))), CallOutcome::Ok);
        assert_eq!(outcome(&Ok(reply(404))), CallOutcome::Ok);
        assert_eq!(outcome(&Ok(reply(503))), CallOutcome::PluginError);
        assert_eq!(outcome(&Ok::<_, CallError>(Ok(()))), CallOutcome::Ok);
        assert_eq!(
            outcome(&Ok::<_, CallError>(Err("no".to_owned()))),
            CallOutcome::PluginError
        );
        let failed = |error| outcome::<Reply>(&Err(error));
        assert_eq!(failed(CallError::Trap("x".into())), CallOutcome::Trap);
        assert_eq!(
            failed(CallError::Timeout(Duration::from_secs(1))),
            CallOutcome::Timeout
        );
        assert_eq!(failed(CallError::MemoryExceeded(16)), CallOutcome::Memory);
        assert_eq!(
            failed(CallError::Overloaded("full".into())),
            CallOutcome::Overloaded
        );
    }

    fn count(metrics: &lutetia_services::metrics::Metrics, outcome: &str) -> String {
        let text = metrics.render(&[]).expect("renders");
        let series = format!("lutetia_plugin_calls_total{{plugin=\"p\",outcome=\"{outcome}\"}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(&series))
            .unwrap_or_else(|| panic!("{series} in\n{text}"))
            .to_owned()
    }

    #[tokio::test]
    async fn a_dropped_call_counts_as_cancelled_and_a_finished_one_by_its_outcome() {
        let metrics = lutetia_services::metrics::Metrics::new();
        let plugin = metrics.plugin("p");
        let answered = metered(&plugin, async { Ok::<_, CallError>(reply(200)) }).await;
        assert!(answered.is_ok());
        let never = metered(&plugin, std::future::pending::<Result<Reply, CallError>>());
        let gave_up = tokio::time::timeout(Duration::from_millis(10), never).await;
        assert!(gave_up.is_err());
        assert_eq!(count(&metrics, "ok"), "1");
        assert_eq!(count(&metrics, "cancelled"), "1");
        assert_eq!(count(&metrics, "trap"), "0");
    }
}
