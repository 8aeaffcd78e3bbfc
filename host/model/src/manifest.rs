//! `plugin.toml`: what a plugin is, which API it targets, what it asks for.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::quota::QuotaSettings;
pub use crate::schedule::JobSpec;

/// The `lutetia:plugin` WIT versions this host serves.
pub const SUPPORTED_API_VERSIONS: &[&str] = &["0.1.0"];

/// Why a manifest was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not valid TOML, a missing field, or an unknown one.
    #[error("invalid plugin manifest: {0}")]
    Parse(String),
    /// A field has a value the host does not accept.
    #[error("invalid plugin manifest: field `{field}` {message}")]
    Field {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
}

/// A plugin's manifest, as written by its author.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Manifest {
    /// Identifier, also the URL mount `/p/{id}/`: `[a-z][a-z0-9-]{0,62}`.
    pub id: String,
    /// Human name.
    pub name: String,
    /// Semantic version of the plugin.
    pub version: semver::Version,
    /// One-line description.
    #[serde(default)]
    pub description: String,
    /// SPDX licence expression.
    #[serde(default)]
    pub license: String,
    /// Authors.
    #[serde(default)]
    pub authors: Vec<String>,
    /// Project home page.
    #[serde(default)]
    pub homepage: Option<String>,
    /// The `lutetia:plugin` WIT version the plugin was built against.
    pub api: String,
    /// Capabilities the plugin asks for.
    #[serde(default)]
    pub capabilities: Capabilities,
    /// Limits the plugin asks for (capped by the host's ceilings).
    #[serde(default)]
    pub limits: ManifestLimits,
    /// Default settings, read with `config.get`.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

/// Host services a plugin asks to use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Capabilities {
    /// The private key-value store: `kv = true` (host default quotas) or
    /// `[capabilities.kv]` with `max-keys` / `max-bytes`.
    #[serde(default)]
    pub kv: KvRequest,
    /// The document store, with its quota (`[capabilities.store]`).
    #[serde(default)]
    pub store: Option<StoreRequest>,
    /// Binary files, with size and type limits (`[capabilities.files]`).
    #[serde(default)]
    pub files: Option<FilesRequest>,
    /// Outgoing mail through the outbox (`[capabilities.mail]`).
    #[serde(default)]
    pub mail: Option<MailRequest>,
    /// Topics the plugin publishes and subscribes to (`[capabilities.events]`).
    #[serde(default)]
    pub events: EventsRequest,
    /// Scheduled jobs (`[[capabilities.jobs]]`).
    #[serde(default)]
    pub jobs: Vec<JobSpec>,
    /// Outbound HTTP origins the plugin asks to reach (`http = ["https://api.example.org"]`,
    /// a leading `*.` matches subdomains). Recorded and granted now; enforced by the
    /// outbound HTTP interface when it exists (until then no plugin can reach the network).
    #[serde(default)]
    pub http: Vec<String>,
    /// Origins whose pages may read the plugin's answers (`cors = ["https://app.example.org"]`,
    /// or `["*"]` for any): the CORS headers it sets name only these, and only once the
    /// operator granted `cors`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cors: Vec<String>,
    /// Other sites the plugin may send visitors to (`redirect-origins =
    /// ["https://pay.example.org"]`, a leading `*.` matches subdomains); without the grant
    /// its redirects stay on the site.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirect_origins: Vec<String>,
    /// Portlet types the plugin provides (`[[capabilities.portlets]]`).
    #[serde(default)]
    pub portlets: Vec<NamedItem>,
    /// Back-office rights the plugin defines (`[[capabilities.rights]]`), given to agents'
    /// roles by the operator.
    #[serde(default)]
    pub rights: Vec<NamedItem>,
}

/// A portlet type or a back-office right a plugin declares.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NamedItem {
    /// Identifier, `[a-z][a-z0-9-]{0,62}`, unique within the plugin.
    pub id: String,
    /// Name shown to operators.
    pub name: String,
}

/// The `kv` request: `kv = true`, `kv = false`, or a table of quotas (which implies
/// `true`). A quota left out is the host's default; any is capped by the host's ceiling.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvRequest {
    /// Whether the plugin asks for the key-value store.
    pub enabled: bool,
    /// Number of keys.
    pub max_keys: Option<u64>,
    /// Total bytes of its keys and values.
    pub max_bytes: Option<u64>,
}

