//! Outgoing mail (capability `mail`): a plugin queues a message in the host's outbox, and
//! the host sends it over SMTP with retries. A plugin never talks to a mail server.
//!
//! Invalid addresses, an empty subject or one with line breaks, or a message over 10 MiB
//! are [`Error::Invalid`]; more messages than the manifest's `max-per-hour` are
//! [`Error::QuotaExceeded`].
//!
//! ```no_run
//! use lutetia_sdk::mail::Message;
//!
//! let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n";
//! let id = Message::new("Jeanne Dupont <jeanne@example.org>", "Your appointment", "See you on Monday.")
//!     .html("<p>See you on <b>Monday</b>.</p>")
//!     .attach("appointment.ics", "text/calendar; method=REQUEST", ics)
//!     .send()?;
//! # let _ = id;
//! # Ok::<(), lutetia_sdk::Error>(())
//! ```

use crate::__bindings::lutetia::plugin::mail as wit;
use crate::Error;

/// A message to queue, built step by step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    to: Vec<String>,
    cc: Vec<String>,
    reply_to: Option<String>,
    subject: String,
    text: String,
    html: Option<String>,
    attachments: Vec<(String, String, Vec<u8>)>,
}

impl Message {
    /// A plain-text message to one recipient (`name@example.org` or `Name <name@example.org>`).
    ///
    /// ```
    /// let m = lutetia_sdk::mail::Message::new("a@example.org", "Hello", "Hi!");
    /// assert_eq!(m.recipients(), ["a@example.org"]);
    /// ```
    pub fn new(to: impl Into<String>, subject: impl Into<String>, text: impl Into<String>) -> Message {
        Message {
            to: vec![to.into()],
            subject: subject.into(),
            text: text.into(),
            ..Message::default()
        }
    }

    /// Adds a recipient.
    pub fn to(mut self, address: impl Into<String>) -> Message {
        self.to.push(address.into());
        self
    }

    /// Adds a copy recipient.
    pub fn cc(mut self, address: impl Into<String>) -> Message {
        self.cc.push(address.into());
        self
    }

    /// Where replies go, instead of the site's sender address.
    pub fn reply_to(mut self, address: impl Into<String>) -> Message {
        self.reply_to = Some(address.into());
        self
    }

    /// An HTML alternative to the text body.
    pub fn html(mut self, html: impl Into<String>) -> Message {
        self.html = Some(html.into());
        self
    }

    /// Attaches a file (for example an `.ics` invitation, `text/calendar; method=REQUEST`).
    pub fn attach(
        mut self,
        filename: impl Into<String>,
        content_type: impl Into<String>,
        data: impl AsRef<[u8]>,
    ) -> Message {
        self.attachments
            .push((filename.into(), content_type.into(), data.as_ref().to_vec()));
        self
    }

    /// The recipients (`to`).
    pub fn recipients(&self) -> &[String] {
        &self.to
    }

    /// Queues the message in the outbox; returns its id.
    pub fn send(&self) -> Result<String, Error> {
        send(self)
    }
}

/// Queues `message` in the host's outbox; returns its id.
///
/// ```no_run
/// let m = lutetia_sdk::mail::Message::new("a@example.org", "Hello", "Hi!");
/// let id = lutetia_sdk::mail::send(&m)?;
/// # Ok::<(), lutetia_sdk::Error>(())
/// ```
pub fn send(message: &Message) -> Result<String, Error> {
    let attachments: Vec<wit::Attachment> = message
        .attachments
        .iter()
        .map(|(filename, content_type, data)| wit::Attachment {
            filename: filename.clone(),
            content_type: content_type.clone(),
            data: data.clone(),
        })
        .collect();
    let wit_message = wit::Message {
        to: message.to.clone(),
        cc: message.cc.clone(),
        reply_to: message.reply_to.clone(),
        subject: message.subject.clone(),
        text: message.text.clone(),
        html: message.html.clone(),
        attachments,
    };
    Ok(wit::send(&wit_message)?)
}
