//! Issue 5: operators pack, install, grant, upgrade, hot-reload, roll back and remove
//! plugins while the site serves, from the command line and the admin API, on SQLite and
//! PostgreSQL; bad input changes nothing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lutetia_tests::{Backend, Host, PLUGINS_DIR, TestDb, on_both_backends, run_cli};
use reqwest::Method;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_lutetia-test-host");

/// The `versioned` test plugin's manifest, at `version`, with `extra` appended.
fn manifest(version: &str, extra: &str) -> String {
    let text = std::fs::read_to_string(Path::new(PLUGINS_DIR).join("versioned.toml")).expect("manifest");
    let text = text
        .replace("version = \"0.1.0\"", &format!("version = \"{version}\""))
        .replace("label = \"0.1.0\"", &format!("label = \"{version}\""));
    format!("{text}{extra}")
}

fn versioned_wasm() -> Vec<u8> {
    std::fs::read(Path::new(PLUGINS_DIR).join("versioned.wasm")).expect("wasm")
}

/// A package of the `versioned` plugin at `version` (answering `version=VERSION`).
fn package(version: &str) -> Vec<u8> {
    lutetia_model::package::pack(&versioned_wasm(), &manifest(version, "")).expect("pack")
}

/// Like [`package`] with a manifest edit.
fn package_with(version: &str, edit: impl Fn(String) -> String) -> Vec<u8> {
    lutetia_model::package::pack(&versioned_wasm(), &edit(manifest(version, ""))).expect("pack")
}

/// Appends a `lutetia:manifest` section without validating it (to test invalid manifests).
fn raw_package(component: &[u8], manifest_text: &str) -> Vec<u8> {
    fn leb(out: &mut Vec<u8>, mut v: usize) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let name = b"lutetia:manifest";
    let mut contents = Vec::new();
    leb(&mut contents, name.len());
    contents.extend_from_slice(name);
    contents.extend_from_slice(manifest_text.as_bytes());
    let mut out = component.to_vec();
    out.push(0);
    leb(&mut out, contents.len());
    out.extend_from_slice(&contents);
    out
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write file");
    path
}

/// A refused request: name, path, body, expected status, error code, message part.
type BadCase<'a> = (&'a str, &'a str, Vec<u8>, u16, &'a str, &'a str);

/// Starts a host with no plugins folder content (everything comes from the database).
async fn start(db: &TestDb) -> Host {
    let empty = db.dir().join("no-plugins");
    std::fs::create_dir_all(&empty).expect("mkdir");
    Host::start_with_plugins(BIN, db, &empty, &[]).await
}

