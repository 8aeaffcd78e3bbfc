//! Host settings, in four layers, each overriding the one before ([`Settings::load`]):
//! 1. the defaults (`Default` of each struct);
//! 2. the TOML file (`--config FILE`, `LUTETIA_CONFIG`);
//! 3. `LUTETIA_*` variables: one per key, upper case, `_` for `-` and `__` between a table
//!    and its key (`LUTETIA_DATABASE_URL`, `LUTETIA_LIMITS__DEFAULT_TIMEOUT_MS`,
//!    `LUTETIA_HTTP__ACCESS_LOG=false`); the operator's `[plugins.ID.config]` tables come
//!    from the file only;
//! 4. the command line's flags (`--bind`, `--database-url`, `--plugins`, ...).
//!
//! figment merges the layers (one documented precedence, no hand merging); the file is also
//! parsed alone first, so that a typo in it is reported with its line. Secrets
//! ([`Secret`]: the SMTP password, later the OpenID Connect client secrets) can come from a
//! variable or from a file (`smtp-password-file`, `LUTETIA_SMTP_PASSWORD_FILE`: a
//! container's or systemd's secret file), are never printed by `Debug`, and are masked,
//! with the passwords of URLs, in what `lutetia check-config` prints.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The configuration file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML or has unknown or mistyped keys.
    #[error("invalid configuration file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column.
        message: String,
    },
    /// A `LUTETIA_*` variable or a flag has a value of the wrong type, or names no
    /// setting.
    #[error("invalid setting from the environment or the command line: {0}")]
    Layered(String),
    /// A value is out of its allowed range or inconsistent with another one.
    #[error("invalid setting `{key}`: {message}")]
    Invalid {
        /// The setting's name.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// A value that must not be shown: `Debug` prints `***`, and so does its serialisation
/// (which is only ever used to show settings, never to store them).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("***")
    }
}

/// `url` with the password of its user info replaced by `***`
/// (`postgres://app:secret@db/x` → `postgres://app:***@db/x`).
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// The user name in the user info of `url`, if any (`smtp://alice@host` → `alice`).
fn url_user(url: &str) -> Option<&str> {
    let scheme_end = url.find("://")?;
    let at = url.rfind('@').filter(|&at| at > scheme_end)?;
    let userinfo = &url[scheme_end + 3..at];
    let user = userinfo.split(':').next().unwrap_or("");
    (!user.is_empty()).then_some(user)
}

/// Whether a plugin setting's name says it holds a credential (`publish-key`,
/// `api-token`, `smtp-password`, `client-secret`).
fn looks_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["key", "secret", "password", "token"]
        .iter()
        .any(|word| key.split(['-', '_', '.']).any(|part| part == *word))
}

/// The operator's plugin settings with those named like a credential masked: they are
/// the plugins' own, and the example plugins' `publish-key` and `edit-key` are passwords.
fn masked_plugins(plugins: &BTreeMap<String, PluginSettings>) -> BTreeMap<String, PluginSettings> {
    let mut masked = plugins.clone();
    for plugin in masked.values_mut() {
        for (key, value) in &mut plugin.config {
            if looks_secret(key) {
                *value = "***".to_owned();
            }
        }
    }
    masked
}

/// The settings given as command-line flags: the top layer of [`Settings::load`]. `None`
/// leaves the layers below as they are.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Flags {
    /// `--bind`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<SocketAddr>,
    /// `--database-url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// `--plugins`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugins_dir: Option<PathBuf>,
    /// `--compiled-cache-dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compiled_cache_dir: Option<PathBuf>,
}

/// The top-level settings a `LUTETIA_*` variable may set (a table's keys included). Not
/// `plugins` (the operator's per-plugin config comes from the file, and `LUTETIA_PLUGINS`
/// is the `--plugins` flag's variable) and not `config` (`LUTETIA_CONFIG` names the file).
/// A test checks that this is every other key of [`Settings`].
const ENV_ROOTS: &[&str] = &[
    "bind",
    "database-url",
    "plugins-dir",
    "site-name",
    "limits",
    "http",
    "metrics",
    "files-dir",
    "smtp-url",
    "smtp-username",
    "smtp-password",
    "smtp-password-file",
    "mail-from",
    "mail-max-attempts",
    "compiled-cache-dir",
];

/// The settings key of the variable `LUTETIA_{var}` (`var` lower-cased), if it names one:
/// `limits__default_timeout_ms` → `limits.default-timeout-ms`.
fn env_key(var: &str) -> Option<String> {
    let segments: Vec<String> = var.split("__").map(|s| s.replace('_', "-")).collect();
    let root = segments.first()?;
    ENV_ROOTS.contains(&root.as_str()).then(|| segments.join("."))
}

