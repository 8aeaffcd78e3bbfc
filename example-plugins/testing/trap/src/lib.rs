//! `trap`: a test-only plugin, never installed by a city.
//!
//! `GET /` panics, which traps the instance; `GET /ok` answers `ok`, so a test can show
//! that the next request gets a fresh instance.

use lutetia_sdk::{Plugin, Reply, Request, Response};

/// The plugin.
struct Trap;

impl Plugin for Trap {
    fn handle(req: Request) -> Reply {
        match (req.method(), req.path()) {
            ("GET", "/") => panic!("trap plugin: deliberate panic on GET /"),
            ("GET", "/ok") => Response::text("ok").into(),
            _ => Response::not_found().into(),
        }
    }
}

lutetia_sdk::export!(Trap);
