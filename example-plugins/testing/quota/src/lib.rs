//! `quota`: a test-only plugin, never installed by a city. Each route makes one call to a
//! service that has a quota, so the integration tests (`tests/tests/all/quotas.rs`) can hit
//! every quota with concurrent requests and see `quota-exceeded` (HTTP 429).
//!
//! - `POST /kv/set?key=K&size=N` writes N bytes under K; `POST /kv/delete?key=K`;
//!   `POST /kv/create?key=K&size=N` (compare-and-swap from absent); `POST /kv/incr?key=K`.
//! - `POST /events/publish?topic=T` publishes the body (`{}` when empty).
//! - `POST /files/put?name=F&size=N` stores N bytes of text; `POST /files/delete?name=F`.
//! - `POST /mail/send` queues a message.
//! - `POST /log?lines=N&size=S&tag=T` logs N lines `T-i-xxx…` of S bytes; `POST /log/raw`
//!   logs the body as one message.

use lutetia_sdk::serde_json::json;
use lutetia_sdk::{Error, Plugin, Reply, Request, Response, events, files, kv, log, mail};

/// The plugin.
struct Quota;

fn param(req: &Request, name: &str) -> String {
    req.query_param(name).unwrap_or_default()
}

fn number(req: &Request, name: &str) -> Result<usize, Error> {
    param(req, name)
        .parse()
        .map_err(|_| Error::Invalid(format!("query parameter `{name}` must be a number")))
}

fn route(req: &Request) -> Result<Reply, Error> {
    let ok =
        |value: lutetia_sdk::serde_json::Value| -> Result<Reply, Error> { Ok(Response::json(&value).into()) };
    match (req.method(), req.path()) {
        ("POST", "/kv/set") => {
            kv::set(&param(req, "key"), vec![b'v'; number(req, "size")?])?;
            ok(json!(true))
        }
        ("POST", "/kv/create") => ok(json!(kv::compare_and_swap(
            &param(req, "key"),
            None,
            vec![b'v'; number(req, "size")?]
        )?)),
        ("POST", "/kv/delete") => ok(json!(kv::delete(&param(req, "key"))?)),
        ("POST", "/kv/incr") => ok(json!(kv::increment(&param(req, "key"), 1)?)),
        ("POST", "/events/publish") => {
            let body = String::from_utf8_lossy(req.body());
            events::publish(&param(req, "topic"), if body.is_empty() { "{}" } else { &body })?;
            ok(json!(true))
        }
        ("POST", "/files/put") => {
            let info = files::put(
                &param(req, "name"),
                "text/plain",
                vec![b'f'; number(req, "size")?],
            )?;
            ok(json!(info.size))
        }
        ("POST", "/files/delete") => ok(json!(files::delete(&param(req, "name"))?)),
        ("POST", "/mail/send") => {
            let id = mail::Message::new("agent@example.org", "Quota test", "Hello").send()?;
            ok(json!(id))
        }
        ("POST", "/log") => {
            let size = number(req, "size")?;
            let tag = param(req, "tag");
            for i in 0..number(req, "lines")? {
                let mut line = format!("{tag}-{i}-");
                line.push_str(&"x".repeat(size.saturating_sub(line.len())));
                log::info(line);
            }
            ok(json!(true))
        }
        ("POST", "/log/raw") => {
            log::warn(String::from_utf8_lossy(req.body()));
            ok(json!(true))
        }
        _ => Ok(Response::not_found().into()),
    }
}

impl Plugin for Quota {
    fn handle(req: Request) -> Reply {
        route(&req).into()
    }
}

lutetia_sdk::export!(Quota);
