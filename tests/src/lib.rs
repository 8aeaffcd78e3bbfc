//! Test harness: real databases (a temporary SQLite file, or a fresh database on the local
//! PostgreSQL server) and the real `lutetia` binary started on a free loopback port.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub mod polyglot;

/// The plugins built by this package's build script (`ID.wasm` + `ID.toml`).
pub const PLUGINS_DIR: &str = env!("LUTETIA_TEST_PLUGINS_DIR");

/// PostgreSQL server used by the tests; override with `LUTETIA_TEST_POSTGRES`.
pub fn postgres_admin_url() -> String {
    std::env::var("LUTETIA_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Declares each `async fn NAME(backend: Backend) { ... }` as a module `NAME` holding two
/// tests, `NAME::sqlite` and `NAME::postgres`, so every persistence test runs on both.
#[macro_export]
macro_rules! on_both_backends {
    ($(async fn $name:ident($backend:ident: Backend) $body:block)*) => {$(
        mod $name {
            use super::*;
            async fn run($backend: Backend) $body
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() { run(Backend::Sqlite).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() { run(Backend::Postgres).await }
        }
    )*};
}

/// The database backends every persistence test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A temporary SQLite file.
    Sqlite,
    /// A fresh database on the local PostgreSQL server.
    Postgres,
}

/// A database that exists for one test and is removed afterwards.
#[derive(Debug)]
pub struct TestDb {
    /// URL to give the host.
    pub url: String,
    /// Which backend.
    pub backend: Backend,
    dir: tempfile::TempDir,
    pg_name: Option<String>,
}

impl TestDb {
    /// Creates an empty database on `backend`.
    pub async fn new(backend: Backend) -> TestDb {
        let dir = tempfile::tempdir().expect("temporary folder");
        match backend {
            Backend::Sqlite => TestDb {
                url: format!("sqlite://{}", dir.path().join("lutetia.db").display()),
                backend,
                dir,
                pg_name: None,
            },
            Backend::Postgres => {
                let name = format!("lutetia_test_{}_{}", std::process::id(), unique());
                admin_exec(&format!("CREATE DATABASE {name}")).await;
                let admin = postgres_admin_url();
                let base = admin.rsplit_once('/').map_or(admin.as_str(), |(base, _)| base);
                TestDb {
                    url: format!("{base}/{name}"),
                    backend,
                    dir,
                    pg_name: Some(name),
                }
            }
        }
    }

    /// A scratch folder that lives as long as the database (config files, plugin copies).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Opens the database through the host library (for direct storage tests).
    pub async fn open(&self) -> lutetia_db::Database {
        let db = lutetia_db::Database::connect(&self.url).await.expect("connect");
        db.migrate().await.expect("migrate");
        db
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            // Drop runs outside any runtime guarantee: use a short-lived one on its own thread.
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    rt.block_on(admin_exec(&format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )));
                }
            })
            .join();
        }
    }
}

async fn admin_exec(sql: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&postgres_admin_url())
        .await
        .expect("the local PostgreSQL server (127.0.0.1:5432) must be running for the tests");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .expect("admin statement");
    let _ = conn.close().await;
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (u64::from(nanos) << 16) | N.fetch_add(1, Ordering::Relaxed)
}

/// A running `lutetia serve` process.
#[derive(Debug)]
pub struct Host {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// An HTTP client for it.
    pub client: reqwest::Client,
    /// The admin API token it printed at start (the first start on a database only).
    pub admin_token: Option<String>,
    child: Child,
    log: Arc<Mutex<Log>>,
}

/// What the host wrote to stderr, and when it last wrote.
#[derive(Debug)]
struct Log {
    text: String,
    last: std::time::Instant,
}

impl Host {
    /// Starts `lutetia serve` on a free port with `db` and the test plugins, plus `extra` args.
    pub async fn start(bin: &str, db: &TestDb, extra: &[&str]) -> Host {
        Host::start_with_plugins(bin, db, Path::new(PLUGINS_DIR), extra).await
    }

    /// Like [`Host::start`] with another plugins folder.
    pub async fn start_with_plugins(bin: &str, db: &TestDb, plugins: &Path, extra: &[&str]) -> Host {
        Host::start_with_plugins_env(bin, db, plugins, extra, &[]).await
    }

