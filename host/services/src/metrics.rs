//! The host's metrics, one [`Metrics`] per host (the runtime owns it), rendered by the web
//! layer's `/metrics` in the OpenMetrics text format, which Prometheus scrapes natively
//! (`prometheus-client`, from the Prometheus project: typed families, no global registry,
//! no HTTP server of its own).
//!
//! Every label is bounded: a plugin id (the plugins this host loaded), or a value of one of
//! the fixed enums below ([`CallOutcome`], [`Service`], [`ServiceError`], [`RouteKind`],
//! [`StatusClass`]). Nothing comes from a request's path or query string.
//!
//! Counting is cheap on the hot path: a plugin's counters are looked up once, when it is
//! loaded ([`Metrics::plugin`]), and a [`PluginMetrics`] handle shares them (a counter is an
//! atomic behind an `Arc`); a new version of the same plugin gets the same counters.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds, in seconds, of the latency buckets: 1 ms to the longest deadline a
/// plugin may have (`limits.max-timeout-ms` is at most 60 s by default).
const LATENCY_BUCKETS: [f64; 15] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Declares an enum of label values: its variants, their text, and `ALL`.
macro_rules! label_values {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &[$name] = &[$($name::$variant,)*];

            /// The label value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }
        }

        impl EncodeLabelValue for $name {
            fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
                std::fmt::Write::write_str(encoder, self.as_str())
            }
        }
    };
}

label_values! {
    /// How a call into a plugin ended (label `outcome`).
    CallOutcome {
        /// It answered.
        Ok => "ok",
        /// It answered with an error of its own: an `Err` from an event, job or `migrate`
        /// export, or a 5xx status from its request handler.
        PluginError => "plugin_error",
        /// The guest trapped (panic, unreachable, ...).
        Trap => "trap",
        /// It ran past its deadline (the epoch deadline or the host's timeout).
        Timeout => "timeout",
        /// It tried to grow its memory past its limit.
        Memory => "memory",
        /// It was refused: its running slots and its queue were full, or it waited too long.
        Overloaded => "overloaded",
        /// Its caller went away before it ended (a visitor closed the connection).
        Cancelled => "cancelled",
    }
}

label_values! {
    /// A host service a plugin calls (label `service`).
    Service {
        /// `lutetia:plugin/kv`.
        Kv => "kv",
        /// `lutetia:plugin/store`.
        Store => "store",
        /// `lutetia:plugin/files`.
        Files => "files",
        /// `lutetia:plugin/mail`.
        Mail => "mail",
        /// `lutetia:plugin/events`.
        Events => "events",
    }
}

label_values! {
    /// The WIT `error` a host service answered (label `error`).
    ServiceError {
        /// `not-found`.
        NotFound => "not_found",
        /// `denied`: not granted, or not allowed.
        Denied => "denied",
        /// `conflict`: a concurrent change won.
        Conflict => "conflict",
        /// `invalid`: bad arguments.
        Invalid => "invalid",
        /// `quota-exceeded`.
        QuotaExceeded => "quota_exceeded",
        /// `unavailable`: the database or the storage failed.
        Unavailable => "unavailable",
    }
}

label_values! {
    /// Which kind of route answered a request (label `kind`): the route template decides,
    /// never the path itself.
    RouteKind {
        /// `/p/{plugin}...`: a plugin's pages, API and files.
        Plugin => "plugin",
        /// `/api/admin/...`: the admin API.
        Admin => "admin",
        /// `/metrics`.
        Metrics => "metrics",
        /// The host's own pages: `/`, `/healthz`, `/assets/...`.
        Host => "host",
        /// No route matched (404).
        Unmatched => "unmatched",
    }
}

label_values! {
    /// The class of an HTTP status (label `status`).
    StatusClass {
        /// 1xx.
        Informational => "1xx",
        /// 2xx.
        Success => "2xx",
        /// 3xx.
        Redirection => "3xx",
        /// 4xx.
        ClientError => "4xx",
        /// 5xx.
        ServerError => "5xx",
        /// Anything else (never sent by the host).
        Other => "other",
    }
}

