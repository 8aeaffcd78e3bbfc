//! Issue 10, the HTTP edges and what the host makes of a plugin's answer, end to end with
//! the real host and the `hostile-output` test plugin: slow or short requests are dropped
//! while others are served, connections are bounded, pathological pages cost a bounded
//! amount of work off the connection threads, headers pass an allow-list, statuses are
//! final HTTP statuses, redirects stay on the site unless granted, host-made errors are
//! JSON when the client asks for JSON, and no bad input gets a 5xx.
//!
//! None of these tests touches a plugin's stored data, so they run on SQLite only.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lutetia_tests::{Backend, Host, PLUGINS_DIR, TestDb, plugins_subset};
use reqwest::Method;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_lutetia-test-host");

/// Longest any wait in these tests may last before it counts as "never".
const NEVER: Duration = Duration::from_secs(60);

/// Starts a host serving `hostile-output` and `hello`, with `config` as its settings file.
async fn start(db: &TestDb, config: &str) -> Host {
    let plugins = plugins_subset(db.dir(), &["hostile-output", "hello"], None);
    let file = db.dir().join("lutetia.toml");
    std::fs::write(&file, config).expect("config");
    Host::start_with_plugins(
        BIN,
        db,
        &plugins,
        &["--config", file.to_str().expect("utf-8 path")],
    )
    .await
}

async fn connect(host: &Host) -> TcpStream {
    TcpStream::connect(host.base.trim_start_matches("http://"))
        .await
        .expect("connect")
}

/// Reads until the server closes the connection (or resets it); everything read.
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(NEVER, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server never closed the connection");
    String::from_utf8_lossy(&all).into_owned()
}