/// The table form of `[capabilities.kv]`.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct KvTable {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_keys: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_bytes: Option<u64>,
}

impl<'de> Deserialize<'de> for KvRequest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = KvRequest;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("true, false, or a table with max-keys and max-bytes")
            }
            fn visit_bool<E: serde::de::Error>(self, enabled: bool) -> Result<KvRequest, E> {
                Ok(KvRequest {
                    enabled,
                    ..KvRequest::default()
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<KvRequest, A::Error> {
                let table = KvTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(KvRequest {
                    enabled: true,
                    max_keys: table.max_keys,
                    max_bytes: table.max_bytes,
                })
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl Serialize for KvRequest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.max_keys.is_none() && self.max_bytes.is_none() {
            serializer.serialize_bool(self.enabled)
        } else {
            KvTable {
                max_keys: self.max_keys,
                max_bytes: self.max_bytes,
            }
            .serialize(serializer)
        }
    }
}

/// The document store's quota a manifest asks for (`[capabilities.store]`); a key left
/// out is the host's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StoreRequest {
    /// Total size of the plugin's documents, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    /// Number of documents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_documents: Option<u64>,
}

/// The files limits a manifest asks for (`[capabilities.files]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FilesRequest {
    /// Largest file, in bytes; also the request body limit of the plugin's mount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
    /// Total size of the plugin's files, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_total_bytes: Option<u64>,
    /// Media types the plugin may store (`image/jpeg`, `image/*`, `application/pdf`).
    pub content_types: Vec<String>,
}

/// The mail rate a manifest asks for (`[capabilities.mail]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MailRequest {
    /// Messages the plugin may queue per hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_hour: Option<u32>,
}

/// The key-value store's quota that applies to a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct KvCapability {
    /// Number of keys.
    pub max_keys: u64,
    /// Total bytes of keys and values.
    pub max_bytes: u64,
}

/// The document store's quota that applies to a plugin (asked for, else the host's
/// default; at most the host's ceiling).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct StoreCapability {
    /// Total size of the plugin's documents, in bytes.
    pub max_bytes: u64,
    /// Number of documents.
    pub max_documents: u64,
}

/// The files limits that apply to a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct FilesCapability {
    /// Largest file, in bytes; also the request body limit of the plugin's mount.
    pub max_size: u64,
    /// Total size of the plugin's files, in bytes.
    pub max_total_bytes: u64,
    /// Media types the plugin may store (`image/jpeg`, `image/*`, `application/pdf`).
    pub content_types: Vec<String>,
}

/// The mail rate that applies to a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct MailCapability {
    /// Messages the plugin may queue per hour.
    pub max_per_hour: u32,
}

/// The topics and publishing quotas that apply to a plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct EventsCapability {
    /// Topics the plugin may publish on.
    pub publish: Vec<String>,
    /// Topics whose events the plugin receives (a trailing `*` matches a prefix).
    pub subscribe: Vec<String>,
    /// Events the plugin may publish in any 60 seconds.
    pub max_per_minute: u64,
    /// Undelivered events a topic may hold for this plugin to publish into it.
    pub max_backlog: u64,
}

/// Event topics, and the publishing quotas a manifest asks for (`[capabilities.events]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EventsRequest {
    /// Topics the plugin may publish on.
    #[serde(default)]
    pub publish: Vec<String>,
    /// Topics whose events the plugin receives; a trailing `*` matches a prefix
    /// (`issue.*`).
    #[serde(default)]
    pub subscribe: Vec<String>,
    /// Events it may publish in any 60 seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_minute: Option<u64>,
    /// Undelivered events a topic may hold for a publish into it to be accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_backlog: Option<u64>,
}

/// Per-call limits a plugin asks for; each is capped by the host's ceiling, and one left
/// out is the host's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ManifestLimits {
    /// Linear memory per instance, in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u32>,
    /// Deadline per call, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Log lines one call may write (beyond: dropped and counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_lines_per_call: Option<u64>,
    /// Log bytes one call may write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_bytes_per_call: Option<u64>,
    /// Log lines the plugin may write in a minute, all calls together (on one host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_lines_per_minute: Option<u64>,
    /// Log bytes the plugin may write in a minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_bytes_per_minute: Option<u64>,
}