/// The operator's `[plugins.ID.config]` sets keys that the plugin's manifest does not
/// declare: a typo, or a key an older version had. Refused rather than ignored, since the
/// plugin would silently run with its default instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the settings' [plugins.{plugin}.config] set {}, which the manifest of `{plugin}` does not declare (it declares {}); remove or rename them",
    quoted(.undeclared),
    if .declared.is_empty() { "no settings".to_owned() } else { quoted(.declared) }
)]
pub struct UndeclaredConfig {
    /// The plugin id.
    pub plugin: String,
    /// The keys set but not declared.
    pub undeclared: Vec<String>,
    /// The keys the manifest declares.
    pub declared: Vec<String>,
}

fn quoted(keys: &[String]) -> String {
    keys.iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Everything the host needs to run.
#[derive(Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    /// Address to listen on.
    pub bind: SocketAddr,
    /// `sqlite://PATH` (embedded, default) or `postgres://...`.
    pub database_url: String,
    /// A folder of plugins to load at start (`ID.wasm` with `ID.toml` beside it).
    pub plugins_dir: Option<PathBuf>,
    /// Name of the site, shown in the layout.
    pub site_name: String,
    /// Resource limits.
    pub limits: Limits,
    /// HTTP: timeouts and bounds on connections, requests and plugin pages.
    pub http: HttpSettings,
    /// The `/metrics` endpoint.
    pub metrics: MetricsSettings,
    /// Per-plugin settings set by the operator, overriding the manifests' defaults.
    pub plugins: BTreeMap<String, PluginSettings>,
    /// Folder of the plugins' files (`files` interface), one sub-folder per plugin.
    pub files_dir: PathBuf,
    /// SMTP server the outbox is sent through (`smtp://host:port`, `smtps://...`); without
    /// it, mail stays queued in the outbox.
    pub smtp_url: Option<String>,
    /// User name for the SMTP server (default: the user of `smtp-url`, if it has one).
    pub smtp_username: Option<String>,
    /// Password for the SMTP server, rather than in `smtp-url`.
    pub smtp_password: Option<Secret>,
    /// A file holding the SMTP password (its last line break ignored): a container's or
    /// systemd's secret file. Not with `smtp-password`.
    pub smtp_password_file: Option<PathBuf>,
    /// Sender address of outgoing mail.
    pub mail_from: String,
    /// Delivery attempts before a message is marked `failed`.
    pub mail_max_attempts: u32,
    /// Folder of the compiled-component cache (default: `compiled-cache` in the data
    /// folder, beside `files-dir`). Hosts may share one: entries are named by the hash of
    /// the component and of the engine configuration.
    pub compiled_cache_dir: Option<PathBuf>,
}

/// Resource limits applied to every plugin call.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Limits {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Largest response body a plugin may return, in bytes.
    pub max_response_bytes: usize,
    /// Linear memory per instance when a manifest does not say, in MiB.
    pub default_memory_mb: u32,
    /// Ceiling for any manifest's memory request, in MiB.
    pub max_memory_mb: u32,
    /// Deadline per call when a manifest does not say, in milliseconds of CPU time; a call
    /// also ends when twice that has passed on the wall clock.
    pub default_timeout_ms: u64,
    /// Ceiling for any manifest's deadline, in milliseconds.
    pub max_timeout_ms: u64,
    /// Instances that may run at once (sizes the pooling allocator).
    pub max_instances: u32,
    /// Calls of one plugin that may run at once, so one flooded plugin cannot take every
    /// instance slot. Default: 4 per CPU core (between 4 and 64), since the calls of one
    /// plugin beyond a few per core only queue for the CPU while holding memory.
    pub max_concurrent_per_plugin: u32,
    /// Calls of one plugin that may wait for a running slot (they hold no instance);
    /// beyond that the plugin answers 503 at once.
    pub max_queued_per_plugin: u32,
    /// Linear memory, in MiB, that a pooled instance slot keeps mapped after a call and
    /// zeroes for the next one instead of returning it to the OS: fewer page faults per
    /// call (Python and JavaScript plugins touch megabytes of heap). Costs up to this much
    /// resident memory per slot that has been used.
    pub keep_resident_mb: u32,
    /// CPU time, in milliseconds, that a call may use in the interactive lane; past it the
    /// call moves to the background lane, whose threads run at a low OS priority, so that
    /// long calls never slow down short ones (the host's routes, other plugins). A plugin
    /// whose calls are predicted to cost this much (its recent calls, the host's work on
    /// its pages, its failures) starts them in the background lane. Default 20: a call of
    /// a Python or JavaScript plugin costs 1–3 ms, one of a Rust plugin well under 1 ms.
    pub interactive_cpu_ms: u32,
    /// OS priority (nice value, 1–19) of the background lane's threads on Linux. Default
    /// 19: against a busy normal thread a nice-19 thread gets about 1.5 % of a core, so
    /// expensive plugins cost the others almost nothing (at 10 they got about 10 %, enough
    /// to take a fifth of a 2-core machine from the well-behaved plugins: benchmarks.md).
    /// A site whose legitimate plugins make long calls on a machine that is always busy
    /// may lower it to 10, so that those calls do not run into their deadline.
    pub background_nice: u8,
    /// Longest wait, in milliseconds, of a call queued for one of its plugin's running
    /// slots; past it the call answers 503 (the visitor is not kept waiting forever).
    pub max_queue_wait_ms: u64,
    /// Quotas of a plugin whose manifest does not ask (`[limits.default-quotas]`); a quota
    /// not given here is the built-in default, lowered to its ceiling.
    pub default_quotas: crate::quota::QuotaSettings,
    /// The most any manifest gets (`[limits.max-quotas]`); a quota not given here is the
    /// built-in ceiling.
    pub max_quotas: crate::quota::QuotaSettings,
}

