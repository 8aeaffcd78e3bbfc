//! Events between plugins (capability `events`) and scheduled jobs.
//!
//! A plugin publishes with [`publish`] on a topic listed in its manifest's
//! `[capabilities.events] publish`; plugins subscribed to the topic receive an [`Event`] in
//! [`Plugin::on_event`](crate::Plugin::on_event). Jobs declared in `[[capabilities.jobs]]`
//! arrive as a [`Job`] in [`Plugin::on_schedule`](crate::Plugin::on_schedule).

use crate::__bindings::exports::lutetia::plugin::{scheduler, subscriber};
use crate::__bindings::lutetia::plugin::events as wit;
use crate::Error;

/// An event delivered to a subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Unique id (the same on every delivery attempt: use it to ignore duplicates).
    pub id: String,
    /// Topic.
    pub topic: String,
    /// Id of the publishing plugin.
    pub publisher: String,
    /// Payload, JSON text.
    pub payload: String,
    /// When it was published, milliseconds since the Unix epoch.
    pub published_at: u64,
    /// 1 on the first delivery, more on retries.
    pub attempt: u32,
}

impl Event {
    /// Parses the payload as JSON into `T`; a payload nested deeper than
    /// [`limits::MAX_JSON_DEPTH`](crate::limits::MAX_JSON_DEPTH) levels is
    /// [`Error::Invalid`], as in the Python and JavaScript SDKs.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        if crate::limits::json_too_deep(self.payload.as_bytes()) {
            return Err(crate::limits::too_deep("event payload"));
        }
        serde_json::from_str(&self.payload).map_err(|e| Error::Invalid(format!("event payload: {e}")))
    }
}

impl From<subscriber::Event> for Event {
    fn from(e: subscriber::Event) -> Self {
        Event {
            id: e.id,
            topic: e.topic,
            publisher: e.publisher,
            payload: e.payload,
            published_at: e.published_at,
            attempt: e.attempt,
        }
    }
}

/// A scheduled job run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The job's name, as in the manifest.
    pub name: String,
    /// When this run was due, milliseconds since the Unix epoch.
    pub scheduled_at: u64,
}

impl From<scheduler::Job> for Job {
    fn from(j: scheduler::Job) -> Self {
        Job {
            name: j.name,
            scheduled_at: j.scheduled_at,
        }
    }
}

/// Publishes `payload` (JSON text) on `topic`.
///
/// ```no_run
/// lutetia_sdk::events::publish("issue.created", r#"{"id":"42"}"#)?;
/// # Ok::<(), lutetia_sdk::Error>(())
/// ```
pub fn publish(topic: &str, payload: &str) -> Result<(), Error> {
    Ok(wit::publish(topic, payload)?)
}

/// Publishes a value serialised as JSON on `topic`.
///
/// ```no_run
/// lutetia_sdk::events::publish_json("issue.created", &serde_json::json!({ "id": "42" }))?;
/// # Ok::<(), lutetia_sdk::Error>(())
/// ```
pub fn publish_json<T: serde::Serialize + ?Sized>(topic: &str, value: &T) -> Result<(), Error> {
    let payload = serde_json::to_string(value).map_err(|e| Error::Invalid(format!("event payload: {e}")))?;
    publish(topic, &payload)
}
