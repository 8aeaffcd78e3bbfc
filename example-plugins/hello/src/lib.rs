//! `hello`: the example Lutetia plugin.
//!
//! - `GET /`: a page with the configured greeting and a visit counter kept in kv.
//! - `/api/echo` (any method): the request as the plugin sees it, as JSON.
//! - `GET|POST|DELETE /api/kv/{key}`: read, store (the request body) or delete a value.
//! - `GET /events`: publishes an event and shows the events and job runs delivered so far.
//! - `GET|POST /guestbook`: a guestbook kept in the document store (`store_demo.rs`).
//! - `GET|POST /photos`: upload and list photos (`files`), see `files_demo.rs`.
//! - `GET|POST /mail`: queue a message with an `.ics` invitation (`mail`), see `mail_demo.rs`.
//! - anything else: a "Not found" page with status 404.

use lutetia_sdk::serde_json::{Map, Value, json};
use lutetia_sdk::{Error, Event, Job, Page, Plugin, Reply, Request, Response, config, html, kv, log, url};

mod events_demo;
mod store_demo;

mod files_demo;
mod mail_demo;

/// The plugin.
struct Hello;

impl Plugin for Hello {
    fn handle(req: Request) -> Reply {
        match req.segments().as_slice() {
            [] if req.method() == "GET" => home(&req),
            [] => method_not_allowed("GET"),
            ["api", "echo"] => echo(&req),
            ["api", "kv", key] => kv_value(&req, &url::decode(key)).into(),
            ["events"] if req.method() == "GET" => events_demo::page(&req),
            ["guestbook"] => store_demo::guestbook(&req).into(),
            ["photos"] => files_demo::photos(&req),
            ["mail"] => mail_demo::mail(&req),
            _ => not_found(&req),
        }
    }

    fn on_event(event: Event) -> Result<(), String> {
        events_demo::on_event(event)
    }

    fn on_schedule(job: Job) -> Result<(), String> {
        events_demo::on_schedule(job)
    }
}

lutetia_sdk::export!(Hello);

/// `GET /`: the greeting and the visit counter.
fn home(req: &Request) -> Reply {
    let greeting = config::get_or("greeting", "Hello");
    let visits = match kv::increment("visits", 1) {
        Ok(n) => n.to_string(),
        Err(e) => {
            log::warn(format!("visit counter unavailable: {e}"));
            "unavailable".to_owned()
        }
    };
    let body = format!(
        "<p class=\"greeting\">{greeting}</p>\n\
         <p>Visits: {visits}</p>\n\
         <p>Try the <a href=\"{echo}\">echo API</a>.</p>",
        greeting = html::escape(&greeting),
        echo = html::escape(&req.link("/api/echo")),
    );
    Page::new("Hello", body)
        .header("cache-control", "no-store")
        .into()
}

/// `/api/echo`: what the plugin received, as JSON.
fn echo(req: &Request) -> Reply {
    let mut params = Map::new();
    for (name, value) in req.query_params() {
        // The first value of a repeated parameter wins, as with `Request::query_param`.
        params.entry(name).or_insert(Value::String(value));
    }
    let user = req.user().map(|u| {
        json!({
            "id": u.id(),
            "login": u.login(),
            "display_name": u.display_name(),
            "roles": u.roles(),
            "rights": u.rights(),
        })
    });
    Response::json(&json!({
        "method": req.method(),
        "path": req.path(),
        "query": req.query(),
        "query_params": params,
        "greeting": config::get("greeting"),
        "body_len": req.body().len(),
        "request_id": req.request_id(),
        "locale": req.locale(),
        "mount": req.mount(),
        "user": user,
        "headers": req.headers(),
    }))
    .into()
}

/// `/api/kv/{key}`: `GET` returns the stored bytes, `POST` stores the body, `DELETE`
/// deletes the value.
fn kv_value(req: &Request, key: &str) -> Result<Reply, Error> {
    match req.method() {
        "GET" => match kv::get(key)? {
            Some(value) => Ok(Response::new(200)
                .header("content-type", "application/octet-stream")
                .body(value)
                .into()),
            None => Ok(Response::json(&json!({
                "error": "not-found",
                "message": format!("no value stored at {key:?}"),
            }))
            .status(404)
            .into()),
        },
        "POST" | "PUT" => {
            kv::set(key, req.body())?;
            Ok(Response::json(&json!({ "key": key, "bytes": req.body().len() })).into())
        }
        "DELETE" => {
            let existed = kv::delete(key)?;
            Ok(Response::json(&json!({ "key": key, "deleted": existed })).into())
        }
        _ => Ok(method_not_allowed("GET, POST, PUT, DELETE")),
    }
}

/// A plain-text 405 naming the allowed methods.
fn method_not_allowed(allow: &str) -> Reply {
    Response::text("Method not allowed")
        .status(405)
        .header("allow", allow)
        .into()
}

/// The friendly 404 page, naming the (decoded, escaped) path asked for.
fn not_found(req: &Request) -> Reply {
    let path = url::decode(&req.link(req.path()));
    let body = format!(
        "<p>Sorry, there is no page at <code>{}</code>.</p>\n\
         <p><a href=\"{}\">Back to the greeting</a></p>",
        html::escape(&path),
        html::escape(&req.link("/")),
    );
    Page::new("Not found", body).status(404).into()
}