impl Manifest {
    /// Parses and validates a manifest.
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        let manifest: Manifest =
            toml::from_str(text).map_err(|e| ManifestError::Parse(e.to_string().trim_end().to_owned()))?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Checks every field's value.
    pub fn validate(&self) -> Result<(), ManifestError> {
        if !is_valid_id(&self.id) {
            return Err(ManifestError::Field {
                field: "id",
                message: format!(
                    "is {:?}: use 1 to 63 lower-case letters, digits and dashes, starting with a letter",
                    self.id
                ),
            });
        }
        if self.name.trim().is_empty() || self.name.len() > 200 {
            return Err(ManifestError::Field {
                field: "name",
                message: "must be 1 to 200 characters".into(),
            });
        }
        if !SUPPORTED_API_VERSIONS.contains(&self.api.as_str()) {
            return Err(ManifestError::Field {
                field: "api",
                message: format!(
                    "is {:?}; this host serves lutetia:plugin {}",
                    self.api,
                    SUPPORTED_API_VERSIONS.join(", ")
                ),
            });
        }
        if self.limits.memory_mb == Some(0) {
            return Err(ManifestError::Field {
                field: "limits.memory-mb",
                message: "must be at least 1".into(),
            });
        }
        if matches!(self.limits.timeout_ms, Some(t) if t < 10) {
            return Err(ManifestError::Field {
                field: "limits.timeout-ms",
                message: "must be at least 10".into(),
            });
        }
        for (key, value) in self.requested_quotas().asked() {
            if value == 0 {
                return Err(ManifestError::Field {
                    field: key,
                    message: "must be at least 1 (leave it out for the host's default)".into(),
                });
            }
        }
        self.validate_events_and_jobs()?;
        self.validate_declarations()
    }

    /// Checks the `http`, `cors` and `redirect-origins` origins and the ids of `portlets`
    /// and `rights`.
    fn validate_declarations(&self) -> Result<(), ManifestError> {
        let c = &self.capabilities;
        for (field, origins) in [
            ("capabilities.http", &c.http),
            ("capabilities.redirect-origins", &c.redirect_origins),
        ] {
            for origin in origins {
                if !is_valid_origin(origin) {
                    return Err(ManifestError::Field {
                        field,
                        message: format!(
                            "has {origin:?}: use an origin such as \"https://api.example.org\" or \"https://*.example.org:8443\" (no path)"
                        ),
                    });
                }
            }
        }
        for origin in &c.cors {
            // A browser compares the exact origin: no wildcard subdomains here.
            if origin != "*" && (!is_valid_origin(origin) || origin.contains('*')) {
                return Err(ManifestError::Field {
                    field: "capabilities.cors",
                    message: format!(
                        "has {origin:?}: use an exact origin such as \"https://app.example.org\", or \"*\" for any"
                    ),
                });
            }
        }
        for (field, items) in [
            ("capabilities.portlets", &c.portlets),
            ("capabilities.rights", &c.rights),
        ] {
            let mut seen = std::collections::BTreeSet::new();
            for item in items {
                if !is_valid_id(&item.id) || !seen.insert(item.id.as_str()) {
                    return Err(ManifestError::Field {
                        field,
                        message: format!(
                            "has id {:?}: ids are unique, lower-case letters, digits and dashes",
                            item.id
                        ),
                    });
                }
                if item.name.trim().is_empty() || item.name.len() > 200 {
                    return Err(ManifestError::Field {
                        field,
                        message: format!("item {:?} needs a name of 1 to 200 characters", item.id),
                    });
                }
            }
        }
        Ok(())
    }

