//! `spin`: a test-only plugin, never installed by a city.
//!
//! `GET /` loops forever, so the host's per-call deadline must stop it; `GET /ok` answers
//! `ok`, so a test can show that the next request gets a fresh instance.

use lutetia_sdk::{Plugin, Reply, Request, Response};

/// The plugin.
struct Spin;

impl Plugin for Spin {
    fn handle(req: Request) -> Reply {
        match (req.method(), req.path()) {
            ("GET", "/") => spin(),
            ("GET", "/ok") => Response::text("ok").into(),
            _ => Response::not_found().into(),
        }
    }
}

lutetia_sdk::export!(Spin);

/// Never returns: `black_box` keeps the optimiser from proving anything about the loop.
fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}