/// Reads one answer's head (up to the blank line) and its `Content-Length` body.
async fn read_answer(stream: &mut TcpStream) -> String {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(NEVER, async {
        loop {
            let text = String::from_utf8_lossy(&all).into_owned();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if all.len() >= end + 4 + length {
                    return text;
                }
            }
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return String::from_utf8_lossy(&all).into_owned(),
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.expect("an answer")
}

/// Events in the order they happened.
#[derive(Clone, Default)]
struct Order(Arc<Mutex<Vec<&'static str>>>);

impl Order {
    fn push(&self, event: &'static str) {
        self.0.lock().expect("lock").push(event);
    }
    fn events(&self) -> Vec<&'static str> {
        self.0.lock().expect("lock").clone()
    }
}

/// A client that opens a connection per request, so none waits for another's.
fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(NEVER)
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_dropped_while_others_are_served() {
    let db = TestDb::new(Backend::Sqlite).await;
    let host = start(&db, "[http]\nheader-read-timeout-ms = 2000\n").await;
    let mut slow = connect(&host).await;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .expect("write");
    let order = Order::default();
    let dropped = {
        let order = order.clone();
        tokio::spawn(async move {
            let answer = read_until_closed(&mut slow).await;
            order.push("slow dropped");
            answer
        })
    };
    let (status, _) = host.get("/healthz").await;
    assert_eq!(status, 200);
    order.push("other served");
    let answer = dropped.await.expect("task");
    assert!(!answer.contains("200 OK"), "{answer}");
    assert_eq!(order.events(), ["other served", "slow dropped"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_short_bodies_get_408_while_others_are_served() {
    let db = TestDb::new(Backend::Sqlite).await;
    let host = start(&db, "[http]\nbody-read-timeout-ms = 1500\n").await;
    let order = Order::default();
    // One sends its body a byte at a time, the other less than it declared, then waits.
    let mut trickling = connect(&host).await;
    trickling
        .write_all(b"POST /p/hostile-output/echo-length HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        .await
        .expect("write");
    let mut short = connect(&host).await;
    short
        .write_all(
            b"POST /p/hostile-output/echo-length HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\
              Content-Length: 100\r\n\r\n0123456789",
        )
        .await
        .expect("write");
    let trickled = {
        let order = order.clone();
        tokio::spawn(async move {
            let (mut reader, mut writer) = trickling.into_split();
            let drip = tokio::spawn(async move {
                for _ in 0..1000 {
                    if writer.write_all(b"x").await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            });
            let mut answer = Vec::new();
            let _ = tokio::time::timeout(NEVER, reader.read_to_end(&mut answer)).await;
            drip.abort();
            order.push("trickling answered");
            String::from_utf8_lossy(&answer).into_owned()
        })
    };
    let shorted = {
        let order = order.clone();
        tokio::spawn(async move {
            let answer = read_until_closed(&mut short).await;
            order.push("short answered");
            answer
        })
    };
    let (status, _) = host.get("/p/hello/").await;
    assert_eq!(status, 200);
    order.push("other served");
    let trickled = trickled.await.expect("task");
    let shorted = shorted.await.expect("task");
    assert!(trickled.starts_with("HTTP/1.1 408"), "{trickled}");
    assert!(shorted.starts_with("HTTP/1.1 408"), "{shorted}");
    assert!(
        shorted.contains(r#""error":"request_timeout""#),
        "JSON when asked: {shorted}"
    );
    assert_eq!(order.events()[0], "other served", "{:?}", order.events());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_and_connections_are_bounded() {
    let db = TestDb::new(Backend::Sqlite).await;
    let host = start(
        &db,
        "[http]\nheader-read-timeout-ms = 1500\nmax-connections = 2\n",
    )
    .await;
    // Both slots taken: one kept alive after an answer, one that never sends anything.
    let mut kept_alive = connect(&host).await;
    kept_alive
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let first = read_answer(&mut kept_alive).await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    let silent = connect(&host).await;
    // A third client waits for a free slot...
    let response = fresh_client()
        .get(host.url("/healthz"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    // ...which the host freed by closing an idle connection: its FIN was sent before the
    // third connection was accepted, so it is here by now (a plain read, no waiting).
    let mut idle = Vec::new();
    for stream in [kept_alive, silent] {
        idle.push(stream.into_std().expect("std stream"));
    }
    let closed = |stream: &mut std::net::TcpStream| {
        use std::io::Read;
        let mut buf = [0u8; 64];
        match stream.read(&mut buf) {
            Ok(0) => true,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            Ok(_) => false,
        }
    };
    let closed_now: Vec<bool> = idle.iter_mut().map(closed).collect();
    assert!(
        closed_now.contains(&true),
        "a third connection was served while both slots were held"
    );
    // And both idle connections are closed in the end.
    for mut stream in idle {
        tokio::task::spawn_blocking(move || {
            stream.set_nonblocking(false).expect("blocking");
            stream.set_read_timeout(Some(NEVER)).expect("timeout");
            assert!(closed(&mut stream), "an idle connection was never closed");
        })
        .await
        .expect("task");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pathological_pages_are_refused_and_slow_ones_do_not_hold_the_host() {
    let db = TestDb::new(Backend::Sqlite).await;
    let host = start(&db, "[http]\npage-workers = 1\n").await;
    let kinds = [
        ("attributes", 200_000),
        ("deep", 10_000),
        ("formatting", 40_000),
        ("foster", 100_000),
        ("merged-html", 100_000),
        ("end-tags", 400_000),
        ("scopes", 400_000),
    ];
    for (kind, n) in kinds {
        let (status, body) = host
            .get(&format!("/p/hostile-output/pathological?kind={kind}&n={n}"))
            .await;
        assert_eq!(status, 502, "{kind}");
        assert!(body.contains("cannot use"), "{kind}: {body}");
    }
    let log = host.log();
    assert!(
        log.lines().any(|l| l.contains("plugin answer refused")
            && l.contains("hostile-output")
            && l.contains("refused_answers=7")),
        "{log}"
    );
    // Large pages take the parser a while: they are cleaned off the connection threads,
    // so the host's routes and other plugins answer before even the first one is done.
    let order = Order::default();
    let mut heavy = Vec::new();
    for _ in 0..4 {
        let order = order.clone();
        let url = host.url("/p/hostile-output/pathological?kind=ordinary&n=10000");
        heavy.push(tokio::spawn(async move {
            let response = fresh_client().get(url).send().await.expect("request");
            let status = response.status().as_u16();
            let _ = response.bytes().await;
            order.push("heavy page");
            status
        }));
    }
    let client = fresh_client();
    let health = client.get(host.url("/healthz")).send().await.expect("healthz");
    assert_eq!(health.status(), 200);
    order.push("healthz");
    let hello = client.get(host.url("/p/hello/")).send().await.expect("hello");
    assert_eq!(hello.status(), 200);
    order.push("hello");
    for page in heavy {
        assert_eq!(page.await.expect("task"), 200);
    }
    let events = order.events();
    assert_eq!(events[..2], ["healthz", "hello"], "{events:?}");
}

/// GET `path`, returning status, headers and body.
async fn fetch(host: &Host, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let response = host.client.get(host.url(path)).send().await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_headers_statuses_and_redirects_follow_the_rules() {
    let db = TestDb::new(Backend::Sqlite).await;
    let host = start(&db, "").await;
    // Allowed headers pass; the host's own are dropped.
    let (status, headers, _) = fetch(
        &host,
        "/p/hostile-output/answer?h=x-total-count:3&h=cache-control:no-store&h=etag:%22v1%22\
         &h=set-cookie:session%3Devil&h=x-frame-options:ALLOWALL&h=strict-transport-security:max-age%3D0\
         &h=x-accel-redirect:/internal&h=x-forwarded-host:evil.example&h=refresh:0%3Burl%3Dhttps://evil.example\
         &h=content-security-policy:default-src%20*",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-total-count"], "3");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["etag"], "\"v1\"");
    for dropped in [
        "set-cookie",
        "strict-transport-security",
        "x-accel-redirect",
        "x-forwarded-host",
        "refresh",
    ] {
        assert!(headers.get(dropped).is_none(), "{dropped}");
    }
    assert!(headers.get("x-frame-options").is_none());
    let csp: Vec<_> = headers.get_all("content-security-policy").iter().collect();
    assert_eq!(csp.len(), 1);
    assert!(
        csp[0].to_str().unwrap_or("").starts_with("default-src 'none'"),
        "{csp:?}"
    );
    assert!(host.log().contains("plugin header dropped"));
    // CORS: the granted origin only, and caches told it varies.
    let (_, headers, _) = fetch(
        &host,
        "/p/hostile-output/answer?h=access-control-allow-origin:https://app.example.org",
    )
    .await;
    assert_eq!(headers["access-control-allow-origin"], "https://app.example.org");
    assert_eq!(headers["vary"], "origin");
    let (_, headers, _) = fetch(
        &host,
        "/p/hostile-output/answer?h=access-control-allow-origin:https://evil.example",
    )
    .await;
    assert!(headers.get("access-control-allow-origin").is_none());
    // Statuses: final HTTP statuses only.
    for status in [99, 100, 101, 103, 600, 1000, 0] {
        for page in ["0", "1"] {
            let (got, _, body) = fetch(
                &host,
                &format!("/p/hostile-output/answer?status={status}&page={page}"),
            )
            .await;
            assert_eq!(got, 502, "status {status}, page {page}: {body}");
        }
    }
    let (got, _, _) = fetch(&host, "/p/hostile-output/answer?status=599").await;
    assert_eq!(got, 599);
    // Redirects: on the site, or to the granted origin.
    for (to, expected) in [
        ("/p/hostile-output/ok", 303),
        ("ok", 303),
        ("https://pay.example.org/checkout", 303),
        ("//evil.example/", 502),
        ("/%5Cevil.example", 502),
        ("https://evil.example/", 502),
        ("javascript:alert(1)", 502),
        ("https://pay.example.org@evil.example/", 502),
    ] {
        let encoded = to.replace('/', "%2F").replace(':', "%3A").replace('@', "%40");
        let (status, headers, _) = fetch(&host, &format!("/p/hostile-output/redirect?to={encoded}")).await;
        assert_eq!(status, expected, "{to}");
        if expected == 303 {
            assert_eq!(headers["location"], to);
        } else {
            assert!(headers.get("location").is_none(), "{to}");
        }
    }
    // A raw HTML document may post forms to the site only; a page loses off-site actions.
    let (_, headers, _) = fetch(&host, "/p/hostile-output/raw-form").await;
    let csp = headers["content-security-policy"]
        .to_str()
        .unwrap_or("")
        .to_owned();
    assert!(csp.contains("form-action 'self'"), "{csp}");
    let (status, _, page) = fetch(&host, "/p/hostile-output/page-form").await;
    assert_eq!(status, 200);
    assert!(!page.contains("evil.example"), "{page}");
    assert!(page.contains(r#"action="./send""#), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_and_redirect_origins_need_the_operators_grant() {
    let db = TestDb::new(Backend::Sqlite).await;
    let empty = db.dir().join("no-plugins");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let host = Host::start_with_plugins(BIN, &db, &empty, &[]).await;
    let token = host.admin_token.clone().expect("admin token");
    let wasm = std::fs::read(std::path::Path::new(PLUGINS_DIR).join("hostile-output.wasm")).expect("wasm");
    let manifest =
        std::fs::read_to_string(std::path::Path::new(PLUGINS_DIR).join("hostile-output.toml")).expect("toml");
    let package = lutetia_model::package::pack(&wasm, &manifest).expect("pack");
    let inspected: Value = host
        .client
        .post(host.url("/api/admin/plugins/inspect"))
        .bearer_auth(&token)
        .body(package.clone())
        .send()
        .await
        .expect("inspect")
        .json()
        .await
        .expect("json");
    assert_eq!(inspected["requested"], "cors,redirect-origins", "{inspected}");
    let installed = host
        .client
        .post(host.url("/api/admin/plugins?grant="))
        .bearer_auth(&token)
        .body(package)
        .send()
        .await
        .expect("install");
    assert_eq!(
        installed.status(),
        201,
        "{}",
        installed.text().await.unwrap_or_default()
    );
    let cors = "/p/hostile-output/answer?h=access-control-allow-origin:https://app.example.org";
    let pay = "/p/hostile-output/redirect?to=https%3A%2F%2Fpay.example.org%2F";
    let (_, headers, _) = fetch(&host, cors).await;
    assert!(
        headers.get("access-control-allow-origin").is_none(),
        "declared but not granted"
    );
    assert_eq!(fetch(&host, pay).await.0, 502);
    let granted = host
        .client
        .post(host.url("/api/admin/plugins/hostile-output/grant?grant=cors,redirect-origins"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("grant");
    assert_eq!(granted.status(), 200);
    let (_, headers, _) = fetch(&host, cors).await;
    assert_eq!(headers["access-control-allow-origin"], "https://app.example.org");
    assert_eq!(fetch(&host, pay).await.0, 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_requests_are_refused_before_they_are_read() {
    let db = TestDb::new(Backend::Sqlite).await;
    let host = start(&db, "").await;
    let token = host.admin_token.clone().expect("admin token");
    // 414, as a page or as JSON.
    let long = format!("/p/hostile-output/ok?{}", "a".repeat(9000));
    let (status, _, body) = fetch(&host, &long).await;
    assert_eq!(status, 414);
    assert!(body.contains("<!doctype html>"), "{body}");
    let response = host
        .client
        .get(host.url(&long))
        .header("accept", "application/json")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 414);
    let json: Value = response.json().await.expect("json");
    assert_eq!(json["error"], "uri_too_long");
    // 413 before the body is sent: only the headers go out, and the answer comes back.
    for (request, json) in [
        (
            "POST /p/hostile-output/echo-length HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n"
                .to_owned(),
            false,
        ),
        (
            format!(
                "POST /api/admin/plugins HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
                 Content-Length: 1000000000\r\n\r\n"
            ),
            true,
        ),
    ] {
        let mut stream = connect(&host).await;
        stream.write_all(request.as_bytes()).await.expect("write");
        let answer = read_answer(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        if json {
            assert!(answer.contains(r#""error":"payload_too_large""#), "{answer}");
            assert!(
                answer
                    .to_ascii_lowercase()
                    .contains("content-type: application/json"),
                "{answer}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_made_errors_are_json_when_the_client_prefers_json() {
    let db = TestDb::new(Backend::Sqlite).await;
    let host = start(&db, "").await;
    let ask = |path: &'static str, accept: &'static str, method: Method, body: Vec<u8>| {
        host.client
            .request(method, host.url(path))
            .header("accept", accept)
            .body(body)
            .send()
    };
    for (path, method, body, status, code) in [
        ("/p/nowhere/", Method::GET, Vec::new(), 404, "not_found"),
        (
            "/p/hostile-output/answer?status=600",
            Method::GET,
            Vec::new(),
            502,
            "bad_gateway",
        ),
        (
            "/p/hostile-output/pathological?kind=deep&n=5000",
            Method::GET,
            Vec::new(),
            502,
            "bad_gateway",
        ),
        ("/nowhere", Method::GET, Vec::new(), 404, "not_found"),
    ] {
        let response = ask(path, "application/json", method.clone(), body.clone())
            .await
            .expect("request");
        assert_eq!(response.status(), status, "{path}");
        let json: Value = response.json().await.expect("json");
        assert_eq!(json["error"], code, "{path}: {json}");
        assert!(json["message"].as_str().is_some_and(|m| !m.is_empty()), "{json}");
        let response = ask(path, "text/html,*/*;q=0.8", method, body)
            .await
            .expect("request");
        assert_eq!(response.status(), status, "{path}");
        assert!(
            response
                .text()
                .await
                .unwrap_or_default()
                .starts_with("<!doctype html>"),
            "{path}"
        );
    }
    // A body refused before it is read, on the wire (the client sends only its headers).
    let mut stream = connect(&host).await;
    stream
        .write_all(
            b"POST /p/hostile-output/echo-length HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\
              Content-Length: 3145728\r\n\r\n",
        )
        .await
        .expect("write");
    let answer = read_answer(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains(r#""error":"payload_too_large""#), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_never_gets_a_server_error() {
    let db = TestDb::new(Backend::Sqlite).await;
    let host = start(&db, "").await;
    // Plugin ids that decode to control characters or are not ids at all.
    for path in [
        "/p/%0A",
        "/p/%0A/",
        "/p/%0D%0Aset-cookie:x=1",
        "/p/%FF",
        "/p/%FF/x",
        "/p/%ZZ/",
        "/p/%0A/_files/x",
        "/p/hello/_files/%FF",
    ] {
        let (status, _, body) = fetch(&host, path).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    // Odd requests on the wire.
    let huge_header = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(600_000)
    );
    for request in [
        "FOO /p/hostile-output/ok HTTP/1.1\r\nHost: x\r\n\r\n".to_owned(),
        "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n".to_owned(),
        "CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n".to_owned(),
        "GET /p/hostile-output/%E0%A4%A HTTP/1.1\r\nHost: x\r\n\r\n".to_owned(),
        "GET /p/hello HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n".to_owned(),
        "POST /p/hostile-output/echo-length HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
            .to_owned(),
        "GET /api/admin/plugins/%FF HTTP/1.1\r\nHost: x\r\n\r\n".to_owned(),
        huge_header,
    ] {
        let mut stream = connect(&host).await;
        let _ = stream.write_all(request.as_bytes()).await;
        let answer = read_answer(&mut stream).await;
        let status: u16 = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        assert!(
            answer.is_empty() || (200..500).contains(&status),
            "{}: {answer}",
            request.lines().next().unwrap_or("")
        );
    }
}
