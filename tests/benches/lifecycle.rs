//! Plugin lifecycle figures (`docs/benchmarks.md`): time from an `upgrade` (admin API) to
//! the first request served by the new version, and host start with 10 installed plugins
//! with a cold and a warm compiled cache. Real processes and databases, wall-clock times;
//! a plain harness (`harness = false`) because each sample starts processes.
//!
//! `cargo bench -p lutetia-tests --bench lifecycle --profile dev`

use std::path::Path;
use std::time::{Duration, Instant};

use lutetia_tests::{Backend, Host, PLUGINS_DIR, TestDb};

const BIN: &str = env!("CARGO_BIN_EXE_lutetia-test-host");

fn package(id: &str, version: &str) -> Vec<u8> {
    let wasm = std::fs::read(Path::new(PLUGINS_DIR).join("versioned.wasm")).expect("wasm");
    let text = std::fs::read_to_string(Path::new(PLUGINS_DIR).join("versioned.toml")).expect("manifest");
    let text = text
        .replace("id = \"versioned\"", &format!("id = \"{id}\""))
        .replace("version = \"0.1.0\"", &format!("version = \"{version}\""))
        .replace("label = \"0.1.0\"", &format!("label = \"{version}\""));
    lutetia_model::package::pack(&wasm, &text).expect("pack")
}

async fn start(db: &TestDb) -> Host {
    let empty = db.dir().join("no-plugins");
    std::fs::create_dir_all(&empty).expect("mkdir");
    Host::start_with_plugins(BIN, db, &empty, &[]).await
}

async fn post(host: &Host, token: &str, path: &str, body: Vec<u8>) {
    let response = host
        .client
        .post(host.url(path))
        .bearer_auth(token)
        .body(body)
        .send()
        .await
        .expect("request");
    assert!(
        response.status().is_success(),
        "{}",
        response.text().await.unwrap_or_default()
    );
}

async fn version_served(host: &Host, id: &str) -> Option<String> {
    let response = host
        .client
        .get(host.url(&format!("/p/{id}/")))
        .send()
        .await
        .ok()?;
    response
        .headers()
        .get("x-version")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn show(label: &str, samples: Vec<Duration>) {
    let min = samples.iter().min().copied().unwrap_or_default();
    let max = samples.iter().max().copied().unwrap_or_default();
    println!(
        "{label:<58} median {:>9.1?}  min {:>9.1?}  max {:>9.1?}  ({} samples)",
        median(samples.clone()),
        min,
        max,
        samples.len()
    );
}

async fn upgrade_to_first_request(backend: Backend) {
    let db = TestDb::new(backend).await;
    let host = start(&db).await;
    let token = host.admin_token.clone().expect("token");
    post(
        &host,
        &token,
        "/api/admin/plugins?grant=all",
        package("versioned", "1.0.0"),
    )
    .await;
    let mut samples = Vec::new();
    for n in 1..=10 {
        let version = format!("1.{n}.0");
        let bytes = package("versioned", &version);
        let started = Instant::now();
        post(&host, &token, "/api/admin/plugins/versioned/upgrade", bytes).await;
        while version_served(&host, "versioned").await.as_deref() != Some(version.as_str()) {}
        samples.push(started.elapsed());
    }
    show(
        &format!("upgrade → first request on new version ({backend:?})"),
        samples,
    );
    // The other node of a cluster: NOTIFY (or the 1 s re-check) then load.
    if backend == Backend::Postgres {
        let other = start(&db).await;
        let mut samples = Vec::new();
        for n in 11..=20 {
            let version = format!("1.{n}.0");
            let bytes = package("versioned", &version);
            let started = Instant::now();
            post(&host, &token, "/api/admin/plugins/versioned/upgrade", bytes).await;
            while version_served(&other, "versioned").await.as_deref() != Some(version.as_str()) {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            samples.push(started.elapsed());
        }
        show("upgrade on node A → first request on node B (Postgres)", samples);
    }
}

async fn start_with_ten_plugins() {
    let db = TestDb::new(Backend::Sqlite).await;
    let host = start(&db).await;
    let token = host.admin_token.clone().expect("token");
    for n in 0..10 {
        post(
            &host,
            &token,
            "/api/admin/plugins?grant=all",
            package(&format!("plugin-{n}"), "1.0.0"),
        )
        .await;
    }
    host.kill().await;
    let cache = db.dir().join("data").join("compiled-cache");
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        std::fs::remove_dir_all(&cache).expect("empty the cache");
        let started = Instant::now();
        let host = start(&db).await;
        cold.push(started.elapsed());
        assert_eq!(version_served(&host, "plugin-9").await.as_deref(), Some("1.0.0"));
        host.kill().await;
        let started = Instant::now();
        let host = start(&db).await;
        warm.push(started.elapsed());
        assert_eq!(version_served(&host, "plugin-9").await.as_deref(), Some("1.0.0"));
        host.kill().await;
    }
    show("host start, 10 plugins, cold compiled cache (SQLite)", cold);
    show("host start, 10 plugins, warm compiled cache (SQLite)", warm);
}

fn main() {
    // `cargo test --benches` runs bench targets with `--bench`-less arguments: only a real
    // `cargo bench` (which passes `--bench`) measures.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        upgrade_to_first_request(Backend::Sqlite).await;
        upgrade_to_first_request(Backend::Postgres).await;
        start_with_ten_plugins().await;
    });
}
