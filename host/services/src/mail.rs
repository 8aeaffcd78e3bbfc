//! Outgoing mail: validation and queuing of the messages plugins send, and the sender task
//! that delivers the outbox over SMTP with `lettre`, with exponential backoff.
//!
//! The outbox row holds the message as JSON ([`OutgoingMessage`]); the `From` address is the
//! site's (`mail-from`), added when the message is built for delivery.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

use lutetia_db::outbox::{Enqueued, NewMessage};
use lutetia_db::{Database, DbError, now_ms};
use lutetia_model::manifest::MailCapability;
use lutetia_model::settings::{Secret, Settings};

/// Largest message (bodies and attachments), in bytes.
pub const MAX_MESSAGE_BYTES: usize = 10 * 1024 * 1024;
/// Most recipients (to + cc) of one message.
pub const MAX_RECIPIENTS: usize = 100;
/// First retry delay; doubled after each failure.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest retry delay.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How long a sender owns a claimed message (longer than the SMTP timeout).
const CLAIM_LEASE: Duration = Duration::from_secs(300);
/// SMTP command timeout.
const SMTP_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause of the sender when nothing is due.
const IDLE_POLL: Duration = Duration::from_millis(500);

/// Why a message could not be queued or sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The plugin's message is not acceptable; the message says why.
    #[error("{0}")]
    Invalid(String),
    /// The plugin queued too many messages this hour.
    #[error("{0}")]
    QuotaExceeded(String),
    /// The outbox could not be read or written.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The SMTP URL is not usable.
    #[error("invalid smtp-url: {0}")]
    SmtpUrl(String),
}

/// An attachment as stored in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingAttachment {
    /// File name shown to the recipient.
    pub filename: String,
    /// Media type.
    pub content_type: String,
    /// Content, base64 in the stored JSON.
    #[serde(with = "b64")]
    pub data: Vec<u8>,
}

/// A message as a plugin sent it, as stored in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingMessage {
    /// Recipients.
    pub to: Vec<String>,
    /// Copy recipients.
    pub cc: Vec<String>,
    /// Reply address.
    pub reply_to: Option<String>,
    /// Subject.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML alternative.
    pub html: Option<String>,
    /// Attachments.
    pub attachments: Vec<OutgoingAttachment>,
}

mod b64 {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(data))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

fn mailbox(field: &str, address: &str) -> Result<Mailbox, MailError> {
    Mailbox::from_str(address.trim())
        .map_err(|e| MailError::Invalid(format!("{field} address {address:?} is not valid: {e}")))
}

impl OutgoingMessage {
    /// Checks addresses, subject, sizes and attachment types.
    pub fn validate(&self) -> Result<(), MailError> {
        let invalid = |m: String| Err(MailError::Invalid(m));
        if self.to.is_empty() {
            return invalid("a message needs at least one recipient".into());
        }
        if self.to.len() + self.cc.len() > MAX_RECIPIENTS {
            return invalid(format!("at most {MAX_RECIPIENTS} recipients"));
        }
        // Building checks every address, the attachment types and the header encoding.
        self.build(
            &Mailbox::from_str("check <check@localhost>").map_err(|e| MailError::Invalid(e.to_string()))?,
        )?;
        if self.subject.trim().is_empty() {
            return invalid("the subject must not be empty".into());
        }
        if self.subject.chars().any(|c| c == '\r' || c == '\n') {
            return invalid("the subject must not contain line breaks".into());
        }
        let size = self.subject.len()
            + self.text.len()
            + self.html.as_ref().map_or(0, String::len)
            + self
                .attachments
                .iter()
                .map(|a| a.data.len() + a.filename.len())
                .sum::<usize>();
        if size > MAX_MESSAGE_BYTES {
            return invalid(format!(
                "the message is {size} bytes; the limit is {MAX_MESSAGE_BYTES}"
            ));
        }
        for a in &self.attachments {
            if a.filename.trim().is_empty() || a.filename.chars().any(char::is_control) {
                return invalid(format!("attachment file name {:?} is not valid", a.filename));
            }
        }
        Ok(())
    }