/// How the host serves HTTP: timeouts and bounds that keep slow or hostile clients (and
/// plugins' pages) from holding connections or threads.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct HttpSettings {
    /// Time a client has to send a complete request head, counted from the connection's
    /// opening or, on a kept-alive connection, from the end of the previous answer: so an
    /// idle kept-alive connection is closed after this long too. Milliseconds.
    pub header_read_timeout_ms: u64,
    /// Time a client has to send a request body: this many milliseconds plus the body's
    /// declared length (or the route's limit) at `min-body-bytes-per-second`.
    pub body_read_timeout_ms: u64,
    /// The slowest upload rate allowed for, in bytes per second (0: no allowance, the
    /// body must arrive within `body-read-timeout-ms`).
    pub min_body_bytes_per_second: u64,
    /// Time a client may leave an answer unread (nothing written to its connection)
    /// before the connection is closed. Milliseconds.
    pub write_timeout_ms: u64,
    /// Connections served at once; further clients wait in the listen backlog until one
    /// closes.
    pub max_connections: u32,
    /// Longest request target (path and query string) accepted, in bytes; longer ones
    /// answer 414.
    pub max_uri_bytes: usize,
    /// Largest page body (HTML to clean and wrap) a plugin may return, in bytes; a larger
    /// one answers 502.
    pub max_page_bytes: usize,
    /// Deepest nesting of elements a plugin's page may have.
    pub max_page_depth: u32,
    /// Most attributes one tag of a plugin's page may have.
    pub max_page_attributes: u32,
    /// Pages at least this large (bytes) are cleaned and wrapped on a blocking thread,
    /// away from the threads that serve connections.
    pub offload_page_bytes: usize,
    /// Pages cleaned on blocking threads at once (0: half the cores, at least one); the
    /// others wait without holding a thread.
    pub page_workers: u32,
    /// One `info` line of target `access` per request (method, route template, status,
    /// duration, plugin, request id). `LUTETIA_LOG` can also silence it (`access=off`).
    pub access_log: bool,
}

/// The `/metrics` endpoint (Prometheus / OpenMetrics text).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct MetricsSettings {
    /// Serve `/metrics` at all (otherwise it answers 404 like any unknown path).
    pub enabled: bool,
    /// Require the admin API token (`Authorization: Bearer TOKEN`), as the admin API does.
    /// Turn it off only when the host's port is reachable from the monitoring network
    /// alone (a reverse proxy that does not forward `/metrics`, a private interface).
    pub require_admin_token: bool,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            enabled: true,
            require_admin_token: true,
        }
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 10_000,
            min_body_bytes_per_second: 64 * 1024,
            write_timeout_ms: 30_000,
            max_connections: 4096,
            max_uri_bytes: 8 * 1024,
            max_page_bytes: 2 * 1024 * 1024,
            max_page_depth: 256,
            max_page_attributes: 256,
            offload_page_bytes: 16 * 1024,
            page_workers: 0,
            access_log: true,
        }
    }
}

impl HttpSettings {
    fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |key, message: &str| {
            Err(SettingsError::Invalid {
                key,
                message: message.to_owned(),
            })
        };
        if !(100..=600_000).contains(&self.header_read_timeout_ms) {
            return invalid("http.header-read-timeout-ms", "must be between 100 and 600000");
        }
        if !(100..=3_600_000).contains(&self.body_read_timeout_ms) {
            return invalid("http.body-read-timeout-ms", "must be between 100 and 3600000");
        }
        if !(100..=3_600_000).contains(&self.write_timeout_ms) {
            return invalid("http.write-timeout-ms", "must be between 100 and 3600000");
        }
        if !(1..=1_000_000).contains(&self.max_connections) {
            return invalid("http.max-connections", "must be between 1 and 1000000");
        }
        if !(256..=65_536).contains(&self.max_uri_bytes) {
            return invalid("http.max-uri-bytes", "must be between 256 and 65536");
        }
        if self.max_page_bytes == 0 {
            return invalid("http.max-page-bytes", "must be at least 1");
        }
        // The dry run of the parser keeps a node's ancestors alive: deep chains are
        // dropped recursively.
        if !(16..=1024).contains(&self.max_page_depth) {
            return invalid("http.max-page-depth", "must be between 16 and 1024");
        }
        if !(16..=4096).contains(&self.max_page_attributes) {
            return invalid("http.max-page-attributes", "must be between 16 and 4096");
        }
        if self.page_workers > 1024 {
            return invalid("http.page-workers", "must be at most 1024");
        }
        Ok(())
    }
}

