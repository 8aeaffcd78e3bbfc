//! `lutetia:plugin/mail`: messages queued in the outbox and sent by the host
//! ([`lutetia_services::mail`] validates, rates and queues; its sender task delivers).

use super::bindings::lutetia::plugin::mail::{Host, Message};
use super::bindings::lutetia::plugin::types::Error;
use super::state::HostState;
use lutetia_services::mail::{MailError, OutgoingAttachment, OutgoingMessage};
use lutetia_services::metrics::Service;

impl Host for HostState {
    async fn send(&mut self, message: Message) -> Result<String, Error> {
        let state = &mut *self;
        let answer = async move {
            let Some(grant) = state.plugin.grants.mail.clone() else {
                tracing::warn!(plugin = %state.plugin.id, "denied: mail capability not granted");
                return Err(Error::Denied);
            };
            let outgoing = OutgoingMessage {
                to: message.to,
                cc: message.cc,
                reply_to: message.reply_to,
                subject: message.subject,
                text: message.text,
                html: message.html,
                attachments: message
                    .attachments
                    .into_iter()
                    .map(|a| OutgoingAttachment {
                        filename: a.filename,
                        content_type: a.content_type,
                        data: a.data,
                    })
                    .collect(),
            };
            match lutetia_services::mail::enqueue(&state.db, &state.plugin.id, &grant, &outgoing).await {
                Ok(id) => Ok(id),
                Err(MailError::Invalid(m)) => Err(Error::Invalid(m)),
                Err(MailError::QuotaExceeded(m)) => {
                    tracing::info!(plugin = %state.plugin.id, reason = %m, "mail quota exceeded");
                    Err(Error::QuotaExceeded)
                }
                Err(e) => {
                    tracing::error!(plugin = %state.plugin.id, error = %e, "outbox error");
                    Err(Error::Unavailable(
                        "the mail outbox is temporarily unavailable".into(),
                    ))
                }
            }
        }
        .await;
        self.counted(Service::Mail, answer)
    }
}
