//! This host process's identity, stored with leases, job runs and file reservations.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// An id for this host process, stored with leases and job runs: pid and start time.
pub fn node_id() -> String {
    static NODE: OnceLock<String> = OnceLock::new();
    NODE.get_or_init(|| {
        static SALT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        format!(
            "{}-{:x}",
            std::process::id(),
            nanos ^ SALT.fetch_add(1, Ordering::Relaxed)
        )
    })
    .clone()
}