    /// The MIME message: text, or text + HTML alternative, then the attachments.
    pub fn build(&self, from: &Mailbox) -> Result<Message, MailError> {
        let mut builder = Message::builder()
            .from(from.clone())
            .subject(self.subject.clone());
        for to in &self.to {
            builder = builder.to(mailbox("to", to)?);
        }
        for cc in &self.cc {
            builder = builder.cc(mailbox("cc", cc)?);
        }
        if let Some(reply_to) = &self.reply_to {
            builder = builder.reply_to(mailbox("reply-to", reply_to)?);
        }
        let body = match &self.html {
            Some(html) => MultiPart::alternative_plain_html(self.text.clone(), html.clone()),
            None => MultiPart::mixed().singlepart(SinglePart::plain(self.text.clone())),
        };
        let message = if self.attachments.is_empty() && self.html.is_none() {
            builder.singlepart(SinglePart::plain(self.text.clone()))
        } else if self.attachments.is_empty() {
            builder.multipart(body)
        } else {
            let mut mixed = MultiPart::mixed().multipart(body);
            for a in &self.attachments {
                let content_type = ContentType::parse(&a.content_type).map_err(|e| {
                    MailError::Invalid(format!(
                        "attachment {:?} has an invalid content type {:?}: {e}",
                        a.filename, a.content_type
                    ))
                })?;
                mixed =
                    mixed.singlepart(Attachment::new(a.filename.clone()).body(a.data.clone(), content_type));
            }
            builder.multipart(mixed)
        };
        message.map_err(|e| MailError::Invalid(format!("the message cannot be built: {e}")))
    }
}

/// A new message id: time, process and a counter, unique across host processes.
fn new_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{nanos:x}-{:x}-{:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Validates `message`, applies the plugin's hourly rate and queues it; returns its id.
pub async fn enqueue(
    db: &Database,
    plugin: &str,
    grant: &MailCapability,
    message: &OutgoingMessage,
) -> Result<String, MailError> {
    message.validate()?;
    let id = new_id();
    let json = serde_json::to_vec(message).map_err(|e| MailError::Invalid(e.to_string()))?;
    let recipients = message
        .to
        .iter()
        .chain(&message.cc)
        .map(|a| a.trim())
        .collect::<Vec<_>>()
        .join(", ");
    let new = NewMessage {
        id: &id,
        plugin_id: plugin,
        recipients: &recipients,
        subject: &message.subject,
        message: &json,
    };
    // The rate is checked in the transaction of the insert: exact under concurrent sends.
    if let Enqueued::RateExceeded { recent } = db.outbox_enqueue(&new, grant.max_per_hour).await? {
        return Err(MailError::QuotaExceeded(format!(
            "{recent} messages queued in the last hour; the limit is {}",
            grant.max_per_hour
        )));
    }
    tracing::info!(plugin, id = %id, "mail queued");
    Ok(id)
}

/// Delay before attempt number `attempts + 1`: 1 s, 2 s, 4 s ... capped at 5 minutes.
pub fn backoff(attempts: u32) -> Duration {
    FIRST_BACKOFF
        .checked_mul(1u32.checked_shl(attempts.min(31)).unwrap_or(u32::MAX))
        .unwrap_or(MAX_BACKOFF)
        .min(MAX_BACKOFF)
}

/// Starts the task delivering the outbox when `smtp-url` is set; without it, messages stay
/// queued (see `lutetia outbox list`).
pub fn spawn_sender(settings: &Settings, db: Database) -> Option<tokio::task::JoinHandle<()>> {
    let Some(url) = settings.smtp_url.clone() else {
        tracing::info!("no smtp-url configured: mail stays in the outbox");
        return None;
    };
    let from = match Mailbox::from_str(&settings.mail_from) {
        Ok(from) => from,
        Err(e) => {
            tracing::error!(error = %e, "invalid mail-from; mail will not be sent");
            return None;
        }
    };
    let transport = match smtp_transport(&url, settings.smtp_credentials()) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "mail will not be sent");
            return None;
        }
    };
    let max_attempts = settings.mail_max_attempts;
    tracing::info!(smtp = %lutetia_model::settings::redact_url(&url), "mail sender started");
    Some(tokio::spawn(async move {
        loop {
            match deliver_one(&db, &transport, &from, max_attempts).await {
                Ok(true) => {}
                Ok(false) => tokio::time::sleep(IDLE_POLL).await,
                Err(e) => {
                    tracing::error!(error = %e, "outbox unavailable");
                    tokio::time::sleep(IDLE_POLL * 4).await;
                }
            }
        }
    }))
}

