//! `/guestbook`: a small guestbook kept in the document store.
//!
//! `GET` lists the 20 newest messages (a query ordered by a field, on an index); `POST`
//! (the form) stores a message as a typed document and redirects back to the list.

use lutetia_sdk::serde::{Deserialize, Serialize};
use lutetia_sdk::{Error, Page, Reply, Request, html, kv, store};

/// The collection of the messages.
const COLLECTION: &str = "guestbook";

/// One message of the guestbook.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "lutetia_sdk::serde")]
struct Entry {
    /// Sequence number: the order of the list, newest first.
    seq: i64,
    /// Who signed.
    name: String,
    /// What they wrote.
    message: String,
}

/// `/guestbook`.
pub fn guestbook(req: &Request) -> Result<Reply, Error> {
    store::ensure_index(COLLECTION, &["seq"], false)?;
    match req.method() {
        "POST" => {
            let form = req.form()?;
            let field = |name: &str| {
                form.iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.trim().to_owned())
                    .unwrap_or_default()
            };
            let (name, message) = (field("name"), field("message"));
            if message.is_empty() || message.chars().count() > 500 || name.chars().count() > 80 {
                return Err(Error::Invalid(
                    "a message of 1 to 500 characters, a name of at most 80".into(),
                ));
            }
            let seq = kv::increment("guestbook-seq", 1)?;
            let name = if name.is_empty() {
                "Anonyme".to_owned()
            } else {
                name
            };
            store::insert(COLLECTION, &format!("{seq:012}"), &Entry { seq, name, message })?;
            Ok(Reply::redirect(req.link("/guestbook")))
        }
        "GET" => {
            let page = store::query(COLLECTION)
                .order_by_desc("seq")
                .limit(20)
                .fetch::<Entry>()?;
            let total = store::query(COLLECTION).count()?;
            let plural = if total == 1 { "" } else { "s" };
            let mut body = format!(
                "<form method=\"post\" action=\"{action}\">\n\
                 <p><label>Name <input name=\"name\" maxlength=\"80\"></label></p>\n\
                 <p><label>Message <textarea name=\"message\" maxlength=\"500\" required></textarea></label></p>\n\
                 <p><button type=\"submit\">Sign</button></p>\n</form>\n<p>{total} message{plural}</p>\n<ul class=\"guestbook\">\n",
                action = html::escape(&req.link("/guestbook")),
            );
            for doc in &page.documents {
                body.push_str(&format!(
                    "<li><strong>{}</strong>: {}</li>\n",
                    html::escape(&doc.data.name),
                    html::escape(&doc.data.message)
                ));
            }
            body.push_str("</ul>");
            Ok(Page::new("Guestbook", body)
                .header("cache-control", "no-store")
                .into())
        }
        _ => Err(Error::Invalid("GET or POST".into())),
    }
}
