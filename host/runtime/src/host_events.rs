//! `lutetia:plugin/events`: publishing events to subscribed plugins.
//!
//! Grant check (the topic must be declared in the manifest's `publish` list), then the
//! topic and payload checks, then one transaction on the durable queue with the publisher's
//! id from the store context, which also enforces the publisher's rate and the topic's
//! backlog bound (`quota-exceeded`); the dispatcher (`lutetia_platform::dispatcher`) delivers it.

use super::bindings::lutetia::plugin::events::Host;
use super::bindings::lutetia::plugin::types::Error;
use super::state::HostState;
use lutetia_db::events::{PublishError, PublishQuota};
use lutetia_model::events::{MAX_PAYLOAD_BYTES, check_topic};
use lutetia_services::bus::{notify_published, subscribers_of};
use lutetia_services::metrics::Service;

impl Host for HostState {
    async fn publish(&mut self, topic: String, payload: String) -> Result<(), Error> {
        let state = &mut *self;
        let answer = async move {
            let grant = &state.plugin.grants.events;
            if !grant.publish.contains(&topic) {
                // Debug formatting: the topic is the plugin's text and must stay one log line.
                tracing::warn!(plugin = %state.plugin.id, topic = ?topic, "denied: topic not declared for publishing");
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
            let subscribers = subscribers_of(&topic);
            let quota = PublishQuota {
                max_per_minute: grant.max_per_minute,
                max_backlog: grant.max_backlog,
                subscribers: &subscribers,
            };
            match state
                .db
                .publish_event(&topic, &state.plugin.id, &payload, quota)
                .await
            {
                Ok(id) => {
                    tracing::debug!(plugin = %state.plugin.id, %topic, event = id, "event published");
                    notify_published();
                    Ok(())
                }
                Err(PublishError::QuotaExceeded(reason)) => {
                    tracing::info!(plugin = %state.plugin.id, %topic, %reason, "events quota exceeded");
                    Err(Error::QuotaExceeded)
                }
                Err(PublishError::Db(e)) => {
                    tracing::error!(plugin = %state.plugin.id, %topic, error = %e, "cannot publish an event");
                    Err(Error::Unavailable("the event queue is unavailable".into()))
                }
            }
        }
        .await;
        self.counted(Service::Events, answer)
    }
}