/// Operator settings for one plugin.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct PluginSettings {
    /// Values returned by the plugin's `config.get`, overriding its manifest's defaults.
    pub config: BTreeMap<String, String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: "sqlite://./data/lutetia.db".to_owned(),
            plugins_dir: None,
            site_name: "Lutetia".to_owned(),
            limits: Limits::default(),
            http: HttpSettings::default(),
            metrics: MetricsSettings::default(),
            plugins: BTreeMap::new(),
            files_dir: PathBuf::from("./data/files"),
            smtp_url: None,
            smtp_username: None,
            smtp_password: None,
            smtp_password_file: None,
            mail_from: "Lutetia <noreply@localhost>".to_owned(),
            mail_max_attempts: 12,
            compiled_cache_dir: None,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 2 * 1024 * 1024,
            max_response_bytes: 16 * 1024 * 1024,
            default_memory_mb: 64,
            max_memory_mb: 512,
            default_timeout_ms: 5_000,
            max_timeout_ms: 60_000,
            max_instances: 256,
            max_concurrent_per_plugin: default_concurrency_per_plugin(),
            max_queued_per_plugin: 1024,
            keep_resident_mb: 32,
            interactive_cpu_ms: 20,
            background_nice: 19,
            max_queue_wait_ms: 10_000,
            default_quotas: crate::quota::QuotaSettings::default(),
            max_quotas: crate::quota::QuotaSettings::default(),
        }
    }
}

/// 4 calls per core, between 4 and 64.
fn default_concurrency_per_plugin() -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    u32::try_from(cores.saturating_mul(4))
        .unwrap_or(u32::MAX)
        .clamp(4, 64)
}

impl Limits {
    /// The quotas of a plugin whose manifest does not ask.
    pub fn quota_defaults(&self) -> crate::quota::Quotas {
        self.default_quotas
            .over_capped(crate::quota::Quotas::DEFAULTS, self.quota_ceilings())
    }

    /// The most any manifest gets.
    pub fn quota_ceilings(&self) -> crate::quota::Quotas {
        let built_in = crate::quota::Quotas::CEILINGS;
        self.max_quotas.over_capped(built_in, built_in)
    }

