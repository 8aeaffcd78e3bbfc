//! Issue 10, item 3: a quota on every service, hit exactly under concurrent calls and
//! reported as `quota-exceeded` (HTTP 429 from the SDK), on SQLite and PostgreSQL, and
//! across two hosts sharing PostgreSQL; the log volume bounded with a count of what was
//! dropped, every plugin message one log line; `plugin inspect` / `install` and the admin
//! API show the limits that apply and warn about what a manifest asks beyond the ceilings.
//!
//! Every test drives the `quota` test plugin through real HTTP calls to the real host.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lutetia_model::manifest::KvCapability;
use lutetia_tests::{Backend, Host, PLUGINS_DIR, TestDb, on_both_backends, plugins_subset, run_cli};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_lutetia-test-host");

/// A manifest edit setting each `key = value` line of the `quota` plugin's manifest.
fn with(pairs: &[(&str, u64)]) -> impl Fn(&str) -> String + use<> {
    let pairs: Vec<(String, u64)> = pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
    move |text: &str| {
        let mut out = String::new();
        for line in text.lines() {
            let replaced = pairs
                .iter()
                .find(|(key, _)| line.starts_with(&format!("{key} =")))
                .map(|(key, value)| format!("{key} = {value}"));
            out.push_str(&replaced.unwrap_or_else(|| line.to_owned()));
            out.push('\n');
        }
        for (key, _) in &pairs {
            assert!(
                out.contains(&format!("{key} =")),
                "no {key} in the quota manifest"
            );
        }
        out
    }
}

/// A plugins folder with the `quota` plugin (manifest edited) and `others`, under `name`.
fn folder(db: &TestDb, name: &str, edit: &dyn Fn(&str) -> String, others: &[&str]) -> PathBuf {
    let mut ids = vec!["quota"];
    ids.extend_from_slice(others);
    plugins_subset(&db.dir().join(name), &ids, Some(("quota", edit)))
}

/// Starts a host serving the `quota` plugin with its manifest edited by `edit`.
async fn start(db: &TestDb, edit: &dyn Fn(&str) -> String) -> Host {
    Host::start_with_plugins(BIN, db, &folder(db, "a", edit, &[]), &[]).await
}

/// POSTs every path at once; returns each (status, body).
async fn post_all(host: &Host, paths: impl IntoIterator<Item = String>) -> Vec<(u16, String)> {
    let calls = paths.into_iter().map(|path| {
        let request = host.client.post(host.url(&path));
        async move {
            let response = request.send().await.expect("request");
            let status = response.status().as_u16();
            (status, response.text().await.expect("body"))
        }
    });
    futures_util::future::join_all(calls).await
}

async fn post(host: &Host, path: &str) -> (u16, String) {
    post_all(host, [path.to_owned()]).await.remove(0)
}

/// (successes, quota refusals); any other answer fails the test.
fn tally(results: &[(u16, String)]) -> (usize, usize) {
    let mut counts = (0, 0);
    for (status, body) in results {
        match status {
            200 => counts.0 += 1,
            429 => {
                let json: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"));
                assert_eq!(json["error"], "quota-exceeded", "{body}");
                counts.1 += 1;
            }
            other => panic!("unexpected answer {other}: {body}"),
        }
    }
    counts
}

/// Answers 429 `quota-exceeded`.
fn refused((status, body): (u16, String)) {
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("quota-exceeded"), "{body}");
}

fn ok((status, body): (u16, String)) -> String {
    assert_eq!(status, 200, "{body}");
    body
}

