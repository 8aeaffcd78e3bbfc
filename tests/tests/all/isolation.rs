//! Isolation under attack: a plugin that burns CPU or floods the log, however many calls
//! of it run, never stops the host's own routes or another plugin from answering, and a
//! call whose client went away is cancelled. (Pathological pages are in `http_edges`.)
//!
//! Every check is an ordering ("answered before any spinning call ended"), never a timing:
//! the spinning calls of `hostile-cpu` run until their 20 s deadline, and each check must
//! be complete while all of them are still running.

use std::time::{Duration, Instant};

use lutetia_tests::{Backend, Host, TestDb};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

const BIN: &str = env!("CARGO_BIN_EXE_lutetia-test-host");
/// The deadline in `hostile-cpu`'s manifest.
const HOSTILE_DEADLINE: Duration = Duration::from_secs(20);

/// Fires `n` calls at `path` of the hostile plugin, each on its own connection.
fn flood(host: &Host, path: &str, n: usize) -> Vec<JoinHandle<u16>> {
    (0..n)
        .map(|_| {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("client");
            let url = host.url(path);
            tokio::spawn(async move { client.get(url).send().await.map_or(0, |r| r.status().as_u16()) })
        })
        .collect()
}

/// While `n` calls of `path` burn CPU, `/healthz` and another plugin (its page, which
/// writes to the database) answer again and again, and all of that happens before any of
/// the hostile calls has ended.
async fn neighbours_keep_answering(path: &str, n: usize) {
    let db = TestDb::new(Backend::Sqlite).await;
    let host = Host::start(BIN, &db, &[]).await;
    let started = Instant::now();
    let hostile = flood(&host, path, n);
    // Give the flood time to arrive and start burning; the checks below are positive, so
    // this wait cannot make the test pass by itself.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for round in 0..10 {
        let (status, body) = host.get("/healthz").await;
        assert_eq!(status, 200, "round {round}: {body}");
        let (status, body) = host.get("/p/hello/").await;
        assert_eq!(status, 200, "round {round}: {body}");
        let (status, body) = host.get("/p/hello/api/echo?round=1").await;
        assert_eq!(status, 200, "round {round}: {body}");
    }
    let ended = hostile.iter().filter(|call| call.is_finished()).count();
    assert_eq!(
        ended,
        0,
        "{ended} of {n} hostile calls to {path} ended before the neighbours' {} requests were answered ({:?} after the flood)",
        30,
        started.elapsed()
    );
    assert!(
        started.elapsed() < HOSTILE_DEADLINE,
        "the checks must finish inside the hostile deadline for the ordering to mean anything"
    );
    // The hostile calls end as 503s: at their deadline, or, for those queued behind the
    // plugin's running calls, when they have waited `max-queue-wait-ms` (10 s).
    for call in hostile {
        let status = call.await.expect("task");
        assert_eq!(status, 503);
    }
    let log = host.log();
    assert!(
        log.contains("plugin=hostile-cpu") && log.contains("deadline"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_spinning_call_does_not_slow_the_neighbours() {
    neighbours_keep_answering("/p/hostile-cpu/spin", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_spinning_calls_do_not_stop_the_neighbours() {
    neighbours_keep_answering("/p/hostile-cpu/spin", 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_spinning_calls_do_not_stop_the_neighbours() {
    neighbours_keep_answering("/p/hostile-cpu/spin", 64).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loop_of_host_calls_does_not_stop_the_neighbours() {
    neighbours_keep_answering("/p/hostile-cpu/host-loop?service=config", 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loop_of_database_calls_does_not_stop_the_neighbours() {
    neighbours_keep_answering("/p/hostile-cpu/host-loop?service=kv", 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_log_lines_does_not_stop_the_neighbours() {
    neighbours_keep_answering("/p/hostile-cpu/host-loop?service=log", 4).await;
}

/// Sends a bare GET on a fresh connection and returns the connection, unread.
async fn raw_get(host: &Host, path: &str) -> tokio::net::TcpStream {
    let addr = host.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_client_went_away_is_cancelled() {
    let db = TestDb::new(Backend::Sqlite).await;
    let config = db.dir().join("one-slot.toml");
    std::fs::write(
        &config,
        "[limits]\nmax-concurrent-per-plugin = 1\nmax-queued-per-plugin = 0\n",
    )
    .expect("write config");
    let host = Host::start(BIN, &db, &["--config", config.to_str().expect("utf-8 path")]).await;

    // The plugin's one slot is taken by a spinning call: its other routes are refused.
    // (A probe that holds the slot when the spin arrives gets the spin refused instead, as
    // there is no queue: then the spin is sent again.)
    let mut spinning = raw_get(&host, "/p/hostile-cpu/spin").await;
    let mut taken = Instant::now();
    let mut refused = false;
    for _ in 0..200 {
        let (status, body) = host.get("/p/hostile-cpu/ok").await;
        if status == 503 && body.contains("very busy") {
            refused = true;
            break;
        }
        assert_eq!(
            (status, body.as_str()),
            (200, "ok"),
            "before the spin was admitted"
        );
        let mut answer = [0u8; 64];
        let spin_answered = tokio::time::timeout(Duration::from_millis(20), spinning.read(&mut answer)).await;
        if let Ok(read) = spin_answered {
            let n = read.expect("read the spin's answer");
            let head = String::from_utf8_lossy(&answer[..n]).into_owned();
            assert!(
                head.contains(" 503 "),
                "the spin was refused, not answered: {head}"
            );
            spinning = raw_get(&host, "/p/hostile-cpu/spin").await;
            taken = Instant::now();
        }
    }
    assert!(refused, "the spinning call never took the plugin's only slot");

    // The client goes away: the call is cancelled and the slot is free again long before
    // the 20 s deadline would have freed it.
    drop(spinning);
    let mut freed = false;
    while taken.elapsed() < HOSTILE_DEADLINE - Duration::from_secs(5) {
        let (status, body) = host.get("/p/hostile-cpu/ok").await;
        if status == 200 {
            assert_eq!(body, "ok");
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        freed,
        "the slot of an abandoned call was not freed before its deadline"
    );
    let log = host.log_with("plugin call cancelled").await;
    assert!(
        log.contains("plugin=hostile-cpu") && log.contains("cancelled"),
        "the operator's log says the call was cancelled: {log}"
    );
    assert!(
        !log.contains("exceeded its deadline"),
        "the abandoned call must not have run to its deadline: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_call_that_is_not_abandoned_still_finishes() {
    // Demotion to the background lane slows a long call down, it does not kill it: a call
    // that computes for 300 ms of CPU answers normally.
    let db = TestDb::new(Backend::Sqlite).await;
    let host = Host::start(BIN, &db, &[]).await;
    let mut stream = raw_get(&host, "/p/hostile-cpu/burn?ms=300").await;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("burnt"), "{answer}");
}