    /// Checks the quota tables: every value at least 1, no default above its ceiling.
    fn validate_quotas(&self) -> Result<(), SettingsError> {
        let ceilings = self.quota_ceilings().values();
        let keys = crate::quota::QUOTA_KEYS.iter();
        for (key, max) in keys.clone().zip(self.max_quotas.values()) {
            if max == Some(0) {
                return Err(SettingsError::Invalid {
                    key: key.max_setting,
                    message: "must be at least 1".into(),
                });
            }
        }
        for ((key, default), ceiling) in keys.zip(self.default_quotas.values()).zip(&ceilings) {
            match default {
                Some(0) => {
                    return Err(SettingsError::Invalid {
                        key: key.default_setting,
                        message: "must be at least 1".into(),
                    });
                }
                Some(v) if v > *ceiling => {
                    return Err(SettingsError::Invalid {
                        key: key.default_setting,
                        message: format!("is {v}, above its ceiling {} = {ceiling}", key.max_setting),
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for Settings {
    /// Every field, with the passwords of URLs masked and the secrets as `***`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("bind", &self.bind)
            .field("database_url", &redact_url(&self.database_url))
            .field("plugins_dir", &self.plugins_dir)
            .field("site_name", &self.site_name)
            .field("limits", &self.limits)
            .field("http", &self.http)
            .field("metrics", &self.metrics)
            .field("plugins", &masked_plugins(&self.plugins))
            .field("files_dir", &self.files_dir)
            .field("smtp_url", &self.smtp_url.as_deref().map(redact_url))
            .field("smtp_username", &self.smtp_username)
            .field("smtp_password", &self.smtp_password)
            .field("smtp_password_file", &self.smtp_password_file)
            .field("mail_from", &self.mail_from)
            .field("mail_max_attempts", &self.mail_max_attempts)
            .field("compiled_cache_dir", &self.compiled_cache_dir)
            .finish()
    }
}

impl Settings {
    /// The settings of the four layers (see the module docs): defaults, the TOML `file`,
    /// the `LUTETIA_*` variables of this process, `flags`; secret files read; validated.
    pub fn load(file: Option<&Path>, flags: &Flags) -> Result<Settings, SettingsError> {
        let mut layers = Figment::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
                path: path.to_owned(),
                source,
            })?;
            // Alone first: a typo in the file is reported with its line and the file's name.
            Settings::from_toml(&text).map_err(|message| SettingsError::Parse {
                path: path.to_owned(),
                message,
            })?;
            layers = layers.merge(Toml::string(&text));
        }
        // figment strips the prefix; the rest of the name is as written (upper case).
        let environment = Env::prefixed("LUTETIA_")
            .filter_map(|var| env_key(&var.as_str().to_ascii_lowercase()).map(Into::into));
        let mut settings: Settings = layers
            .merge(environment)
            .merge(Serialized::defaults(flags))
            .extract()
            .map_err(|e| SettingsError::Layered(e.to_string()))?;
        settings.read_secret_files()?;
        settings.validate()?;
        Ok(settings)
    }

    /// The effective settings as TOML, as `lutetia check-config` prints them: the
    /// passwords of URLs and every secret masked.
    pub fn to_masked_toml(&self) -> String {
        let mut shown = self.clone();
        shown.database_url = redact_url(&shown.database_url);
        shown.smtp_url = shown.smtp_url.as_deref().map(redact_url);
        shown.plugins = masked_plugins(&shown.plugins);
        toml::to_string(&shown).unwrap_or_else(|e| format!("# cannot print the settings: {e}\n"))
    }

    /// The operator's `[plugins.ID.config]` for the plugin of `manifest`, which must only
    /// set keys its `[config]` declares.
    pub fn plugin_config(
        &self,
        manifest: &crate::manifest::Manifest,
    ) -> Result<BTreeMap<String, String>, UndeclaredConfig> {
        let Some(plugin) = self.plugins.get(&manifest.id) else {
            return Ok(BTreeMap::new());
        };
        let undeclared: Vec<String> = plugin
            .config
            .keys()
            .filter(|key| !manifest.config.contains_key(*key))
            .cloned()
            .collect();
        if !undeclared.is_empty() {
            return Err(UndeclaredConfig {
                plugin: manifest.id.clone(),
                undeclared,
                declared: manifest.config.keys().cloned().collect(),
            });
        }
        Ok(plugin.config.clone())
    }

    /// The user name and password for the SMTP server, when a password is set.
    pub fn smtp_credentials(&self) -> Option<(String, Secret)> {
        let password = self.smtp_password.clone()?;
        let user = self
            .smtp_username
            .clone()
            .or_else(|| self.smtp_url.as_deref().and_then(url_user).map(str::to_owned))?;
        Some((user, password))
    }

    /// Reads the secrets given as files into their settings.
    fn read_secret_files(&mut self) -> Result<(), SettingsError> {
        if let Some(path) = &self.smtp_password_file {
            if self.smtp_password.is_some() {
                return Err(SettingsError::Invalid {
                    key: "smtp-password-file",
                    message: "set smtp-password or smtp-password-file, not both".to_owned(),
                });
            }
            let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
                path: path.clone(),
                source,
            })?;
            let line_end: &[char] = &['\r', '\n'];
            self.smtp_password = Some(Secret::new(text.trim_end_matches(line_end)));
        }
        Ok(())
    }

    /// Parses TOML text over the defaults; the error names the line and the key.
    pub fn from_toml(text: &str) -> Result<Settings, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())
    }

    /// Checks ranges and consistency; call after every override is applied.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let l = &self.limits;
        let invalid = |key, message: &str| {
            Err(SettingsError::Invalid {
                key,
                message: message.to_owned(),
            })
        };
        if !(self.database_url.starts_with("sqlite:")
            || self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://"))
        {
            return invalid(
                "database-url",
                "must start with sqlite: (for example sqlite://./data/lutetia.db) or postgres://",
            );
        }
        if l.max_body_bytes == 0 {
            return invalid("limits.max-body-bytes", "must be at least 1");
        }
        if l.max_response_bytes == 0 {
            return invalid("limits.max-response-bytes", "must be at least 1");
        }
        if l.max_memory_mb == 0 || l.max_memory_mb > 4096 {
            return invalid("limits.max-memory-mb", "must be between 1 and 4096");
        }
        if l.default_memory_mb == 0 || l.default_memory_mb > l.max_memory_mb {
            return invalid(
                "limits.default-memory-mb",
                "must be between 1 and limits.max-memory-mb",
            );
        }
        if l.max_timeout_ms < 10 {
            return invalid("limits.max-timeout-ms", "must be at least 10");
        }
        if l.default_timeout_ms < 10 || l.default_timeout_ms > l.max_timeout_ms {
            return invalid(
                "limits.default-timeout-ms",
                "must be between 10 and limits.max-timeout-ms",
            );
        }
        if l.max_instances == 0 || l.max_instances > 100_000 {
            return invalid("limits.max-instances", "must be between 1 and 100000");
        }
        if l.keep_resident_mb > l.max_memory_mb {
            return invalid("limits.keep-resident-mb", "must be at most limits.max-memory-mb");
        }
        if l.max_queued_per_plugin > 1_000_000 {
            return invalid("limits.max-queued-per-plugin", "must be at most 1000000");
        }
        if l.max_concurrent_per_plugin == 0 || l.max_concurrent_per_plugin > l.max_instances {
            return invalid(
                "limits.max-concurrent-per-plugin",
                "must be between 1 and limits.max-instances",
            );
        }
        if l.max_queue_wait_ms == 0 || l.max_queue_wait_ms > 600_000 {
            return invalid("limits.max-queue-wait-ms", "must be between 1 and 600000");
        }
        if l.background_nice == 0 || l.background_nice > 19 {
            return invalid("limits.background-nice", "must be between 1 and 19");
        }
        if l.interactive_cpu_ms == 0 || l.interactive_cpu_ms > 60_000 {
            return invalid("limits.interactive-cpu-ms", "must be between 1 and 60000");
        }
        l.validate_quotas()?;
        if self.site_name.trim().is_empty() {
            return invalid("site-name", "must not be empty");
        }
        if self.files_dir.as_os_str().is_empty() {
            return invalid("files-dir", "must not be empty");
        }
        if let Some(url) = &self.smtp_url
            && !(url.starts_with("smtp://") || url.starts_with("smtps://"))
        {
            return invalid(
                "smtp-url",
                "must start with smtp:// (plain or ?tls=required for STARTTLS) or smtps://",
            );
        }
        if (self.smtp_password.is_some() || self.smtp_username.is_some()) && self.smtp_url.is_none() {
            return invalid(
                if self.smtp_password.is_some() {
                    "smtp-password"
                } else {
                    "smtp-username"
                },
                "is set, but smtp-url is not: there is no SMTP server to sign in to",
            );
        }
        if self.smtp_password.is_some() && self.smtp_credentials().is_none() {
            return invalid(
                "smtp-password",
                "needs a user name: smtp-username, or a user in smtp-url (smtp://user@host)",
            );
        }
        if let Err(e) = self.mail_from.parse::<lettre::message::Mailbox>() {
            return invalid("mail-from", &format!("not a valid address: {e}"));
        }
        if self.mail_max_attempts == 0 {
            return invalid("mail-max-attempts", "must be at least 1");
        }
        self.http.validate()
    }
}

