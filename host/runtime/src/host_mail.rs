//! `lutetia:plugin/mail`: messages queued in the outbox and sent by the host
//! ([`lutetia_services::mail`] validates, rates and queues; its sender task delivers).

use super::bindings::lutetia::plugin::mail::{Host, Message};
use super::bindings::lutetia::plugin::types::Error;
use super::state::HostState;
use lutetia_services::metrics::Service;
use lutetia_services::mail::{MailError, OutgoingAttachment, OutgoingMessage};

impl Host for HostState {
    async fn send(&mut self, message: Message) -> Result<String, Error> {
        let answer = async {
            let Some(grant) = self.plugin.grants.mail.clone() else {
                tracing::warn!(plugin = %self.plugin.id, "denied: mail capability not granted");
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
            match lutetia_services::mail::enqueue(&self.db, &self.plugin.id, &grant, &outgoing).await {
                Ok(id) => Ok(id),
                Err(MailError::Invalid(m)) => Err(Error::Invalid(m)),
                Err(MailError::QuotaExceeded(m)) => {
                    tracing::info!(plugin = %self.plugin.id, reason = %m, "mail quota exceeded");
                    Err(Error::QuotaExceeded)
                }
                Err(e) => {
                    tracing::error!(plugin = %self.plugin.id, error = %e, "outbox error");
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
