//! The contract suite: one set of host-side tests run against the conformance plugin of
//! every language (`example-plugins/testing/CONFORMANCE.md`): a plugin author's language must
//! not change what the host and a visitor see. Each test is a module with one test per
//! language (`echo_round_trip::python`); the tests that touch persistence run on both
//! backends (`kv_round_trip::js::postgres`).
//!
//! The Rust plugin comes from this package's build script; the Python and JavaScript ones
//! are built by the real `lutetia plugin build`. `LUTETIA_CONTRACT_LANGS=rust,python`
//! limits the languages that run (default: all).

use std::ffi::OsStr;
use std::time::Duration;

use lutetia_tests::polyglot::{self, Lang, PluginFiles};
use lutetia_tests::{Backend, Host, TestDb};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_lutetia-test-host");
/// How long a test waits for background work (events, jobs, log lines): a bound, not a
/// measured figure.
const PATIENCE: Duration = Duration::from_secs(20);
/// The host's default request body limit (`limits.max-body-bytes`).
const BODY_LIMIT: usize = 2 * 1024 * 1024;
/// The exact body of `GET /text`.
const TEXT: &str = "Grüße aus Lutèce — 東京 🚲\n";
/// A 1x1 PNG (enough for the magic-bytes check).
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

/// Whether `lang`'s case runs ([`polyglot::LANGS_VAR`]); says so when it does not.
fn wanted(lang: Lang) -> bool {
    let on = lang.enabled();
    if !on {
        eprintln!(
            "skipped: {} does not include {}",
            polyglot::LANGS_VAR,
            lang.name()
        );
    }
    on
}

/// Declares each `async fn NAME(lang: Lang) { ... }` as a module `NAME` with the tests
/// `NAME::rust`, `NAME::python` and `NAME::js` (on SQLite).
macro_rules! contract {
    ($(async fn $name:ident($lang:ident: Lang) $body:block)*) => {$(
        mod $name {
            use super::*;
            async fn run($lang: Lang) $body
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn rust() { if wanted(Lang::Rust) { run(Lang::Rust).await } }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn python() { if wanted(Lang::Python) { run(Lang::Python).await } }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn js() { if wanted(Lang::Js) { run(Lang::Js).await } }
        }
    )*};
}

/// The two backend tests of one language, inside its module.
macro_rules! backend_cases {
    ($lang:expr) => {
        use super::*;
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn sqlite() {
            if wanted($lang) {
                run($lang, Backend::Sqlite).await
            }
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn postgres() {
            if wanted($lang) {
                run($lang, Backend::Postgres).await
            }
        }
    };
}

/// Declares each `async fn NAME(lang: Lang, backend: Backend) { ... }` as the tests
/// `NAME::{rust,python,js}::{sqlite,postgres}`.
macro_rules! contract_on_both_backends {
    ($(async fn $name:ident($lang:ident: Lang, $backend:ident: Backend) $body:block)*) => {$(
        mod $name {
            use super::*;
            async fn run($lang: Lang, $backend: Backend) $body
            mod rust { backend_cases!(Lang::Rust); }
            mod python { backend_cases!(Lang::Python); }
            mod js { backend_cases!(Lang::Js); }
        }
    )*};
}

/// One answer, read whole.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The JSON body of an answer with `status` and `content-type: application/json`.
    #[track_caller]
    fn json(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "{}", self.text());
        let essence = self
            .header("content-type")
            .and_then(|t| t.split(';').next())
            .map(str::trim);
        assert_eq!(essence, Some("application/json"), "{:?}", self.headers);
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// The service error answer: `status` and `{"error": kind, "message": <text>}`.
    #[track_caller]
    fn error(&self, status: u16, kind: &str) {
        let json = self.json(status);
        assert_eq!(json["error"], kind, "{json}");
        assert!(
            json["message"].as_str().is_some_and(|m| !m.is_empty()),
            "a message: {json}"
        );
    }
}

/// What a test site starts with besides the conformance plugin.
#[derive(Default)]
struct Setup<'a> {
    /// Appended to the host's configuration file.
    config: &'a str,
    /// Changes the conformance plugin's manifest in the plugins folder.
    edit: Option<&'a dyn Fn(&str) -> String>,
    /// Other plugins of the build script's folder to serve beside it.
    others: &'a [&'a str],
}

/// How [`Site::refused`] frames an oversized body.
enum Framing {
    /// `content-length` over the limit, and no body sent.
    Declared,
    /// Chunked, without a length: the limit is found while reading.
    Chunked,
}

/// A host serving `lang`'s conformance plugin from a plugins folder.
struct Site {
    plugin: PluginFiles,
    host: Host,
    db: TestDb,
}

impl Site {
    async fn start(lang: Lang, backend: Backend) -> Site {
        Site::start_with(lang, backend, Setup::default()).await
    }

    async fn start_with(lang: Lang, backend: Backend, setup: Setup<'_>) -> Site {
        let plugin = polyglot::conformance_plugin(BIN, lang).await;
        assert_eq!(plugin.id, lang.id());
        let db = TestDb::new(backend).await;
        let others: Vec<PluginFiles> = setup.others.iter().map(|id| PluginFiles::built(id)).collect();
        let mut all = vec![&plugin];
        all.extend(others.iter());
        let edit = setup.edit.map(|edit| (plugin.id.as_str(), edit));
        let folder = polyglot::plugins_folder(db.dir(), &all, edit);
        let config = db.dir().join("lutetia.toml");
        let files = db.dir().join("files");
        std::fs::write(
            &config,
            format!("files-dir = {:?}\n{}", files.display().to_string(), setup.config),
        )
        .expect("write config");
        let config = config.to_str().expect("utf-8 path").to_owned();
        let host = polyglot::start_host(BIN, &db, &folder, &["--config", &config]).await;
        let site = Site { plugin, host, db };
        let text = site.get("/text").await;
        assert_eq!(
            text.status,
            200,
            "{} is not served; log:\n{}",
            site.plugin.id,
            site.host.log()
        );
        site
    }

    /// `/p/ID{path}`.
    fn path(&self, path: &str) -> String {
        format!("/p/{}{path}", self.plugin.id)
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> Answer {
        let mut request = self
            .host
            .client
            .request(method, self.host.url(&self.path(path)))
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.expect("body").to_vec();
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, &[], Vec::new()).await
    }

    async fn put(&self, path: &str, body: impl Into<reqwest::Body>) -> Answer {
        self.call(Method::PUT, path, &[], body).await
    }

    async fn delete(&self, path: &str) -> Answer {
        self.call(Method::DELETE, path, &[], Vec::new()).await
    }

    async fn post_json(&self, path: &str, value: &Value) -> Answer {
        self.call(
            Method::POST,
            path,
            &[("content-type", "application/json")],
            value.to_string(),
        )
        .await
    }

    async fn put_json(&self, path: &str, value: &Value) -> Answer {
        self.call(
            Method::PUT,
            path,
            &[("content-type", "application/json")],
            value.to_string(),
        )
        .await
    }

