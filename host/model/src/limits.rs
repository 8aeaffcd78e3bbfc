//! Limits that apply to a plugin on this host: the manifest's asks against the host's
//! defaults (`[limits.default-quotas]`, `limits.default-memory-mb`, ...) and ceilings
//! (`[limits.max-quotas]`, `limits.max-memory-mb`, ...): its ask, else the default, never
//! more than the ceiling.
//!
//! Pure logic, shared by the runtime (a plugin's grants and call limits) and what
//! `plugin inspect` / `install` and the admin API show the operator.

use serde::Serialize;

use crate::manifest::Manifest;
use crate::quota::{QUOTA_KEYS, Quotas};
use crate::settings::Limits;

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
            .zip(manifest.requested_quotas().values())
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
