//! `ticker`: a test-only plugin, never installed by a city.
//!
//! Its job `tick` (every second) increments the kv counter `run:SCHEDULED_AT`, so a test
//! can check that each period ran exactly once across host processes; `GET /runs` returns
//! `{scheduled_at: count}`. It subscribes to nothing: if an event ever reached it, it
//! would count it in `events`, shown by `GET /events`.

use lutetia_sdk::serde_json::{Map, Value};
use lutetia_sdk::{Event, Job, Plugin, Reply, Request, Response, kv};

/// The plugin.
struct Ticker;

impl Plugin for Ticker {
    fn handle(req: Request) -> Reply {
        match (req.method(), req.segments().as_slice()) {
            ("GET", ["runs"]) => runs().into(),
            ("GET", ["events"]) => match kv::get_string("events") {
                Ok(n) => Response::text(n.unwrap_or_else(|| "0".into())).into(),
                Err(e) => e.into(),
            },
            _ => Response::not_found().into(),
        }
    }

    fn on_schedule(job: Job) -> Result<(), String> {
        if job.name != "tick" {
            return Err(format!("unknown job {:?}", job.name));
        }
        kv::increment(&format!("run:{}", job.scheduled_at), 1)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn on_event(_event: Event) -> Result<(), String> {
        kv::increment("events", 1).map(|_| ()).map_err(|e| e.to_string())
    }
}

/// `{scheduled_at: runs}` for every period that ran.
fn runs() -> Result<Reply, lutetia_sdk::Error> {
    let mut all = Map::new();
    let mut after: Option<String> = None;
    loop {
        let keys = kv::list_keys("run:", after.as_deref(), 100)?;
        for key in &keys {
            let count = kv::get_string(key)?
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            all.insert(key.trim_start_matches("run:").to_owned(), Value::from(count));
        }
        match keys.last() {
            Some(last) if keys.len() == 100 => after = Some(last.clone()),
            _ => break,
        }
    }
    Ok(Response::json(&all).into())
}

lutetia_sdk::export!(Ticker);
