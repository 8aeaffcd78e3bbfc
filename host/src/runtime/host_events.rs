//! `lutetia:plugin/events`: publishing events to subscribed plugins.
//!
//! SCAFFOLD: the interface is linked and grant-checked; the queue is being written.

use super::bindings::lutetia::plugin::events::Host;
use super::bindings::lutetia::plugin::types::Error;
use super::state::HostState;

impl Host for HostState {
    async fn publish(&mut self, topic: String, _payload: String) -> Result<(), Error> {
        if !self.plugin.grants.events.publish.iter().any(|t| *t == topic) {
            tracing::warn!(plugin = %self.plugin.id, %topic, "denied: topic not declared for publishing");
            return Err(Error::Denied);
        }
        Err(Error::Unavailable("events are not available yet".into()))
    }
}