    /// Like [`Host::start_with_plugins`], with extra environment variables for the process.
    pub async fn start_with_plugins_env(
        bin: &str,
        db: &TestDb,
        plugins: &Path,
        extra: &[&str],
        envs: &[(&str, &std::ffi::OsStr)],
    ) -> Host {
        let mut command = Command::new(bin);
        command
            .arg("serve")
            .arg("--bind")
            .arg("127.0.0.1:0")
            .arg("--database-url")
            .arg(&db.url)
            .arg("--plugins")
            .arg(plugins)
            .args(extra)
            // `./data` (admin token, compiled cache, files) is the test's own folder.
            .current_dir(db.dir())
            .env("LUTETIA_LOG", "info")
            .env_remove("LUTETIA_CONFIG")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("start the lutetia binary");
        let log = Arc::new(Mutex::new(Log {
            text: String::new(),
            last: std::time::Instant::now(),
        }));
        let stderr = child.stderr.take().expect("piped stderr");
        let stderr = std::fs::File::from(stderr.into_owned_fd().expect("stderr descriptor"));
        let sink = log.clone();
        // A thread of its own, so that it reads while a test thread waits in `log()`.
        std::thread::spawn(move || {
            for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
                let Ok(line) = line else { break };
                if let Ok(mut log) = sink.lock() {
                    log.text.push_str(&line);
                    log.text.push('\n');
                    log.last = std::time::Instant::now();
                }
            }
        });
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut admin_token = None;
        let find_base = async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(token) = line.split("Admin API token").nth(1) {
                    admin_token = token.rsplit(' ').next().map(str::to_owned);
                }
                if let Some(rest) = line.split("serving on ").nth(1) {
                    return Some(rest.trim_end_matches('/').to_owned());
                }
            }
            None
        };
        // A bound, not a measured figure: a host compiling several large JavaScript
        // components while other test hosts load the two cores has taken over 120 s.
        let base = tokio::time::timeout(Duration::from_secs(300), find_base).await;
        let Ok(Some(base)) = base else {
            let status = child.try_wait().ok().flatten();
            tokio::time::sleep(Duration::from_millis(200)).await;
            panic!(
                "lutetia did not start (exit status {status:?}); log:\n{}",
                log.lock().map(|l| l.text.clone()).unwrap_or_default()
            );
        };
        // Keep draining stdout so the process never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client");
        Host {
            base,
            client,
            admin_token,
            child,
            log,
        }
    }

    /// Absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET `path`, returning status and body text.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = self.client.get(self.url(path)).send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }

    /// What the host has logged so far, once nothing new has arrived for 50 ms (waiting
    /// 50 ms at least, 500 ms at most): the host writes its log from a thread of its own,
    /// so a line it logged before answering may reach the pipe just after the answer. To
    /// wait for one line, use [`Host::log_with`].
    pub fn log(&self) -> String {
        const QUIET: Duration = Duration::from_millis(50);
        let started = std::time::Instant::now();
        loop {
            let (text, last) = self
                .log
                .lock()
                .map_or_else(|_| (String::new(), started), |l| (l.text.clone(), l.last));
            let waited = started.elapsed();
            let settled = waited >= QUIET && last.elapsed() >= QUIET;
            if settled || waited >= Duration::from_millis(500) {
                return text;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// What the host has logged so far, as it is now.
    fn log_now(&self) -> String {
        self.log.lock().map(|l| l.text.clone()).unwrap_or_default()
    }

    /// The host's log once it contains `needle`, or the log so far after 20 s: log lines
    /// reach the test through a pipe, so a line the host wrote before answering may not
    /// have arrived when the answer does.
    pub async fn log_with(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.log_now();
            if log.contains(needle) || std::time::Instant::now() >= deadline {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills the process (as a crash would) and waits for it.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Runs the binary with `args` to completion; returns exit code, stdout and stderr.
pub async fn run_cli(bin: &str, args: &[&str]) -> (i32, String, String) {
    // Its `./data` folder (compiled cache, files) stays out of the source tree.
    let scratch = std::env::temp_dir().join("lutetia-cli-tests");
    std::fs::create_dir_all(&scratch).expect("scratch folder");
    run_cli_in(bin, &scratch, args, &[]).await
}

/// Runs the binary with `args` in `cwd`, with `envs` added to a clean `LUTETIA_*`
/// environment (no configuration file or database from the caller's), to completion;
/// returns exit code, stdout and stderr.
pub async fn run_cli_in<S: AsRef<std::ffi::OsStr>>(
    bin: &str,
    cwd: &Path,
    args: &[S],
    envs: &[(&str, &std::ffi::OsStr)],
) -> (i32, String, String) {
    let output = Command::new(bin)
        .args(args)
        .current_dir(cwd)
        .env_remove("LUTETIA_CONFIG")
        .env_remove("LUTETIA_DATABASE_URL")
        .env("LUTETIA_LOG", "warn")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run the lutetia binary");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A change to one plugin's manifest text: (plugin id, edit).
pub type ManifestEdit<'a> = (&'a str, &'a dyn Fn(&str) -> String);

/// Copies the built plugins `ids` into a new folder, optionally replacing a manifest, so
/// a test can run a plugin with other grants or limits.
pub fn plugins_subset(into: &Path, ids: &[&str], manifest_edit: Option<ManifestEdit<'_>>) -> PathBuf {
    let dir = into.join("plugins");
    std::fs::create_dir_all(&dir).expect("plugins folder");
    for id in ids {
        let src = Path::new(PLUGINS_DIR);
        std::fs::copy(src.join(format!("{id}.wasm")), dir.join(format!("{id}.wasm"))).expect("copy wasm");
        let mut manifest = std::fs::read_to_string(src.join(format!("{id}.toml"))).expect("read manifest");
        if let Some((target, edit)) = manifest_edit
            && target == *id
        {
            manifest = edit(&manifest);
        }
        std::fs::write(dir.join(format!("{id}.toml")), manifest).expect("write manifest");
    }
    dir
}

/// Extracts the number after `Visits: ` in a page.
pub fn visits(body: &str) -> u64 {
    body.split("Visits: ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no visit counter in page:\n{body}"))
}
