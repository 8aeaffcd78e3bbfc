//! The same trivial plugin in Rust, Python and JavaScript, side by side, in-process: the
//! page `lutetia plugin new` creates, built with the real `lutetia plugin build`.
//!
//! - component size and compile time (Cranelift, no compiled cache), printed once;
//! - criterion `languages/instantiate+call/LANG`: a fresh instance and one `handle` call
//!   answering `GET /nothing` (the scaffold's 404), i.e. the per-request cost of the
//!   sandbox for that language, with nothing else on the path (no HTTP, no database).
//!
//! `cargo bench -p lutetia-tests --bench languages` (needs the plugin tools:
//! `eval "$(scripts/install-plugin-tools.sh DIR)"`; see docs/benchmarks.md).

// criterion_main! generates an undocumented `main`.
#![allow(missing_docs)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use lutetia_model::manifest::{Manifest, parse_capabilities};
use lutetia_model::settings::Limits;
use lutetia_runtime::{Imports, LoadedPlugin, Request, Runtime};
use lutetia_tests::{Backend, TestDb};

const BIN: &str = env!("CARGO_BIN_EXE_lutetia-test-host");

/// Scaffolds and builds `bench-LANG`; returns its manifest and component bytes.
fn build(work: &Path, lang: &str) -> (Manifest, Vec<u8>) {
    let id = format!("bench-{lang}");
    let dir = work.join(&id);
    let run = |args: &[&std::ffi::OsStr]| {
        let output = std::process::Command::new(BIN)
            .args(args)
            .envs(lutetia_tests::polyglot::tool_env())
            .env(
                "CARGO_TARGET_DIR",
                Path::new(env!("LUTETIA_TEST_TARGET_DIR")).join("wasm-plugins"),
            )
            .output()
            .expect("run lutetia");
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    run(&[
        "plugin".as_ref(),
        "new".as_ref(),
        "--lang".as_ref(),
        lang.as_ref(),
        id.as_ref(),
        "--dir".as_ref(),
        dir.as_os_str(),
    ]);
    let package = work.join(format!("{id}.wasm"));
    let started = Instant::now();
    run(&[
        "plugin".as_ref(),
        "build".as_ref(),
        dir.as_os_str(),
        "--output".as_ref(),
        package.as_os_str(),
    ]);
    eprintln!("{lang}: plugin build {:.1} s", started.elapsed().as_secs_f64());
    let bytes = std::fs::read(&package).expect("package");
    let (manifest, _) = lutetia_model::package::read(&bytes).expect("packaged manifest");
    (manifest, bytes)
}

async fn load(runtime: &Runtime, limits: &Limits, manifest: Manifest, bytes: Vec<u8>) -> LoadedPlugin {
    let sha = lutetia_model::hash::sha256_hex(&bytes);
    // kv is not granted: nothing on the measured path touches the database.
    let granted = parse_capabilities("").expect("no capabilities");
    runtime
        .load(
            manifest,
            bytes,
            sha,
            BTreeMap::new(),
            limits,
            &granted,
            Imports::Deny,
        )
        .await
        .expect("load")
}

fn request(id: &str) -> Request {
    Request {
        method: "GET".into(),
        path: "/nothing".into(),
        query: String::new(),
        headers: Vec::new(),
        body: Vec::new(),
        user: None,
        locale: "fr-FR".into(),
        mount: format!("/p/{id}"),
        request_id: "bench".into(),
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    let db = rt.block_on(TestDb::new(Backend::Sqlite));
    let database = rt.block_on(db.open());
    let limits = Limits::default();
    let runtime = Runtime::new(&limits, database).expect("runtime");
    let work = db.dir().join("bench");
    std::fs::create_dir_all(&work).expect("work folder");
    let mut group = c.benchmark_group("languages/instantiate+call");
    group
        .sample_size(50)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1));
    for lang in ["rust", "python", "js"] {
        let (manifest, bytes) = build(&work, lang);
        let size = bytes.len();
        let id = manifest.id.clone();
        let started = Instant::now();
        let plugin = rt.block_on(load(&runtime, &limits, manifest, bytes));
        eprintln!(
            "{lang}: package {:.1} MB, compiled and linked in {:.2} s (no compiled cache)",
            size as f64 / 1e6,
            started.elapsed().as_secs_f64()
        );
        let plugin = &plugin;
        let runtime = &runtime;
        let id = id.as_str();
        group.bench_function(lang, |b| {
            b.to_async(&rt).iter(|| async move {
                let reply = runtime.handle(plugin, request(id)).await.expect("call");
                std::hint::black_box(reply);
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
