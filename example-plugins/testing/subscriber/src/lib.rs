//! `subscriber`: a test-only plugin, never installed by a city.
//!
//! Subscribes to `test.*` and records every event it accepts, in the order received, in
//! kv (`received:NNNNNN`); `GET /received` lists them as JSON. A payload may ask it to
//! misbehave so retries can be shown: `{"fail": N}` answers `Err` on the first N attempts,
//! `{"trap": N}` panics (the instance traps) on the first N attempts.

use lutetia_sdk::serde_json::{Value, json};
use lutetia_sdk::{Event, Plugin, Reply, Request, Response, kv};

/// The plugin.
struct Subscriber;

impl Plugin for Subscriber {
    fn handle(req: Request) -> Reply {
        match (req.method(), req.segments().as_slice()) {
            ("GET", ["received"]) => received().into(),
            _ => Response::not_found().into(),
        }
    }

    fn on_event(event: Event) -> Result<(), String> {
        let payload: Value = event.json().map_err(|e| e.to_string())?;
        let asked = |key: &str| payload.get(key).and_then(Value::as_u64).unwrap_or(0);
        if u64::from(event.attempt) <= asked("fail") {
            return Err(format!("asked to fail attempt {}", event.attempt));
        }
        if u64::from(event.attempt) <= asked("trap") {
            panic!("subscriber: asked to trap on attempt {}", event.attempt);
        }
        let n = kv::increment("count", 1).map_err(|e| e.to_string())?;
        let record = json!({
            "id": event.id,
            "topic": event.topic,
            "publisher": event.publisher,
            "payload": payload,
            "attempt": event.attempt,
        });
        kv::set(&format!("received:{n:06}"), record.to_string()).map_err(|e| e.to_string())
    }
}

/// Every event recorded, in order.
fn received() -> Result<Reply, lutetia_sdk::Error> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let keys = kv::list_keys("received:", after.as_deref(), 100)?;
        for key in &keys {
            if let Some(text) = kv::get_string(key)? {
                all.push(lutetia_sdk::serde_json::from_str::<Value>(&text).unwrap_or(Value::Null));
            }
        }
        match keys.last() {
            Some(last) if keys.len() == 100 => after = Some(last.clone()),
            _ => break,
        }
    }
    Ok(Response::json(&all).into())
}

lutetia_sdk::export!(Subscriber);
