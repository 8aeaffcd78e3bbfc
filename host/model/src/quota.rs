//! Quotas declared once: their names in the settings and in manifests, the host's built-in
//! defaults and ceilings (`Quotas`, `QuotaSettings`, `QUOTA_KEYS`).
//!
//! Pure data. What applies to a plugin (its ask, else the default, never more than the
//! ceiling) is [`crate::limits`]; enforcement is in each service (`lutetia-runtime`'s
//! `host_*`, `lutetia-db`).

use serde::{Deserialize, Serialize};

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
        #[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
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

            pub(crate) fn from_values(values: &[u64]) -> Quotas {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
