//! `memory-hog`: a test-only plugin, never installed by a city.
//!
//! `GET /` allocates and writes memory without bound, so the host's memory cap must stop
//! it (the failed allocation traps the instance); `GET /ok` answers `ok`, so a test can
//! show that the next request gets a fresh instance.

use lutetia_sdk::{Plugin, Reply, Request, Response};

/// The plugin.
struct MemoryHog;

impl Plugin for MemoryHog {
    fn handle(req: Request) -> Reply {
        match (req.method(), req.path()) {
            ("GET", "/") => hog(),
            ("GET", "/ok") => Response::text("ok").into(),
            _ => Response::not_found().into(),
        }
    }
}

lutetia_sdk::export!(MemoryHog);

/// One allocation: 1 MiB.
const CHUNK: usize = 1 << 20;

/// Never returns: allocates 1 MiB chunks, writes every byte of each and keeps them all,
/// until an allocation fails and the instance traps.
fn hog() -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    let mut round: u8 = 0;
    loop {
        round = round.wrapping_add(1);
        // Non-zero bytes: the memory is really written, not just reserved.
        let chunk = vec![round | 1; CHUNK];
        hoard.push(std::hint::black_box(chunk));
        std::hint::black_box(&hoard);
    }
}