    /// Checks `[capabilities.events]` topics and patterns and `[[capabilities.jobs]]`.
    fn validate_events_and_jobs(&self) -> Result<(), ManifestError> {
        let events = &self.capabilities.events;
        for topic in &events.publish {
            crate::events::check_topic(topic).map_err(|message| ManifestError::Field {
                field: "capabilities.events.publish",
                message,
            })?;
        }
        for pattern in &events.subscribe {
            crate::events::check_pattern(pattern).map_err(|message| ManifestError::Field {
                field: "capabilities.events.subscribe",
                message: format!("{message} (a trailing `*` matches a prefix)"),
            })?;
        }
        let mut names = std::collections::BTreeSet::new();
        for job in &self.capabilities.jobs {
            if job.name.trim().is_empty() || job.name.len() > 100 {
                return Err(ManifestError::Field {
                    field: "capabilities.jobs.name",
                    message: format!("is {:?}: use 1 to 100 characters", job.name),
                });
            }
            if !names.insert(job.name.as_str()) {
                return Err(ManifestError::Field {
                    field: "capabilities.jobs.name",
                    message: format!("{:?} is declared twice: job names must be unique", job.name),
                });
            }
            crate::schedule::Cadence::of(job).map_err(|message| ManifestError::Field {
                field: "capabilities.jobs",
                message: format!("job {:?} {message}", job.name),
            })?;
        }
        Ok(())
    }
}

/// A capability an operator grants, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    /// `[capabilities] kv = true`: the key-value store.
    Kv,
    /// `[capabilities.store]`: the document store.
    Store,
    /// `[capabilities.files]`: binary files.
    Files,
    /// `[capabilities.mail]`: outgoing mail.
    Mail,
    /// `[capabilities.events]`: publishing and receiving events.
    Events,
    /// `[[capabilities.jobs]]`: scheduled jobs.
    Jobs,
    /// `[capabilities] http`: outbound HTTP to the listed origins.
    Http,
    /// `[capabilities] cors`: the listed origins may read the plugin's answers.
    Cors,
    /// `[capabilities] redirect-origins`: redirects to the listed origins.
    RedirectOrigins,
    /// `[[capabilities.portlets]]`: portlet types shown on portal pages.
    Portlets,
    /// `[[capabilities.rights]]`: back-office rights the plugin defines.
    Rights,
}

impl Capability {
    /// Every capability, in display order.
    pub const ALL: [Capability; 11] = [
        Capability::Kv,
        Capability::Store,
        Capability::Files,
        Capability::Mail,
        Capability::Events,
        Capability::Jobs,
        Capability::Http,
        Capability::Cors,
        Capability::RedirectOrigins,
        Capability::Portlets,
        Capability::Rights,
    ];

    /// Its name on the command line, in the API and in the database.
    pub fn name(self) -> &'static str {
        match self {
            Capability::Kv => "kv",
            Capability::Store => "store",
            Capability::Files => "files",
            Capability::Mail => "mail",
            Capability::Events => "events",
            Capability::Jobs => "jobs",
            Capability::Http => "http",
            Capability::Cors => "cors",
            Capability::RedirectOrigins => "redirect-origins",
            Capability::Portlets => "portlets",
            Capability::Rights => "rights",
        }
    }

    /// The capability named `name`, if any.
    pub fn from_name(name: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.name() == name)
    }
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of capabilities (what a plugin asks for, or what an operator granted).
pub type CapabilitySet = std::collections::BTreeSet<Capability>;

/// Parses `kv,store` (comma-separated names, spaces allowed, empty = none).
pub fn parse_capabilities(text: &str) -> Result<CapabilitySet, String> {
    let mut set = CapabilitySet::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let capability = Capability::from_name(name).ok_or_else(|| {
            format!(
                "unknown capability `{name}`; the capabilities are {}",
                Capability::ALL.map(Capability::name).join(", ")
            )
        })?;
        set.insert(capability);
    }
    Ok(set)
}

/// `kv,store`: the names of a set, comma-separated (empty for none).
pub fn format_capabilities(set: &CapabilitySet) -> String {
    set.iter().map(|c| c.name()).collect::<Vec<_>>().join(",")
}