/// Polls the host's log until `done` holds (bounded), and returns it.
async fn wait_log(host: &Host, what: &str, done: impl Fn(&str) -> bool) -> String {
    for _ in 0..200 {
        let log = host.log();
        if done(&log) {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the log never showed {what}:\n{}", host.log());
}

/// The numbers `N` of every `N lines dropped` summary of the `quota` plugin.
fn dropped_counts(log: &str) -> Vec<u64> {
    log.lines()
        .filter(|line| line.contains("quota"))
        .filter_map(|line| {
            line.split(" lines dropped")
                .next()
                .filter(|_| line.contains(" lines dropped"))
        })
        .filter_map(|before| before.rsplit(' ').next()?.parse().ok())
        .collect()
}

on_both_backends! {
    async fn kv_keys_are_exact_under_concurrent_writes(backend: Backend) {
        let db = TestDb::new(backend).await;
        let host = start(&db, &with(&[("max-keys", 10)])).await;
        let results = post_all(&host, (0..20).map(|i| format!("/p/quota/kv/set?key=k{i:02}&size=1"))).await;
        assert_eq!(tally(&results), (10, 10), "{results:?}");
        let store = db.open().await;
        // Each key is 3 bytes, each value 1.
        assert_eq!(store.kv_usage("quota").await.expect("usage"), (10, 40));
        let keys = store.kv_list_keys("quota", "", None, 100).await.expect("keys");
        assert_eq!(keys.len(), 10);

        // Full: an overwrite still works, a new key does not, by any kv call.
        ok(post(&host, &format!("/p/quota/kv/set?key={}&size=2", keys[0])).await);
        assert_eq!(store.kv_usage("quota").await.expect("usage"), (10, 41));
        refused(post(&host, "/p/quota/kv/set?key=new&size=1").await);
        refused(post(&host, "/p/quota/kv/create?key=new&size=1").await);
        refused(post(&host, "/p/quota/kv/incr?key=counter").await);
        assert_eq!(store.kv_usage("quota").await.expect("usage"), (10, 41));
        // A delete frees its key and bytes.
        assert_eq!(ok(post(&host, &format!("/p/quota/kv/delete?key={}", keys[0])).await), "true");
        assert_eq!(store.kv_usage("quota").await.expect("usage"), (9, 36));
        assert_eq!(ok(post(&host, "/p/quota/kv/incr?key=counter").await), "1");
        assert_eq!(store.kv_usage("quota").await.expect("usage"), (10, 44));
        refused(post(&host, "/p/quota/kv/set?key=more&size=1").await);
    }

    async fn kv_bytes_count_overwrites_and_deletes(backend: Backend) {
        let db = TestDb::new(backend).await;
        let host = start(&db, &with(&[("max-bytes", 1000)])).await;
        let store = db.open().await;
        ok(post(&host, "/p/quota/kv/set?key=a&size=499").await);
        assert_eq!(store.kv_usage("quota").await.expect("usage"), (1, 500));
        // 100 bytes each: exactly 5 of 20 fit in the 500 left.
        let results = post_all(&host, (0..20).map(|i| format!("/p/quota/kv/set?key=k{i:02}&size=97"))).await;
        assert_eq!(tally(&results), (5, 15), "{results:?}");
        assert_eq!(store.kv_usage("quota").await.expect("usage"), (6, 1000));
        // An overwrite counts the difference: growing does not fit, shrinking does.
        refused(post(&host, "/p/quota/kv/set?key=a&size=500").await);
        ok(post(&host, "/p/quota/kv/set?key=a&size=399").await);
        assert_eq!(store.kv_usage("quota").await.expect("usage"), (6, 900));
        ok(post(&host, "/p/quota/kv/create?key=zz&size=98").await);
        assert_eq!(store.kv_usage("quota").await.expect("usage"), (7, 1000));
        refused(post(&host, "/p/quota/kv/create?key=y&size=1").await);
        // A delete frees the key's bytes and its value's; deleting it again frees nothing.
        assert_eq!(ok(post(&host, "/p/quota/kv/delete?key=a").await), "true");
        assert_eq!(store.kv_usage("quota").await.expect("usage"), (6, 600));
        assert_eq!(ok(post(&host, "/p/quota/kv/delete?key=a").await), "false");
        assert_eq!(store.kv_usage("quota").await.expect("usage"), (6, 600));
        // What the usage row says is what the table holds.
        let mut bytes = 0;
        for key in store.kv_list_keys("quota", "", None, 100).await.expect("keys") {
            bytes += key.len() + store.kv_get("quota", &key).await.expect("get").expect("value").len();
        }
        assert_eq!(bytes, 600);
    }

    async fn kv_usage_of_data_stored_before_the_quotas(backend: Backend) {
        let test_db = TestDb::new(backend).await;
        // The schema as it was before migration 0007, with kv data in it.
        let rows: [(&str, &str, &[u8]); 4] = [
            ("old", "a", b"12345"),
            ("old", "bb", b"0123456789"),
            ("old", "é", b"xyz"),
            ("other", "k", b"v"),
        ];
        match backend {
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&format!("{}?mode=rwc", test_db.url)).await.expect("connect");
                before_quotas(sqlx::migrate!("../migrations/sqlite")).run(&pool).await.expect("old migrations");
                for (plugin, key, value) in rows {
                    sqlx::query("INSERT INTO kv (plugin_id, key, value, updated_at) VALUES ($1, $2, $3, 0)")
                        .bind(plugin).bind(key).bind(value).execute(&pool).await.expect("insert");
                }
                pool.close().await;
            }
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(&test_db.url).await.expect("connect");
                before_quotas(sqlx::migrate!("../migrations/postgres")).run(&pool).await.expect("old migrations");
                for (plugin, key, value) in rows {
                    sqlx::query("INSERT INTO kv (plugin_id, key, value, updated_at) VALUES ($1, $2, $3, 0)")
                        .bind(plugin).bind(key).bind(value).execute(&pool).await.expect("insert");
                }
                pool.close().await;
            }
        }
        let db = test_db.open().await;
        // Bytes, not characters: `é` is two.
        assert_eq!(db.kv_usage("old").await.expect("usage"), (3, 6 + 12 + 5));
        assert_eq!(db.kv_usage("other").await.expect("usage"), (1, 2));
        let full = KvCapability { max_keys: 3, max_bytes: 1000 };
        assert!(matches!(
            db.kv_set("old", full, "new", b"1").await,
            Err(lutetia_db::kv::KvError::QuotaExceeded(_))
        ));
        db.kv_set("old", full, "a", b"1").await.expect("an overwrite fits");
        assert_eq!(db.kv_usage("old").await.expect("usage"), (3, 2 + 12 + 5));
    }

    async fn events_publishes_per_minute_are_exact(backend: Backend) {
        let db = TestDb::new(backend).await;
        let host = start(&db, &with(&[("max-per-minute", 10)])).await;
        let results = post_all(&host, (0..20).map(|_| "/p/quota/events/publish?topic=quota.rate".to_owned())).await;
        assert_eq!(tally(&results), (10, 10), "{results:?}");
        // The rate is the plugin's, whatever the topic.
        refused(post(&host, "/p/quota/events/publish?topic=quota.backlog").await);
        let heads = db.open().await.event_topic_heads().await.expect("heads");
        assert_eq!(heads, vec![("quota.rate".to_owned(), 10)]);
    }

    async fn events_backlog_per_topic_is_exact(backend: Backend) {
        let db = TestDb::new(backend).await;
        let edit = with(&[("max-backlog", 3)]);
        // Nobody subscribes to test.quota on this host: its events wait, and count.
        let host = start(&db, &edit).await;
        let results = post_all(&host, (0..20).map(|_| "/p/quota/events/publish?topic=test.quota".to_owned())).await;
        assert_eq!(tally(&results), (3, 17), "{results:?}");
        // The bound is per topic.
        ok(post(&host, "/p/quota/events/publish?topic=quota.rate").await);
        host.kill().await;

        // A host where `subscriber` (test.*) runs delivers the three; then there is room.
        let both = folder(&db, "b", &edit, &["subscriber"]);
        let host = Host::start_with_plugins(BIN, &db, &both, &[]).await;
        let mut received = 0;
        for _ in 0..200 {
            let (status, body) = host.get("/p/subscriber/received").await;
            assert_eq!(status, 200, "{body}");
            received = serde_json::from_str::<Value>(&body).expect("json").as_array().map_or(0, Vec::len);
            if received == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(received, 3, "{}", host.log());
        ok(post(&host, "/p/quota/events/publish?topic=test.quota").await);
    }

    async fn mail_per_hour_is_exact(backend: Backend) {
        let db = TestDb::new(backend).await;
        let host = start(&db, &with(&[("max-per-hour", 10)])).await;
        let results = post_all(&host, (0..20).map(|_| "/p/quota/mail/send".to_owned())).await;
        assert_eq!(tally(&results), (10, 10), "{results:?}");
        assert_eq!(db.open().await.outbox_list(None, 100).await.expect("outbox").len(), 10);
    }

    async fn files_total_is_exact_under_concurrent_uploads(backend: Backend) {
        let db = TestDb::new(backend).await;
        let host = start(&db, &with(&[("max-size", 1000), ("max-total-bytes", 10_000)])).await;
        let results = post_all(&host, (0..20).map(|i| format!("/p/quota/files/put?name=f{i:02}.txt&size=1000"))).await;
        assert_eq!(tally(&results), (10, 10), "{results:?}");
        let store = db.open().await;
        assert_eq!(store.files_total_bytes("quota").await.expect("total"), 10_000);
        let stored = std::fs::read_dir(db.dir().join("data/files/quota")).expect("files folder").count();
        assert_eq!(stored, 10, "refused uploads leave nothing on disk");
        // Replacing a file counts it once; the reservations of the refused uploads were
        // released, so a delete makes room for exactly one more file.
        let kept: Vec<String> = results
            .iter()
            .zip(0..)
            .filter(|((status, _), _)| *status == 200)
            .map(|(_, i)| format!("f{i:02}.txt"))
            .collect();
        ok(post(&host, &format!("/p/quota/files/put?name={}&size=1000", kept[0])).await);
        refused(post(&host, "/p/quota/files/put?name=extra.txt&size=1").await);
        ok(post(&host, &format!("/p/quota/files/delete?name={}", kept[1])).await);
        ok(post(&host, "/p/quota/files/put?name=extra.txt&size=1000").await);
        refused(post(&host, "/p/quota/files/put?name=extra2.txt&size=1").await);
        assert_eq!(store.files_total_bytes("quota").await.expect("total"), 10_000);
    }
}

