//! `publisher`: a test-only plugin, never installed by a city.
//!
//! `POST /publish` publishes the request body (JSON) on `test.ping`; `POST /publish/TOPIC`
//! on `TOPIC` (declared or not: an undeclared one answers 403 `denied`). The answer is the
//! host's verdict: 200, or the error's status and JSON.

use lutetia_sdk::serde_json::json;
use lutetia_sdk::{Plugin, Reply, Request, Response, events};

/// The plugin.
struct Publisher;

impl Plugin for Publisher {
    fn handle(req: Request) -> Reply {
        let topic = match (req.method(), req.segments().as_slice()) {
            ("POST", ["publish"]) => "test.ping".to_owned(),
            ("POST", ["publish", topic]) => (*topic).to_owned(),
            _ => return Response::not_found().into(),
        };
        let payload = String::from_utf8_lossy(req.body()).into_owned();
        match events::publish(&topic, &payload) {
            Ok(()) => Response::json(&json!({ "published": topic })).into(),
            Err(e) => e.into(),
        }
    }
}

lutetia_sdk::export!(Publisher);