/// The SMTP transport for `smtp://host:port` (plain), `smtp://...?tls=required` (STARTTLS)
/// or `smtps://host:port` (TLS), with credentials in the URL if any.
pub fn smtp_transport(
    url: &str,
    credentials: Option<(String, Secret)>,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map_err(|e| MailError::SmtpUrl(e.to_string()))?
        .timeout(Some(SMTP_TIMEOUT));
    if let Some((user, password)) = credentials {
        builder = builder.credentials(Credentials::new(user, password.expose().to_owned()));
    }
    Ok(builder.build())
}

/// Claims and delivers one due message; returns whether there was one.
async fn deliver_one(
    db: &Database,
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    from: &Mailbox,
    max_attempts: u32,
) -> Result<bool, MailError> {
    let lease = i64::try_from(CLAIM_LEASE.as_millis()).unwrap_or(i64::MAX);
    let Some(claimed) = db.outbox_claim(lease).await? else {
        return Ok(false);
    };
    let attempts = u32::try_from(claimed.attempts).unwrap_or(0) + 1;
    let built = serde_json::from_slice::<OutgoingMessage>(&claimed.message)
        .map_err(|e| MailError::Invalid(format!("stored message unreadable: {e}")))
        .and_then(|m| m.build(from));
    let outcome = match built {
        Ok(message) => transport
            .send(message)
            .await
            .map_err(|e| (e.is_permanent(), e.to_string())),
        Err(e) => Err((true, e.to_string())),
    };
    match outcome {
        Ok(_) => {
            db.outbox_mark_sent(&claimed.id).await?;
            tracing::info!(plugin = %claimed.plugin_id, id = %claimed.id, attempts, "mail sent");
        }
        Err((permanent, error)) => {
            let next = (!permanent && attempts < max_attempts).then(|| {
                now_ms().saturating_add(i64::try_from(backoff(attempts - 1).as_millis()).unwrap_or(i64::MAX))
            });
            tracing::warn!(plugin = %claimed.plugin_id, id = %claimed.id, attempts, error = %error,
                gave_up = next.is_none(), "mail delivery failed");
            db.outbox_mark_failed(&claimed.id, &error, next).await?;
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> OutgoingMessage {
        OutgoingMessage {
            to: vec!["Alice <alice@example.org>".into()],
            cc: vec![],
            reply_to: None,
            subject: "Hello".into(),
            text: "Hi".into(),
            html: Some("<p>Hi</p>".into()),
            attachments: vec![OutgoingAttachment {
                filename: "invite.ics".into(),
                content_type: "text/calendar; method=REQUEST".into(),
                data: b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n".to_vec(),
            }],
        }
    }

    #[test]
    fn backoff_doubles_then_caps() {
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(20), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn valid_message_builds_with_parts() {
        let m = message();
        m.validate().expect("valid");
        let from = Mailbox::from_str("Site <noreply@localhost>").expect("from");
        let text = String::from_utf8(m.build(&from).expect("build").formatted()).expect("utf8");
        assert!(text.contains("multipart/alternative"), "{text}");
        assert!(text.contains("text/calendar"), "{text}");
        assert!(text.contains("invite.ics"), "{text}");
        let json = serde_json::to_vec(&m).expect("json");
        assert_eq!(serde_json::from_slice::<OutgoingMessage>(&json).expect("back"), m);
    }

    #[test]
    fn bad_messages_are_invalid() {
        let cases: Vec<fn(&mut OutgoingMessage)> = vec![
            |m| m.to = vec!["not an address".into()],
            |m| m.to = vec![],
            |m| m.cc = vec!["a@b@c".into()],
            |m| m.subject = " ".into(),
            |m| m.subject = "a\r\nBcc: x@y.z".into(),
            |m| m.attachments[0].content_type = "no type".into(),
            |m| m.text = "x".repeat(MAX_MESSAGE_BYTES + 1),
        ];
        for change in cases {
            let mut m = message();
            change(&mut m);
            assert!(matches!(m.validate(), Err(MailError::Invalid(_))), "{m:?}");
        }
    }
}
