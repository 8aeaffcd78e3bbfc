//! `hostile-cpu`: a test-only plugin, never installed by a city.
//!
//! It plays the noisy neighbour of the isolation tests and benchmarks:
//! - `GET /spin` loops on guest code until the host's deadline stops it;
//! - `GET /host-loop?service=config|kv|log` loops on synchronous host calls (each a round
//!   trip into the host, `kv` one into the database too, `log` a flood of log lines that
//!   the host cuts at the per-call and per-minute limits);
//! - `GET /burn?ms=N` computes for about N ms of its own CPU, then answers `burnt`;
//! - `GET /ok` answers `ok` at once.

use lutetia_sdk::{Plugin, Reply, Request, Response, config, kv, log};

/// The plugin.
struct HostileCpu;

impl Plugin for HostileCpu {
    fn handle(req: Request) -> Reply {
        match (req.method(), req.path()) {
            ("GET", "/spin") => spin(),
            ("GET", "/host-loop") => host_loop(req.query_param("service").as_deref()),
            ("GET", "/burn") => {
                let ms = req.query_param("ms").and_then(|v| v.parse().ok()).unwrap_or(50);
                burn(ms);
                Response::text("burnt").into()
            }
            ("GET", "/ok") => Response::text("ok").into(),
            _ => Response::not_found().into(),
        }
    }
}

lutetia_sdk::export!(HostileCpu);

/// Never returns: `black_box` keeps the optimiser from proving anything about the loop.
fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

/// Never returns: every turn is a call into the host.
fn host_loop(service: Option<&str>) -> ! {
    let mut n: u64 = 0;
    loop {
        match service {
            Some("kv") => {
                let _ = std::hint::black_box(kv::get("hostile-cpu"));
            }
            Some("log") => {
                n = n.wrapping_add(1);
                log::info(format!("flood line {n}: {}", "x".repeat(200)));
            }
            _ => {
                let _ = std::hint::black_box(config::get("missing"));
            }
        }
    }
}

/// Busy work for about `ms` milliseconds of wall time, measured by the guest's clock.
fn burn(ms: u64) {
    let started = std::time::Instant::now();
    let mut n: u64 = 0;
    while started.elapsed().as_millis() < u128::from(ms) {
        for _ in 0..10_000 {
            n = std::hint::black_box(n.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}
