//! Quotas and limits: what a manifest asks for, the host's defaults
//! (`[limits.default-quotas]`, `limits.default-memory-mb`, ...) and ceilings
//! (`[limits.max-quotas]`, `limits.max-memory-mb`, ...), and what applies to a plugin: its
//! ask, else the default, never more than the ceiling.
//!
//! Pure logic, shared by the runtime (a plugin's grants and call limits), the settings
//! validation and what `plugin inspect` / `install` show the operator. Enforcement is in
//! each service (`runtime::host_*`, `db::*`).

use serde::{Deserialize, Serialize};

use crate::manifest::Manifest;
use crate::settings::Limits;

/// The names of one quota: its key in the settings tables and in a manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaKey {
    /// Key in `[limits.default-quotas]` and `[limits.max-quotas]` (`kv-max-keys`).
    pub setting: &'static str,
    /// Full key of a manifest (`capabilities.kv.max-keys`).
    pub manifest: &'static str,
    /// Full key of the default (`limits.default-quotas.kv-max-keys`).
    pub default_setting: &'static str,
    /// Full key of the ceiling (`limits.max-quotas.kv-max-keys`).
    pub max_setting: &'static str,
}

/// Declares every quota once: the value struct, the optional-values struct used by the
/// settings and by manifests, and the table of their names, so no list can forget one.
macro_rules! quotas {
    ($($(#[doc = $doc:literal])* $field:ident: $key:literal, $manifest:literal,
       default $default:expr, ceiling $ceiling:expr;)*) => {
        /// One value per quota.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
        #[serde(rename_all = "kebab-case")]
        pub struct Quotas {
            $($(#[doc = $doc])* pub $field: u64,)*
        }

        /// Quota values given in a settings table or asked for by a manifest; `None` leaves
        /// the value to what is under it (the built-in value, or the host's default).
        #[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
        #[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
        pub struct QuotaSettings {
            $($(#[doc = $doc])* pub $field: Option<u64>,)*
        }

        /// The names of every quota, in the order of [`Quotas::values`].
        pub const QUOTA_KEYS: &[QuotaKey] = &[$(QuotaKey {
            setting: $key,
            manifest: $manifest,
            default_setting: concat!("limits.default-quotas.", $key),
            max_setting: concat!("limits.max-quotas.", $key),
        },)*];

        impl Quotas {
            /// The built-in defaults.
            pub const DEFAULTS: Quotas = Quotas { $($field: $default,)* };
            /// The built-in ceilings.
            pub const CEILINGS: Quotas = Quotas { $($field: $ceiling,)* };

            /// Every value, in the order of [`QUOTA_KEYS`].
            pub fn values(&self) -> Vec<u64> {
                vec![$(self.$field,)*]
            }

            fn from_values(values: &[u64]) -> Quotas {
                let mut it = values.iter().copied();
                Quotas { $($field: it.next().unwrap_or(0),)* }
            }
        }

        impl QuotaSettings {
            /// Every value (`None`: not given), in the order of [`QUOTA_KEYS`].
            pub fn values(&self) -> Vec<Option<u64>> {
                vec![$(self.$field,)*]
            }
        }
    };
}

const MIB: u64 = 1024 * 1024;

quotas! {
    /// Keys in the plugin's key-value store.
    kv_max_keys: "kv-max-keys", "capabilities.kv.max-keys",
        default 10_000, ceiling 1_000_000;
    /// Bytes of the plugin's keys and values together.
    kv_max_bytes: "kv-max-bytes", "capabilities.kv.max-bytes",
        default 16 * MIB, ceiling 1024 * MIB;
    /// Bytes of the plugin's documents (compact JSON).
    store_max_bytes: "store-max-bytes", "capabilities.store.max-bytes",
        default 100 * MIB, ceiling 10 * 1024 * MIB;
    /// Documents of the plugin.
    store_max_documents: "store-max-documents", "capabilities.store.max-documents",
        default 1_000_000, ceiling 10_000_000;
    /// Largest file; also raises the request body limit of the plugin's mount.
    files_max_size: "files-max-size", "capabilities.files.max-size",
        default 10 * MIB, ceiling 100 * MIB;
    /// Bytes of the plugin's files together.
    files_max_total_bytes: "files-max-total-bytes", "capabilities.files.max-total-bytes",
        default 1024 * MIB, ceiling 100 * 1024 * MIB;
    /// Messages queued in any hour.
    mail_max_per_hour: "mail-max-per-hour", "capabilities.mail.max-per-hour",
        default 500, ceiling 10_000;
    /// Events published in any 60 seconds.
    events_max_per_minute: "events-max-per-minute", "capabilities.events.max-per-minute",
        default 600, ceiling 60_000;
    /// Undelivered events a topic may hold when the plugin publishes into it.
    events_max_backlog: "events-max-backlog", "capabilities.events.max-backlog",
        default 10_000, ceiling 1_000_000;
    /// Log lines of one call.
    log_lines_per_call: "log-lines-per-call", "limits.log-lines-per-call",
        default 200, ceiling 10_000;
    /// Log bytes of one call.
    log_bytes_per_call: "log-bytes-per-call", "limits.log-bytes-per-call",
        default 64 * 1024, ceiling 4 * MIB;
    /// Log lines of all the plugin's calls in a minute, on one host.
    log_lines_per_minute: "log-lines-per-minute", "limits.log-lines-per-minute",
        default 2_000, ceiling 100_000;
    /// Log bytes of all the plugin's calls in a minute, on one host.
    log_bytes_per_minute: "log-bytes-per-minute", "limits.log-bytes-per-minute",
        default MIB, ceiling 64 * MIB;
}

impl QuotaSettings {
    /// These values over `base`, each missing one being `base`'s capped by `cap` (so that
    /// lowering a ceiling lowers the built-in default with it).
    pub fn over_capped(&self, base: Quotas, cap: Quotas) -> Quotas {
        let values: Vec<u64> = self
            .values()
            .into_iter()
            .zip(base.values().into_iter().zip(cap.values()))
            .map(|(given, (base, cap))| given.unwrap_or(base.min(cap)))
            .collect();
        Quotas::from_values(&values)
    }

    /// `(manifest key, value)` of every value given.
    pub fn asked(&self) -> Vec<(&'static str, u64)> {
        QUOTA_KEYS
            .iter()
            .zip(self.values())
            .filter_map(|(key, value)| value.map(|v| (key.manifest, v)))
            .collect()
    }
}

/// The quotas a manifest asks for, by the same names as the settings.
pub fn requested(manifest: &Manifest) -> QuotaSettings {
    let c = &manifest.capabilities;
    let l = &manifest.limits;
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

/// A manifest asked for more than the host's ceiling: the ceiling applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Capped {
    /// The manifest's key (`capabilities.kv.max-keys`, `limits.memory-mb`).
    pub key: &'static str,
    /// What the manifest asks for.
    pub asked: u64,
    /// What applies: the ceiling.
    pub applies: u64,
    /// The setting holding the ceiling (`limits.max-quotas.kv-max-keys`).
    pub ceiling: &'static str,
}

impl Capped {
    /// The warning an operator reads.
    pub fn warning(&self) -> String {
        format!(
            "{} asks for {}, more than this host's ceiling ({} = {}): {} applies",
            self.key, self.asked, self.ceiling, self.applies, self.applies
        )
    }
}

/// Everything that bounds a plugin on this host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EffectiveLimits {
    /// Linear memory per instance, MiB.
    pub memory_mb: u32,
    /// Deadline per call, milliseconds.
    pub timeout_ms: u64,
    /// Every quota.
    pub quotas: Quotas,
    /// What the manifest asked beyond a ceiling.
    pub capped: Vec<Capped>,
}

impl EffectiveLimits {
    /// Resolves `manifest`'s asks against the host's defaults and ceilings.
    pub fn of(manifest: &Manifest, limits: &Limits) -> EffectiveLimits {
        let mut capped = Vec::new();
        let mut cap = |key, asked: u64, ceiling_key, ceiling: u64| {
            if asked > ceiling {
                capped.push(Capped {
                    key,
                    asked,
                    applies: ceiling,
                    ceiling: ceiling_key,
                });
            }
            asked.min(ceiling)
        };
        let memory = cap(
            "limits.memory-mb",
            u64::from(manifest.limits.memory_mb.unwrap_or(limits.default_memory_mb)),
            "limits.max-memory-mb",
            u64::from(limits.max_memory_mb),
        );
        let timeout_ms = cap(
            "limits.timeout-ms",
            manifest.limits.timeout_ms.unwrap_or(limits.default_timeout_ms),
            "limits.max-timeout-ms",
            limits.max_timeout_ms,
        );
        let defaults = limits.quota_defaults();
        let ceilings = limits.quota_ceilings();
        let values: Vec<u64> = QUOTA_KEYS
            .iter()
            .zip(requested(manifest).values())
            .zip(defaults.values().into_iter().zip(ceilings.values()))
            .map(|((key, asked), (default, ceiling))| {
                cap(key.manifest, asked.unwrap_or(default), key.max_setting, ceiling)
            })
            .collect();
        EffectiveLimits {
            memory_mb: u32::try_from(memory).unwrap_or(u32::MAX),
            timeout_ms,
            quotas: Quotas::from_values(&values),
            capped,
        }
    }

    /// Lines for an operator: memory and deadline, the log limits, and the quotas of the
    /// services `manifest` asks for.
    pub fn describe(&self, manifest: &Manifest) -> Vec<String> {
        let q = &self.quotas;
        let c = &manifest.capabilities;
        let mut lines = vec![
            format!(
                "memory {} MiB, deadline {} ms per call",
                self.memory_mb, self.timeout_ms
            ),
            format!(
                "log     {} lines and {} bytes per call, {} lines and {} bytes per minute",
                q.log_lines_per_call, q.log_bytes_per_call, q.log_lines_per_minute, q.log_bytes_per_minute
            ),
        ];
        if c.kv.enabled {
            lines.push(format!(
                "kv      {} keys, {} bytes",
                q.kv_max_keys, q.kv_max_bytes
            ));
        }
        if c.store.is_some() {
            lines.push(format!(
                "store   {} bytes, {} documents",
                q.store_max_bytes, q.store_max_documents
            ));
        }
        if c.files.is_some() {
            lines.push(format!(
                "files   {} bytes per file, {} bytes in total",
                q.files_max_size, q.files_max_total_bytes
            ));
        }
        if c.mail.is_some() {
            lines.push(format!("mail    {} messages per hour", q.mail_max_per_hour));
        }
        if !c.events.publish.is_empty() {
            lines.push(format!(
                "events  {} publishes per minute, {} undelivered events per topic",
                q.events_max_per_minute, q.events_max_backlog
            ));
        }
        lines
    }

    /// The warnings, one line each.
    pub fn warnings(&self) -> Vec<String> {
        self.capped.iter().map(Capped::warning).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;

    fn manifest(extra: &str) -> Manifest {
        Manifest::parse(&format!(
            "id = \"q\"\nname = \"Q\"\nversion = \"0.1.0\"\napi = \"0.1.0\"\n{extra}"
        ))
        .expect("valid manifest")
    }

    #[test]
    fn every_quota_has_distinct_names_and_sane_built_ins() {
        let mut seen = std::collections::BTreeSet::new();
        for key in QUOTA_KEYS {
            assert!(seen.insert(key.setting), "{key:?}");
            assert!(key.default_setting.ends_with(key.setting));
        }
        for ((key, default), ceiling) in QUOTA_KEYS
            .iter()
            .zip(Quotas::DEFAULTS.values())
            .zip(Quotas::CEILINGS.values())
        {
            assert!((1..=ceiling).contains(&default), "{}", key.setting);
        }
    }

    #[test]
    fn ask_else_default_never_above_the_ceiling() {
        let limits = Settings::default().limits;
        let m = manifest(
            "[capabilities.kv]\nmax-keys = 5000000\n[capabilities.store]\nmax-bytes = 1000\n\
             [limits]\nmemory-mb = 4096\nlog-lines-per-call = 10\n",
        );
        let e = EffectiveLimits::of(&m, &limits);
        assert_eq!(e.quotas.kv_max_keys, Quotas::CEILINGS.kv_max_keys);
        assert_eq!(e.quotas.kv_max_bytes, Quotas::DEFAULTS.kv_max_bytes);
        assert_eq!(e.quotas.store_max_bytes, 1000);
        assert_eq!(e.quotas.store_max_documents, Quotas::DEFAULTS.store_max_documents);
        assert_eq!(e.quotas.log_lines_per_call, 10);
        assert_eq!(e.memory_mb, limits.max_memory_mb);
        let keys: Vec<&str> = e.capped.iter().map(|c| c.key).collect();
        assert_eq!(keys, ["limits.memory-mb", "capabilities.kv.max-keys"]);
        let warning = e.capped[1].warning();
        assert!(
            warning.contains("capabilities.kv.max-keys asks for 5000000")
                && warning.contains("limits.max-quotas.kv-max-keys = 1000000")
                && warning.ends_with("1000000 applies"),
            "{warning}"
        );
        assert!(
            e.describe(&m)
                .iter()
                .any(|l| l == "kv      1000000 keys, 16777216 bytes"),
            "{:?}",
            e.describe(&m)
        );
    }

    #[test]
    fn operator_defaults_and_ceilings_apply() {
        let settings = Settings::from_toml(
            "[limits.default-quotas]\nkv-max-keys = 50\n[limits.max-quotas]\nkv-max-keys = 100\nkv-max-bytes = 4096\n",
        )
        .expect("parses");
        settings.validate().expect("valid");
        let plain = EffectiveLimits::of(&manifest("[capabilities]\nkv = true\n"), &settings.limits);
        assert_eq!(plain.quotas.kv_max_keys, 50);
        // A lowered ceiling lowers the built-in default with it, without a warning.
        assert_eq!(plain.quotas.kv_max_bytes, 4096);
        assert!(plain.capped.is_empty());
        let greedy = EffectiveLimits::of(&manifest("[capabilities.kv]\nmax-keys = 101\n"), &settings.limits);
        assert_eq!(greedy.quotas.kv_max_keys, 100);
        assert_eq!(greedy.capped.len(), 1);
    }

    #[test]
    fn manifests_and_settings_refuse_zero_and_inconsistent_values() {
        let err = Manifest::parse(
            "id = \"q\"\nname = \"Q\"\nversion = \"0.1.0\"\napi = \"0.1.0\"\n[capabilities.kv]\nmax-keys = 0\n",
        )
        .expect_err("zero")
        .to_string();
        assert!(err.contains("capabilities.kv.max-keys"), "{err}");
        for (toml, key) in [
            (
                "[limits.max-quotas]\nkv-max-keys = 0",
                "limits.max-quotas.kv-max-keys",
            ),
            (
                "[limits.default-quotas]\nevents-max-backlog = 0",
                "limits.default-quotas.events-max-backlog",
            ),
            (
                "[limits.default-quotas]\nmail-max-per-hour = 20\n[limits.max-quotas]\nmail-max-per-hour = 10",
                "limits.default-quotas.mail-max-per-hour",
            ),
        ] {
            let err = Settings::from_toml(toml)
                .expect("parses")
                .validate()
                .expect_err(toml)
                .to_string();
            assert!(err.contains(key), "{toml}: {err}");
        }
        let err = Settings::from_toml("[limits.max-quotas]\nkv-max-kyes = 3").expect_err("typo");
        assert!(err.contains("kv-max-kyes"), "{err}");
    }
}