impl Capabilities {
    /// The capabilities this manifest asks for.
    pub fn requested(&self) -> CapabilitySet {
        let mut set = CapabilitySet::new();
        if self.kv.enabled {
            set.insert(Capability::Kv);
        }
        if self.store.is_some() {
            set.insert(Capability::Store);
        }
        if self.files.is_some() {
            set.insert(Capability::Files);
        }
        if self.mail.is_some() {
            set.insert(Capability::Mail);
        }
        if !self.events.publish.is_empty() || !self.events.subscribe.is_empty() {
            set.insert(Capability::Events);
        }
        if !self.jobs.is_empty() {
            set.insert(Capability::Jobs);
        }
        if !self.http.is_empty() {
            set.insert(Capability::Http);
        }
        if !self.cors.is_empty() {
            set.insert(Capability::Cors);
        }
        if !self.redirect_origins.is_empty() {
            set.insert(Capability::RedirectOrigins);
        }
        if !self.portlets.is_empty() {
            set.insert(Capability::Portlets);
        }
        if !self.rights.is_empty() {
            set.insert(Capability::Rights);
        }
        set
    }

    /// One line per requested capability, with its limits, for an operator to read.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if self.kv.enabled {
            lines.push(format!(
                "kv      a private key-value store ({}, {})",
                asked("max-keys", self.kv.max_keys),
                asked("max-bytes", self.kv.max_bytes)
            ));
        }
        if let Some(s) = &self.store {
            lines.push(format!(
                "store   a document store ({}, {})",
                asked("max-bytes", s.max_bytes),
                asked("max-documents", s.max_documents)
            ));
        }
        if let Some(f) = &self.files {
            lines.push(format!(
                "files   binary files ({}, {}; types {})",
                asked("max-size", f.max_size),
                asked("max-total-bytes", f.max_total_bytes),
                f.content_types.join(", ")
            ));
        }
        if let Some(m) = &self.mail {
            lines.push(format!(
                "mail    outgoing mail ({})",
                asked("max-per-hour", m.max_per_hour.map(u64::from))
            ));
        }
        if !self.events.publish.is_empty() || !self.events.subscribe.is_empty() {
            lines.push(format!(
                "events  publish [{}], subscribe [{}] ({}, {})",
                self.events.publish.join(", "),
                self.events.subscribe.join(", "),
                asked("max-per-minute", self.events.max_per_minute),
                asked("max-backlog", self.events.max_backlog)
            ));
        }
        if !self.jobs.is_empty() {
            let jobs: Vec<String> = self
                .jobs
                .iter()
                .map(|j| {
                    format!(
                        "{} ({})",
                        j.name,
                        j.every.as_deref().or(j.cron.as_deref()).unwrap_or("?")
                    )
                })
                .collect();
            lines.push(format!("jobs    scheduled jobs: {}", jobs.join(", ")));
        }
        if !self.http.is_empty() {
            lines.push(format!("http    outbound HTTP to {}", self.http.join(", ")));
        }
        if !self.cors.is_empty() {
            lines.push(format!(
                "cors    pages of {} may read its answers (CORS)",
                if self.cors.iter().any(|o| o == "*") {
                    "any site".to_owned()
                } else {
                    self.cors.join(", ")
                }
            ));
        }
        if !self.redirect_origins.is_empty() {
            lines.push(format!(
                "redirect-origins  may send visitors to {}",
                self.redirect_origins.join(", ")
            ));
        }
        let named = |items: &[NamedItem]| {
            items
                .iter()
                .map(|i| format!("{} ({})", i.id, i.name))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !self.portlets.is_empty() {
            lines.push(format!("portlets  portlet types: {}", named(&self.portlets)));
        }
        if !self.rights.is_empty() {
            lines.push(format!("rights  back-office rights: {}", named(&self.rights)));
        }
        lines
    }
}

/// `max-keys 100`, or `max-keys: host default` when the manifest does not say.
fn asked(key: &str, value: Option<u64>) -> String {
    match value {
        Some(v) => format!("{key} {v}"),
        None => format!("{key}: host default"),
    }
}

/// Whether `origin` is `http(s)://host[:port]`, the host possibly starting with `*.`.
fn is_valid_origin(origin: &str) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    if scheme != "https" && scheme != "http" {
        return false;
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (rest, None),
    };
    let host = host.strip_prefix("*.").unwrap_or(host);
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    port_ok && host_ok
}

/// Whether `id` is a valid plugin identifier: `[a-z][a-z0-9-]{0,62}`, no trailing dash.
pub fn is_valid_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_lowercase()
        && bytes[bytes.len() - 1] != b'-'
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

