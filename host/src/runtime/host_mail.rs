//! `lutetia:plugin/mail`: messages queued in the outbox and sent by the host.
//!
//! SCAFFOLD: the interface is linked and grant-checked; the outbox is being written.

use super::bindings::lutetia::plugin::mail::{Host, Message};
use super::bindings::lutetia::plugin::types::Error;
use super::state::HostState;

impl Host for HostState {
    async fn send(&mut self, _message: Message) -> Result<String, Error> {
        if self.plugin.grants.mail.is_none() {
            tracing::warn!(plugin = %self.plugin.id, "denied: mail capability not granted");
            return Err(Error::Denied);
        }
        Err(Error::Unavailable("the mail outbox is not available yet".into()))
    }
}
