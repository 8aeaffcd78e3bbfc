//! The foundation, end to end: the real `lutetia` binary, the real compiled plugins, and
//! both databases. Every persistence test runs once on SQLite and once on PostgreSQL.

use lutetia_tests::{Backend, Host, TestDb, on_both_backends, plugins_subset, run_cli, visits};

const BIN: &str = env!("CARGO_BIN_EXE_lutetia-test-host");

on_both_backends! {
    async fn page_is_wrapped_in_the_site_layout(backend: Backend) {
        let db = TestDb::new(backend).await;
        let host = Host::start(BIN, &db, &[]).await;
        let response = host.client.get(host.url("/p/hello/")).send().await.expect("request");
        assert_eq!(response.status(), 200);
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], "text/html; charset=utf-8");
        assert!(headers["content-security-policy"].to_str().unwrap_or("").contains("script-src 'self'"));
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let body = response.text().await.expect("body");
        // The layout: document shell, site header with navigation, the plugin's title.
        assert!(body.starts_with("<!doctype html>"), "{body}");
        assert!(body.contains(r#"<header class="site-header">"#), "{body}");
        assert!(body.contains(r#"<a href="/p/hello/" aria-current="page">"#), "{body}");
        assert!(body.contains("<title>Hello · Lutetia</title>"), "{body}");
        assert!(body.contains(r#"<div class="plugin-page" data-plugin="hello">"#), "{body}");
        assert_eq!(visits(&body), 1);
        // /p/hello without the slash redirects to the mount.
        let response = host.client.get(host.url("/p/hello")).send().await.expect("request");
        assert_eq!(response.status(), 308);
        assert_eq!(response.headers()["location"], "/p/hello/");
    }

    async fn visit_counter_survives_a_restart(backend: Backend) {
        let db = TestDb::new(backend).await;
        let host = Host::start(BIN, &db, &[]).await;
        for expected in 1..=3 {
            let (status, body) = host.get("/p/hello/").await;
            assert_eq!(status, 200);
            assert_eq!(visits(&body), expected);
        }
        // Killed as a crash would: committed writes must survive.
        host.kill().await;
        let host = Host::start(BIN, &db, &[]).await;
        let (status, body) = host.get("/p/hello/").await;
        assert_eq!(status, 200);
        assert_eq!(visits(&body), 4);
    }

    async fn concurrent_visits_are_all_counted(backend: Backend) {
        let db = TestDb::new(backend).await;
        let host = Host::start(BIN, &db, &[]).await;
        let mut tasks = Vec::new();
        for _ in 0..40 {
            let client = host.client.clone();
            let url = host.url("/p/hello/");
            tasks.push(tokio::spawn(async move {
                let response = client.get(url).send().await.expect("request");
                assert_eq!(response.status(), 200);
                visits(&response.text().await.expect("body"))
            }));
        }
        let mut seen = Vec::new();
        for task in tasks {
            seen.push(task.await.expect("task"));
        }
        seen.sort_unstable();
        assert_eq!(seen, (1..=40).collect::<Vec<u64>>(), "every visit gets its own number");
    }

    async fn kv_round_trips_and_is_private(backend: Backend) {
        let db = TestDb::new(backend).await;
        let host = Host::start(BIN, &db, &[]).await;
        let payload = "city=Paris&émoji=🙂";
        let response = host.client.post(host.url("/p/hello/api/kv/greeting")).body(payload).send().await.expect("post");
        assert!(response.status().is_success(), "{}", response.status());
        let (status, body) = host.get("/p/hello/api/kv/greeting").await;
        assert_eq!(status, 200);
        assert_eq!(body, payload);
        let (status, _) = host.get("/p/hello/api/kv/absent").await;
        assert_eq!(status, 404);
        // Stored under the plugin's own id only.
        let store = db.open().await;
        assert_eq!(store.kv_get("hello", "greeting").await.expect("read"), Some(payload.as_bytes().to_vec()));
        assert_eq!(store.kv_get("trap", "greeting").await.expect("read"), None);
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_shows_request_and_config() {
    let db = TestDb::new(Backend::Sqlite).await;
    let host = Host::start(BIN, &db, &[]).await;
    let response = host
        .client
        .post(host.url("/p/hello/api/echo?x=1&name=Jos%C3%A9+Garc%C3%ADa"))
        .body(vec![0u8, 159, 146, 150])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("application/json")
    );
    let json: serde_json::Value = response.json().await.expect("json");
    assert_eq!(json["method"], "POST");
    assert_eq!(json["path"], "/api/echo");
    assert_eq!(json["query"], "x=1&name=Jos%C3%A9+Garc%C3%ADa");
    assert_eq!(json["query_params"]["name"], "José García");
    assert_eq!(json["body_len"], 4);
    assert_eq!(json["greeting"], "Bonjour");
    assert!(json["request_id"].as_str().is_some_and(|id| !id.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_config_overrides_the_manifest() {
    let db = TestDb::new(Backend::Sqlite).await;
    let config = db.dir().join("lutetia.toml");
    std::fs::write(
        &config,
        "site-name = \"Ville de Test\"\n[plugins.hello.config]\ngreeting = \"Salut <b>\"\n",
    )
    .expect("write config");
    let host = Host::start(BIN, &db, &["--config", config.to_str().expect("utf-8 path")]).await;
    let (_, body) = host.get("/p/hello/api/echo").await;
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(json["greeting"], "Salut <b>");
    let (status, page) = host.get("/p/hello/").await;
    assert_eq!(status, 200);
    assert!(page.contains("Ville de Test"), "{page}");
    assert!(
        page.contains("Salut &lt;b&gt;"),
        "the plugin escapes config values: {page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_404_is_a_page_in_the_layout() {
    let db = TestDb::new(Backend::Sqlite).await;
    let host = Host::start(BIN, &db, &[]).await;
    let (status, body) = host.get("/p/hello/no/such/page").await;
    assert_eq!(status, 404);
    assert!(body.contains(r#"<header class="site-header">"#), "{body}");
    assert!(body.contains("/no/such/page"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_is_a_clean_500_and_the_host_keeps_serving() {
    let db = TestDb::new(Backend::Sqlite).await;
    let host = Host::start(BIN, &db, &[]).await;
    for _ in 0..3 {
        let (status, body) = host.get("/p/trap/").await;
        assert_eq!(status, 500);
        assert!(
            body.contains(r#"<header class="site-header">"#),
            "error page in the layout: {body}"
        );
        assert!(body.contains("Reference:"), "{body}");
        assert!(
            !body.contains("panicked"),
            "no internals leak to visitors: {body}"
        );
        // A fresh instance per request: the same plugin answers its next request.
        let (status, body) = host.get("/p/trap/ok").await;
        assert_eq!((status, body.as_str()), (200, "ok"));
        let (status, _) = host.get("/p/hello/").await;
        assert_eq!(status, 200);
    }
    let log = host.log();
    assert!(
        log.contains("plugin=trap") && log.contains("plugin call failed"),
        "{log}"
    );
    assert!(
        log.contains("panicked"),
        "the panic message reaches the operator's log: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_loop_is_cut_at_its_deadline() {
    let db = TestDb::new(Backend::Sqlite).await;
    let host = Host::start(BIN, &db, &[]).await;
    let client = host.client.clone();
    let spin_url = host.url("/p/spin/");
    let spinning = tokio::spawn(async move { client.get(spin_url).send().await.expect("request") });
    // While the loop burns its deadline, other plugins keep answering.
    let (status, _) = host.get("/p/hello/").await;
    assert_eq!(status, 200);
    let response = spinning.await.expect("task");
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "5");
    let body = response.text().await.expect("body");
    assert!(body.contains("took too long"), "{body}");
    let (status, body) = host.get("/p/spin/ok").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let log = host.log();
    assert!(log.contains("plugin=spin") && log.contains("deadline"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbounded_memory_growth_hits_the_limit() {
    let db = TestDb::new(Backend::Sqlite).await;
    let host = Host::start(BIN, &db, &[]).await;
    for _ in 0..3 {
        let (status, body) = host.get("/p/memory-hog/").await;
        assert_eq!(status, 503);
        assert!(body.contains("ran out of resources"), "{body}");
        let (status, body) = host.get("/p/memory-hog/ok").await;
        assert_eq!((status, body.as_str()), (200, "ok"));
    }
    let (status, _) = host.get("/p/hello/").await;
    assert_eq!(status, 200);
    let log = host.log();
    assert!(
        log.contains("plugin=memory-hog") && log.contains("memory limit"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_precise_errors() {
    let db = TestDb::new(Backend::Sqlite).await;
    let config = db.dir().join("small-body.toml");
    std::fs::write(&config, "[limits]\nmax-body-bytes = 1024\n").expect("write config");
    // hello without its files grant, which would raise its body limit to fit an upload.
    let without_files = |manifest: &str| {
        let start = manifest.find("[capabilities.files]").unwrap_or(manifest.len());
        let end = manifest[start..]
            .find("\n[capabilities.mail]")
            .map_or(manifest.len(), |i| start + i);
        format!("{}{}", &manifest[..start], &manifest[end..])
    };
    let plugins = plugins_subset(
        db.dir(),
        &["hello", "trap", "spin", "memory-hog"],
        Some(("hello", &without_files)),
    );
    let host = Host::start_with_plugins(
        BIN,
        &db,
        &plugins,
        &["--config", config.to_str().expect("utf-8 path")],
    )
    .await;

    let (status, body) = host.get("/p/no-such-plugin/").await;
    assert_eq!(status, 404);
    assert!(body.contains("No service is installed at this address"), "{body}");
    let (status, _) = host.get("/nowhere").await;
    assert_eq!(status, 404);

    // Declared too large: refused before the body is read.
    let response = host
        .client
        .post(host.url("/p/hello/api/echo"))
        .body(vec![b'x'; 1025])
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 413);
    // Streamed without a length: cut at the limit.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..8).map(|_| Ok(vec![b'y'; 512])).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let response = host
        .client
        .post(host.url("/p/hello/api/echo"))
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 413);
    // Exactly at the limit is fine.
    let response = host
        .client
        .post(host.url("/p/hello/api/echo"))
        .body(vec![b'x'; 1024])
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 200);

    let (status, body) = host.get("/healthz").await;
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(json["status"], "ok");
    // The four plugins of this test's folder.
    assert_eq!(json["plugins"], 4);
}

#[tokio::test]
async fn malformed_config_is_a_clear_error_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "bind = \"127.0.0.1:0\"\n[limits]\nmax-body-bytes = \"lots\"\n",
    )
    .expect("write");
    let path = config.to_str().expect("utf-8 path");
    let (code, _, stderr) = run_cli(BIN, &["serve", "--config", path]).await;
    assert_ne!(code, 0);
    assert!(
        stderr.contains("bad.toml") && stderr.contains("line 3") && stderr.contains("max-body-bytes"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    std::fs::write(&config, "bnid = \"127.0.0.1:0\"\n").expect("write");
    let (code, _, stderr) = run_cli(BIN, &["serve", "--config", path]).await;
    assert_ne!(code, 0);
    assert!(stderr.contains("unknown field `bnid`"), "{stderr}");

    let (code, _, stderr) = run_cli(BIN, &["serve", "--config", "/no/such/file.toml"]).await;
    assert_ne!(code, 0);
    assert!(stderr.contains("/no/such/file.toml"), "{stderr}");

    std::fs::write(&config, "[limits]\ndefault-memory-mb = 9999\n").expect("write");
    let (code, _, stderr) = run_cli(BIN, &["serve", "--config", path]).await;
    assert_ne!(code, 0);
    assert!(stderr.contains("limits.default-memory-mb"), "{stderr}");

    let (code, _, stderr) = run_cli(BIN, &["serve", "--database-url", "mysql://x/y"]).await;
    assert_ne!(code, 0);
    assert!(stderr.contains("database-url"), "{stderr}");

    let (code, _, stderr) = run_cli(BIN, &["serve", "--bind", "not-an-address"]).await;
    assert_ne!(code, 0);
    assert!(stderr.contains("--bind"), "{stderr}");

    let db = dir.path().join("x.db");
    let url = format!("sqlite://{}", db.display());
    let (code, _, stderr) = run_cli(
        BIN,
        &["serve", "--database-url", &url, "--plugins", "/no/such/plugins"],
    )
    .await;
    assert_ne!(code, 0);
    assert!(
        stderr.contains("plugins folder /no/such/plugins does not exist"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_plugin_file_does_not_keep_the_site_down() {
    let db = TestDb::new(Backend::Sqlite).await;
    let plugins = plugins_subset(db.dir(), &["hello"], None);
    std::fs::write(plugins.join("broken.wasm"), b"\0asm\x01\0\0\0 truncated").expect("write");
    std::fs::write(
        plugins.join("broken.toml"),
        "id = \"broken\"\nname = \"Broken\"\nversion = \"0.1.0\"\napi = \"0.1.0\"\n",
    )
    .expect("write");
    std::fs::copy(plugins.join("hello.wasm"), plugins.join("orphan.wasm")).expect("copy");
    let host = Host::start_with_plugins(BIN, &db, &plugins, &[]).await;
    let (status, _) = host.get("/p/hello/").await;
    assert_eq!(status, 200);
    let (status, _) = host.get("/p/broken/").await;
    assert_eq!(status, 404);
    let log = host.log();
    assert!(
        log.contains("plugin `broken` is not a valid WebAssembly component"),
        "{log}"
    );
    assert!(log.contains("orphan.wasm has no manifest"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ungranted_kv_is_denied() {
    let db = TestDb::new(Backend::Sqlite).await;
    let revoke = |m: &str| m.replace("kv = true", "kv = false");
    let plugins = plugins_subset(db.dir(), &["hello"], Some(("hello", &revoke)));
    let host = Host::start_with_plugins(BIN, &db, &plugins, &[]).await;
    let (status, _) = host.get("/p/hello/api/kv/anything").await;
    assert_eq!(status, 403);
    let log = host.log();
    assert!(
        log.contains("denied: kv capability not granted") && log.contains("hello"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_recorded_as_installed_are_served() {
    let db = TestDb::new(Backend::Postgres).await;
    let empty = db.dir().join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    {
        let store = db.open().await;
        let wasm =
            std::fs::read(std::path::Path::new(lutetia_tests::PLUGINS_DIR).join("hello.wasm")).expect("wasm");
        let manifest =
            std::fs::read_to_string(std::path::Path::new(lutetia_tests::PLUGINS_DIR).join("hello.toml"))
                .expect("toml");
        // As `lutetia plugin install` records it: the version, then the plugin row.
        let version = lutetia_db::VersionRow {
            plugin_id: "hello".into(),
            version: "0.1.0".into(),
            sha256: lutetia_model::hash::sha256_hex(&wasm),
            manifest,
            wasm,
            installed_by: "test".into(),
            installed_at: 0,
        };
        let row = lutetia_db::PluginRow {
            id: "hello".into(),
            version: "0.1.0".into(),
            enabled: true,
            grants: "kv,store,files,mail,events,jobs".into(),
            previous_version: None,
            pending_version: None,
            updated_at: 0,
        };
        store
            .save_plugin(&row, Some(&version), None)
            .await
            .expect("record");
        store.close().await;
    }
    let host = Host::start_with_plugins(BIN, &db, &empty, &[]).await;
    let (status, body) = host.get("/p/hello/").await;
    assert_eq!(status, 200);
    assert_eq!(visits(&body), 1);
    let (status, home) = host.get("/").await;
    assert_eq!(status, 200);
    assert!(home.contains(r#"<a href="/p/hello/">Hello</a>"#), "{home}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooded_plugin_cannot_take_the_others_down() {
    let db = TestDb::new(Backend::Sqlite).await;
    let config = db.dir().join("one-at-a-time.toml");
    std::fs::write(
        &config,
        "[limits]\nmax-concurrent-per-plugin = 1\nmax-queued-per-plugin = 1\n",
    )
    .expect("write config");
    let host = Host::start(BIN, &db, &["--config", config.to_str().expect("utf-8 path")]).await;
    // Eight calls to a plugin that loops until its 500 ms deadline: one runs, one waits,
    // the others are refused at once instead of holding instance slots.
    let mut flood = Vec::new();
    for _ in 0..8 {
        let client = host.client.clone();
        let url = host.url("/p/spin/");
        flood.push(tokio::spawn(async move {
            let response = client.get(url).send().await.expect("request");
            (response.status().as_u16(), response.text().await.expect("body"))
        }));
    }
    // Meanwhile another plugin answers normally.
    let (status, _) = host.get("/p/hello/").await;
    assert_eq!(status, 200);
    let mut busy = 0;
    for call in flood {
        let (status, body) = call.await.expect("task");
        assert_eq!(status, 503, "{body}");
        if body.contains("very busy") {
            busy += 1;
        } else {
            assert!(body.contains("took too long"), "{body}");
        }
    }
    assert!(busy >= 5, "{busy} of 8 calls were refused at once");
    assert!(host.log().contains("plugin=spin"));
}

/// The samples of a `/metrics` text: series (name and labels) → value.
fn samples(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .map(|(series, value)| (series.to_owned(), value.to_owned()))
        .collect()
}

/// GET `/metrics` with an optional bearer token: status, content type, body.
async fn scrape(host: &Host, token: Option<&str>) -> (u16, String, String) {
    let mut request = host.client.get(host.url("/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("scrape");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, content_type, response.text().await.expect("body"))
}

/// The request id on a host error page (`Reference: <code>ID</code>`).
fn reference(page: &str) -> String {
    page.split("Reference: <code>")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or_else(|| panic!("no reference in page:\n{page}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_each_outcome_and_do_not_grow_with_paths() {
    let db = TestDb::new(Backend::Sqlite).await;
    let plugins = plugins_subset(db.dir(), &["trap", "spin", "memory-hog"], None);
    let host = Host::start_with_plugins(BIN, &db, &plugins, &[]).await;
    let token = host
        .admin_token
        .clone()
        .expect("the first start prints the admin token");

    // Like the admin API: the admin token, or 401 in JSON.
    for wrong in [None, Some("lut_not-the-token")] {
        let (status, _, body) = scrape(&host, wrong).await;
        assert_eq!(status, 401, "{body}");
        let json: serde_json::Value = serde_json::from_str(&body).expect("json error");
        assert_eq!(json["error"], "unauthorized");
    }
    let response = host
        .client
        .post(host.url("/metrics"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 405);

    // Calls that succeed, trap, time out and run out of memory.
    for _ in 0..2 {
        assert_eq!(host.get("/p/trap/ok").await, (200, "ok".to_owned()));
    }
    let mut trap_page = String::new();
    for _ in 0..3 {
        let (status, page) = host.get("/p/trap/").await;
        assert_eq!(status, 500);
        trap_page = page;
    }
    assert_eq!(host.get("/p/spin/").await.0, 503);
    assert_eq!(host.get("/p/spin/ok").await, (200, "ok".to_owned()));
    assert_eq!(host.get("/p/memory-hog/").await.0, 503);

    let (status, content_type, text) = scrape(&host, Some(&token)).await;
    assert_eq!(status, 200, "{text}");
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let found = samples(&text);
    let calls = |plugin: &str, outcome: &str| {
        found
            .get(&format!(
                "lutetia_plugin_calls_total{{plugin=\"{plugin}\",outcome=\"{outcome}\"}}"
            ))
            .cloned()
            .unwrap_or_else(|| panic!("no {plugin} {outcome} series in\n{text}"))
    };
    let expected = [
        ("trap", [("ok", "2"), ("trap", "3")]),
        ("spin", [("ok", "1"), ("timeout", "1")]),
        ("memory-hog", [("ok", "0"), ("memory", "1")]),
    ];
    for (plugin, counts) in expected {
        for outcome in [
            "ok",
            "plugin_error",
            "trap",
            "timeout",
            "memory",
            "overloaded",
            "cancelled",
        ] {
            let want = counts
                .iter()
                .find(|(o, _)| *o == outcome)
                .map_or("0", |(_, n)| *n);
            assert_eq!(calls(plugin, outcome), want, "{plugin} {outcome} in\n{text}");
        }
    }
    let sample = |series: &str| {
        found
            .get(series)
            .cloned()
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    assert_eq!(
        sample("lutetia_plugin_call_duration_seconds_count{plugin=\"trap\"}"),
        "5"
    );
    assert_eq!(sample("lutetia_plugin_instances_in_use{plugin=\"spin\"}"), "0");
    assert_eq!(sample("lutetia_plugin_calls_queued{plugin=\"spin\"}"), "0");
    assert_eq!(
        sample("lutetia_http_requests_total{kind=\"plugin\",status=\"2xx\"}"),
        "3"
    );
    assert_eq!(
        sample("lutetia_http_requests_total{kind=\"plugin\",status=\"5xx\"}"),
        "5"
    );
    // This scrape's connection at least (the client may keep others open).
    let open: u64 = sample("lutetia_http_open_connections").parse().expect("a count");
    assert!(open >= 1, "{text}");
    assert_eq!(
        sample(&format!(
            "lutetia_build_info{{version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        )),
        "1"
    );

    // One access line per request, with the route template and the error page's id.
    let id = reference(&trap_page);
    let log = host.log_with(&format!("request_id={id}")).await;
    let line = log
        .lines()
        .find(|line| {
            line.contains(" access: ") && line.split(' ').any(|field| field == format!("request_id={id}"))
        })
        .unwrap_or_else(|| panic!("no access line for {id}:\n{log}"));
    for field in [
        "method=GET",
        "route=/p/{plugin}/ ",
        "status=500",
        "plugin=trap",
        "duration_ms=",
    ] {
        assert!(line.contains(field), "{field} in {line}");
    }

    // Paths and query strings never become labels: after one request of each kind, a
    // flood of distinct ones adds no series.
    let kinds = |i: usize| {
        [
            format!("/p/trap/x/{i}"),
            format!("/nowhere/{i}"),
            format!("/p/no-such-{i}/"),
            format!("/healthz?probe={i}"),
            format!("/p/trap/ok?q={i}"),
        ]
    };
    for path in kinds(0) {
        host.get(&path).await;
    }
    let before = samples(&scrape(&host, Some(&token)).await.2);
    for i in 1..=40 {
        for path in kinds(i) {
            host.get(&path).await;
        }
    }
    let (_, _, text) = scrape(&host, Some(&token)).await;
    let after = samples(&text);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "the series changed with the paths"
    );
    for fragment in ["x/", "nowhere", "no-such", "probe", "q="] {
        assert!(!text.contains(fragment), "{fragment} in\n{text}");
    }
    assert_eq!(
        after["lutetia_http_requests_total{kind=\"unmatched\",status=\"4xx\"}"],
        "41"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_access_line_and_metrics_can_be_public() {
    let db = TestDb::new(Backend::Sqlite).await;
    let config = db.dir().join("lutetia.toml");
    std::fs::write(&config, "[metrics]\nrequire-admin-token = false\n").expect("write config");
    let plugins = plugins_subset(db.dir(), &["hello"], None);
    let host = Host::start_with_plugins_env(
        BIN,
        &db,
        &plugins,
        &["--config", config.to_str().expect("utf-8 path")],
        &[("LUTETIA_LOG_FORMAT", std::ffi::OsStr::new("json"))],
    )
    .await;
    let (status, body) = host.get("/p/hello/api/echo?x=1").await;
    assert_eq!(status, 200, "{body}");
    let echoed: serde_json::Value = serde_json::from_str(&body).expect("echo json");
    let id = echoed["request_id"].as_str().expect("request id").to_owned();
    let response = host
        .client
        .post(host.url("/p/hello/api/kv/greeting"))
        .body("salut")
        .send()
        .await
        .expect("post");
    assert!(response.status().is_success());

    let log = host.log_with(&format!("\"request_id\":\"{id}\"")).await;
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let access = lines
        .iter()
        .find(|line| line["target"] == "access" && line["request_id"] == id.as_str())
        .unwrap_or_else(|| panic!("no access line for {id}:\n{log}"));
    assert_eq!(access["level"], "INFO");
    assert_eq!(access["method"], "GET");
    assert_eq!(access["route"], "/p/{plugin}/{*rest}");
    assert_eq!(access["status"], 200);
    assert_eq!(access["plugin"], "hello");
    assert!(access["duration_ms"].as_f64().is_some(), "{access}");
    assert!(lines.iter().any(|line| line["message"] == "serving"), "{log}");

    // Public by configuration: no token needed.
    let (status, content_type, text) = scrape(&host, None).await;
    assert_eq!(status, 200, "{text}");
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let found = samples(&text);
    let kv_ops: u64 = found["lutetia_service_operations_total{plugin=\"hello\",service=\"kv\"}"]
        .parse()
        .expect("a count");
    assert!(kv_ops >= 1, "{text}");
    assert_eq!(
        found["lutetia_plugin_calls_total{plugin=\"hello\",outcome=\"trap\"}"],
        "0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_log_and_metrics_can_be_switched_off() {
    let db = TestDb::new(Backend::Sqlite).await;
    let config = db.dir().join("lutetia.toml");
    std::fs::write(
        &config,
        "[http]\naccess-log = false\n[metrics]\nenabled = false\n",
    )
    .expect("write config");
    let plugins = plugins_subset(db.dir(), &["trap"], None);
    let host = Host::start_with_plugins(
        BIN,
        &db,
        &plugins,
        &["--config", config.to_str().expect("utf-8 path")],
    )
    .await;
    let token = host.admin_token.clone().expect("admin token");
    let (status, _, _) = scrape(&host, Some(&token)).await;
    assert_eq!(status, 404);
    assert_eq!(host.get("/p/trap/ok").await.0, 200);
    // The trap's error line is written after the requests before it were answered.
    assert_eq!(host.get("/p/trap/").await.0, 500);
    let log = host.log_with("plugin call failed").await;
    assert!(log.contains("plugin call failed"), "{log}");
    assert!(!log.contains(" access: "), "{log}");
}

#[tokio::test]
async fn an_unknown_log_format_is_refused() {
    let scratch = tempfile::tempdir().expect("scratch");
    let (code, _, stderr) = lutetia_tests::run_cli_in(
        BIN,
        scratch.path(),
        &["check-config"],
        &[("LUTETIA_LOG_FORMAT", std::ffi::OsStr::new("xml"))],
    )
    .await;
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("LUTETIA_LOG_FORMAT must be `text` or `json`, not `xml`"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_key_the_manifest_does_not_declare_is_refused() {
    // A typo in the operator's settings would otherwise leave the plugin on its default
    // without a word: the plugin is not loaded, the log says which key, the rest serves.
    let db = TestDb::new(Backend::Sqlite).await;
    let config = db.dir().join("lutetia.toml");
    std::fs::write(&config, "[plugins.hello.config]\ngreting = \"Salut\"\n").expect("write config");
    let host = Host::start(BIN, &db, &["--config", config.to_str().expect("utf-8 path")]).await;
    let (status, body) = host.get("/p/hello/").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(host.get("/healthz").await.0, 200);
    assert_eq!(host.get("/p/trap/ok").await.0, 200, "the other plugins serve");
    let log = host.log_with("does not declare").await;
    assert!(
        log.contains("[plugins.hello.config] set `greting`") && log.contains("it declares `greeting`"),
        "{log}"
    );
}

#[tokio::test]
async fn settings_come_from_variables_and_flags_and_check_config_masks_secrets() {
    let scratch = tempfile::tempdir().expect("scratch");
    let password_file = scratch.path().join("smtp-password");
    std::fs::write(&password_file, "pw-from-file\n").expect("write secret");
    std::fs::write(
        scratch.path().join("lutetia.toml"),
        "site-name = \"Mairie\"\nbind = \"127.0.0.1:9100\"\n[limits]\ndefault-timeout-ms = 3000\n",
    )
    .expect("write config");
    let os = std::ffi::OsStr::new;
    let (code, stdout, stderr) = lutetia_tests::run_cli_in(
        BIN,
        scratch.path(),
        &[
            "check-config",
            "--config",
            "lutetia.toml",
            "--database-url",
            "postgres://app:pg-secret@db.example.org/lutetia",
        ],
        &[
            ("LUTETIA_BIND", os("127.0.0.1:9200")),
            ("LUTETIA_LIMITS__DEFAULT_TIMEOUT_MS", os("4000")),
            ("LUTETIA_DATABASE_URL", os("sqlite://./from-variable.db")),
            ("LUTETIA_SMTP_URL", os("smtp://mairie@mail.example.org:587")),
            ("LUTETIA_SMTP_PASSWORD_FILE", password_file.as_os_str()),
        ],
    )
    .await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    // Defaults < file < variables < flags.
    for line in [
        "site-name = \"Mairie\"",
        "bind = \"127.0.0.1:9200\"",
        "default-timeout-ms = 4000",
        "database-url = \"postgres://app:***@db.example.org/lutetia\"",
        "smtp-url = \"smtp://mairie@mail.example.org:587\"",
        "smtp-password = \"***\"",
        "max-memory-mb = 512",
    ] {
        assert!(stdout.lines().any(|l| l == line), "{line} in:\n{stdout}");
    }
    assert!(
        !stdout.contains("pg-secret") && !stdout.contains("pw-from-file"),
        "{stdout}"
    );

    let (code, stdout, stderr) = lutetia_tests::run_cli_in(
        BIN,
        scratch.path(),
        &["check-config"],
        &[("LUTETIA_HTTP__MAX_CONECTIONS", os("10"))],
    )
    .await;
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stderr.to_lowercase().contains("max-conections"),
        "the typo is named: {stderr}"
    );
}