/// Calls the admin API with `token`; returns status and JSON body.
async fn api_as(host: &Host, token: &str, method: Method, path: &str, body: Option<Vec<u8>>) -> (u16, Value) {
    let mut request = host.client.request(method, host.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.body(body);
    }
    let response = request.send().await.expect("admin request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    (status, json)
}

async fn api(host: &Host, method: Method, path: &str, body: Option<Vec<u8>>) -> (u16, Value) {
    let token = host
        .admin_token
        .clone()
        .expect("the first start prints the admin token");
    api_as(host, &token, method, path, body).await
}

/// The `x-version` of an answer of the `versioned` plugin, checking it agrees with the body.
async fn served_version(host: &Host) -> Option<String> {
    let response = host
        .client
        .get(host.url("/p/versioned/"))
        .send()
        .await
        .expect("request");
    if response.status().as_u16() != 200 {
        return None;
    }
    let header = response
        .headers()
        .get("x-version")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.text().await.expect("body");
    let header = header.expect("x-version header");
    assert_eq!(body, format!("version={header};again={header}"), "a mixed answer");
    Some(header)
}

/// Polls until the plugin is served at `want` (`None`: not served). Changes made elsewhere
/// (the command line, another node) arrive by the periodic re-check or a notification.
async fn wait_served(host: &Host, want: Option<&str>) {
    for _ in 0..300 {
        if served_version(host).await.as_deref() == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} never served {want:?}; log:\n{}", host.base, host.log());
}

async fn installed(host: &Host) -> Value {
    let (status, list) = api(host, Method::GET, "/api/admin/plugins", None).await;
    assert_eq!(status, 200, "{list}");
    list
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pack_inspect_and_serve_a_packed_file_from_the_plugins_folder() {
    let dir = tempfile::tempdir().expect("tmp");
    let component = Path::new(PLUGINS_DIR).join("versioned.wasm");
    let manifest_path = write(dir.path(), "plugin.toml", manifest("0.1.0", "").as_bytes());
    let out = dir.path().join("folder").join("versioned.wasm");
    std::fs::create_dir_all(out.parent().expect("parent")).expect("mkdir");
    let (code, stdout, stderr) = run_cli(
        BIN,
        &[
            "plugin",
            "pack",
            component.to_str().expect("utf-8"),
            manifest_path.to_str().expect("utf-8"),
            "-o",
            out.to_str().expect("utf-8"),
        ],
    )
    .await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (code, stdout, stderr) = run_cli(BIN, &["plugin", "inspect", out.to_str().expect("utf-8")]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    for expected in [
        "id: versioned",
        "version: 0.1.0",
        "api: lutetia:plugin@0.1.0",
        "kv      a private key-value store",
        "lutetia:plugin/kv@0.1.0",
        "lutetia:plugin/handler@0.1.0",
        "lutetia:plugin/lifecycle@0.1.0",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?} in:\n{stdout}");
    }
    // A packed file needs no manifest beside it.
    let db = TestDb::new(Backend::Sqlite).await;
    let host = Host::start_with_plugins(BIN, &db, out.parent().expect("folder"), &[]).await;
    assert_eq!(served_version(&host).await.as_deref(), Some("0.1.0"));
    // Installing the same id would never be served here: refused with the reason.
    let (status, body) = api(
        &host,
        Method::POST,
        "/api/admin/plugins?grant=all",
        Some(package("0.2.0")),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("already_installed")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("plugins folder"),
        "{body}"
    );
    // Packing something that is not a component fails with a precise message.
    let bad = write(dir.path(), "bad.wasm", b"\0asm\x01\0\0\0");
    let (code, _, stderr) = run_cli(
        BIN,
        &[
            "plugin",
            "pack",
            bad.to_str().expect("utf-8"),
            manifest_path.to_str().expect("utf-8"),
        ],
    )
    .await;
    assert_ne!(code, 0);
    assert!(
        stderr.contains("core WebAssembly module, not a component"),
        "{stderr}"
    );
}

on_both_backends! {
    async fn cli_lifecycle_reaches_a_running_host(backend: Backend) {
        let db = TestDb::new(backend).await;
        let host = start(&db).await;
        let dir = db.dir();
        let v1 = write(dir, "v1.wasm", &package("0.1.0"));
        let v2 = write(dir, "v2.wasm", &package("0.2.0"));
        let url = db.url.clone();
        let cli = move |args: Vec<String>| {
            let url = url.clone();
            async move {
                let mut all: Vec<String> = vec!["plugin".into()];
                all.extend(args);
                all.extend(["--database-url".to_owned(), url]);
                let refs: Vec<&str> = all.iter().map(String::as_str).collect();
                run_cli(BIN, &refs).await
            }
        };
        let path = |p: &PathBuf| p.to_str().expect("utf-8").to_owned();

        // Without a grant (and no terminal to ask on) the install is refused.
        let (code, _, stderr) = cli(vec!["install".into(), path(&v1)]).await;
        assert_ne!(code, 0);
        assert!(stderr.contains("asks for kv"), "{stderr}");
        let (code, out, stderr) = cli(vec!["install".into(), path(&v1), "--grant".into(), "all".into()]).await;
        assert_eq!(code, 0, "{out}{stderr}");
        assert!(out.contains("installed versioned 0.1.0 (granted: kv)"), "{out}");
        wait_served(&host, Some("0.1.0")).await;

        let (code, _, stderr) = cli(vec!["install".into(), path(&v1), "--grant".into(), "all".into()]).await;
        assert_ne!(code, 0);
        assert!(stderr.contains("already installed"), "{stderr}");
        let (code, _, stderr) = cli(vec!["upgrade".into(), path(&v1)]).await;
        assert_ne!(code, 0);
        assert!(stderr.contains("must be a newer version, not 0.1.0"), "{stderr}");

        let (code, out, stderr) = cli(vec!["upgrade".into(), path(&v2)]).await;
        assert_eq!(code, 0, "{out}{stderr}");
        wait_served(&host, Some("0.2.0")).await;
        let (_, migrated) = host.get("/p/versioned/migrated-from").await;
        assert_eq!(migrated, "0.1.0");

        let (code, out, stderr) = cli(vec!["list".into()]).await;
        assert_eq!(code, 0, "{stderr}");
        assert!(out.contains("versioned") && out.contains("0.2.0") && out.contains("enabled"), "{out}");
        let (code, out, _) = cli(vec!["inspect".into(), "versioned".into()]).await;
        assert_eq!(code, 0);
        assert!(out.contains("(served)") && out.contains("(previous)"), "{out}");

        let (code, _, stderr) = cli(vec!["rollback".into(), "versioned".into()]).await;
        assert_eq!(code, 0, "{stderr}");
        wait_served(&host, Some("0.1.0")).await;
        let (code, _, stderr) = cli(vec!["disable".into(), "versioned".into()]).await;
        assert_eq!(code, 0, "{stderr}");
        wait_served(&host, None).await;
        let (code, _, stderr) = cli(vec!["enable".into(), "versioned".into()]).await;
        assert_eq!(code, 0, "{stderr}");
        wait_served(&host, Some("0.1.0")).await;
        let (code, _, stderr) = cli(vec!["remove".into(), "versioned".into(), "--purge-data".into()]).await;
        assert_eq!(code, 0, "{stderr}");
        wait_served(&host, None).await;
        let (code, _, stderr) = cli(vec!["remove".into(), "versioned".into()]).await;
        assert_ne!(code, 0);
        assert!(stderr.contains("not installed"), "{stderr}");
    }

    async fn http_lifecycle_install_upgrade_rollback_disable_remove(backend: Backend) {
        let db = TestDb::new(backend).await;
        let host = start(&db).await;
        let (status, body) = api_as(&host, "wrong", Method::GET, "/api/admin/plugins", None).await;
        assert_eq!((status, body["error"].as_str()), (401, Some("unauthorized")));

        let (status, body) = api(&host, Method::POST, "/api/admin/plugins?grant=kv", Some(package("0.1.0"))).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(served_version(&host).await.as_deref(), Some("0.1.0"), "served as soon as installed");
        let (_, migrated) = host.get("/p/versioned/migrated-from").await;
        assert_eq!(migrated, "none");

        let (status, body) = api(&host, Method::POST, "/api/admin/plugins/versioned/upgrade", Some(package("0.2.0"))).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(served_version(&host).await.as_deref(), Some("0.2.0"));
        let (_, migrated) = host.get("/p/versioned/migrated-from").await;
        assert_eq!(migrated, "0.1.0");

        let (status, body) = api(&host, Method::POST, "/api/admin/plugins/versioned/rollback", None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(served_version(&host).await.as_deref(), Some("0.1.0"));

        let (status, body) = api(&host, Method::GET, "/api/admin/plugins/versioned", None).await;
        assert_eq!(status, 200);
        assert_eq!(body["previous_version"], "0.2.0");
        assert_eq!(body["versions"].as_array().map(Vec::len), Some(2), "{body}");

        let (status, _) = api(&host, Method::POST, "/api/admin/plugins/versioned/disable", None).await;
        assert_eq!(status, 200);
        assert_eq!(served_version(&host).await, None);
        let (status, _) = api(&host, Method::POST, "/api/admin/plugins/versioned/enable", None).await;
        assert_eq!(status, 200);
        assert_eq!(served_version(&host).await.as_deref(), Some("0.1.0"));

        let (status, _) = api(&host, Method::DELETE, "/api/admin/plugins/versioned?purge-data=true", None).await;
        assert_eq!(status, 200);
        assert_eq!(served_version(&host).await, None);
        assert_eq!(installed(&host).await["plugins"].as_array().map(Vec::len), Some(0));
    }

    async fn an_upgrade_asking_for_more_waits_for_a_grant(backend: Backend) {
        let db = TestDb::new(backend).await;
        let host = start(&db).await;
        let (status, body) = api(&host, Method::POST, "/api/admin/plugins?grant=all", Some(package("0.1.0"))).await;
        assert_eq!(status, 201, "{body}");
        let wider = package_with("0.2.0", |m| m.replace("kv = true", "kv = true\nmail = { max-per-hour = 5 }"));
        let (status, body) = api(&host, Method::POST, "/api/admin/plugins/versioned/upgrade", Some(wider)).await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["pending"]["version"], "0.2.0", "{body}");
        assert_eq!(body["pending"]["needs"][0], "mail", "{body}");
        assert_eq!(served_version(&host).await.as_deref(), Some("0.1.0"), "the old version keeps serving");

        let (status, body) = api(&host, Method::POST, "/api/admin/plugins/versioned/grant?grant=teleport", None).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
        let (status, body) = api(&host, Method::POST, "/api/admin/plugins/versioned/grant?grant=mail", None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(served_version(&host).await.as_deref(), Some("0.2.0"));
        let (_, body) = api(&host, Method::GET, "/api/admin/plugins/versioned", None).await;
        assert_eq!(body["grants"], serde_json::json!(["kv", "mail"]), "{body}");
    }

    async fn bad_input_gets_a_clear_error_and_changes_nothing(backend: Backend) {
        let db = TestDb::new(backend).await;
        let host = start(&db).await;
        let (status, body) = api(&host, Method::POST, "/api/admin/plugins?grant=all", Some(package("0.1.0"))).await;
        assert_eq!(status, 201, "{body}");
        let before = installed(&host).await;

        let good = package("0.2.0");
        let empty_component = b"\0asm\x0d\x00\x01\x00".to_vec();
        let cases: Vec<BadCase<'_>> = vec![
            ("truncated", "/api/admin/plugins/versioned/upgrade", good[..good.len() / 2].to_vec(), 400, "invalid_package", "truncated"),
            ("not wasm", "/api/admin/plugins/versioned/upgrade", b"<html>hello</html>".to_vec(), 400, "invalid_package", "not a WebAssembly file"),
            ("core module", "/api/admin/plugins?grant=all", raw_package(b"\0asm\x01\0\0\0", &manifest("0.1.0", "")), 400, "not_a_component", "core WebAssembly module"),
            ("no manifest", "/api/admin/plugins?grant=all", versioned_wasm(), 400, "missing_manifest", "no embedded manifest"),
            ("another world", "/api/admin/plugins?grant=all", raw_package(&empty_component, &manifest("0.1.0", "").replace("id = \"versioned\"", "id = \"other\"")), 422, "world_mismatch", "lutetia:plugin world"),
            ("missing field", "/api/admin/plugins?grant=all", raw_package(&versioned_wasm(), &manifest("0.1.0", "").replace("name = \"Versioned (test)\"\n", "")), 400, "invalid_manifest", "name"),
            ("invalid version", "/api/admin/plugins/versioned/upgrade", raw_package(&versioned_wasm(), &manifest("0.1.0", "").replace("version = \"0.1.0\"", "version = \"next\"")), 400, "invalid_manifest", "version"),
            ("unknown capability", "/api/admin/plugins/versioned/upgrade", raw_package(&versioned_wasm(), &manifest("0.2.0", "").replace("kv = true", "kv = true\nteleport = true")), 400, "invalid_manifest", "teleport"),
            ("id clash", "/api/admin/plugins?grant=all", package("0.3.0"), 409, "already_installed", "already installed"),
            ("not newer", "/api/admin/plugins/versioned/upgrade", package("0.1.0"), 409, "not_newer", "must be a newer version"),
            ("older", "/api/admin/plugins/versioned/upgrade", package("0.0.9"), 409, "not_newer", "not 0.0.9"),
            ("migrate traps", "/api/admin/plugins/versioned/upgrade", package_with("0.2.0", |m| m.replace("migrate = \"ok\"", "migrate = \"trap\"")), 422, "migrate_failed", "trapped"),
            ("migrate fails", "/api/admin/plugins/versioned/upgrade", package_with("0.2.0", |m| m.replace("migrate = \"ok\"", "migrate = \"fail\"")), 422, "migrate_failed", "refuses to migrate"),
            ("import not granted", "/api/admin/plugins?grant=", package_with("0.1.0", |m| m.replace("id = \"versioned\"", "id = \"versioned-two\"")), 422, "not_granted", "lutetia:plugin/kv@0.1.0"),
            ("grant not requested", "/api/admin/plugins?grant=kv,store", package_with("0.1.0", |m| m.replace("id = \"versioned\"", "id = \"versioned-two\"")), 400, "invalid_grant", "does not ask for `store`"),
            ("unknown grant", "/api/admin/plugins?grant=teleport", package_with("0.1.0", |m| m.replace("id = \"versioned\"", "id = \"versioned-two\"")), 400, "invalid_grant", "unknown capability `teleport`"),
            ("no grant", "/api/admin/plugins", package_with("0.1.0", |m| m.replace("id = \"versioned\"", "id = \"versioned-two\"")), 400, "grant_required", "asks for kv"),
            ("wrong id", "/api/admin/plugins/hello/upgrade", package("0.2.0"), 400, "id_mismatch", "not `hello`"),
        ];
        for (name, path, body, status, code, message) in cases {
            let (got, json) = api(&host, Method::POST, path, Some(body)).await;
            assert_eq!(got, status, "{name}: {json}");
            assert_eq!(json["error"].as_str(), Some(code), "{name}: {json}");
            let text = json["message"].as_str().unwrap_or_default();
            assert!(text.contains(message), "{name}: {text}");
            assert_eq!(installed(&host).await, before, "{name} changed the installed set");
            assert_eq!(served_version(&host).await.as_deref(), Some("0.1.0"), "{name}");
        }
        let (got, json) = api(&host, Method::DELETE, "/api/admin/plugins/versioned?purge-data=maybe", None).await;
        assert_eq!((got, json["error"].as_str()), (400, Some("invalid_query")), "{json}");
        for (path, status, code) in [
            ("/api/admin/plugins/nothing/rollback", 404, "not_found"),
            ("/api/admin/plugins/versioned/rollback", 409, "no_previous_version"),
            ("/api/admin/plugins/nothing/enable", 404, "not_found"),
        ] {
            let (got, json) = api(&host, Method::POST, path, None).await;
            assert_eq!((got, json["error"].as_str()), (status, Some(code)), "{path}: {json}");
        }
        // The same refusals on the command line: a message and a non-zero exit code.
        let dir = db.dir();
        for (bytes, message) in [
            (good[..100].to_vec(), "truncated"),
            (b"\0asm\x01\0\0\0".to_vec(), "core WebAssembly module"),
            (package_with("0.2.0", |m| m.replace("migrate = \"ok\"", "migrate = \"trap\"")), "migrate failed"),
        ] {
            let file = write(dir, "bad.wasm", &bytes);
            let (code, _, stderr) = run_cli(
                BIN,
                &["plugin", "upgrade", file.to_str().expect("utf-8"), "--database-url", &db.url],
            )
            .await;
            assert_ne!(code, 0, "{stderr}");
            assert!(stderr.contains(message), "{stderr}");
        }
        assert_eq!(installed(&host).await, before);
    }

    async fn zero_failed_requests_during_ten_hot_reloads(backend: Backend) {
        let db = TestDb::new(backend).await;
        let host = start(&db).await;
        let (status, body) = api(&host, Method::POST, "/api/admin/plugins?grant=all", Some(package("1.0.0"))).await;
        assert_eq!(status, 201, "{body}");
        let versions: Vec<String> = (0..=10).map(|n| format!("1.{n}.0")).collect();
        let packages: Vec<Vec<u8>> = versions[1..].iter().map(|v| package(v)).collect();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut load = Vec::new();
        for _ in 0..4 {
            let client = host.client.clone();
            let url = host.url("/p/versioned/");
            let stop = stop.clone();
            load.push(tokio::spawn(async move {
                let (mut ok, mut failed, mut seen) = (0u32, Vec::new(), Vec::new());
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let response = client.get(&url).send().await.expect("request");
                    let status = response.status().as_u16();
                    let header = response.headers().get("x-version").and_then(|v| v.to_str().ok()).map(str::to_owned);
                    let body = response.text().await.expect("body");
                    if status != 200 {
                        failed.push(format!("{status}: {body}"));
                        continue;
                    }
                    let version = header.expect("x-version");
                    assert_eq!(body, format!("version={version};again={version}"), "mixed answer");
                    ok += 1;
                    seen.push(version);
                }
                (ok, failed, seen)
            }));
        }
        for (n, bytes) in packages.into_iter().enumerate() {
            let (status, body) = api(&host, Method::POST, "/api/admin/plugins/versioned/upgrade", Some(bytes)).await;
            assert_eq!(status, 200, "{body}");
            // Once the upgrade has answered, the next request is served by the new version.
            assert_eq!(served_version(&host).await.as_deref(), Some(versions[n + 1].as_str()));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut total = 0;
        for task in load {
            let (ok, failed, seen) = task.await.expect("load task");
            assert!(failed.is_empty(), "failed requests during hot reloads: {failed:?}");
            assert!(seen.iter().all(|v| versions.contains(v)), "{seen:?}");
            // Each client sees versions only move forward.
            let index = |v: &String| versions.iter().position(|x| x == v).unwrap_or(0);
            assert!(seen.windows(2).all(|w| index(&w[0]) <= index(&w[1])), "{seen:?}");
            total += ok;
        }
        assert!(total > 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_on_postgres_see_each_others_changes() {
    let db = TestDb::new(Backend::Postgres).await;
    let a = start(&db).await;
    let b = start(&db).await;
    assert!(b.admin_token.is_none(), "the token is created once per database");
    let (status, body) = api(
        &a,
        Method::POST,
        "/api/admin/plugins?grant=all",
        Some(package("0.1.0")),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    wait_served(&b, Some("0.1.0")).await;
    let token = a.admin_token.clone().expect("token");
    let (status, body) = api_as(
        &b,
        &token,
        Method::POST,
        "/api/admin/plugins/versioned/upgrade",
        Some(package("0.2.0")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    wait_served(&a, Some("0.2.0")).await;
    let (status, _) = api(&a, Method::POST, "/api/admin/plugins/versioned/rollback", None).await;
    assert_eq!(status, 200);
    wait_served(&b, Some("0.1.0")).await;
    let (status, _) = api(&a, Method::POST, "/api/admin/plugins/versioned/disable", None).await;
    assert_eq!(status, 200);
    wait_served(&b, None).await;
    let (status, _) = api_as(
        &b,
        &token,
        Method::POST,
        "/api/admin/plugins/versioned/enable",
        None,
    )
    .await;
    assert_eq!(status, 200);
    wait_served(&a, Some("0.1.0")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_loads_plugins_from_the_compiled_cache() {
    let db = TestDb::new(Backend::Sqlite).await;
    let first = start(&db).await;
    let (status, body) = api(
        &first,
        Method::POST,
        "/api/admin/plugins?grant=all",
        Some(package("0.1.0")),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(!first.log().contains("loaded from the compiled cache"));
    first.kill().await;
    let cached: Vec<_> = std::fs::read_dir(db.dir().join("data").join("compiled-cache"))
        .expect("cache folder")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .collect();
    assert_eq!(cached.len(), 1, "one compiled file per component");
    let second = start(&db).await;
    assert_eq!(served_version(&second).await.as_deref(), Some("0.1.0"));
    assert!(
        second.log().contains("loaded from the compiled cache"),
        "{}",
        second.log()
    );
    // A corrupt cache entry is not trusted blindly: it is recompiled.
    second.kill().await;
    std::fs::write(cached[0].path(), b"garbage").expect("corrupt");
    let third = start(&db).await;
    assert_eq!(served_version(&third).await.as_deref(), Some("0.1.0"));
    assert!(
        third.log().contains("compiled cache entry unusable"),
        "{}",
        third.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_builds_packs_and_installs_into_the_running_host() {
    let db = TestDb::new(Backend::Sqlite).await;
    let host = start(&db).await;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository");
    // The guests' build folder of this package's build script: the build is then fresh.
    let wasm_target = Path::new(PLUGINS_DIR)
        .ancestors()
        .nth(5)
        .expect("target folder")
        .join("wasm-plugins");
    let output = tokio::process::Command::new(BIN)
        .args(["dev", "--once", "--database-url", &db.url])
        .arg(repo.join("example-plugins/testing/versioned"))
        .current_dir(db.dir())
        .env("CARGO_TARGET_DIR", &wasm_target)
        .env_remove("LUTETIA_CONFIG")
        .env("LUTETIA_LOG", "warn")
        .output()
        .await
        .expect("run lutetia dev");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("installed versioned 0.1.0-dev."), "{stdout}");
    wait_served(&host, Some("0.1.0")).await;
    let (_, body) = api(&host, Method::GET, "/api/admin/plugins/versioned", None).await;
    assert!(
        body["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("0.1.0-dev.")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_rebuilds_and_upgrades_when_a_source_changes() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let db = TestDb::new(Backend::Sqlite).await;
    let host = start(&db).await;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository");
    let plugin = repo.join("example-plugins/testing/versioned");
    let wasm_target = Path::new(PLUGINS_DIR)
        .ancestors()
        .nth(5)
        .expect("target folder")
        .join("wasm-plugins");
    let mut dev = tokio::process::Command::new(BIN)
        .args(["dev", "--database-url", &db.url])
        .arg(&plugin)
        .current_dir(db.dir())
        .env("CARGO_TARGET_DIR", &wasm_target)
        .env_remove("LUTETIA_CONFIG")
        .env("LUTETIA_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start lutetia dev");
    let mut lines = BufReader::new(dev.stdout.take().expect("stdout")).lines();
    // The next line saying what a cycle did (progress lines such as "building ..." skipped).
    let next_line = async |lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>| loop {
        let line = tokio::time::timeout(Duration::from_secs(240), lines.next_line())
            .await
            .expect("lutetia dev answers")
            .expect("stdout readable")
            .expect("lutetia dev still running");
        if line.starts_with("installed") || line.starts_with("upgraded") {
            return line;
        }
    };
    let first = next_line(&mut lines).await;
    assert!(first.starts_with("installed versioned 0.1.0-dev."), "{first}");
    wait_served(&host, Some("0.1.0")).await;
    // A source change (a new modification time, the content unchanged) is noticed, rebuilt
    // and installed as the next dev version, which the running host then serves.
    let source = plugin.join("src/lib.rs");
    let file = std::fs::File::options()
        .write(true)
        .open(&source)
        .expect("open source");
    file.set_modified(std::time::SystemTime::now() + Duration::from_secs(2))
        .expect("touch source");
    drop(file);
    let second = next_line(&mut lines).await;
    assert!(second.starts_with("upgraded versioned 0.1.0-dev."), "{second}");
    assert_ne!(first, second);
    let version = second.split_whitespace().nth(2).expect("version").to_owned();
    for _ in 0..300 {
        let (_, body) = api(&host, Method::GET, "/api/admin/plugins/versioned", None).await;
        if body["version"] == version.as_str() {
            let _ = dev.kill().await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the host never recorded {version}; log:\n{}", host.log());
}

/// Runs `lutetia ARGS` on a pseudo-terminal (util-linux `script`), typing `answer`.
async fn run_on_terminal(dir: &Path, args: &str, answer: &str) -> (bool, String) {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new("script")
        .args(["-q", "-e", "-c", &format!("{BIN} {args}"), "/dev/null"])
        .current_dir(dir)
        .env_remove("LUTETIA_CONFIG")
        .env("LUTETIA_LOG", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("util-linux `script` runs");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(answer.as_bytes()).await.expect("type the answer");
    let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("the command ends")
        .expect("output");
    drop(stdin);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_on_a_terminal_asks_the_operator() {
    let db = TestDb::new(Backend::Sqlite).await;
    let plugins = Path::new(PLUGINS_DIR);
    let package = db.dir().join("hello-packed.wasm");
    let (code, out, err) = run_cli(
        BIN,
        &[
            "plugin",
            "pack",
            plugins.join("hello.wasm").to_str().expect("utf-8"),
            plugins.join("hello.toml").to_str().expect("utf-8"),
            "-o",
            package.to_str().expect("utf-8"),
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let install = format!("plugin install {} --database-url {}", package.display(), db.url);

    // Enter alone cancels; nothing is installed.
    let (ok, text) = run_on_terminal(db.dir(), &install, "\n").await;
    assert!(!ok, "{text}");
    assert!(
        text.contains("hello 0.1.0 asks for:") && text.contains("kv      a private key-value store"),
        "{text}"
    );
    assert!(text.contains("cancelled: nothing was installed"), "{text}");
    // Too little for what the component imports: refused with the reason.
    let (ok, text) = run_on_terminal(db.dir(), &install, "kv\n").await;
    assert!(!ok, "{text}");
    assert!(text.contains("was not granted"), "{text}");
    let (_, listed, _) = run_cli(BIN, &["plugin", "list", "--database-url", &db.url]).await;
    assert!(listed.contains("(0 plugin(s))"), "{listed}");
    // `all` installs it with every capability it asked for.
    let (ok, text) = run_on_terminal(db.dir(), &install, "all\n").await;
    assert!(ok, "{text}");
    let (_, listed, _) = run_cli(BIN, &["plugin", "list", "--database-url", &db.url]).await;
    assert!(
        listed.contains("hello") && listed.contains("kv,store,files,mail,events,jobs"),
        "{listed}"
    );
}

// Issue 10: `migrate` is all or nothing, and indexes a plugin stops declaring are dropped.

/// The `migrating` test plugin at `version` (its `label` set to it), with `edits` replacing
/// whole manifest lines by their key (`("migrate", "\"fail\"")`, `("timeout-ms", "4000")`).
fn migrating(version: &str, edits: &[(&str, &str)]) -> Vec<u8> {
    let dir = Path::new(PLUGINS_DIR);
    let mut text = std::fs::read_to_string(dir.join("migrating.toml"))
        .expect("manifest")
        .replace("version = \"0.1.0\"", &format!("version = \"{version}\""))
        .replace("label = \"0.1.0\"", &format!("label = \"{version}\""));
    for (key, value) in edits {
        let prefix = format!("{key} = ");
        let line = text
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no `{key}` in the manifest"))
            .to_owned();
        text = text.replace(&line, &format!("{prefix}{value}"));
    }
    let wasm = std::fs::read(dir.join("migrating.wasm")).expect("wasm");
    lutetia_model::package::pack(&wasm, &text).expect("pack")
}

/// One integer (a `COUNT(*)`) from the test database, read directly.
async fn count(db: &TestDb, sql: &str) -> i64 {
    use sqlx::Connection;
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match db.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.expect("connect");
            sqlx::query_scalar(sql).fetch_one(&mut conn).await.expect("query")
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect");
            sqlx::query_scalar(sql).fetch_one(&mut conn).await.expect("query")
        }
    }
}

/// One optional text from the test database, read directly.
async fn text(db: &TestDb, sql: &str) -> Option<String> {
    use sqlx::Connection;
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match db.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.expect("connect");
            sqlx::query_scalar(sql)
                .fetch_optional(&mut conn)
                .await
                .expect("query")
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect");
            sqlx::query_scalar(sql)
                .fetch_optional(&mut conn)
                .await
                .expect("query")
        }
    }
}

/// The physical store indexes in the database (`sqlite_master` / `pg_indexes`) named
/// `name`, or all of them with `%`.
async fn physical_indexes(db: &TestDb, name: &str) -> i64 {
    let sql = match db.backend {
        Backend::Sqlite => format!(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name LIKE 'store_idx_{name}'"
        ),
        Backend::Postgres => {
            format!("SELECT COUNT(*) FROM pg_indexes WHERE indexname LIKE 'store_idx_{name}'")
        }
    };
    count(db, &sql).await
}

/// What the `migrating` plugin has in the database, table by table.
async fn footprint(db: &TestDb) -> Vec<(&'static str, i64)> {
    let mut found = Vec::new();
    for (what, sql) in [
        ("kv", "SELECT COUNT(*) FROM kv WHERE plugin_id = 'migrating'"),
        (
            "documents",
            "SELECT COUNT(*) FROM documents WHERE plugin_id = 'migrating'",
        ),
        (
            "usage",
            "SELECT COALESCE(MAX(documents), 0) FROM store_usage WHERE plugin_id = 'migrating'",
        ),
        (
            "declared indexes",
            "SELECT COUNT(*) FROM store_indexes WHERE plugin_id = 'migrating'",
        ),
        (
            "files",
            "SELECT COUNT(*) FROM files WHERE plugin_id = 'migrating'",
        ),
        (
            "events",
            "SELECT COUNT(*) FROM events WHERE publisher = 'migrating'",
        ),
        (
            "mail",
            "SELECT COUNT(*) FROM outbox WHERE plugin_id = 'migrating'",
        ),
        ("plugins", "SELECT COUNT(*) FROM plugins WHERE id = 'migrating'"),
        (
            "versions",
            "SELECT COUNT(*) FROM plugin_versions WHERE plugin_id = 'migrating'",
        ),
    ] {
        found.push((what, count(db, sql).await));
    }
    found.push(("physical indexes", physical_indexes(db, "%").await));
    found
}

/// Every entry of the plugin's files folder, temporary files included.
fn files_on_disk(db: &TestDb) -> Vec<String> {
    let dir = db.dir().join("data").join("files").join("migrating");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// `GET /p/migrating/state`: what the served version reads.
async fn migrating_state(host: &Host) -> Value {
    let (status, body) = host.get("/p/migrating/state").await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("JSON state")
}

/// The failures a migrate can have, and what the operator is told of each.
const FAILURES: [(&str, &str); 3] = [
    ("\"fail\"", "refuses to migrate"),
    ("\"trap\"", "trapped"),
    ("\"spin\"", "deadline"),
];

on_both_backends! {
    async fn a_failed_migrate_keeps_nothing_it_wrote(backend: Backend) {
        let db = TestDb::new(backend).await;
        let host = start(&db).await;
        let nothing = footprint(&db).await;
        assert!(nothing.iter().all(|(_, n)| *n == 0), "{nothing:?}");

        // Install: each failure after writing through every service leaves nothing.
        for (mode, message) in FAILURES {
            let (status, body) = api(&host, Method::POST, "/api/admin/plugins?grant=all", Some(migrating("0.1.0", &[("migrate", mode)]))).await;
            assert_eq!((status, body["error"].as_str()), (422, Some("migrate_failed")), "{mode}: {body}");
            let said = body["message"].as_str().unwrap_or_default();
            assert!(said.contains("nothing was changed") && said.contains(message), "{mode}: {said}");
            assert_eq!(footprint(&db).await, nothing, "{mode} at install");
            assert_eq!(files_on_disk(&db), Vec::<String>::new(), "{mode} at install");
            assert_eq!(host.get("/p/migrating/state").await.0, 404, "{mode}");
        }

        // A migrate that succeeds keeps all of it.
        let (status, body) = api(&host, Method::POST, "/api/admin/plugins?grant=all", Some(migrating("0.1.0", &[]))).await;
        assert_eq!(status, 201, "{body}");
        let installed = migrating_state(&host).await;
        assert_eq!(installed["kv"], serde_json::json!({ "migrated-by": "0.1.0", "from": "none" }), "{installed}");
        assert_eq!(installed["tag_x"], serde_json::json!(["0.1.0", "a"]), "{installed}");
        assert_eq!(installed["n_above_1"], serde_json::json!(["b", "0.1.0"]), "{installed}");
        assert_eq!(installed["file"], "0.1.0", "{installed}");
        let kept = footprint(&db).await;
        assert_eq!(kept, vec![
            ("kv", 2), ("documents", 3), ("usage", 3), ("declared indexes", 3), ("files", 1),
            ("events", 1), ("mail", 1), ("plugins", 1), ("versions", 1), ("physical indexes", 3),
        ]);
        assert_eq!(files_on_disk(&db), ["migrated.txt"]);

        // Upgrade: a migration that overwrites everything (and declares one more index)
        // then fails leaves the served version reading exactly what it read before.
        for (mode, message) in FAILURES {
            let upgrade = migrating("0.2.0", &[("migrate", mode), ("indexes", "\"n,tag,label\"")]);
            let (status, body) = api(&host, Method::POST, "/api/admin/plugins/migrating/upgrade", Some(upgrade)).await;
            assert_eq!((status, body["error"].as_str()), (422, Some("migrate_failed")), "{mode}: {body}");
            assert!(body["message"].as_str().unwrap_or_default().contains(message), "{mode}: {body}");
            assert_eq!(migrating_state(&host).await, installed, "{mode}: what the served version reads");
            assert_eq!(footprint(&db).await, kept, "{mode} at upgrade");
            assert_eq!(files_on_disk(&db), ["migrated.txt"], "{mode}: no staged file left");
        }

        let upgrade = migrating("0.2.0", &[("indexes", "\"n,tag,label\"")]);
        let (status, body) = api(&host, Method::POST, "/api/admin/plugins/migrating/upgrade", Some(upgrade)).await;
        assert_eq!(status, 200, "{body}");
        let upgraded = migrating_state(&host).await;
        assert_eq!(upgraded["version"], "0.2.0");
        assert_eq!(upgraded["kv"], serde_json::json!({ "migrated-by": "0.2.0", "from": "0.1.0" }), "{upgraded}");
        assert_eq!(upgraded["tag_x"], serde_json::json!(["0.1.0", "0.2.0", "a"]), "{upgraded}");
        assert_eq!(upgraded["items"][2]["data"]["label"], "0.2.0", "{upgraded}");
        assert_eq!(upgraded["file"], "0.2.0", "{upgraded}");
        assert_eq!(footprint(&db).await, vec![
            ("kv", 2), ("documents", 4), ("usage", 4), ("declared indexes", 4), ("files", 1),
            ("events", 2), ("mail", 2), ("plugins", 1), ("versions", 2), ("physical indexes", 4),
        ]);
        assert_eq!(files_on_disk(&db), ["migrated.txt"]);
    }

    async fn indexes_a_plugin_stops_declaring_are_dropped(backend: Backend) {
        let db = TestDb::new(backend).await;
        let host = start(&db).await;
        let (status, body) = api(&host, Method::POST, "/api/admin/plugins?grant=all", Some(migrating("0.1.0", &[]))).await;
        assert_eq!(status, 201, "{body}");
        let tag = text(&db, "SELECT name FROM store_indexes WHERE plugin_id = 'migrating' AND fields = '[\"tag\"]'")
            .await
            .expect("the index on tag is declared");
        let tag_suffix = tag.trim_start_matches("store_idx_").to_owned();
        assert_eq!(physical_indexes(&db, &tag_suffix).await, 1);

        // 0.2.0 no longer declares it: kept while the version it replaces still did.
        let (status, body) = api(&host, Method::POST, "/api/admin/plugins/migrating/upgrade", Some(migrating("0.2.0", &[("indexes", "\"n\"")]))).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(physical_indexes(&db, &tag_suffix).await, 1, "kept one version");
        assert_eq!(
            text(&db, &format!("SELECT declared_by FROM store_indexes WHERE name = '{tag}'")).await.as_deref(),
            Some("0.1.0")
        );
        assert_eq!(
            text(&db, "SELECT declared_by FROM store_indexes WHERE fields = '[\"n\"]'").await.as_deref(),
            Some("0.2.0")
        );

        // Neither 0.2.0 nor 0.3.0 declares it: dropped, and the queries on it still work.
        let (status, body) = api(&host, Method::POST, "/api/admin/plugins/migrating/upgrade", Some(migrating("0.3.0", &[("indexes", "\"n\"")]))).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(physical_indexes(&db, &tag_suffix).await, 0, "the index on tag is dropped");
        assert_eq!(count(&db, &format!("SELECT COUNT(*) FROM store_indexes WHERE name = '{tag}'")).await, 0);
        assert_eq!(physical_indexes(&db, "%").await, 2, "the indexes on n and code stay");
        let state = migrating_state(&host).await;
        assert_eq!(state["tag_x"], serde_json::json!(["0.1.0", "0.2.0", "0.3.0", "a"]), "{state}");
        assert_eq!(state["n_above_1"], serde_json::json!(["b", "0.1.0", "0.2.0", "0.3.0"]), "{state}");

        // Removing the plugin with its data removes its indexes.
        let (status, body) = api(&host, Method::DELETE, "/api/admin/plugins/migrating?purge-data=true", None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(physical_indexes(&db, "%").await, 0);
        assert_eq!(count(&db, "SELECT COUNT(*) FROM store_indexes").await, 0);
    }

    async fn the_site_keeps_serving_while_a_migrate_runs(backend: Backend) {
        let db = TestDb::new(backend).await;
        let plugins = lutetia_tests::plugins_subset(db.dir(), &["hello"], None);
        let host = Host::start_with_plugins(BIN, &db, &plugins, &[]).await;
        let (status, body) = api(&host, Method::POST, "/api/admin/plugins?grant=all", Some(migrating("0.1.0", &[]))).await;
        assert_eq!(status, 201, "{body}");
        let before = migrating_state(&host).await;

        // A long migration doing database work (reading kv in a loop) until its deadline. (A
        // guest spinning on the CPU holds a thread of the host's: fair CPU is another part.)
        let slow = migrating("0.2.0", &[("migrate", "\"busy\""), ("timeout-ms", "4000")]);
        let request = host
            .client
            .post(host.url("/api/admin/plugins/migrating/upgrade"))
            .bearer_auth(host.admin_token.clone().expect("token"))
            .body(slow);
        let upgrade = tokio::spawn(async move {
            let response = request.send().await.expect("upgrade");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.expect("JSON"))
        });
        // The migration has written through every service and now runs until its deadline.
        let mut under_way = false;
        for _ in 0..600 {
            if host.log().contains("migrate to 0.2.0 wrote everything; now: busy") {
                under_way = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(under_way, "the migration never started; log:\n{}", host.log());

        // Reads of the served version see what it saw, and the host's routes answer,
        // before the migration ends.
        assert_eq!(migrating_state(&host).await, before);
        assert!(!upgrade.is_finished(), "the old version answered only after the migration; log:\n{}", host.log());
        assert_eq!(host.get("/healthz").await.0, 200);
        assert!(!upgrade.is_finished(), "/healthz answered only after the migration");
        if backend == Backend::Postgres {
            // Another plugin's writes go on; the migrating plugin's own store writes are
            // refused at once rather than queued on the rows the migration holds.
            assert_eq!(host.get("/p/hello/").await.0, 200);
            assert!(!upgrade.is_finished(), "another plugin's write waited for the migration");
            let response = host.client.post(host.url("/p/migrating/touch")).send().await.expect("touch");
            let status = response.status().as_u16();
            let said = response.text().await.expect("body");
            assert_eq!(status, 503, "{said}");
            assert!(said.contains("migrating"), "{said}");
            assert!(!upgrade.is_finished(), "the old version's write waited for the migration");
        }
        let (status, body) = upgrade.await.expect("upgrade task");
        assert_eq!((status, body["error"].as_str()), (422, Some("migrate_failed")), "{body}");
        assert_eq!(migrating_state(&host).await, before);
        // SQLite's other writes waited for the migration's write lock; they go on after it.
        assert_eq!(host.get("/p/hello/").await.0, 200);
        let response = host.client.post(host.url("/p/migrating/touch")).send().await.expect("touch");
        assert_eq!(response.status().as_u16(), 200);
    }
}

/// PostgreSQL (where a concurrent change is not held back by a write lock): a migrate that
/// succeeds but whose record of the new version meets a concurrent change keeps nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migrate_whose_record_is_refused_keeps_nothing() {
    let db = TestDb::new(Backend::Postgres).await;
    let host = start(&db).await;
    let (status, body) = api(
        &host,
        Method::POST,
        "/api/admin/plugins?grant=all",
        Some(migrating("0.1.0", &[])),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let before = footprint(&db).await;

    let request = host
        .client
        .post(host.url("/api/admin/plugins/migrating/upgrade"))
        .bearer_auth(host.admin_token.clone().expect("token"))
        .body(migrating("0.2.0", &[("migrate", "\"slow\"")]));
    let upgrade = tokio::spawn(async move {
        let response = request.send().await.expect("upgrade");
        let status = response.status().as_u16();
        (status, response.json::<Value>().await.expect("JSON"))
    });
    let mut under_way = false;
    for _ in 0..600 {
        if host
            .log()
            .contains("migrate to 0.2.0 wrote everything; now: slow")
        {
            under_way = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(under_way, "the migration never started; log:\n{}", host.log());
    // Another operator disables the plugin while its upgrade migrates.
    let (status, body) = api(&host, Method::POST, "/api/admin/plugins/migrating/disable", None).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        !upgrade.is_finished(),
        "the change was made while the migration ran"
    );

    let (status, body) = upgrade.await.expect("upgrade task");
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    // The migration succeeded, but its record was refused: none of what it wrote is kept.
    assert_eq!(footprint(&db).await, before);
    let file = db
        .dir()
        .join("data")
        .join("files")
        .join("migrating")
        .join("migrated.txt");
    assert_eq!(std::fs::read_to_string(file).expect("file"), "0.1.0");
    assert_eq!(files_on_disk(&db), ["migrated.txt"]);
    assert_eq!(
        text(
            &db,
            "SELECT convert_from(value, 'UTF8') FROM kv WHERE plugin_id = 'migrating' AND key = 'migrated-by'"
        )
        .await
        .as_deref(),
        Some("0.1.0")
    );
}