impl StatusClass {
    /// The class of `status`.
    pub fn of(status: u16) -> StatusClass {
        match status {
            100..=199 => StatusClass::Informational,
            200..=299 => StatusClass::Success,
            300..=399 => StatusClass::Redirection,
            400..=499 => StatusClass::ClientError,
            500..=599 => StatusClass::ServerError,
            _ => StatusClass::Other,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PluginLabel {
    plugin: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CallLabels {
    plugin: String,
    outcome: CallOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ServiceLabels {
    plugin: String,
    service: Service,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ServiceErrorLabels {
    plugin: String,
    service: Service,
    error: ServiceError,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct HttpLabels {
    kind: RouteKind,
    status: StatusClass,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabel {
    kind: RouteKind,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// What one plugin is doing at the moment of a scrape (gauges read, not counted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginLoad {
    /// Plugin id.
    pub plugin: String,
    /// Calls running (instance slots held).
    pub in_use: u64,
    /// Calls waiting for a slot.
    pub queued: u64,
}

/// Every series of one host. See the module comment and `docs/operator-guide.md`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    calls: Family<CallLabels, Counter>,
    call_seconds: HistogramFamily<PluginLabel>,
    in_use: Family<PluginLabel, Gauge>,
    queued: Family<PluginLabel, Gauge>,
    service_ops: Family<ServiceLabels, Counter>,
    service_errors: Family<ServiceErrorLabels, Counter>,
    http_requests: Family<HttpLabels, Counter>,
    http_seconds: HistogramFamily<RouteLabel>,
    open_connections: Gauge,
    dropped_log_lines: Counter,
    /// One scrape at a time: the gauges are reset and set for each.
    scrape: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// An empty registry with every family declared and the build info set.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let calls = Family::<CallLabels, Counter>::default();
        let call_seconds: HistogramFamily<PluginLabel> = Family::new_with_constructor(latency_histogram);
        let in_use = Family::<PluginLabel, Gauge>::default();
        let queued = Family::<PluginLabel, Gauge>::default();
        let service_ops = Family::<ServiceLabels, Counter>::default();
        let service_errors = Family::<ServiceErrorLabels, Counter>::default();
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_seconds: HistogramFamily<RouteLabel> = Family::new_with_constructor(latency_histogram);
        let open_connections = Gauge::default();
        let dropped_log_lines = Counter::default();
        registry.register(
            "lutetia_build",
            "The version of the running host",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        registry.register(
            "lutetia_plugin_calls",
            "Calls into a plugin (requests, events, jobs, migrations), by how they ended",
            calls.clone(),
        );
        registry.register(
            "lutetia_plugin_call_duration_seconds",
            "Time from a call's admission request to its end, queueing included",
            call_seconds.clone(),
        );
        registry.register(
            "lutetia_plugin_instances_in_use",
            "Calls of the plugin running now (instance slots held)",
            in_use.clone(),
        );
        registry.register(
            "lutetia_plugin_calls_queued",
            "Calls of the plugin waiting for a slot now",
            queued.clone(),
        );
        registry.register(
            "lutetia_service_operations",
            "Host-service calls a plugin made (kv, store, files, mail, events)",
            service_ops.clone(),
        );
        registry.register(
            "lutetia_service_errors",
            "Host-service calls that answered an error, by the WIT error",
            service_errors.clone(),
        );
        registry.register(
            "lutetia_http_requests",
            "HTTP requests answered, by route kind and status class",
            http_requests.clone(),
        );
        registry.register(
            "lutetia_http_request_duration_seconds",
            "Time to answer an HTTP request (until its head is ready), by route kind",
            http_seconds.clone(),
        );
        registry.register(
            "lutetia_http_open_connections",
            "HTTP connections open now",
            open_connections.clone(),
        );
        registry.register(
            "lutetia_log_lines_dropped",
            "Log lines dropped because the log writer's buffer was full",
            dropped_log_lines.clone(),
        );
        Metrics {
            registry,
            calls,
            call_seconds,
            in_use,
            queued,
            service_ops,
            service_errors,
            http_requests,
            http_seconds,
            open_connections,
            dropped_log_lines,
            scrape: Mutex::new(()),
        }
    }

    /// The counters of plugin `id`, created at zero on first use (so every outcome and
    /// service shows up in a scrape as soon as the plugin is loaded).
    pub fn plugin(&self, id: &str) -> PluginMetrics {
        let plugin = id.to_owned();
        let outcomes = CallOutcome::ALL
            .iter()
            .map(|&outcome| {
                let labels = CallLabels {
                    plugin: plugin.clone(),
                    outcome,
                };
                self.calls.get_or_create(&labels).clone()
            })
            .collect();
        let services = Service::ALL
            .iter()
            .map(|&service| {
                let labels = ServiceLabels {
                    plugin: plugin.clone(),
                    service,
                };
                self.service_ops.get_or_create(&labels).clone()
            })
            .collect();
        let duration = self
            .call_seconds
            .get_or_create(&PluginLabel {
                plugin: plugin.clone(),
            })
            .clone();
        PluginMetrics {
            plugin,
            outcomes,
            duration,
            services,
            errors: self.service_errors.clone(),
        }
    }

    /// Counts one HTTP request answered with `status` after `elapsed`.
    pub fn http_request(&self, kind: RouteKind, status: u16, elapsed: Duration) {
        let labels = HttpLabels {
            kind,
            status: StatusClass::of(status),
        };
        self.http_requests.get_or_create(&labels).inc();
        self.http_seconds
            .get_or_create(&RouteLabel { kind })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts an open connection until the returned guard is dropped.
    pub fn connection_opened(&self) -> OpenConnection {
        self.open_connections.inc();
        OpenConnection(self.open_connections.clone())
    }

    /// The text of every series, with the per-plugin gauges set from `plugins` (the
    /// plugins served now: a plugin no longer served has no gauge).
    pub fn render(&self, plugins: &[PluginLoad]) -> Result<String, std::fmt::Error> {
        let _one = self
            .scrape
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.in_use.clear();
        self.queued.clear();
        for load in plugins {
            let label = PluginLabel {
                plugin: load.plugin.clone(),
            };
            self.in_use
                .get_or_create(&label)
                .set(i64::try_from(load.in_use).unwrap_or(i64::MAX));
            self.queued
                .get_or_create(&label)
                .set(i64::try_from(load.queued).unwrap_or(i64::MAX));
        }
        if let Some(dropped) = DROPPED_LOG_LINES.get() {
            let now = dropped();
            let counted = self.dropped_log_lines.get();
            if now > counted {
                self.dropped_log_lines.inc_by(now - counted);
            }
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// Where the number of dropped log lines is read from: the process's log writer, set once
/// by the command line when it installs it (the log is process-wide, like this hook).
static DROPPED_LOG_LINES: OnceLock<Box<dyn Fn() -> u64 + Send + Sync>> = OnceLock::new();

/// Tells every host's `lutetia_log_lines_dropped_total` where to read the count of log
/// lines the writer dropped. Only the first call counts.
pub fn count_dropped_log_lines(source: impl Fn() -> u64 + Send + Sync + 'static) {
    let _ = DROPPED_LOG_LINES.set(Box::new(source));
}

/// Keeps `lutetia_http_open_connections` one higher while it lives.
#[derive(Debug)]
pub struct OpenConnection(Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The counters of one plugin, shared by every version of it that this host loads.
#[derive(Debug, Clone)]
pub struct PluginMetrics {
    plugin: String,
    /// Indexed like [`CallOutcome::ALL`].
    outcomes: Vec<Counter>,
    duration: Histogram,
    /// Indexed like [`Service::ALL`].
    services: Vec<Counter>,
    errors: Family<ServiceErrorLabels, Counter>,
}

impl PluginMetrics {
    /// Counts one call that ended with `outcome`; a call that ended (not a cancelled one)
    /// also has its duration observed.
    pub fn call(&self, outcome: CallOutcome, elapsed: Option<Duration>) {
        if let Some(counter) = self.outcomes.get(outcome as usize) {
            counter.inc();
        }
        if let Some(elapsed) = elapsed {
            self.duration.observe(elapsed.as_secs_f64());
        }
    }

    /// Counts one call of `service`, and its error if it answered one.
    pub fn service(&self, service: Service, error: Option<ServiceError>) {
        if let Some(counter) = self.services.get(service as usize) {
            counter.inc();
        }
        if let Some(error) = error {
            let labels = ServiceErrorLabels {
                plugin: self.plugin.clone(),
                service,
                error,
            };
            self.errors.get_or_create(&labels).inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample lines of `text` (no comments), as (series, value).
    fn samples(text: &str) -> Vec<(String, String)> {
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.rsplit_once(' '))
            .map(|(series, value)| (series.to_owned(), value.to_owned()))
            .collect()
    }

    fn value(text: &str, series: &str) -> Option<String> {
        samples(text)
            .into_iter()
            .find(|(s, _)| s == series)
            .map(|(_, v)| v)
    }

    #[test]
    fn a_plugin_shows_every_outcome_at_zero_then_its_counts() {
        let metrics = Metrics::new();
        let hello = metrics.plugin("hello");
        let text = metrics.render(&[]).expect("renders");
        for outcome in CallOutcome::ALL {
            let series = format!(
                "lutetia_plugin_calls_total{{plugin=\"hello\",outcome=\"{}\"}}",
                outcome.as_str()
            );
            assert_eq!(value(&text, &series).as_deref(), Some("0"), "{series} in\n{text}");
        }
        hello.call(CallOutcome::Ok, Some(Duration::from_millis(3)));
        hello.call(CallOutcome::Ok, Some(Duration::from_millis(3)));
        hello.call(CallOutcome::Trap, Some(Duration::from_millis(700)));
        hello.call(CallOutcome::Cancelled, None);
        // A second version of the plugin shares the counters.
        metrics
            .plugin("hello")
            .call(CallOutcome::Timeout, Some(Duration::from_secs(2)));
        let text = metrics.render(&[]).expect("renders");
        let count = |outcome: &str| {
            value(
                &text,
                &format!("lutetia_plugin_calls_total{{plugin=\"hello\",outcome=\"{outcome}\"}}"),
            )
        };
        assert_eq!(count("ok").as_deref(), Some("2"));
        assert_eq!(count("trap").as_deref(), Some("1"));
        assert_eq!(count("timeout").as_deref(), Some("1"));
        assert_eq!(count("cancelled").as_deref(), Some("1"));
        assert_eq!(count("memory").as_deref(), Some("0"));
        // Four calls ended; the cancelled one has no duration.
        assert_eq!(
            value(
                &text,
                "lutetia_plugin_call_duration_seconds_count{plugin=\"hello\"}"
            )
            .as_deref(),
            Some("4")
        );
        assert_eq!(
            value(
                &text,
                "lutetia_plugin_call_duration_seconds_bucket{le=\"0.005\",plugin=\"hello\"}"
            )
            .as_deref(),
            Some("2"),
            "{text}"
        );
        assert!(text.contains("# TYPE lutetia_plugin_calls counter"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn build_info_services_http_and_gauges_render() {
        let metrics = Metrics::new();
        let files = metrics.plugin("files-demo");
        files.service(Service::Files, None);
        files.service(Service::Files, Some(ServiceError::QuotaExceeded));
        metrics.http_request(RouteKind::Plugin, 201, Duration::from_millis(1));
        metrics.http_request(RouteKind::Plugin, 204, Duration::from_millis(1));
        metrics.http_request(RouteKind::Unmatched, 404, Duration::from_millis(1));
        let connection = metrics.connection_opened();
        let load = PluginLoad {
            plugin: "files-demo".into(),
            in_use: 3,
            queued: 7,
        };
        let text = metrics.render(std::slice::from_ref(&load)).expect("renders");
        let expect = |series: &str, expected: &str| {
            assert_eq!(
                value(&text, series).as_deref(),
                Some(expected),
                "{series} in\n{text}"
            );
        };
        expect(
            &format!("lutetia_build_info{{version=\"{}\"}}", env!("CARGO_PKG_VERSION")),
            "1",
        );
        expect(
            "lutetia_service_operations_total{plugin=\"files-demo\",service=\"files\"}",
            "2",
        );
        expect(
            "lutetia_service_operations_total{plugin=\"files-demo\",service=\"kv\"}",
            "0",
        );
        expect(
            "lutetia_service_errors_total{plugin=\"files-demo\",service=\"files\",error=\"quota_exceeded\"}",
            "1",
        );
        expect("lutetia_http_requests_total{kind=\"plugin\",status=\"2xx\"}", "2");
        expect(
            "lutetia_http_requests_total{kind=\"unmatched\",status=\"4xx\"}",
            "1",
        );
        expect("lutetia_http_open_connections", "1");
        expect("lutetia_plugin_instances_in_use{plugin=\"files-demo\"}", "3");
        expect("lutetia_plugin_calls_queued{plugin=\"files-demo\"}", "7");
        drop(connection);
        // A plugin no longer served loses its gauges (its counters stay).
        let text = metrics.render(&[]).expect("renders");
        assert_eq!(
            value(&text, "lutetia_http_open_connections").as_deref(),
            Some("0")
        );
        assert!(!text.contains("lutetia_plugin_instances_in_use{"), "{text}");
        assert!(text.contains("lutetia_service_operations_total{plugin=\"files-demo\""));
    }

    #[test]
    fn status_classes() {
        assert_eq!(StatusClass::of(101), StatusClass::Informational);
        assert_eq!(StatusClass::of(200), StatusClass::Success);
        assert_eq!(StatusClass::of(308), StatusClass::Redirection);
        assert_eq!(StatusClass::of(499), StatusClass::ClientError);
        assert_eq!(StatusClass::of(503), StatusClass::ServerError);
        assert_eq!(StatusClass::of(999), StatusClass::Other);
    }
}
