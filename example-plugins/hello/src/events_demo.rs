//! The events and scheduled-jobs demo: `GET /events`.
//!
//! Each view publishes `hello.visited`; hello subscribes to `hello.*` and counts the events
//! it receives (`events:received`), so a reload shows the count catching up as the host
//! delivers them. The `digest` job (every minute, see `plugin.toml`) counts its runs.

use lutetia_sdk::serde_json::json;
use lutetia_sdk::{Event, Job, Page, Reply, Request, events, html, kv, log};

/// `GET /events`: publish one event, show what the host delivered and ran so far.
pub fn page(req: &Request) -> Reply {
    let published = match events::publish_json("hello.visited", &json!({ "path": req.path() })) {
        Ok(()) => "Published one <code>hello.visited</code> event.".to_owned(),
        Err(e) => {
            log::warn(format!("cannot publish hello.visited: {e}"));
            format!("Could not publish: {}", html::escape(&e.to_string()))
        }
    };
    let count = |key: &str| {
        kv::get_string(key)
            .ok()
            .flatten()
            .unwrap_or_else(|| "0".to_owned())
    };
    let body = format!(
        "<p>{published}</p>\n\
         <p>Events received: {received}</p>\n\
         <p>Digest runs: {runs} (the <code>digest</code> job runs every minute)</p>\n\
         <p><a href=\"{again}\">Reload</a></p>",
        received = html::escape(&count("events:received")),
        runs = html::escape(&count("digest:runs")),
        again = html::escape(&req.link("/events")),
    );
    Page::new("Events", body)
        .header("cache-control", "no-store")
        .into()
}

/// Counts the `hello.*` events delivered to hello.
pub fn on_event(event: Event) -> Result<(), String> {
    let _ = event;
    kv::increment("events:received", 1)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The `digest` job: counts its runs and remembers the last period.
pub fn on_schedule(job: Job) -> Result<(), String> {
    if job.name != "digest" {
        return Err(format!("unknown job {:?}", job.name));
    }
    kv::increment("digest:runs", 1).map_err(|e| e.to_string())?;
    kv::set("digest:last", job.scheduled_at.to_string()).map_err(|e| e.to_string())
}
