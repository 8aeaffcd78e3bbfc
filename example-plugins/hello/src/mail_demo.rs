//! `GET|POST /mail`: the `mail` service. A form queues a message (text, HTML alternative
//! and an `.ics` invitation) in the host's outbox; the host sends it when an SMTP server is
//! configured, and `lutetia outbox list` shows it either way.

use lutetia_sdk::{Error, Page, Reply, Request, html, mail};

/// `/mail`: the form; a POST queues the message.
pub fn mail(req: &Request) -> Reply {
    match req.method() {
        "GET" => form(req, ""),
        "POST" => match send(req) {
            Ok(id) => form(
                req,
                &format!(
                    "<p role=\"status\">Message queued (id {}).</p>",
                    html::escape(&id)
                ),
            ),
            Err(e) => form(
                req,
                &format!(
                    "<p class=\"error\" role=\"alert\">{}</p>",
                    html::escape(&e.to_string())
                ),
            ),
        },
        _ => Reply::from(lutetia_sdk::Response::text("Method not allowed").status(405)),
    }
}

fn send(req: &Request) -> Result<String, Error> {
    let fields = req.form()?;
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let text = field("message");
    let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Lutetia//hello//EN\r\nMETHOD:REQUEST\r\n\
               BEGIN:VEVENT\r\nUID:hello-demo@lutetia\r\nDTSTAMP:20260101T090000Z\r\n\
               DTSTART:20260105T090000Z\r\nDTEND:20260105T093000Z\r\nSUMMARY:Rendez-vous\r\n\
               END:VEVENT\r\nEND:VCALENDAR\r\n";
    mail::Message::new(field("to"), field("subject"), text.clone())
        .html(format!("<p>{}</p>", html::escape(&text)))
        .attach("rendez-vous.ics", "text/calendar; method=REQUEST", ics)
        .send()
}

fn form(req: &Request, notice: &str) -> Reply {
    let body = format!(
        "{notice}\n<form method=\"post\" action=\"{action}\">\n\
         <label for=\"to\">To</label> <input type=\"email\" id=\"to\" name=\"to\" required>\n\
         <label for=\"subject\">Subject</label> <input id=\"subject\" name=\"subject\" required>\n\
         <label for=\"message\">Message</label> <textarea id=\"message\" name=\"message\"></textarea>\n\
         <button type=\"submit\">Queue the message</button>\n</form>",
        action = html::escape(&req.link("/mail")),
    );
    Page::new("Mail", body).into()
}