    /// Sends `METHOD /p/ID{path}` with a body one byte over the limit, framed as
    /// `framing` says, over a raw connection; returns the answer's status. Nothing past
    /// the limit is sent: the host must answer without waiting for more.
    async fn refused(&self, framing: &Framing, method: &str, path: &str) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.host.base.trim_start_matches("http://").to_owned();
        let mut stream = tokio::net::TcpStream::connect(&addr).await.expect("connect");
        let framing_header = match framing {
            Framing::Declared => format!("content-length: {}", BODY_LIMIT + 1),
            Framing::Chunked => "transfer-encoding: chunked".to_owned(),
        };
        let head = format!(
            "{method} {} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/octet-stream\r\n{framing_header}\r\n\r\n",
            self.path(path)
        );
        let exchange = async {
            stream.write_all(head.as_bytes()).await.expect("write head");
            if let Framing::Chunked = framing {
                // Every byte up to one past the limit, no terminating chunk.
                let chunk = vec![b'y'; BODY_LIMIT / 32];
                for _ in 0..32 {
                    stream
                        .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                        .await
                        .expect("write");
                    stream.write_all(&chunk).await.expect("write");
                    stream.write_all(b"\r\n").await.expect("write");
                }
                stream.write_all(b"1\r\ny\r\n").await.expect("write");
            }
            let mut answer = Vec::new();
            let mut buf = [0u8; 4096];
            while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buf).await.expect("read the answer");
                assert!(
                    n > 0,
                    "connection closed without an answer: {}",
                    String::from_utf8_lossy(&answer)
                );
                answer.extend_from_slice(&buf[..n]);
            }
            answer
        };
        let answer = tokio::time::timeout(PATIENCE, exchange)
            .await
            .expect("an answer in time");
        let text = String::from_utf8_lossy(&answer);
        text.split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP answer: {text}"))
    }

    /// `POST /p/ID{path}` with `content-type` and `body`.
    async fn post(&self, path: &str, content_type: &str, body: impl Into<reqwest::Body>) -> Answer {
        self.call(Method::POST, path, &[("content-type", content_type)], body)
            .await
    }

    /// The plugin still serves: the request after a refused one gets the exact answer.
    async fn still_serves(&self, after: &str) {
        let text = self.get("/text").await;
        assert_eq!(
            (text.status, text.body.as_slice()),
            (200, TEXT.as_bytes()),
            "after {after}"
        );
    }

    /// Waits until a line of the host's log satisfies `found`; returns that line.
    async fn log_line(&self, found: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Some(line) = self.host.log().lines().find(|l| found(l)) {
                return line.to_owned();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no such log line; log:\n{}",
                self.host.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Percent-encodes everything but unreserved characters (for query values and segments).
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Deterministic pseudo-random bytes.
fn noise(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

/// The request id shown as the reference of an error page (`PREFIX-N`, N in hex).
async fn error_reference(host: &Host) -> (String, u64) {
    let (status, body) = host.get("/p/no-such-service/").await;
    assert_eq!(status, 404, "{body}");
    let id = body
        .split("Reference: <code>")
        .nth(1)
        .and_then(|rest| rest.split("</code>").next())
        .unwrap_or_else(|| panic!("no reference in the error page:\n{body}"));
    split_request_id(id)
}

/// `lutetia plugin ARGS --database-url DB` (the shared compiled cache set).
async fn plugin_cli(db: &TestDb, args: &[&OsStr]) -> (i32, String, String) {
    let mut all: Vec<&OsStr> = vec![OsStr::new("plugin")];
    all.extend_from_slice(args);
    all.extend([OsStr::new("--database-url"), OsStr::new(&db.url)]);
    polyglot::cli(BIN, &all).await
}

fn split_request_id(id: &str) -> (String, u64) {
    let (prefix, n) = id
        .rsplit_once('-')
        .unwrap_or_else(|| panic!("request id {id:?} is not PREFIX-N"));
    let n = u64::from_str_radix(n, 16).unwrap_or_else(|_| panic!("request id {id:?} is not PREFIX-N"));
    (prefix.to_owned(), n)
}

contract! {
    async fn page_is_wrapped_in_the_layout_and_sanitised(lang: Lang) {
        let site = Site::start(lang, Backend::Sqlite).await;
        let id = lang.id();
        let page = site.get("/").await;
        assert_eq!(page.status, 200);
        assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
        assert!(
            page.header("content-security-policy").is_some_and(|c| c.contains("script-src 'self'")),
            "{:?}",
            page.headers
        );
        let body = page.text();
        assert!(body.starts_with("<!doctype html>"), "{body}");
        assert!(body.contains("<title>Conformance · Lutetia</title>"), "{body}");
        assert!(body.contains(r#"<header class="site-header">"#), "{body}");
        // The manifest's name in the navigation, this plugin's entry marked current.
        let nav = format!(r#"<a href="/p/{id}/" aria-current="page">Conformance ({})</a>"#, lang.label());
        assert!(body.contains(&nav), "{nav} in {body}");
        assert!(body.contains(&format!(r#"<div class="plugin-page" data-plugin="{id}">"#)), "{body}");
        assert!(body.contains(&format!(r#"<p class="lang">{}</p>"#, lang.name())), "{body}");
        assert!(body.contains(r#"<p class="greeting">Bonjour</p>"#), "{body}");
        assert!(body.contains("<h1>Conformance</h1>"), "{body}");
        // The plugin's script is gone, content included.
        assert!(!body.contains("<script"), "{body}");
        assert!(!body.contains("alert("), "{body}");

        // The manifest's settings, as the plugin reads them.
        assert_eq!(
            site.get("/config").await.json(200),
            json!({ "greeting": "Bonjour", "contact": "", "clé": "" })
        );
        assert_eq!(
            site.get("/config/greeting").await.json(200),
            json!({ "key": "greeting", "value": "Bonjour" })
        );
        assert_eq!(
            site.get("/config/no-such-key").await.json(200),
            json!({ "key": "no-such-key", "value": null })
        );
    }

    async fn operator_config_overrides_the_manifest(lang: Lang) {
        let id = lang.id();
        let config = format!(
            "[plugins.{id}.config]\ngreeting = \"<b>&</b>\"\ncontact = \"mairie@example.org\"\n\"clé\" = \"valeur\"\n"
        );
        let setup = Setup { config: &config, ..Setup::default() };
        let site = Site::start_with(lang, Backend::Sqlite, setup).await;
        let page = site.get("/").await;
        assert_eq!(page.status, 200);
        let body = page.text();
        assert!(body.contains(r#"<p class="greeting">&lt;b&gt;&amp;&lt;/b&gt;</p>"#), "escaped: {body}");
        assert!(!body.contains("<b>&"), "{body}");
        assert!(!body.contains("Bonjour"), "{body}");
        assert_eq!(
            site.get("/config").await.json(200),
            json!({ "greeting": "<b>&</b>", "contact": "mairie@example.org", "clé": "valeur" })
        );
        assert_eq!(
            site.get("/config/greeting").await.json(200),
            json!({ "key": "greeting", "value": "<b>&</b>" })
        );
        // Segments are percent-decoded as UTF-8; `%2F` stays inside its segment.
        assert_eq!(
            site.get("/config/cl%C3%A9").await.json(200),
            json!({ "key": "clé", "value": "valeur" })
        );
        assert_eq!(
            site.get("/config/a%2Fb").await.json(200),
            json!({ "key": "a/b", "value": null })
        );
    }

    async fn echo_status_and_headers(lang: Lang) {
        let site = Site::start(lang, Backend::Sqlite).await;
        // `status`: an integer 100-599 in ASCII digits, else 200; the first one counts.
        let cases = [
            ("status=201", 201),
            ("status=418", 418),
            ("status=599", 599),
            ("status=200&status=500", 200),
            ("status=203&status=500", 203),
            ("status=600", 200),
            ("status=99", 200),
            ("status=abc", 200),
            ("status=", 200),
            ("status", 200),
            ("status=201.0", 200),
            ("status=2.5e2", 200),
            ("status=%2B201", 200),
            ("status=%20201", 200),
            ("status=-201", 200),
            ("a=%C3%A9+b&status=404", 404),
            ("", 200),
        ];
        for (query, want) in cases {
            let path = if query.is_empty() { "/echo".to_owned() } else { format!("/echo?{query}") };
            let answer = site.get(&path).await;
            assert_eq!(answer.status, want, "{query}: {}", answer.text());
            assert_eq!(answer.header("x-echo-method"), Some("GET"), "{query}");
            assert_eq!(answer.header("x-echo-path"), Some("/echo"), "{query}");
            assert_eq!(answer.header("x-echo-query"), Some(query), "the raw query");
            assert_eq!(answer.header("content-type"), Some("application/octet-stream"), "{query}");
            assert_eq!(answer.header("x-echo-header"), None, "no x-test, no x-echo-header");
            assert!(answer.body.is_empty());
        }
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PURGE"] {
            let method = Method::from_bytes(method.as_bytes()).expect("method");
            let answer = site
                .call(
                    method.clone(),
                    "/echo?x=1&y=%20",
                    &[("x-test", "hello world; a=\"b\""), ("content-type", "text/csv; charset=utf-8")],
                    "a,b\n",
                )
                .await;
            assert_eq!(answer.status, 200, "{method}");
            assert_eq!(answer.header("x-echo-method"), Some(method.as_str()));
            assert_eq!(answer.header("x-echo-query"), Some("x=1&y=%20"));
            assert_eq!(answer.header("x-echo-header"), Some("hello world; a=\"b\""));
            assert_eq!(answer.header("content-type"), Some("text/csv; charset=utf-8"));
            assert_eq!(answer.body, b"a,b\n", "{method}");
            // A raw response still gets the host's safety headers.
            assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
        }
    }

    async fn echo_bodies_round_trip_byte_for_byte(lang: Lang) {
        let site = Site::start(lang, Backend::Sqlite).await;
        let every_byte: Vec<u8> = (0..=255).collect();
        let octets = [("content-type", "application/octet-stream")];
        let answer = site.call(Method::POST, "/echo", &octets, every_byte.clone()).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body, every_byte, "all 256 byte values");

        let text_type = [("content-type", "text/plain; charset=utf-8")];
        let answer = site.call(Method::PUT, "/echo", &text_type, TEXT).await;
        assert_eq!((answer.status, answer.body.as_slice()), (200, TEXT.as_bytes()));
        assert_eq!(answer.header("content-type"), Some("text/plain; charset=utf-8"));

        let answer = site.call(Method::POST, "/echo", &[], Vec::new()).await;
        assert_eq!(answer.status, 200);
        assert!(answer.body.is_empty(), "empty body: {:?}", answer.body.len());
        assert_eq!(answer.header("content-length"), Some("0"));

        // The largest body the host accepts, and a big one below it.
        for n in [1_900_000, BODY_LIMIT] {
            let big = noise(n);
            let answer = site.call(Method::POST, "/echo", &octets, big.clone()).await;
            assert_eq!(answer.status, 200, "{n} bytes");
            assert_eq!(answer.body.len(), n);
            assert!(answer.body == big, "{n} bytes come back identical");
        }

        // Streamed without a length (chunked), within the limit: identical too.
        let streamed = noise(1_000_000);
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = streamed.chunks(65_536).map(|c| Ok(c.to_vec())).collect();
        let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
        let answer = site.call(Method::POST, "/echo", &octets, body).await;
        assert_eq!(answer.status, 200);
        assert!(answer.body == streamed, "a streamed body comes back identical");

        // Over the limit: 413 from the host, and the plugin never sees the request: it
        // would log the message or store the value. (Raw HTTP: the host answers without
        // reading the rest, and a client still writing it could lose the answer.)
        assert_eq!(site.refused(&Framing::Declared, "POST", "/echo").await, 413);
        assert_eq!(site.refused(&Framing::Declared, "GET", "/log?message=declared-too-big").await, 413);
        assert_eq!(site.refused(&Framing::Declared, "PUT", "/kv/declared").await, 413);
        assert_eq!(site.refused(&Framing::Chunked, "GET", "/log?message=streamed-too-big").await, 413);
        assert_eq!(site.refused(&Framing::Chunked, "PUT", "/kv/streamed").await, 413);
        site.get("/kv/declared").await.error(404, "not-found");
        site.get("/kv/streamed").await.error(404, "not-found");
        // A request after them is served, and logged: the refused ones never were.
        assert_eq!(site.get("/log?message=after-the-refusals").await.status, 204);
        site.log_line(|l| l.contains("after-the-refusals")).await;
        let log = site.host.log();
        assert!(!log.contains("declared-too-big") && !log.contains("streamed-too-big"), "{log}");
    }

    async fn text_and_bytes_are_exact(lang: Lang) {
        let site = Site::start(lang, Backend::Sqlite).await;
        let text = site.get("/text").await;
        assert_eq!(text.status, 200);
        assert_eq!(text.header("content-type"), Some("text/plain; charset=utf-8"));
        assert_eq!(text.body, TEXT.as_bytes());

        for (n, query) in [(3_000_000, "n=3000000"), (0, "n=0"), (251, "n=251"), (7, "n=007")] {
            let answer = site.get(&format!("/bytes?{query}")).await;
            assert_eq!(answer.status, 200, "{query}: {}", answer.text());
            assert_eq!(answer.header("content-type"), Some("application/octet-stream"));
            assert_eq!(answer.body.len(), n, "{query}");
            let wrong = answer.body.iter().enumerate().position(|(i, b)| usize::from(*b) != i % 251);
            assert_eq!(wrong, None, "{query}: byte i is i % 251");
        }
        for query in ["", "?n=", "?n=x", "?n=-1", "?n=1.5", "?n=1e3", "?n=%2B5", "?n=%205", "?m=5"] {
            site.get(&format!("/bytes{query}")).await.error(400, "invalid");
        }
    }

    async fn query_form_and_json_are_decoded(lang: Lang) {
        let site = Site::start(lang, Backend::Sqlite).await;
        let query = "a=1&b=x+y&c=%C3%A9t%C3%A9&a=2&empty=&flag&&d=%26%3D%2B%23&na%6De=J&e=%zz&f=%FF&g=a=b";
        assert_eq!(
            site.get(&format!("/query?{query}")).await.json(200),
            json!({
                "a": "1", "b": "x y", "c": "été", "empty": "", "flag": "", "d": "&=+#",
                "name": "J", "e": "%zz", "f": "\u{FFFD}", "g": "a=b",
            })
        );
        assert_eq!(site.get("/query").await.json(200), json!({}));

        let form = [("content-type", "application/x-www-form-urlencoded")];
        let answer = site
            .call(
                Method::POST,
                "/form",
                &form,
                "name=Jeanne+Dupont&msg=Bonjour+%21&name=Other&city=Lut%C3%A8ce&empty=",
            )
            .await;
        assert_eq!(
            answer.json(200),
            json!({ "name": "Jeanne Dupont", "msg": "Bonjour !", "city": "Lutèce", "empty": "" })
        );
        let charset = [("content-type", "application/x-www-form-urlencoded; charset=UTF-8")];
        let answer = site.call(Method::POST, "/form", &charset, "x=%E6%9D%B1%E4%BA%AC").await;
        assert_eq!(answer.json(200), json!({ "x": "東京" }));

        for value in [
            json!({ "a": [1, 2.5, "é", null, true, false], "b": { "c": "x", "d": {} }, "e": -7 }),
            json!("text with \"quotes\" and \u{1F6B2}"),
            json!(42),
            json!(null),
            json!([]),
        ] {
            let answer = site.post_json("/json", &value).await;
            assert_eq!(answer.json(200), json!({ "received": value }));
        }
        for bad in ["{\"a\":", "not json", "", "{'a': 1}"] {
            site.call(Method::POST, "/json", &[], bad).await.error(400, "invalid");
        }
    }

    async fn json_bodies_over_the_sdk_limits_are_invalid(lang: Lang) {
        let site = Site::start(lang, Backend::Sqlite).await;
        let json_type = "application/json";
        let nested = |depth: usize| "[".repeat(depth) + &"]".repeat(depth);
        // At the limit (64 levels, the same in the three SDKs): parsed and echoed.
        let answer = site.post("/json", json_type, nested(64)).await;
        let deep: Value = serde_json::from_str(&nested(64)).expect("JSON");
        assert_eq!(answer.json(200), json!({ "received": deep }));
        let cases: Vec<(&str, String)> = vec![
            ("65 levels", nested(65)),
            ("65 levels of objects", "{\"a\":".repeat(65) + "1" + &"}".repeat(65)),
            ("mixed", "{\"a\":[".repeat(33) + &"]}".repeat(33)),
            // The bug report: 2.6 KB of brackets made a Python plugin raise RecursionError.
            ("2.6 KB unclosed", "[".repeat(2600)),
            ("1.5 MB unclosed", "[".repeat(1_500_000)),
            ("1 MB balanced", nested(500_000)),
        ];
        for (what, body) in cases {
            let answer = site.post("/json", json_type, body).await;
            answer.error(400, "invalid");
            let message = answer.json(400)["message"].as_str().unwrap_or_default().to_owned();
            assert!(message.contains("64 levels"), "{what}: the message names the limit: {message}");
            site.still_serves(what).await;
        }
        // Brackets inside strings are text, escaped quotes included.
        let text = format!("[\"{}\\\"{}\"]", "[".repeat(10_000), "{".repeat(10_000));
        let answer = site.post("/json", json_type, text.clone()).await;
        assert_eq!(answer.json(200)["received"], serde_json::from_str::<Value>(&text).expect("JSON"));

        // Wide is fine: 100 000 array items and an object of 20 000 members round-trip.
        let members: Vec<String> = (0..20_000).map(|i| format!("\"k{i}\":{i}")).collect();
        let wide = format!("[{},{{{}}}]", vec!["{\"k\":[1]}"; 100_000].join(","), members.join(","));
        let answer = site.post("/json", json_type, wide.clone()).await;
        assert_eq!(answer.json(200)["received"], serde_json::from_str::<Value>(&wide).expect("JSON"));

        // What serde_json refuses, every SDK refuses (a Python plugin trapped on the first
        // five when it echoed them; JavaScript accepted them).
        for bad in [
            "NaN", "[Infinity]", "{\"a\":-Infinity}", "1e400", "[-1e400]", "\"\\ud800\"",
            "{\"\\udc00\":1}", "\u{feff}{}", "[1,]", "{\"a\" 1}",
        ] {
            site.post("/json", json_type, bad).await.error(400, "invalid");
            site.still_serves(bad).await;
        }
        site.post("/json", json_type, b"[\"\xff\"]".to_vec()).await.error(400, "invalid");
        // Paired surrogate escapes are one character; tiny numbers are 0.
        let answer = site.post("/json", json_type, "[\"\\ud83d\\udeb2\",1e-400]").await;
        let received = answer.json(200)["received"].clone();
        assert_eq!((received[0].as_str(), received[1].as_f64()), (Some("🚲"), Some(0.0)), "{received}");
    }

    async fn form_bodies_over_the_sdk_limits_are_invalid(lang: Lang) {
        let site = Site::start(lang, Backend::Sqlite).await;
        let form_type = "application/x-www-form-urlencoded";
        let fields = |n: usize| (0..n).map(|i| format!("f{i}={i}")).collect::<Vec<_>>().join("&");
        // 1000 fields (the same limit in the three SDKs), empty pairs not counted.
        let answer = site.post("/form", form_type, fields(1000) + "&&&").await;
        let object = answer.json(200);
        assert_eq!(object.as_object().map(serde_json::Map::len), Some(1000));
        assert_eq!(object["f999"], "999");
        for (what, body) in [
            ("1001 fields", fields(1001)),
            ("a million fields", "a&".repeat(1_000_000)),
        ] {
            let answer = site.post("/form", form_type, body).await;
            answer.error(400, "invalid");
            let message = answer.json(400)["message"].as_str().unwrap_or_default().to_owned();
            assert!(message.contains("1000"), "{what}: the message names the limit: {message}");
            site.still_serves(what).await;
        }
        site.post("/form", form_type, b"a=\xff\xfe".to_vec()).await.error(400, "invalid");
        site.still_serves("invalid UTF-8").await;
        // Malformed percent-escapes decode leniently, as browsers do, the same everywhere.
        let answer = site.post("/form", form_type, "a=%&b=%4&c=%zz%41&d=%FF&e=%C3&f=100%25+%2B&g=%E2%82").await;
        assert_eq!(
            answer.json(200),
            json!({ "a": "%", "b": "%4", "c": "%zzA", "d": "\u{FFFD}", "e": "\u{FFFD}", "f": "100% +", "g": "\u{FFFD}" })
        );
        // A big value is decoded in one piece.
        let answer = site.post("/form", form_type, format!("v={}", "%41".repeat(600_000))).await;
        assert_eq!(answer.json(200)["v"].as_str().map(str::len), Some(600_000));
    }

    async fn multipart_bodies_are_parsed_or_invalid(lang: Lang) {
        // Without the files grant: the host then hands multipart bodies over unread (with
        // it, the host checks uploads itself and refuses malformed ones before the plugin).
        let no_files = |manifest: &str| {
            let start = manifest.find("[capabilities.files]").expect("the manifest grants files");
            let end = manifest[start..].find("\n\n").map_or(manifest.len(), |n| start + n + 2);
            format!("{}{}", &manifest[..start], &manifest[end..])
        };
        let setup = Setup { edit: Some(&no_files), ..Setup::default() };
        let site = Site::start_with(lang, Backend::Sqlite, setup).await;
        let ct = "multipart/form-data; boundary=----b0undary";
        let body = b"------b0undary\r\n\
Content-Disposition: form-data; name=\"title\"\r\n\r\n\
Nid-de-poule \xc3\xa9\r\n\
------b0undary\r\n\
Content-Disposition: form-data; name=\"photo\"; filename=\"C:\\Users\\x\\trou.png\"\r\n\
Content-Type: image/png\r\n\r\n\
\x89PNG\r\n\x1a\n\r\n--not-it\r\n\
------b0undary\r\n\
Content-Disposition: form-data; name=\"empty\"; filename=\"\"\r\n\r\n\
\r\n\
------b0undary--\r\n";
        let answer = site.post("/multipart", ct, body.to_vec()).await;
        assert_eq!(
            answer.json(200),
            json!({ "parts": [
                { "name": "title", "filename": null, "content_type": null, "size": 15, "text": "Nid-de-poule é" },
                { "name": "photo", "filename": "trou.png", "content_type": "image/png", "size": 18, "text": null },
                { "name": "empty", "filename": "", "content_type": null, "size": 0, "text": "" },
            ] })
        );
        let ct = "multipart/form-data; boundary=b";
        let part = "\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nv\r\n--b";
        let parts = |n: usize| format!("--b{}--\r\n", part.repeat(n));
        assert_eq!(site.post("/multipart", ct, parts(1000)).await.json(200)["parts"].as_array().map(Vec::len), Some(1000));
        let malformed: Vec<(&str, Vec<u8>)> = vec![
            ("1001 parts", parts(1001).into_bytes()),
            // A part without headers: the Rust SDK panicked on it (a trap, 500).
            ("no headers", b"--b\r\n\r\ndata\r\n--b--".to_vec()),
            ("no headers, no end", b"--b\r\n\r\n".to_vec()),
            ("empty", Vec::new()),
            ("no boundary", b"just text".to_vec()),
            ("truncated", b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nhalf".to_vec()),
            ("headers never end", b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n".to_vec()),
            ("headers not UTF-8", b"--b\r\nX: \xff\r\n\r\nx\r\n--b--".to_vec()),
            ("no name", b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--".to_vec()),
            ("not form-data", b"--b\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nx\r\n--b--".to_vec()),
            ("boundary run on", b"--bX\r\n".to_vec()),
        ];
        for (what, body) in malformed {
            let answer = site.post("/multipart", ct, body).await;
            assert_eq!(answer.status, 400, "{what}: {}", answer.text());
            answer.error(400, "invalid");
            site.still_serves(what).await;
        }
        site.post("/multipart", "text/plain", "--b--").await.error(400, "invalid");
        site.post("/multipart", "multipart/form-data", "--b--").await.error(400, "invalid");
    }

    async fn a_native_parser_on_deep_json(lang: Lang) {
        // The language's own parser on 100 000 levels, without the SDK's checks. serde_json
        // stops at its recursion limit and SpiderMonkey throws "too much recursion": the
        // plugin catches it, then parses a 64-level document and calls kv in the same call,
        // so the engine is whole after the error. CPython's `json` recurses in C and runs
        // out of WebAssembly stack first (near 1100 levels): a trap that no `except`
        // catches, which is why the SDKs scan the depth before they parse. The SDK's parser
        // refuses the same body with `invalid`, in every language.
        let site = Site::start(lang, Backend::Sqlite).await;
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        let python = matches!(lang, Lang::Python);
        for round in 1..=3 {
            let answer = site.post("/json/native", "application/json", deep.clone()).await;
            if python {
                assert_eq!(answer.status, 500, "round {round}: {}", answer.text());
            } else {
                let json = answer.json(200);
                assert_eq!(json["ok"], false, "round {round}: {json}");
                assert!(json["failure"].as_str().is_some_and(|f| !f.is_empty()), "{json}");
                assert_eq!((&json["after"], &json["count"]), (&json!(true), &json!(round)), "{json}");
            }
            site.post("/json", "application/json", deep.clone()).await.error(400, "invalid");
            site.still_serves("a deep body through the native parser").await;
        }
        if python {
            let line = site.log_line(|l| l.contains("call stack exhausted")).await;
            assert!(line.contains("libpython"), "inside the interpreter: {line}");
        }
        let answer = site.post("/json/native", "application/json", "[[1],{\"a\":2}]").await;
        let count = if python { 1 } else { 4 };
        assert_eq!(answer.json(200), json!({ "ok": true, "failure": null, "after": true, "count": count }));
    }

    async fn a_deep_recursion_in_plugin_code(lang: Lang) {
        // Plugin code recursing 100 000 levels. Python counts its own frames and raises
        // RecursionError, SpiderMonkey throws "too much recursion": caught, then the same
        // call recurses 64 levels and calls kv, so the interpreter is whole after the error.
        // Rust cannot catch running out of stack: the call traps, as a panic does, and the
        // next request gets a fresh instance.
        let site = Site::start(lang, Backend::Sqlite).await;
        let rust = matches!(lang, Lang::Rust);
        for round in 1..=3 {
            let answer = site.get("/recursion?depth=100000").await;
            if rust {
                assert_eq!(answer.status, 500, "round {round}: {}", answer.text());
            } else {
                let json = answer.json(200);
                assert_eq!(json["ok"], false, "round {round}: {json}");
                assert!(json["failure"].as_str().is_some_and(|f| !f.is_empty()), "{json}");
                assert_eq!((&json["after"], &json["count"]), (&json!(true), &json!(round)), "{json}");
            }
            site.still_serves("a deep recursion").await;
        }
        if rust {
            site.log_line(|l| l.contains("call stack exhausted")).await;
        }
        let answer = site.get("/recursion?depth=500").await;
        let count = if rust { 1 } else { 4 };
        assert_eq!(answer.json(200), json!({ "ok": true, "failure": null, "after": true, "count": count }));
    }

    async fn request_fields_reach_the_plugin(lang: Lang) {
        let site = Site::start(lang, Backend::Sqlite).await;
        let (prefix, before) = error_reference(&site.host).await;
        let answer = site
            .call(Method::GET, "/request?x=1&y=%20", &[("accept-language", "fr-FR,fr;q=0.9,en;q=0.8")], Vec::new())
            .await;
        let json = answer.json(200);
        let (after_prefix, after) = error_reference(&site.host).await;
        assert_eq!(json["method"], "GET");
        assert_eq!(json["path"], "/request");
        assert_eq!(json["query"], "x=1&y=%20");
        assert_eq!(json["locale"], "fr-FR");
        assert_eq!(json["mount"], format!("/p/{}", lang.id()));
        assert_eq!(json["has_user"], false);
        // The host's own id for this request: between the ones of the requests around it.
        let request_id = json["request_id"].as_str().unwrap_or_else(|| panic!("{json}"));
        let (id_prefix, n) = split_request_id(request_id);
        assert_eq!((id_prefix.as_str(), after_prefix.as_str()), (prefix.as_str(), prefix.as_str()));
        assert!(before < n && n < after, "{before} < {n} < {after}");
        let mut keys: Vec<&str> = json.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
        keys.sort_unstable();
        assert_eq!(keys, ["has_user", "locale", "method", "mount", "path", "query", "request_id"]);

        let json = site.get("/request").await.json(200);
        assert_eq!((json["query"].as_str(), json["locale"].as_str()), (Some(""), Some("en")));
        assert_ne!(json["request_id"].as_str(), Some(request_id), "a new id per request");
    }

    async fn log_lines_carry_the_plugin_id(lang: Lang) {
        let site = Site::start(lang, Backend::Sqlite).await;
        let message = format!("conformance log é {}", std::process::id());
        let answer = site.get(&format!("/log?message={}", enc(&message))).await;
        assert_eq!(answer.status, 204, "{}", answer.text());
        assert!(answer.body.is_empty());
        let line = site.log_line(|l| l.contains(&message)).await;
        assert!(line.contains("INFO"), "{line}");
        assert!(line.contains(lang.id()), "the plugin id: {line}");
    }

    async fn unknown_routes_are_404(lang: Lang) {
        let site = Site::start(lang, Backend::Sqlite).await;
        for (method, path) in [
            (Method::GET, "/no/such/route"),
            (Method::GET, "/texts"),
            (Method::POST, "/text"),
            (Method::DELETE, "/"),
            (Method::GET, "/kv/a/b/c"),
            (Method::PATCH, "/kv/a"),
        ] {
            let answer = site.call(method.clone(), path, &[], Vec::new()).await;
            assert_eq!(answer.status, 404, "{method} {path}: {}", answer.text());
        }
    }

    async fn ungranted_kv_is_denied_and_the_rest_works(lang: Lang) {
        let revoke = |manifest: &str| {
            let edited = manifest.replacen("kv = true\n", "", 1);
            assert_ne!(edited, manifest, "the manifest asks for kv");
            edited
        };
        let setup = Setup { edit: Some(&revoke), ..Setup::default() };
        let site = Site::start_with(lang, Backend::Sqlite, setup).await;
        site.get("/kv/x").await.error(403, "denied");
        assert_eq!(site.get("/kv/x").await.json(403)["error"], "denied");
        site.put("/kv/x", "v").await.error(403, "denied");
        site.delete("/kv/x").await.error(403, "denied");
        site.call(Method::POST, "/kv/x/increment", &[], Vec::new()).await.error(403, "denied");
        site.get("/kv?prefix=").await.error(403, "denied");
        // Routes reading kv answer the same.
        site.get("/jobs").await.error(403, "denied");
        site.get("/events").await.error(403, "denied");
        // The other services still work.
        assert_eq!(site.get("/").await.status, 200);
        assert_eq!(site.put_json("/store/notes/a", &json!({ "x": 1 })).await.json(200), json!({ "version": 1 }));
        assert_eq!(site.get("/store/notes/a").await.json(200)["body"], json!({ "x": 1 }));
        let file = site.call(Method::PUT, "/files/a.txt", &[("content-type", "text/plain")], "hi").await;
        assert_eq!(file.json(200)["size"], 2);
        let published = site.post_json("/events/conformance.ping", &json!({ "n": 1 })).await;
        assert_eq!(published.json(202), json!({ "published": "conformance.ping" }));
        assert_eq!(site.get("/config/greeting").await.json(200)["value"], "Bonjour");
        let line = site.log_line(|l| l.contains("denied") && l.contains("kv")).await;
        assert!(line.contains(lang.id()), "{line}");
    }

    async fn a_trap_is_a_clean_500_and_the_host_keeps_serving(lang: Lang) {
        let setup = Setup { others: &["hello"], ..Setup::default() };
        let site = Site::start_with(lang, Backend::Sqlite, setup).await;
        for round in 0..3 {
            let answer = site.get("/trap").await;
            assert_eq!(answer.status, 500, "round {round}");
            let body = answer.text();
            assert!(body.contains(r#"<header class="site-header">"#), "an error page in the layout: {body}");
            let reference = body
                .split("Reference: <code>")
                .nth(1)
                .and_then(|rest| rest.split("</code>").next())
                .unwrap_or_else(|| panic!("a reference: {body}"))
                .to_owned();
            let lower = body.to_lowercase();
            for internal in ["conformance trap", "panicked", "wasm", "backtrace", "traceback", "stderr", "error:"] {
                assert!(!lower.contains(internal), "{internal:?} leaks to visitors: {body}");
            }
            // The operator's log has the plugin, the request and the trap message.
            let line = site
                .log_line(|l| l.contains("plugin call failed") && l.contains(&reference))
                .await;
            assert!(line.contains(lang.id()), "{line}");
            // The guest's stderr (a panic message, a traceback) is escaped into that one
            // line: what a plugin writes can never start a log line of its own.
            assert!(line.contains("conformance trap"), "{line}\n{}", site.host.log());
            // A fresh instance serves the next request; other plugins never noticed.
            let page = site.get("/").await;
            assert_eq!(page.status, 200);
            assert!(page.text().contains(r#"<p class="greeting">Bonjour</p>"#));
            assert_eq!(site.get("/text").await.body, TEXT.as_bytes());
            let (status, _) = site.host.get("/p/hello/").await;
            assert_eq!(status, 200);
        }
    }
}

contract_on_both_backends! {
    async fn kv_round_trip(lang: Lang, backend: Backend) {
        let site = Site::start(lang, backend).await;
        let every_byte: Vec<u8> = (0..=255).collect();
        assert_eq!(site.put("/kv/bin", every_byte.clone()).await.json(200), json!({ "key": "bin", "bytes": 256 }));
        let answer = site.get("/kv/bin").await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("content-type"), Some("application/octet-stream"));
        assert_eq!(answer.body, every_byte);
        assert_eq!(site.put("/kv/bin", "new").await.json(200), json!({ "key": "bin", "bytes": 3 }));
        assert_eq!(site.get("/kv/bin").await.body, b"new");
        // A key is one segment, percent-decoded.
        assert_eq!(site.put("/kv/a%2Fb%20c%C3%A9", "x").await.json(200), json!({ "key": "a/b cé", "bytes": 1 }));
        assert_eq!(site.get("/kv/a%2Fb%20c%C3%A9").await.body, b"x");
        assert_eq!(site.put("/kv/empty", Vec::new()).await.json(200), json!({ "key": "empty", "bytes": 0 }));
        let empty = site.get("/kv/empty").await;
        assert_eq!((empty.status, empty.body.len()), (200, 0));

        site.get("/kv/missing").await.error(404, "not-found");
        assert_eq!(site.delete("/kv/bin").await.json(200), json!({ "deleted": true }));
        assert_eq!(site.delete("/kv/bin").await.json(200), json!({ "deleted": false }));
        site.get("/kv/bin").await.error(404, "not-found");

        let increment = |query: &'static str| site.call(Method::POST, query, &[], Vec::new());
        assert_eq!(increment("/kv/n/increment").await.json(200), json!({ "value": 1 }));
        assert_eq!(increment("/kv/n/increment?by=5").await.json(200), json!({ "value": 6 }));
        assert_eq!(increment("/kv/n/increment?by=-10").await.json(200), json!({ "value": -4 }));
        assert_eq!(site.get("/kv/n").await.body, b"-4", "stored as decimal text");
        increment("/kv/n/increment?by=x").await.error(400, "invalid");
        site.put("/kv/word", "abc").await;
        increment("/kv/word/increment").await.error(400, "invalid");
        assert_eq!(site.get("/kv/word").await.body, b"abc");

        for key in ["t:2", "t:1", "t:3", "u:1"] {
            assert_eq!(site.put(&format!("/kv/{}", enc(key)), key).await.status, 200);
        }
        assert_eq!(site.get("/kv?prefix=t%3A").await.json(200), json!({ "keys": ["t:1", "t:2", "t:3"] }));
        assert_eq!(site.get("/kv?prefix=a%2F").await.json(200), json!({ "keys": ["a/b cé"] }));
        assert_eq!(site.get("/kv?prefix=zz").await.json(200), json!({ "keys": [] }));

        // The host's limits answer through the plugin as error answers.
        site.put(&format!("/kv/{}", "k".repeat(513)), "v").await.error(400, "invalid");
        site.put("/kv/huge", vec![0u8; 1024 * 1024 + 1]).await.error(400, "invalid");
        site.get("/kv/huge").await.error(404, "not-found");
    }

    async fn store_documents_and_versions(lang: Lang, backend: Backend) {
        let site = Site::start(lang, backend).await;
        let note = json!({ "title": "Marché", "n": 1, "tags": ["a", "b"], "place": { "city": "東京 🚲" } });
        assert_eq!(site.put_json("/store/notes/n1", &note).await.json(200), json!({ "version": 1 }));
        assert_eq!(site.get("/store/notes/n1").await.json(200), json!({ "id": "n1", "version": 1, "body": note }));
        let second = json!({ "title": "second" });
        assert_eq!(site.put_json("/store/notes/n1", &second).await.json(200), json!({ "version": 2 }));

        // `if-version`: the expected version; a stale one conflicts and writes nothing.
        let json_type = ("content-type", "application/json");
        let stale = site.call(Method::PUT, "/store/notes/n1", &[json_type, ("if-version", "1")], "{\"title\":\"stale\"}").await;
        stale.error(409, "conflict");
        assert_eq!(site.get("/store/notes/n1").await.json(200), json!({ "id": "n1", "version": 2, "body": second }));
        let fresh = site.call(Method::PUT, "/store/notes/n1", &[json_type, ("if-version", "2")], "{\"title\":\"third\"}").await;
        assert_eq!(fresh.json(200), json!({ "version": 3 }));
        // `if-version: 0`: create only.
        let create_only = [json_type, ("if-version", "0")];
        let create = |body: &'static str| site.call(Method::PUT, "/store/notes/n2", &create_only, body);
        assert_eq!(create("{\"x\":1}").await.json(200), json!({ "version": 1 }));
        create("{\"x\":2}").await.error(409, "conflict");
        site.call(Method::PUT, "/store/notes/n2", &[json_type, ("if-version", "abc")], "{}").await.error(400, "invalid");

        // Ids are single segments, percent-decoded.
        assert_eq!(site.put_json("/store/notes/a%2Fb%20%C3%A9", &json!({})).await.json(200), json!({ "version": 1 }));
        assert_eq!(site.get("/store/notes/a%2Fb%20%C3%A9").await.json(200)["id"], "a/b é");

        site.get("/store/notes/missing").await.error(404, "not-found");
        site.call(Method::PUT, "/store/notes/bad", &[json_type], "not json").await.error(400, "invalid");
        site.put_json("/store/notes/bad", &json!([1, 2])).await.error(400, "invalid");
        site.put_json("/store/Bad%20Name/x", &json!({})).await.error(400, "invalid");
        site.get("/store/notes/bad").await.error(404, "not-found");

        assert_eq!(site.delete("/store/notes/n1").await.json(200), json!({ "deleted": true }));
        assert_eq!(site.delete("/store/notes/n1").await.json(200), json!({ "deleted": false }));
        site.get("/store/notes/n1").await.error(404, "not-found");
        // Written again after a delete: a new document, version 1.
        assert_eq!(site.put_json("/store/notes/n1", &note).await.json(200), json!({ "version": 1 }));
    }

    async fn store_queries_paginate_and_filter(lang: Lang, backend: Backend) {
        let site = Site::start(lang, backend).await;
        let body = |i: usize| {
            json!({
                "n": i,
                "tag": if i.is_multiple_of(3) { "fizz" } else { "plain" },
                "name": format!("item-{i:02}"),
            })
        };
        for i in 0..25 {
            let answer = site.put_json(&format!("/store/items/i{i:02}"), &body(i)).await;
            assert_eq!(answer.json(200), json!({ "version": 1 }));
        }
        let ids = |range: &mut dyn Iterator<Item = usize>| -> Vec<String> { range.map(|i| format!("i{i:02}")).collect() };

        /// Every page of `query` (`limit` per page); checks each page's count.
        async fn pages(site: &Site, query: &str, count: u64) -> Vec<Vec<String>> {
            let mut pages = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let path = match &cursor {
                    Some(c) => format!("/store/items?{query}&cursor={}", enc(c)),
                    None => format!("/store/items?{query}"),
                };
                let page = site.get(&path).await.json(200);
                assert_eq!(page["count"], count, "{query}: {page}");
                let docs = page["documents"].as_array().unwrap_or_else(|| panic!("{page}"));
                pages.push(docs.iter().map(|d| d["id"].as_str().unwrap_or_default().to_owned()).collect());
                match &page["next"] {
                    Value::Null => return pages,
                    Value::String(next) => cursor = Some(next.clone()),
                    other => panic!("next is a string or null, not {other}"),
                }
                assert!(pages.len() < 30, "pagination does not end: {query}");
            }
        }
        let sizes = |pages: &[Vec<String>]| pages.iter().map(Vec::len).filter(|&n| n > 0).collect::<Vec<_>>();

        // By id, 10 a page: every document once, in order.
        let by_id = pages(&site, "limit=10", 25).await;
        assert_eq!(sizes(&by_id), [10, 10, 5]);
        assert_eq!(by_id.concat(), ids(&mut (0..25)));
        // A page's documents are the stored ones.
        let first = site.get("/store/items?limit=1").await.json(200);
        assert_eq!(first["documents"], json!([{ "id": "i00", "version": 1, "body": body(0) }]));
        assert_eq!(first["count"], 25);
        assert!(first["next"].is_string(), "{first}");
        // Default limit: 100.
        assert_eq!(site.get("/store/items").await.json(200)["documents"].as_array().map(Vec::len), Some(25));

        // By a field, descending, 7 a page.
        let by_n = pages(&site, "order=n&desc=1&limit=7", 25).await;
        assert_eq!(sizes(&by_n), [7, 7, 7, 4]);
        assert_eq!(by_n.concat(), ids(&mut (0..25).rev()));
        let ascending = pages(&site, "order=name&limit=25", 25).await;
        assert_eq!(ascending.concat(), ids(&mut (0..25)));

        // A document written between two pages, before the cursor: no repeat, no skip.
        let page = site.get("/store/items?limit=10").await.json(200);
        let next = page["next"].as_str().unwrap_or_else(|| panic!("{page}")).to_owned();
        site.put_json("/store/items/h99", &json!({ "n": 99 })).await;
        let rest = site.get(&format!("/store/items?limit=100&cursor={}", enc(&next))).await.json(200);
        let rest: Vec<&str> = rest["documents"].as_array().map(|d| d.iter().filter_map(|d| d["id"].as_str()).collect()).unwrap_or_default();
        assert_eq!(rest, ids(&mut (10..25)));
        site.delete("/store/items/h99").await;

        // Filters: the value is JSON text, compared with JSON types.
        let filtered = |field: &str, op: &str, value: &str| format!("field={field}&op={op}&value={}", enc(value));
        let cases: Vec<(String, Vec<String>)> = vec![
            (filtered("tag", "eq", "\"fizz\""), ids(&mut (0..25).step_by(3))),
            (filtered("n", "gt", "20"), ids(&mut (21..25))),
            (filtered("n", "gte", "20"), ids(&mut (20..25))),
            (filtered("n", "lt", "2"), ids(&mut (0..2))),
            (filtered("n", "lte", "2"), ids(&mut (0..3))),
            (filtered("n", "ne", "0"), ids(&mut (1..25))),
            (filtered("n", "gt", "\"20\""), vec![]),
            (filtered("n", "eq", "\"3\""), vec![]),
            (filtered("name", "prefix", "\"item-1\""), ids(&mut (10..20))),
            (filtered("n", "in", "[1,2,24]"), ids(&mut [1, 2, 24].into_iter())),
            (filtered("tag", "in", "[\"fizz\",\"none\"]"), ids(&mut (0..25).step_by(3))),
        ];
        for (query, want) in cases {
            let got = pages(&site, &query, want.len() as u64).await.concat();
            assert_eq!(got, want, "{query}");
        }
        // Filter, order and pagination together.
        let plain = pages(&site, &format!("{}&order=n&desc=1&limit=5", filtered("tag", "eq", "\"plain\"")), 16).await;
        assert_eq!(sizes(&plain), [5, 5, 5, 1]);
        assert_eq!(plain.concat(), ids(&mut (0..25).rev().filter(|i: &usize| !i.is_multiple_of(3))));

        site.get("/store/items?field=n&op=eq&value=fizz").await.error(400, "invalid");
        site.get("/store/items?field=n&op=like&value=1").await.error(400, "invalid");
        site.get("/store/items?limit=0").await.error(400, "invalid");
        site.get("/store/items?limit=abc").await.error(400, "invalid");
        site.get("/store/items?field=bad%20field&op=eq&value=1").await.error(400, "invalid");
    }

    async fn store_unique_index_and_transactions(lang: Lang, backend: Backend) {
        let site = Site::start(lang, backend).await;
        let index = site.call(Method::POST, "/store/users/_index?fields=email&unique=1", &[], Vec::new()).await;
        assert_eq!(index.status, 204, "{}", index.text());
        assert!(index.body.is_empty());
        assert_eq!(site.put_json("/store/users/u1", &json!({ "email": "a@example.org" })).await.json(200), json!({ "version": 1 }));
        site.put_json("/store/users/u2", &json!({ "email": "a@example.org" })).await.error(409, "conflict");
        site.get("/store/users/u2").await.error(404, "not-found");
        assert_eq!(site.put_json("/store/users/u2", &json!({ "email": "b@example.org" })).await.json(200), json!({ "version": 1 }));
        // Not unique: `unique` absent.
        let index = site.call(Method::POST, "/store/users/_index?fields=city,age", &[], Vec::new()).await;
        assert_eq!(index.status, 204, "{}", index.text());
        site.put_json("/store/users/u3", &json!({ "email": "c@example.org", "city": "Paris" })).await.json(200);
        site.put_json("/store/users/u4", &json!({ "email": "d@example.org", "city": "Paris" })).await.json(200);
        site.call(Method::POST, "/store/users/_index?fields=bad%20field", &[], Vec::new()).await.error(400, "invalid");

        let s = &site;
        let tx = move |body: Value| async move { s.post_json("/tx", &body).await };
        let booking = |who: &str| json!({ "session": "s1", "who": who });
        // Absent: the first booking wins, the second conflicts and writes nothing.
        let first = json!({
            "preconditions": [{ "absent": ["bookings", "s1-jeanne"] }],
            "writes": [{ "put": ["bookings", "s1-jeanne", booking("jeanne"), null] }],
        });
        assert_eq!(tx(first.clone()).await.json(200), json!({ "versions": [1] }));
        tx(first).await.error(409, "conflict");
        assert_eq!(site.get("/store/bookings/s1-jeanne").await.json(200)["version"], 1);
        // At a version, with two writes.
        let update = json!({
            "preconditions": [{ "at_version": ["bookings", "s1-jeanne", 1] }],
            "writes": [
                { "put": ["bookings", "s1-jeanne", { "session": "s1", "who": "jeanne", "seat": 3 }, 1] },
                { "put": ["bookings", "s1-marie", booking("marie"), null] },
            ],
        });
        assert_eq!(tx(update.clone()).await.json(200), json!({ "versions": [2, 1] }));
        tx(update).await.error(409, "conflict");
        assert_eq!(site.get("/store/bookings/s1-jeanne").await.json(200)["body"]["seat"], 3);
        // Count below: 3 seats in session s1 (a booking of another session does not count).
        let other = json!({ "writes": [{ "put": ["bookings", "s2-anna", { "session": "s2", "who": "anna" }, null] }] });
        assert_eq!(tx(other).await.json(200), json!({ "versions": [1] }));
        let seat = |who: &str| json!({
            "preconditions": [{ "count_below": ["bookings", [["session", "eq", "s1"]], 3] }],
            "writes": [{ "put": ["bookings", format!("s1-{who}"), booking(who), null] }],
        });
        assert_eq!(tx(seat("paul")).await.json(200), json!({ "versions": [1] }));
        tx(seat("luc")).await.error(409, "conflict");
        site.get("/store/bookings/s1-luc").await.error(404, "not-found");
        // Any JSON value in a count filter; deletes answer version 0.
        let two_of_four = |below: u64| json!({
            "preconditions": [{ "count_below": ["bookings", [["who", "in", ["jeanne", "marie"]], ["session", "eq", "s1"]], below] }],
            "writes": [{ "delete": ["bookings", "s1-paul"] }],
        });
        tx(two_of_four(2)).await.error(409, "conflict");
        assert_eq!(site.get("/store/bookings/s1-paul").await.json(200)["version"], 1);
        assert_eq!(tx(two_of_four(3)).await.json(200), json!({ "versions": [0] }));
        site.get("/store/bookings/s1-paul").await.error(404, "not-found");
        // All or nothing: a stale expected version cancels the first write too.
        let mixed = json!({
            "preconditions": [],
            "writes": [
                { "put": ["bookings", "x1", {}, null] },
                { "put": ["bookings", "s1-marie", {}, 7] },
            ],
        });
        tx(mixed).await.error(409, "conflict");
        site.get("/store/bookings/x1").await.error(404, "not-found");
        let count = site.get(&format!("/store/bookings?field=session&op=eq&value={}", enc("\"s1\""))).await.json(200);
        assert_eq!(count["count"], 2, "{count}");
        let count = site.get("/store/bookings").await.json(200);
        assert_eq!(count["count"], 3, "{count}");
        // Malformed transactions are invalid, not conflicts.
        tx(json!({ "preconditions": [{ "maybe": ["bookings", "x"] }] })).await.error(400, "invalid");
        site.call(Method::POST, "/tx", &[], "not json").await.error(400, "invalid");
    }

    async fn files_round_trip_and_are_served(lang: Lang, backend: Backend) {
        let site = Site::start(lang, backend).await;
        let text = "Bonjour Lutèce\n";
        let s = &site;
        let put = move |name: &str, content_type: &str, body: Vec<u8>| {
            let path = format!("/files/{name}");
            let content_type = content_type.to_owned();
            async move { s.call(Method::PUT, &path, &[("content-type", &content_type)], body).await }
        };
        let stored = put("hello.txt", "text/plain", text.into()).await.json(200);
        assert_eq!(
            stored,
            json!({
                "name": "hello.txt",
                "content_type": "text/plain",
                "size": text.len(),
                "sha256": lutetia_model::hash::sha256_hex(text.as_bytes()),
            })
        );
        let got = site.get("/files/hello.txt").await;
        assert_eq!(got.status, 200);
        assert_eq!(got.header("content-type"), Some("text/plain"));
        assert_eq!(got.body, text.as_bytes());
        let png = put("dot.png", "image/png", PNG.to_vec()).await.json(200);
        assert_eq!((png["content_type"].as_str(), png["size"].as_u64()), (Some("image/png"), Some(PNG.len() as u64)));
        let got = site.get("/files/dot.png").await;
        assert_eq!((got.header("content-type"), got.body.as_slice()), (Some("image/png"), PNG));

        assert_eq!(
            site.get("/files?prefix=").await.json(200),
            json!({ "files": [
                { "name": "dot.png", "content_type": "image/png", "size": PNG.len() },
                { "name": "hello.txt", "content_type": "text/plain", "size": text.len() },
            ] })
        );
        assert_eq!(
            site.get("/files?prefix=hel").await.json(200),
            json!({ "files": [{ "name": "hello.txt", "content_type": "text/plain", "size": text.len() }] })
        );
        // The URL helper, and the host serving that URL.
        let url = site.get("/files/hello.txt/url").await.json(200);
        let want = format!("/p/{}/_files/hello.txt", lang.id());
        assert_eq!(url, json!({ "url": want }));
        let served = site.host.client.get(site.host.url(&want)).send().await.expect("get");
        assert_eq!(served.status(), 200);
        assert_eq!(served.headers()["content-type"], "text/plain; charset=utf-8");
        assert_eq!(served.headers()["content-disposition"], "inline; filename=\"hello.txt\"");
        assert_eq!(served.bytes().await.expect("bytes").as_ref(), text.as_bytes());

        // Replaced in place.
        put("hello.txt", "text/plain", b"v2".to_vec()).await.json(200);
        assert_eq!(site.get("/files/hello.txt").await.body, b"v2");

        // Refused by the host: a type not granted, content not of its type, a bad name.
        put("doc.pdf", "application/pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec()).await.error(400, "invalid");
        put("fake.png", "image/png", b"not a png".to_vec()).await.error(400, "invalid");
        put("..%2Fescape.txt", "text/plain", b"x".to_vec()).await.error(400, "invalid");
        site.get("/files/doc.pdf").await.error(404, "not-found");

        assert_eq!(site.delete("/files/hello.txt").await.json(200), json!({ "deleted": true }));
        assert_eq!(site.delete("/files/hello.txt").await.json(200), json!({ "deleted": false }));
        site.get("/files/hello.txt").await.error(404, "not-found");
        let gone = site.host.client.get(site.host.url(&want)).send().await.expect("get");
        assert_eq!(gone.status(), 404);
        assert_eq!(site.get("/files?prefix=").await.json(200)["files"].as_array().map(Vec::len), Some(1));
    }

    async fn mail_is_queued_in_the_outbox(lang: Lang, backend: Backend) {
        let site = Site::start(lang, backend).await;
        let subject = format!("Rendez-vous {}", lang.name());
        let message = json!({
            "to": ["Jeanne Dupont <jeanne@example.org>", "marc@example.org"],
            "subject": subject,
            "text": "Votre rendez-vous est confirmé.",
            "html": "<p>Votre rendez-vous est <b>confirmé</b>.</p>",
            "attachments": [{
                "filename": "invite.ics",
                "content_type": "text/calendar; method=REQUEST",
                "text": "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n",
            }],
        });
        let answer = site.post_json("/mail", &message).await.json(200);
        let id = answer["id"].as_str().filter(|id| !id.is_empty()).unwrap_or_else(|| panic!("an id: {answer}")).to_owned();
        assert_eq!(answer, json!({ "id": id }));
        let plain = json!({ "to": ["paul@example.org"], "subject": "Plain", "text": "Texte seul." });
        site.post_json("/mail", &plain).await.json(200);
        let bad = json!({ "to": ["not an address"], "subject": "x", "text": "y" });
        site.post_json("/mail", &bad).await.error(400, "invalid");

        let (code, out, err) = lutetia_tests::run_cli(BIN, &["outbox", "list", "--database-url", &site.db.url]).await;
        assert_eq!(code, 0, "{err}");
        let line = out.lines().find(|l| l.starts_with(&id)).unwrap_or_else(|| panic!("{id} in:\n{out}"));
        assert!(line.contains(&subject) && line.contains("queued"), "{line}");
        assert!(line.contains("jeanne@example.org"), "{line}");
        assert!(out.contains("(2 message(s))"), "{out}");

        let outbox = site.db.open().await;
        let rows = outbox.outbox_list(None, 10).await.expect("outbox");
        let row = rows.iter().find(|r| r.id == id).unwrap_or_else(|| panic!("{rows:?}"));
        assert_eq!(row.plugin_id, lang.id());
        assert_eq!(row.subject, subject);
        assert!(row.recipients.contains("jeanne@example.org") && row.recipients.contains("marc@example.org"), "{row:?}");
        // The message itself, as the plugin gave it (the attachment's bytes in base64).
        let mut found = None;
        while let Some(claimed) = outbox.outbox_claim(60_000).await.expect("claim") {
            if claimed.id == id {
                found = Some(claimed);
            }
        }
        let stored: Value = serde_json::from_slice(&found.expect("the message").message).expect("stored as JSON");
        assert_eq!(
            stored,
            json!({
                "to": ["Jeanne Dupont <jeanne@example.org>", "marc@example.org"],
                "cc": [],
                "reply_to": null,
                "subject": subject,
                "text": "Votre rendez-vous est confirmé.",
                "html": "<p>Votre rendez-vous est <b>confirmé</b>.</p>",
                "attachments": [{
                    "filename": "invite.ics",
                    "content_type": "text/calendar; method=REQUEST",
                    // BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n
                    "data": "QkVHSU46VkNBTEVOREFSDQpWRVJTSU9OOjIuMA0KRU5EOlZDQUxFTkRBUg0K",
                }],
            })
        );
        outbox.close().await;
    }

    async fn events_are_delivered_to_the_subscriber(lang: Lang, backend: Backend) {
        let site = Site::start(lang, backend).await;
        let payloads = [json!({ "n": 1, "s": "é" }), json!({ "n": 2, "list": [1, 2] }), json!("three")];
        for payload in &payloads {
            let answer = site.post_json("/events/conformance.ping", payload).await;
            assert_eq!(answer.json(202), json!({ "published": "conformance.ping" }));
        }
        // Not declared for publishing, not JSON: refused, never delivered.
        site.post_json("/events/conformance.other", &json!({})).await.error(403, "denied");
        site.call(Method::POST, "/events/conformance.ping", &[], "not json").await.error(400, "invalid");

        let deadline = tokio::time::Instant::now() + PATIENCE;
        let events = loop {
            let events = site.get("/events").await.json(200)["events"].as_array().cloned().unwrap_or_default();
            if events.len() >= payloads.len() {
                break events;
            }
            assert!(tokio::time::Instant::now() < deadline, "delivered: {events:?}\nlog:\n{}", site.host.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(events.len(), payloads.len(), "{events:?}");
        let mut ids = Vec::new();
        for event in &events {
            assert_eq!(event["topic"], "conformance.ping", "{event}");
            assert_eq!(event["publisher"], lang.id(), "{event}");
            assert_eq!(event["attempt"], 1, "{event}");
            let id = event["id"].as_str().filter(|id| !id.is_empty()).unwrap_or_else(|| panic!("{event}"));
            ids.push(id.to_owned());
            let mut keys: Vec<&String> = event.as_object().map(|o| o.keys().collect()).unwrap_or_default();
            keys.sort_unstable();
            assert_eq!(keys, ["attempt", "id", "payload", "publisher", "topic"], "{event}");
        }
        let mut got: Vec<String> = events.iter().map(|e| e["payload"].to_string()).collect();
        let mut want: Vec<String> = payloads.iter().map(Value::to_string).collect();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want, "the payloads, parsed");
        // In kv key order.
        let keys = site.get("/kv?prefix=event%3A").await.json(200);
        let keys: Vec<String> = keys["keys"].as_array().map(|k| k.iter().filter_map(Value::as_str).map(|k| k.trim_start_matches("event:").to_owned()).collect()).unwrap_or_default();
        assert_eq!(ids, keys);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(site.get("/events").await.json(200)["events"].as_array().map(Vec::len), Some(payloads.len()));
    }

    async fn jobs_run_on_schedule(lang: Lang, backend: Backend) {
        let site = Site::start(lang, backend).await;
        let s = &site;
        let tick = move || async move { s.get("/jobs").await.json(200)["tick"].as_i64().unwrap_or(-1) };
        let first = tick().await;
        assert!(first >= 0, "a count");
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let now = tick().await;
            if now >= first + 2 && now >= 2 {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "tick stayed at {now}; log:\n{}", site.host.log());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(site.get("/kv/job%3Atick").await.status, 200, "kept in kv as job:tick");
    }

    async fn migrate_runs_at_install_and_upgrade(lang: Lang, backend: Backend) {
        let plugin = polyglot::conformance_plugin(BIN, lang).await;
        let db = TestDb::new(backend).await;
        let id = plugin.id.clone();
        // Served from a plugins folder, a plugin is never migrated.
        {
            let folder = polyglot::plugins_folder(&db.dir().join("folder"), &[&plugin], None);
            let host = polyglot::start_host(BIN, &db, &folder, &[]).await;
            let (status, body) = host.get(&format!("/p/{id}/migrations")).await;
            assert_eq!(status, 200, "{body}\nlog:\n{}", host.log());
            assert_eq!(serde_json::from_str::<Value>(&body).expect("json"), json!({ "from": null, "count": 0 }));
            host.kill().await;
        }
        let empty = db.dir().join("no-plugins");
        std::fs::create_dir_all(&empty).expect("mkdir");
        let host = polyglot::start_host(BIN, &db, &empty, &[]).await;
        let v1 = db.dir().join("v1.wasm");
        polyglot::pack(BIN, &plugin, &plugin.manifest, &v1).await;
        let (code, out, err) = plugin_cli(&db, &[OsStr::new("install"), v1.as_os_str(), OsStr::new("--grant"), OsStr::new("all")]).await;
        assert_eq!(code, 0, "{out}{err}");
        let host = &host;
        let path = format!("/p/{id}/migrations");
        let migrations = move |want: Value| {
            let path = path.clone();
            async move {
                let deadline = tokio::time::Instant::now() + PATIENCE;
                loop {
                    let (status, body) = host.get(&path).await;
                    if status == 200 && serde_json::from_str::<Value>(&body).ok() == Some(want.clone()) {
                        return;
                    }
                    assert!(tokio::time::Instant::now() < deadline, "{path}: {status} {body}, not {want}\nlog:\n{}", host.log());
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        migrations(json!({ "from": null, "count": 1 })).await;

        let manifest = plugin.manifest.replacen("version = \"0.1.0\"", "version = \"0.2.0\"", 1);
        assert_ne!(manifest, plugin.manifest);
        let v2 = db.dir().join("v2.wasm");
        polyglot::pack(BIN, &plugin, &manifest, &v2).await;
        let (code, out, err) = plugin_cli(&db, &[OsStr::new("upgrade"), v2.as_os_str()]).await;
        assert_eq!(code, 0, "{out}{err}");
        migrations(json!({ "from": "0.1.0", "count": 2 })).await;
    }
}