#[cfg(test)]
// figment's `Jail` closures return its large error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    /// `Settings::load` inside a jail: its own variables and working folder.
    fn load_in_jail(
        file: Option<&str>,
        vars: &[(&str, &str)],
        flags: &Flags,
    ) -> Result<Settings, SettingsError> {
        let mut loaded = None;
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            for (name, value) in vars {
                jail.set_env(name, value);
            }
            let path = match file {
                Some(text) => {
                    jail.create_file("lutetia.toml", text)?;
                    Some(jail.directory().join("lutetia.toml"))
                }
                None => None,
            };
            loaded = Some(Settings::load(path.as_deref(), flags));
            Ok(())
        });
        loaded.expect("the jail ran")
    }

    #[test]
    fn layers_override_in_order_defaults_file_variables_flags() {
        let file = "site-name = \"Ville\"\nbind = \"127.0.0.1:9001\"\n[limits]\ndefault-timeout-ms = 3000\nmax-body-bytes = 10\n";
        let only_file = load_in_jail(Some(file), &[], &Flags::default()).expect("loads");
        assert_eq!(
            (
                only_file.site_name.as_str(),
                only_file.bind.port(),
                only_file.limits.default_timeout_ms
            ),
            ("Ville", 9001, 3000)
        );
        assert_eq!(only_file.limits.max_memory_mb, 512, "a default under the file");

        let vars = [
            ("LUTETIA_BIND", "127.0.0.1:9002"),
            ("LUTETIA_LIMITS__DEFAULT_TIMEOUT_MS", "4000"),
            ("LUTETIA_HTTP__ACCESS_LOG", "false"),
            // Not settings: the log filter, the file's name, another program's variable.
            ("LUTETIA_LOG", "debug"),
            ("LUTETIA_CONFIG", "elsewhere.toml"),
            ("LUTETIA_PLUGINS", "/srv/plugins"),
        ];
        let with_vars = load_in_jail(Some(file), &vars, &Flags::default()).expect("loads");
        assert_eq!(with_vars.bind.port(), 9002, "a variable over the file");
        assert_eq!(with_vars.limits.default_timeout_ms, 4000);
        assert_eq!(with_vars.limits.max_body_bytes, 10, "the file's other keys stay");
        assert!(!with_vars.http.access_log);
        assert_eq!(with_vars.site_name, "Ville");

        let flags = Flags {
            bind: Some(SocketAddr::from(([127, 0, 0, 1], 9003))),
            database_url: Some("postgres://u:p@db/x".to_owned()),
            ..Flags::default()
        };
        let with_flags = load_in_jail(Some(file), &vars, &flags).expect("loads");
        assert_eq!(with_flags.bind.port(), 9003, "a flag over the variable");
        assert_eq!(with_flags.database_url, "postgres://u:p@db/x");
        assert_eq!(with_flags.limits.default_timeout_ms, 4000);
    }

    #[test]
    fn a_variable_with_a_typo_or_a_bad_value_is_an_error() {
        let err = load_in_jail(
            None,
            &[("LUTETIA_LIMITS__DEFAULT_TIMEOUT", "5")],
            &Flags::default(),
        )
        .expect_err("unknown key");
        assert!(err.to_string().contains("default-timeout"), "{err}");
        let err = load_in_jail(None, &[("LUTETIA_MAIL_MAX_ATTEMPTS", "many")], &Flags::default())
            .expect_err("not a number");
        assert!(
            err.to_string().to_lowercase().contains("mail-max-attempts"),
            "{err}"
        );
        let err = load_in_jail(None, &[("LUTETIA_LIMITS__MAX_MEMORY_MB", "0")], &Flags::default())
            .expect_err("out of range");
        assert!(err.to_string().contains("limits.max-memory-mb"), "{err}");
    }

    #[test]
    fn the_file_is_checked_alone_with_its_lines() {
        let err = load_in_jail(Some("bind = \"127.0.0.1:1\"\nbnid = 3\n"), &[], &Flags::default())
            .expect_err("typo");
        let text = err.to_string();
        assert!(
            text.contains("bnid") && text.contains("line 2") && text.contains("lutetia.toml"),
            "{text}"
        );
    }

    #[test]
    fn every_top_level_key_but_plugins_can_come_from_a_variable() {
        let mut all = Settings {
            plugins_dir: Some("p".into()),
            smtp_url: Some("smtp://a@b".into()),
            smtp_username: Some("a".into()),
            smtp_password: Some(Secret::new("x")),
            smtp_password_file: Some("f".into()),
            compiled_cache_dir: Some("c".into()),
            ..Settings::default()
        };
        all.plugins.insert("hello".into(), PluginSettings::default());
        let value = toml::Value::try_from(&all).expect("serialises");
        let keys: Vec<&str> = value
            .as_table()
            .expect("a table")
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "plugins")
            .collect();
        let mut expected = ENV_ROOTS.to_vec();
        expected.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(
            env_key("limits__default_timeout_ms").as_deref(),
            Some("limits.default-timeout-ms")
        );
        assert_eq!(env_key("plugins"), None);
        assert_eq!(env_key("log_format"), None);
    }

    #[test]
    fn secrets_come_from_a_variable_or_a_file_and_are_never_shown() {
        let url = [("LUTETIA_SMTP_URL", "smtp://mairie@mail.example.org:587")];
        let from_var = load_in_jail(
            None,
            &[url[0], ("LUTETIA_SMTP_PASSWORD", "s3cret")],
            &Flags::default(),
        )
        .expect("loads");
        let (user, password) = from_var.smtp_credentials().expect("credentials");
        assert_eq!((user.as_str(), password.expose()), ("mairie", "s3cret"));

        let mut from_file = None;
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file("smtp-password", "from-file\n")?;
            jail.set_env("LUTETIA_SMTP_URL", "smtp://mail.example.org:587");
            jail.set_env("LUTETIA_SMTP_USERNAME", "agent");
            jail.set_env(
                "LUTETIA_SMTP_PASSWORD_FILE",
                jail.directory().join("smtp-password").display(),
            );
            from_file = Some(Settings::load(None, &Flags::default()));
            Ok(())
        });
        let from_file = from_file.expect("ran").expect("loads");
        let (user, password) = from_file.smtp_credentials().expect("credentials");
        assert_eq!((user.as_str(), password.expose()), ("agent", "from-file"));

        let shown = format!("{from_var:?}\n{}", from_var.to_masked_toml());
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("smtp-password = \"***\""), "{shown}");
        let with_url_password = Settings {
            database_url: "postgres://app:hunter2@db/lutetia".into(),
            smtp_url: Some("smtps://u:pw-in-url@mail:465".into()),
            ..Settings::default()
        };
        let shown = format!("{with_url_password:?}\n{}", with_url_password.to_masked_toml());
        assert!(
            !shown.contains("hunter2") && !shown.contains("pw-in-url"),
            "{shown}"
        );
        assert!(shown.contains("postgres://app:***@db/lutetia"), "{shown}");

        let both = load_in_jail(
            None,
            &[
                url[0],
                ("LUTETIA_SMTP_PASSWORD", "a"),
                ("LUTETIA_SMTP_PASSWORD_FILE", "/nonexistent"),
            ],
            &Flags::default(),
        )
        .expect_err("both");
        assert!(both.to_string().contains("not both"), "{both}");
        let missing = load_in_jail(
            None,
            &[url[0], ("LUTETIA_SMTP_PASSWORD_FILE", "/nonexistent/pw")],
            &Flags::default(),
        )
        .expect_err("no such file");
        assert!(missing.to_string().contains("/nonexistent/pw"), "{missing}");
        let no_user = load_in_jail(
            None,
            &[
                ("LUTETIA_SMTP_URL", "smtp://mail:25"),
                ("LUTETIA_SMTP_PASSWORD", "a"),
            ],
            &Flags::default(),
        )
        .expect_err("no user");
        assert!(no_user.to_string().contains("smtp-username"), "{no_user}");
    }

    #[test]
    fn plugin_settings_named_like_credentials_are_masked_when_shown() {
        let settings = Settings::from_toml(
            "[plugins.news.config]\npublish-key = \"s3cret\"\npage-size = \"3\"\nkeyboard = \"azerty\"\n",
        )
        .expect("parses");
        let shown = settings.to_masked_toml();
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("publish-key = \"***\""), "{shown}");
        assert!(
            shown.contains("page-size = \"3\"") && shown.contains("keyboard = \"azerty\""),
            "{shown}"
        );
        assert_eq!(
            settings.plugins["news"].config["publish-key"], "s3cret",
            "only what is shown"
        );
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(redact_url("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://./x.db"), "sqlite://./x.db");
        assert_eq!(url_user("smtp://alice:pw@h"), Some("alice"));
        assert_eq!(url_user("smtp://h:25"), None);
    }

    #[test]
    fn defaults_are_valid() {
        Settings::default().validate().expect("defaults valid");
    }

    #[test]
    fn file_overrides_defaults() {
        let s = Settings::from_toml(
            "bind = \"0.0.0.0:9000\"\n[limits]\nmax-body-bytes = 10\n[plugins.hello.config]\ngreeting = \"Hi\"\n",
        )
        .expect("parses");
        assert_eq!(s.bind.port(), 9000);
        assert_eq!(s.limits.max_body_bytes, 10);
        assert_eq!(s.limits.max_memory_mb, 512);
        assert_eq!(s.plugins["hello"].config["greeting"], "Hi");
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let err = Settings::from_toml("bind = \"127.0.0.1:1\"\nbnid = 3\n").expect_err("rejects");
        assert!(err.contains("bnid"), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn mail_and_files_settings_are_checked() {
        let s = Settings::from_toml(
            "files-dir = \"/srv/files\"\nsmtp-url = \"smtps://u:p@mail.example.org:465\"\nmail-from = \"Mairie <m@example.org>\"\n",
        )
        .expect("parses");
        s.validate().expect("valid");
        for (toml, key) in [
            ("smtp-url = \"http://x\"", "smtp-url"),
            ("mail-from = \"not an address\"", "mail-from"),
            ("mail-max-attempts = 0", "mail-max-attempts"),
            ("files-dir = \"\"", "files-dir"),
            ("[limits]\nkeep-resident-mb = 1024", "limits.keep-resident-mb"),
        ] {
            let err = Settings::from_toml(toml)
                .expect("parses")
                .validate()
                .expect_err(toml)
                .to_string();
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn http_settings_are_read_and_checked() {
        let s = Settings::from_toml("[http]\nheader-read-timeout-ms = 500\nmax-uri-bytes = 1024\n")
            .expect("parses");
        s.validate().expect("valid");
        assert_eq!(s.http.header_read_timeout_ms, 500);
        assert_eq!(s.http.max_uri_bytes, 1024);
        assert_eq!(s.http.max_page_depth, 256);
        for (toml, key) in [
            (
                "[http]\nheader-read-timeout-ms = 0",
                "http.header-read-timeout-ms",
            ),
            ("[http]\nmax-connections = 0", "http.max-connections"),
            ("[http]\nmax-uri-bytes = 10", "http.max-uri-bytes"),
            ("[http]\nmax-page-depth = 100000", "http.max-page-depth"),
        ] {
            let err = Settings::from_toml(toml)
                .expect("parses")
                .validate()
                .expect_err(toml)
                .to_string();
            assert!(err.contains(key), "{err}");
        }
        let err = Settings::from_toml("[http]\nmax-uri-byte = 1").expect_err("unknown key");
        assert!(err.contains("max-uri-byte"), "{err}");
    }

    #[test]
    fn metrics_and_access_log_settings_are_read() {
        let s = Settings::default();
        assert!(s.metrics.enabled && s.metrics.require_admin_token && s.http.access_log);
        let s = Settings::from_toml("[metrics]\nrequire-admin-token = false\n[http]\naccess-log = false\n")
            .expect("parses");
        s.validate().expect("valid");
        assert!(s.metrics.enabled);
        assert!(!s.metrics.require_admin_token);
        assert!(!s.http.access_log);
        let err = Settings::from_toml("[metrics]\npublic = true").expect_err("unknown key");
        assert!(err.contains("public"), "{err}");
        let err = Settings::from_toml("[metrics]\nenabled = \"yes\"").expect_err("not a boolean");
        assert!(err.contains("enabled"), "{err}");
    }

    #[test]
    fn bad_database_url_is_rejected() {
        let s = Settings {
            database_url: "mysql://x".into(),
            ..Settings::default()
        };
        let err = s.validate().expect_err("rejects").to_string();
        assert!(err.contains("database-url"), "{err}");
    }
}
