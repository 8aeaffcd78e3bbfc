//! Events between plugins and scheduled jobs, end to end: the real host, the test plugins
//! `publisher`, `subscriber` (subscribes to `test.*`) and `ticker` (a job every second),
//! on SQLite and PostgreSQL.

use std::collections::BTreeMap;
use std::time::Duration;

use lutetia_tests::{Backend, Host, TestDb, on_both_backends};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_lutetia-test-host");
/// How long a test waits for deliveries before failing (a bound, not a measured figure).
const PATIENCE: Duration = Duration::from_secs(90);

/// `POST /p/publisher/publish[/topic]` with `body`; returns the status and answer.
async fn publish(host: &Host, topic: Option<&str>, body: &str) -> (u16, String) {
    let path = match topic {
        Some(t) => format!("/p/publisher/publish/{t}"),
        None => "/p/publisher/publish".to_owned(),
    };
    let response = host
        .client
        .post(host.url(&path))
        .body(body.to_owned())
        .send()
        .await
        .expect("publish");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// What the subscriber recorded, in the order it received it.
async fn received(host: &Host) -> Vec<Value> {
    let (status, body) = host.get("/p/subscriber/received").await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("JSON list")
}

/// Waits until the subscriber recorded at least `n` events.
async fn wait_received(host: &Host, n: usize) -> Vec<Value> {
    wait_counted(host, n, <[Value]>::len).await
}

/// Waits until the subscriber recorded `n` distinct events (by id): after a crash a
/// delivery may be repeated, so `n` records are not yet `n` events.
async fn wait_distinct(host: &Host, n: usize) -> Vec<Value> {
    let distinct = |got: &[Value]| {
        got.iter()
            .filter_map(|r| r["id"].as_str())
            .collect::<std::collections::BTreeSet<&str>>()
            .len()
    };
    wait_counted(host, n, distinct).await
}

/// Polls what the subscriber recorded until `count` of it reaches `n`, within `PATIENCE`.
async fn wait_counted(host: &Host, n: usize, count: impl Fn(&[Value]) -> usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let got = received(host).await;
        let counted = count(&got);
        if counted >= n {
            return got;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {counted} of {n} events delivered: {got:?}\nlog:\n{}",
            host.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn field(record: &Value, pointer: &str) -> i64 {
    record
        .pointer(pointer)
        .and_then(Value::as_i64)
        .unwrap_or_else(|| panic!("no {pointer} in {record}"))
}

on_both_backends! {
    async fn events_arrive_in_publish_order(backend: Backend) {
        let db = TestDb::new(backend).await;
        let host = Host::start(BIN, &db, &[]).await;
        // Not matching `test.*`: the subscriber must never see it.
        let (status, body) = publish(&host, Some("other.news"), r#"{"n": -1}"#).await;
        assert_eq!(status, 200, "{body}");
        for n in 0..50 {
            let (status, body) = publish(&host, None, &json!({ "n": n }).to_string()).await;
            assert_eq!(status, 200, "{body}");
        }
        let got = wait_received(&host, 50).await;
        let order: Vec<i64> = got.iter().map(|r| field(r, "/payload/n")).collect();
        assert_eq!(order, (0..50).collect::<Vec<i64>>());
        for record in &got {
            assert_eq!(record["topic"], "test.ping");
            assert_eq!(record["publisher"], "publisher");
            assert_eq!(field(record, "/attempt"), 1);
        }
        // Nothing more arrives (the other topic is not delivered), and the ticker, which
        // subscribes to nothing, received nothing.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(received(&host).await.len(), 50);
        let (status, body) = host.get("/p/ticker/events").await;
        assert_eq!((status, body.as_str()), (200, "0"));
    }

    async fn events_survive_a_crash(backend: Backend) {
        let db = TestDb::new(backend).await;
        let host = Host::start(BIN, &db, &[]).await;
        for n in 0..5 {
            let (status, body) = publish(&host, None, &json!({ "n": n }).to_string()).await;
            assert_eq!(status, 200, "{body}");
        }
        // Killed as a crash would, before (or while) the events are delivered.
        host.kill().await;
        let host = Host::start(BIN, &db, &[]).await;
        let got = wait_distinct(&host, 5).await;
        // At least once: a delivery cut by the crash may be repeated, never reordered.
        let mut ids: Vec<String> = Vec::new();
        for record in &got {
            let id = record["id"].as_str().expect("id").to_owned();
            if ids.last() != Some(&id) {
                assert!(!ids.contains(&id), "{id} delivered out of order: {got:?}");
                ids.push(id);
            }
        }
        let order: Vec<i64> = got.iter().map(|r| field(r, "/payload/n")).collect();
        let mut distinct = order.clone();
        distinct.dedup();
        assert_eq!(distinct, (0..5).collect::<Vec<i64>>(), "{got:?}");
    }

    async fn failed_deliveries_are_retried_in_order(backend: Backend) {
        let db = TestDb::new(backend).await;
        let host = Host::start(BIN, &db, &[]).await;
        // The first event is refused twice (the plugin's Err), then accepted; the next
        // events of the topic wait for it.
        for body in [r#"{"n": 0, "fail": 2}"#, r#"{"n": 1}"#, r#"{"n": 2}"#] {
            let (status, answer) = publish(&host, None, body).await;
            assert_eq!(status, 200, "{answer}");
        }
        // Another topic: the first delivery traps.
        let (status, answer) = publish(&host, Some("test.other"), r#"{"n": 10, "trap": 1}"#).await;
        assert_eq!(status, 200, "{answer}");
        let got = wait_received(&host, 4).await;
        let ping: Vec<(i64, i64)> = got
            .iter()
            .filter(|r| r["topic"] == "test.ping")
            .map(|r| (field(r, "/payload/n"), field(r, "/attempt")))
            .collect();
        assert_eq!(ping, vec![(0, 3), (1, 1), (2, 1)], "{got:?}");
        let other: Vec<(i64, i64)> = got
            .iter()
            .filter(|r| r["topic"] == "test.other")
            .map(|r| (field(r, "/payload/n"), field(r, "/attempt")))
            .collect();
        assert_eq!(other, vec![(10, 2)], "{got:?}");
        let log = host.log();
        assert!(log.contains("subscriber answered an error; will retry"), "{log}");
        assert!(log.contains("asked to fail attempt 1"), "{log}");
        assert!(log.contains("the subscriber trapped"), "{log}");
        assert!(log.contains("subscriber: asked to trap on attempt 1"), "{log}");
    }

    async fn publishing_is_checked(backend: Backend) {
        let db = TestDb::new(backend).await;
        let host = Host::start(BIN, &db, &[]).await;
        // A topic the publisher did not declare.
        let (status, body) = publish(&host, Some("test.secret"), r#"{"n": 1}"#).await;
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("denied"), "{body}");
        let log = host.log_with("denied: topic not declared for publishing").await;
        assert!(log.contains("denied: topic not declared for publishing") && log.contains("publisher"), "{log}");
        // Not JSON, and too large.
        let (status, body) = publish(&host, None, "not json").await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("not valid JSON"), "{body}");
        let big = json!({ "text": "x".repeat(70 * 1024) }).to_string();
        let (status, body) = publish(&host, None, &big).await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("65536"), "{body}");
        // Nothing was queued: a valid event afterwards is the first one delivered.
        let (status, body) = publish(&host, None, r#"{"n": 7}"#).await;
        assert_eq!(status, 200, "{body}");
        let got = wait_received(&host, 1).await;
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(field(&got[0], "/payload/n"), 7);
    }

    async fn jobs_run_once_per_period(backend: Backend) {
        let db = TestDb::new(backend).await;
        // Two processes on one PostgreSQL database; one per SQLite file.
        let processes = if backend == Backend::Postgres { 2 } else { 1 };
        let mut hosts = Vec::new();
        for _ in 0..processes {
            hosts.push(Host::start(BIN, &db, &[]).await);
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (status, body) = hosts[0].get("/p/ticker/runs").await;
        assert_eq!(status, 200, "{body}");
        let runs: BTreeMap<String, u64> = serde_json::from_str(&body).expect("JSON object");
        assert!(runs.len() >= 3, "at least 3 periods ran: {runs:?}");
        for (period, count) in &runs {
            assert_eq!(*count, 1, "period {period} ran {count} times: {runs:?}");
            let start: u64 = period.parse().expect("scheduled-at");
            assert_eq!(start % 1000, 0, "periods are aligned on the second: {period}");
        }
        // The host's own record: one row per period, each with its outcome and duration.
        let store = db.open().await;
        let recorded = store.job_runs("ticker").await.expect("job runs");
        store.close().await;
        let finished: Vec<_> = recorded.iter().filter(|r| r.outcome.is_some()).collect();
        assert!(finished.len() >= 3, "{recorded:?}");
        for run in &finished {
            assert_eq!(run.job, "tick");
            assert_eq!(run.outcome.as_deref(), Some("ok"), "{run:?}");
            assert!(run.duration_ms.is_some(), "{run:?}");
        }
        for host in hosts {
            host.kill().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_demo_publishes_and_receives() {
    let db = TestDb::new(Backend::Sqlite).await;
    let host = Host::start(BIN, &db, &[]).await;
    let (status, body) = host.get("/p/hello/events").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Published one"), "{body}");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (_, body) = host.get("/p/hello/events").await;
        // Each view publishes one more; the first ones must be delivered.
        if !body.contains("Events received: 0") && !body.contains("Digest runs: 0") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{body}\n{}", host.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The visit counter of the home page is untouched by the demo.
    let (_, home) = host.get("/p/hello/").await;
    assert_eq!(lutetia_tests::visits(&home), 1);
}