/// The embedded migrations before 0007 (the quotas).
fn before_quotas(mut migrator: sqlx::migrate::Migrator) -> sqlx::migrate::Migrator {
    migrator.migrations = migrator
        .migrations
        .iter()
        .filter(|m| m.version < 7)
        .cloned()
        .collect();
    migrator
}

/// Two hosts on one PostgreSQL database share every persistent quota exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_on_postgres_share_each_quota_exactly() {
    let db = TestDb::new(Backend::Postgres).await;
    let edit = with(&[
        ("max-keys", 10),
        ("max-per-minute", 10),
        ("max-per-hour", 10),
        ("max-size", 1000),
        ("max-total-bytes", 10_000),
    ]);
    let a = Host::start_with_plugins(BIN, &db, &folder(&db, "a", &edit, &[]), &[]).await;
    let b = Host::start_with_plugins(BIN, &db, &folder(&db, "b", &edit, &[]), &[]).await;
    let both = async |paths: &dyn Fn(usize) -> String| {
        let (on_a, on_b) = tokio::join!(
            post_all(&a, (0..10).map(paths)),
            post_all(&b, (10..20).map(paths))
        );
        tally(&[on_a, on_b].concat())
    };
    assert_eq!(
        both(&|i| format!("/p/quota/kv/set?key=k{i:02}&size=1")).await,
        (10, 10),
        "kv"
    );
    assert_eq!(
        both(&|_| "/p/quota/events/publish?topic=quota.rate".to_owned()).await,
        (10, 10),
        "events"
    );
    assert_eq!(both(&|_| "/p/quota/mail/send".to_owned()).await, (10, 10), "mail");
    assert_eq!(
        both(&|i| format!("/p/quota/files/put?name=f{i:02}.txt&size=1000")).await,
        (10, 10),
        "files"
    );
    let store = db.open().await;
    assert_eq!(store.kv_usage("quota").await.expect("usage"), (10, 40));
    assert_eq!(store.files_total_bytes("quota").await.expect("total"), 10_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_and_bytes_per_call_are_cut_and_counted() {
    let db = TestDb::new(Backend::Sqlite).await;
    let host = start(
        &db,
        &with(&[("log-lines-per-call", 10), ("log-bytes-per-call", 1000)]),
    )
    .await;
    // Lines: 10 of 50 pass.
    ok(post(&host, "/p/quota/log?lines=50&size=20&tag=alpha").await);
    let log = wait_log(&host, "40 lines dropped", |log| dropped_counts(log).contains(&40)).await;
    assert_eq!(log.lines().filter(|l| l.contains("alpha-")).count(), 10, "{log}");
    // Bytes: 5 lines of 200 bytes fill the 1000.
    ok(post(&host, "/p/quota/log?lines=50&size=200&tag=beta").await);
    let log = wait_log(&host, "45 lines dropped", |log| dropped_counts(log).contains(&45)).await;
    assert_eq!(log.lines().filter(|l| l.contains("beta-")).count(), 5, "{log}");
    assert_eq!(dropped_counts(&log), [40, 45], "one summary per call:\n{log}");
    // A call within its limits drops nothing and says nothing about it.
    ok(post(&host, "/p/quota/log?lines=3&size=20&tag=gamma").await);
    let log = wait_log(&host, "the gamma lines", |log| {
        log.lines().filter(|l| l.contains("gamma-")).count() == 3
    })
    .await;
    assert_eq!(dropped_counts(&log), [40, 45]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_per_minute_are_exact_over_concurrent_calls() {
    let db = TestDb::new(Backend::Sqlite).await;
    let host = start(
        &db,
        &with(&[("log-lines-per-call", 10), ("log-lines-per-minute", 25)]),
    )
    .await;
    let results = post_all(
        &host,
        (0..10).map(|_| "/p/quota/log?lines=10&size=10&tag=delta".to_owned()),
    )
    .await;
    assert_eq!(tally(&results), (10, 0));
    let log = wait_log(&host, "75 dropped lines in summaries", |log| {
        dropped_counts(log).iter().sum::<u64>() == 75
    })
    .await;
    assert_eq!(log.lines().filter(|l| l.contains("delta-")).count(), 25, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_message_is_exactly_one_log_line() {
    let db = TestDb::new(Backend::Sqlite).await;
    let host = start(&db, &with(&[])).await;
    let forged =
        "first\n2030-01-01T00:00:00.000000Z  INFO lutetia: forged-admin-login\r\x1b[31mred\u{9b}0m\\n";
    let response = host
        .client
        .post(host.url("/p/quota/log/raw"))
        .body(forged)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let log = wait_log(&host, "the escaped message", |log| {
        log.contains("forged-admin-login")
    })
    .await;
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("forged-admin-login")).collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(
        lines[0].contains(
            "first\\n2030-01-01T00:00:00.000000Z  INFO lutetia: forged-admin-login\\r\\u{1b}[31mred\\u{9b}0m\\\\n"
        ),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains("quota"),
        "the line names the plugin: {}",
        lines[0]
    );
    assert!(!log.lines().any(|l| l.starts_with("2030-")), "{log}");
    assert!(!log.contains('\u{1b}'), "{log}");
}

/// The `quota` plugin packed with its manifest edited.
fn pack(dir: &Path, name: &str, edit: impl Fn(&str) -> String) -> PathBuf {
    let wasm = std::fs::read(Path::new(PLUGINS_DIR).join("quota.wasm")).expect("wasm");
    let text = std::fs::read_to_string(Path::new(PLUGINS_DIR).join("quota.toml")).expect("manifest");
    let packed = lutetia_model::package::pack(&wasm, &edit(&text)).expect("pack");
    let path = dir.join(name);
    std::fs::write(&path, packed).expect("write package");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_and_install_show_the_limits_that_apply_and_warn_about_ceilings() {
    let db = TestDb::new(Backend::Sqlite).await;
    let config = db.dir().join("lutetia.toml");
    std::fs::write(
        &config,
        "[limits]\nmax-memory-mb = 256\n[limits.max-quotas]\nkv-max-keys = 3\n",
    )
    .expect("config");
    let config = config.to_str().expect("utf-8 path");
    let greedy = with(&[("memory-mb", 512)]);
    let package = pack(db.dir(), "quota-0.1.0.wasm", &greedy);
    let package = package.to_str().expect("utf-8 path");
    let memory_warning = "warning: limits.memory-mb asks for 512, more than this host's ceiling \
                          (limits.max-memory-mb = 256): 256 applies";
    let kv_warning = "warning: capabilities.kv.max-keys asks for 1000, more than this host's ceiling \
                      (limits.max-quotas.kv-max-keys = 3): 3 applies";
    let effective = [
        "effective limits on this host:",
        "  memory 256 MiB, deadline 5000 ms per call",
        "  kv      3 keys, 1048576 bytes",
        "  events  1000 publishes per minute, 1000 undelivered events per topic",
        "  log     1000 lines and 1048576 bytes per call, 100000 lines and 67108864 bytes per minute",
    ];

    let (code, stdout, stderr) = run_cli(BIN, &["plugin", "inspect", package, "--config", config]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    for line in effective {
        assert!(
            stdout.lines().any(|l| l == line),
            "missing {line:?} in:\n{stdout}"
        );
    }
    assert!(
        stderr.contains(memory_warning) && stderr.contains(kv_warning),
        "{stderr}"
    );
    // Without the operator's ceilings, the built-in ones apply and the manifest fits.
    let (code, stdout, stderr) = run_cli(BIN, &["plugin", "inspect", package]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("  kv      1000 keys, 1048576 bytes"), "{stdout}");
    assert!(stdout.contains("  memory 512 MiB"), "{stdout}");
    assert!(!stderr.contains("warning:"), "{stderr}");

    let (code, stdout, stderr) = run_cli(
        BIN,
        &[
            "plugin",
            "install",
            package,
            "--grant",
            "all",
            "--database-url",
            &db.url,
            "--config",
            config,
        ],
    )
    .await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("installed quota 0.1.0"), "{stdout}");
    for line in effective {
        assert!(
            stdout.lines().any(|l| l == line),
            "missing {line:?} in:\n{stdout}"
        );
    }
    assert!(
        stderr.contains(memory_warning) && stderr.contains(kv_warning),
        "{stderr}"
    );

    // What applies is what is enforced: 3 keys on a host with this configuration.
    let empty = db.dir().join("no-plugins");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let host = Host::start_with_plugins(BIN, &db, &empty, &["--config", config]).await;
    let results = post_all(&host, (0..5).map(|i| format!("/p/quota/kv/set?key=k{i}&size=1"))).await;
    assert_eq!(tally(&results), (3, 2), "{results:?}");

    // The admin API shows the same.
    let token = host.admin_token.clone().expect("admin token");
    let answer = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str::<Value>(&text).unwrap_or_else(|_| panic!("not JSON: {text}")),
        )
    };
    let upgrade = std::fs::read(pack(db.dir(), "quota-0.2.0.wasm", |text| {
        greedy(text).replace("version = \"0.1.0\"", "version = \"0.2.0\"")
    }))
    .expect("package");
    let inspect = host
        .client
        .post(host.url("/api/admin/plugins/inspect"))
        .bearer_auth(&token)
        .body(upgrade.clone())
        .send()
        .await
        .expect("inspect");
    let (status, json) = answer(inspect).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["effective_limits"]["memory_mb"], 256, "{json}");
    assert_eq!(json["effective_limits"]["quotas"]["kv-max-keys"], 3, "{json}");
    assert_eq!(json["capped"][1]["key"], "capabilities.kv.max-keys", "{json}");
    assert_eq!(json["capped"][1]["asked"], 1000, "{json}");
    assert_eq!(json["capped"][1]["applies"], 3, "{json}");
    let warnings = json["warnings"].to_string();
    assert!(
        warnings.contains(kv_warning.trim_start_matches("warning: ")),
        "{json}"
    );
    let upgraded = host
        .client
        .post(host.url("/api/admin/plugins/quota/upgrade"))
        .bearer_auth(&token)
        .body(upgrade)
        .send()
        .await
        .expect("upgrade");
    let (status, json) = answer(upgraded).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["version"], "0.2.0", "{json}");
    assert_eq!(json["effective_limits"]["quotas"]["kv-max-keys"], 3, "{json}");
    assert_eq!(json["warnings"].as_array().map(Vec::len), Some(2), "{json}");
}
