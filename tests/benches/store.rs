//! Store operations through a real plugin call: the host runs in-process
//! (`lutetia_web::server::start` on 127.0.0.1:0), the `store-conformance` plugin serves each
//! operation over HTTP, on SQLite and on PostgreSQL.
//!
//! `cargo bench -p lutetia-tests --bench store` (see docs/benchmarks.md).

// criterion_main! generates an undocumented `main`.
#![allow(missing_docs)]

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use lutetia_tests::{Backend, TestDb, plugins_subset};
use serde_json::{Value, json};

struct Running {
    client: reqwest::Client,
    url: String,
    _server: lutetia_web::server::RunningServer,
    _db: TestDb,
}

async fn start(backend: Backend) -> Running {
    let db = TestDb::new(backend).await;
    let plugins = plugins_subset(db.dir(), &["store-conformance"], None);
    let settings = lutetia_model::settings::Settings {
        bind: "127.0.0.1:0".parse().expect("address"),
        database_url: db.url.clone(),
        plugins_dir: Some(plugins),
        ..lutetia_model::settings::Settings::default()
    };
    let server = lutetia_web::server::start(settings)
        .await
        .expect("start the host");
    let running = Running {
        client: reqwest::Client::new(),
        url: format!("http://{}/p/store-conformance/op", server.addr),
        _server: server,
        _db: db,
    };
    // 500 reports, a tenth of them open, with an index on status.
    call(
        &running,
        json!({ "op": "index", "c": "reports", "fields": ["status"] }),
    )
    .await;
    for batch in 0..5 {
        let writes: Vec<Value> = (0..100)
            .map(|i| {
                let n = batch * 100 + i;
                json!({ "put": { "c": "reports", "id": format!("r{n:04}"),
                    "body": { "status": if n % 10 == 0 { "open" } else { "closed" }, "n": n, "text": "Lampadaire en panne rue de Rivoli" } } })
            })
            .collect();
        call(&running, json!({ "op": "tx", "writes": writes })).await;
    }
    running
}

async fn call(r: &Running, body: Value) -> Value {
    let response = r.client.post(&r.url).json(&body).send().await.expect("request");
    assert!(response.status().is_success(), "{body}: {}", response.status());
    response.json().await.expect("json")
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let running = rt.block_on(start(backend));
        let name = format!("{backend:?}").to_lowercase();
        let mut group = c.benchmark_group(format!("store/{name}"));
        group
            .sample_size(30)
            .measurement_time(Duration::from_secs(4))
            .warm_up_time(Duration::from_secs(1));
        let r = &running;
        group.bench_function("get", |b| {
            b.to_async(&rt)
                .iter(|| call(r, json!({ "op": "get", "c": "reports", "id": "r0042" })));
        });
        group.bench_function("put", |b| {
            b.to_async(&rt).iter(|| {
                call(r, json!({ "op": "put", "c": "reports", "id": "r0042", "body": { "status": "closed", "n": 42 } }))
            });
        });
        group.bench_function("query", |b| {
            b.to_async(&rt).iter(|| {
                call(r, json!({ "op": "find", "c": "reports", "filters": [["status", "eq", "open"]], "limit": 20 }))
            });
        });
        group.bench_function("transaction", |b| {
            b.to_async(&rt).iter(|| {
                call(r, json!({ "op": "tx",
                    "pre": [{ "count_below": { "c": "reports", "filters": [["status", "eq", "open"]], "k": 1000 } }],
                    "writes": [{ "put": { "c": "reports", "id": "r0043", "body": { "status": "closed", "n": 43 } } },
                               { "put": { "c": "reports", "id": "r0044", "body": { "status": "closed", "n": 44 } } }] }))
            });
        });
        group.finish();
        drop(running);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
