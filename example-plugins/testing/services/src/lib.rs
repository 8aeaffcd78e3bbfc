//! `services`: a test-only plugin, never installed by a city. It drives the `files` and
//! `mail` services from HTTP requests so the integration tests reach them through a real
//! plugin call.
//!
//! - `POST /files/put?name=N&type=T` stores the body; `GET /files/get?name=N` returns it;
//!   `GET /files/list?prefix=P` lists names; `POST /files/delete?name=N`.
//! - `POST /upload/echo` returns the raw body; `POST /upload/store` stores every file part.
//! - `POST /mail/send` with JSON `{to, subject, text, html, ics}` queues a message.

use lutetia_sdk::serde_json::{Value, json};
use lutetia_sdk::{Error, Plugin, Reply, Request, Response, files, mail};

/// The plugin.
struct Services;

fn param(req: &Request, name: &str) -> String {
    req.query_param(name).unwrap_or_default()
}

fn info_json(f: &files::FileInfo) -> Value {
    json!({ "name": f.name, "content_type": f.content_type, "size": f.size, "sha256": f.sha256 })
}

fn route(req: &Request) -> Result<Reply, Error> {
    Ok(match (req.method(), req.path()) {
        ("POST", "/files/put") => {
            let info = files::put(&param(req, "name"), &param(req, "type"), req.body())?;
            Response::json(&info_json(&info)).into()
        }
        ("GET", "/files/get") => match files::get(&param(req, "name"))? {
            Some((_, data)) => Response::new(200).body(data).into(),
            None => Response::not_found().into(),
        },
        ("GET", "/files/list") => {
            let names: Vec<String> = files::list(&param(req, "prefix"), 100)?
                .into_iter()
                .map(|f| f.name)
                .collect();
            Response::json(&names).into()
        }
        ("POST", "/files/delete") => Response::json(&files::delete(&param(req, "name"))?).into(),
        ("POST", "/upload/echo") => Response::new(200).body(req.body().to_vec()).into(),
        ("POST", "/upload/store") => {
            let mut stored = Vec::new();
            for part in req.multipart()?.into_iter().filter(|p| p.is_file()) {
                let name = part.filename.clone().unwrap_or_default();
                let content_type = part.content_type.clone().unwrap_or_default();
                stored.push(info_json(&files::put(&name, &content_type, &part.data)?));
            }
            Response::json(&stored).into()
        }
        ("POST", "/mail/send") => {
            let v: Value = req.json()?;
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
            let mut m = mail::Message::new(s("to"), s("subject"), s("text"));
            if let Some(html) = v["html"].as_str() {
                m = m.html(html);
            }
            if let Some(ics) = v["ics"].as_str() {
                m = m.attach("invite.ics", "text/calendar; method=REQUEST", ics);
            }
            Response::json(&json!({ "id": m.send()? })).into()
        }
        _ => Response::not_found().into(),
    })
}

impl Plugin for Services {
    fn handle(req: Request) -> Reply {
        route(&req).into()
    }
}

lutetia_sdk::export!(Services);
