//! The event bus's in-process signals, shared by the runtime's `events.publish` and the
//! platform's dispatcher without either importing the other: a local publish wakes the
//! dispatcher, and the dispatcher's last view of the subscribers bounds a topic's backlog.

use std::sync::RwLock;

use tokio::sync::Notify;

use lutetia_model::events::matches;

/// Wakes the dispatcher when an event is published in this process.
static PUBLISHED: Notify = Notify::const_new();

/// Tells the dispatcher an event was published (called by `events.publish`).
pub fn notify_published() {
    PUBLISHED.notify_one();
}

/// The loaded subscribers and their granted patterns, as the dispatcher last saw the
/// registry (every pass, at least once a second): what `events.publish` measures a topic's
/// backlog against. Empty in a process without a dispatcher (the CLI): then a topic's whole
/// history counts, the strictest reading.
static SUBSCRIBERS: RwLock<Vec<(String, Vec<String>)>> = RwLock::new(Vec::new());

/// The plugins subscribed to `topic`, by the dispatcher's last look at the registry.
pub fn subscribers_of(topic: &str) -> Vec<String> {
    let all = SUBSCRIBERS
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    all.iter()
        .filter(|(_, patterns)| patterns.iter().any(|p| matches(p, topic)))
        .map(|(id, _)| id.clone())
        .collect()
}

/// Waits until an event is published in this process (the dispatcher's wake-up).
pub async fn published() {
    PUBLISHED.notified().await;
}

/// Records the loaded subscribers and their granted patterns (the dispatcher, at each pass).
pub fn set_subscribers(list: Vec<(String, Vec<String>)>) {
    *SUBSCRIBERS
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = list;
}