impl Manifest {
    /// The quotas this manifest asks for, by the same names as the settings.
    pub fn requested_quotas(&self) -> QuotaSettings {
        let c = &self.capabilities;
        let l = &self.limits;
        QuotaSettings {
            kv_max_keys: c.kv.max_keys,
            kv_max_bytes: c.kv.max_bytes,
            store_max_bytes: c.store.as_ref().and_then(|s| s.max_bytes),
            store_max_documents: c.store.as_ref().and_then(|s| s.max_documents),
            files_max_size: c.files.as_ref().and_then(|f| f.max_size),
            files_max_total_bytes: c.files.as_ref().and_then(|f| f.max_total_bytes),
            mail_max_per_hour: c.mail.as_ref().and_then(|m| m.max_per_hour).map(u64::from),
            events_max_per_minute: c.events.max_per_minute,
            events_max_backlog: c.events.max_backlog,
            log_lines_per_call: l.log_lines_per_call,
            log_bytes_per_call: l.log_bytes_per_call,
            log_lines_per_minute: l.log_lines_per_minute,
            log_bytes_per_minute: l.log_bytes_per_minute,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
id = "hello"
name = "Hello"
version = "0.1.0"
api = "0.1.0"
[capabilities]
kv = true
[limits]
memory-mb = 16
[config]
greeting = "Bonjour"
"#;

    #[test]
    fn parses_a_valid_manifest() {
        let m = Manifest::parse(GOOD).expect("valid");
        assert_eq!(m.id, "hello");
        assert!(m.capabilities.kv.enabled);
        assert_eq!(m.limits.memory_mb, Some(16));
        assert_eq!(m.config["greeting"], "Bonjour");
    }

    #[test]
    fn kv_is_a_flag_or_a_table_of_quotas() {
        let table = Manifest::parse(&GOOD.replace(
            "[capabilities]\nkv = true",
            "[capabilities.kv]\nmax-keys = 5\nmax-bytes = 100",
        ))
        .expect("table");
        assert_eq!(
            table.capabilities.kv,
            KvRequest {
                enabled: true,
                max_keys: Some(5),
                max_bytes: Some(100)
            }
        );
        assert!(table.capabilities.requested().contains(&Capability::Kv));
        assert!(table.capabilities.describe()[0].contains("max-keys 5, max-bytes 100"));
        let off = Manifest::parse(&GOOD.replace("kv = true", "kv = false")).expect("false");
        assert!(!off.capabilities.requested().contains(&Capability::Kv));
        // Written back the way it was read, so a stored manifest means the same.
        let json = serde_json::to_value(&table.capabilities).expect("json");
        assert_eq!(json["kv"], serde_json::json!({ "max-keys": 5, "max-bytes": 100 }));
        assert_eq!(
            serde_json::to_value(&off.capabilities).expect("json")["kv"],
            false
        );
        for bad in ["kv = \"yes\"", "kv = { max-kyes = 5 }"] {
            let err = Manifest::parse(&GOOD.replace("kv = true", bad))
                .expect_err(bad)
                .to_string();
            assert!(err.contains("kv") || err.contains("max-kyes"), "{bad}: {err}");
        }
    }

    #[test]
    fn rejects_bad_ids() {
        for id in ["", "Hello", "1abc", "a_b", "abc-", &"a".repeat(64)] {
            assert!(!is_valid_id(id), "{id:?}");
        }
        for id in ["a", "hello", "street-issues", "a1-b2"] {
            assert!(is_valid_id(id), "{id:?}");
        }
    }

    #[test]
    fn names_the_bad_field() {
        let err = Manifest::parse(&GOOD.replace("0.1.0\"\n[cap", "9.9.9\"\n[cap"))
            .expect_err("bad api")
            .to_string();
        assert!(err.contains("`api`"), "{err}");
        let err = Manifest::parse(&GOOD.replace("version = \"0.1.0\"", "version = \"one\""))
            .expect_err("bad version")
            .to_string();
        assert!(err.contains("version"), "{err}");
        let err = Manifest::parse(&GOOD.replace("kv = true", "kv = true\nteleport = true"))
            .expect_err("unknown capability")
            .to_string();
        assert!(err.contains("teleport"), "{err}");
    }

    #[test]
    fn declares_http_origins_portlets_and_rights() {
        let ok = Manifest::parse(&GOOD.replace(
            "kv = true",
            "kv = true\nhttp = [\"https://api.example.org\", \"https://*.paris.fr:8443\"]\n\
             portlets = [{ id = \"latest-news\", name = \"Latest news\" }]\n\
             rights = [{ id = \"manage-news\", name = \"Manage news\" }]",
        ))
        .expect("valid");
        let requested = ok.capabilities.requested();
        for c in [Capability::Http, Capability::Portlets, Capability::Rights] {
            assert!(requested.contains(&c), "{c:?}");
        }
        assert!(
            ok.capabilities
                .describe()
                .iter()
                .any(|l| l.contains("https://api.example.org"))
        );
        let web = Manifest::parse(&GOOD.replace(
            "kv = true",
            "kv = true\ncors = [\"https://app.example.org\"]\nredirect-origins = [\"https://*.pay.example.org\"]",
        ))
        .expect("valid");
        let requested = web.capabilities.requested();
        assert!(requested.contains(&Capability::Cors) && requested.contains(&Capability::RedirectOrigins));
        let lines = web.capabilities.describe().join("\n");
        assert!(
            lines.contains("cors") && lines.contains("https://app.example.org"),
            "{lines}"
        );
        assert!(
            lines.contains("redirect-origins") && lines.contains("https://*.pay.example.org"),
            "{lines}"
        );
        assert_eq!(
            parse_capabilities("cors, redirect-origins").map(|s| s.len()),
            Ok(2)
        );
        for (bad, field) in [
            ("cors = [\"https://*.example.org\"]", "capabilities.cors"),
            ("cors = [\"app.example.org\"]", "capabilities.cors"),
            (
                "redirect-origins = [\"https://x.org/path\"]",
                "capabilities.redirect-origins",
            ),
            (
                "redirect-origins = [\"javascript:x\"]",
                "capabilities.redirect-origins",
            ),
            ("http = [\"ftp://x.org\"]", "capabilities.http"),
            ("http = [\"https://x.org/path\"]", "capabilities.http"),
            ("http = [\"https://x.org:99999\"]", "capabilities.http"),
            (
                "portlets = [{ id = \"A\", name = \"x\" }]",
                "capabilities.portlets",
            ),
            (
                "rights = [{ id = \"r\", name = \"x\" }, { id = \"r\", name = \"y\" }]",
                "capabilities.rights",
            ),
        ] {
            let err = Manifest::parse(&GOOD.replace("kv = true", &format!("kv = true\n{bad}")))
                .expect_err(bad)
                .to_string();
            assert!(err.contains(field), "{bad}: {err}");
        }
    }

    #[test]
    fn checks_events_and_jobs() {
        let with = |extra: &str| Manifest::parse(&GOOD.replace("kv = true", &format!("kv = true\n{extra}")));
        let ok = with(
            "events = { publish = [\"issue.created\"], subscribe = [\"issue.*\", \"*\"] }\n\
             jobs = [{ name = \"digest\", every = \"1d\" }, { name = \"night\", cron = \"0 0 3 * * *\" }]",
        )
        .expect("valid");
        assert_eq!(ok.capabilities.jobs.len(), 2);
        for (bad, field) in [
            ("events = { publish = [\"Issue\"] }", "publish"),
            ("events = { subscribe = [\"a*b\"] }", "subscribe"),
            ("jobs = [{ name = \"j\" }]", "jobs"),
            (
                "jobs = [{ name = \"j\", every = \"1s\", cron = \"* * * * * *\" }]",
                "jobs",
            ),
            ("jobs = [{ name = \"j\", every = \"500ms\" }]", "jobs"),
            ("jobs = [{ name = \"j\", every = \"0s\" }]", "jobs"),
            ("jobs = [{ name = \"j\", cron = \"* * * * *\" }]", "jobs"),
            (
                "jobs = [{ name = \"j\", every = \"1m\" }, { name = \"j\", every = \"2m\" }]",
                "unique",
            ),
        ] {
            let err = with(bad).expect_err(bad).to_string();
            assert!(err.contains(field), "{bad}: {err}");
        }
    }
}
