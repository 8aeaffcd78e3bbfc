//! `lutetia:plugin/events`: publishing events to subscribed plugins.
//!
//! Grant check (the topic must be declared in the manifest's `publish` list), then the
//! topic and payload checks, then one insert into the durable queue with the publisher's
//! id from the store context; the dispatcher (`crate::events`) delivers it.

use super::bindings::lutetia::plugin::events::Host;
use super::bindings::lutetia::plugin::types::Error;
use super::state::HostState;
use crate::events::{MAX_PAYLOAD_BYTES, check_topic, notify_published};

impl Host for HostState {
    async fn publish(&mut self, topic: String, payload: String) -> Result<(), Error> {
        if !self.plugin.grants.events.publish.contains(&topic) {
            tracing::warn!(plugin = %self.plugin.id, %topic, "denied: topic not declared for publishing");
            return Err(Error::Denied);
        }
        check_topic(&topic).map_err(Error::Invalid)?;
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(Error::Invalid(format!(
                "event payload is {} bytes; the limit is {MAX_PAYLOAD_BYTES}",
                payload.len()
            )));
        }
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&payload) {
            return Err(Error::Invalid(format!("event payload is not valid JSON: {e}")));
        }
        match self.db.publish_event(&topic, &self.plugin.id, &payload).await {
            Ok(id) => {
                tracing::debug!(plugin = %self.plugin.id, %topic, event = id, "event published");
                notify_published();
                Ok(())
            }
            Err(e) => {
                tracing::error!(plugin = %self.plugin.id, %topic, error = %e, "cannot publish an event");
                Err(Error::Unavailable("the event queue is unavailable".into()))
            }
        }
    }
}
