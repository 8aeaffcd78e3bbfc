//! `docs/plugin-guide.md` is executable: each command block marked `<!-- guide-test: LANG -->`
//! is run here as written — `lutetia plugin new`, `plugin build`, `plugin install`, then
//! `lutetia serve` and the `curl` of the new plugin's page — and so are the refusals the
//! guide promises (bad names, existing folders, folders that are not plugins).

use std::path::Path;

use lutetia_tests::{Backend, Host, TestDb};

const BIN: &str = env!("CARGO_BIN_EXE_lutetia-test-host");

/// The shell lines of the block following `<!-- guide-test: LANG -->`.
fn guide_commands(lang: &str) -> Vec<String> {
    let guide_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/plugin-guide.md");
    let guide = std::fs::read_to_string(&guide_path).expect("docs/plugin-guide.md");
    let marker = format!("<!-- guide-test: {lang} -->");
    let after = guide
        .split_once(&marker)
        .unwrap_or_else(|| panic!("the guide has no block marked {marker}"))
        .1;
    let block = after
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .unwrap_or_else(|| panic!("no ```sh block after {marker}"))
        .0;
    block
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Runs `lutetia ARGS` in `cwd` on `db`, with the toolchain environment of the tests.
async fn lutetia(cwd: &Path, db: &TestDb, args: &[&str]) -> (i32, String, String) {
    let mut envs = lutetia_tests::polyglot::toolchain_env();
    envs.push(("LUTETIA_DATABASE_URL", db.url.clone().into()));
    // A Rust plugin's build shares the guests' build folder (warm dependencies).
    let wasm_target = Path::new(env!("LUTETIA_TEST_TARGET_DIR")).join("wasm-plugins");
    envs.push(("CARGO_TARGET_DIR", wasm_target.into_os_string()));
    let envs: Vec<(&str, &std::ffi::OsStr)> = envs.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
    lutetia_tests::run_cli_in(BIN, cwd, args, &envs).await
}

/// Follows the guide's block for `lang`: every command must succeed and the page must be
/// the new plugin's, in the site layout, counting visits in kv.
async fn follow_the_guide(lang: &str) {
    let db = TestDb::new(Backend::Sqlite).await;
    let work = db.dir().join("work");
    std::fs::create_dir_all(&work).expect("work folder");
    let commands = guide_commands(lang);
    assert!(commands.len() >= 5, "{lang}: {commands:?}");
    let mut host: Option<Host> = None;
    let mut checked_page = false;
    for line in &commands {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["lutetia", "serve"] => {
                let empty = db.dir().join("no-folder-plugins");
                std::fs::create_dir_all(&empty).expect("plugins folder");
                host = Some(lutetia_tests::polyglot::start_host(BIN, &db, &empty, &[]).await);
            }
            ["lutetia", args @ ..] => {
                let (code, out, err) = lutetia(&work, &db, args).await;
                assert_eq!(code, 0, "`{line}` failed:\n{out}\n{err}");
            }
            ["curl", url] => {
                let host = host.as_ref().expect("the guide serves before it curls");
                let path = url
                    .strip_prefix("http://127.0.0.1:8080")
                    .expect("the guide's URLs are on the default address");
                let id = path.trim_matches('/').rsplit('/').next().unwrap_or_default();
                let (status, body) = host.get(path).await;
                assert_eq!(status, 200, "{lang}: GET {path}: {body}\n{}", host.log());
                assert!(
                    body.contains("<html"),
                    "{lang}: not wrapped in the layout: {body}"
                );
                assert!(
                    body.contains("Bonjour"),
                    "{lang}: the greeting setting is missing: {body}"
                );
                assert!(
                    body.contains("Visits: 1"),
                    "{lang}: the kv counter is missing: {body}"
                );
                let (_, again) = host.get(path).await;
                assert!(
                    again.contains("Visits: 2"),
                    "{lang} {id}: kv did not persist: {again}"
                );
                checked_page = true;
            }
            _ => panic!("the guide test does not know how to run `{line}`"),
        }
    }
    assert!(checked_page, "{lang}: the guide's block never fetched the page");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_guide_works_as_written() {
    follow_the_guide("python").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_javascript_guide_works_as_written() {
    follow_the_guide("js").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_guide_works_as_written() {
    follow_the_guide("rust").await;
}

#[tokio::test]
async fn plugin_new_and_build_refuse_bad_input_clearly() {
    let db = TestDb::new(Backend::Sqlite).await;
    let work = db.dir();
    let cases: &[(&[&str], &str)] = &[
        (
            &["plugin", "new", "--lang", "python", "Bad_Name"],
            "invalid plugin name",
        ),
        (&["plugin", "new", "--lang", "python", "-x"], "error"),
        (
            &["plugin", "new", "--lang", "cobol", "ok"],
            "unknown language \"cobol\"",
        ),
        (&["plugin", "new", "ok"], "--lang"),
        (&["plugin", "build", "."], "is not a plugin folder"),
        (&["plugin", "build", "does-not-exist"], "is not a plugin folder"),
    ];
    for (args, expected) in cases {
        let (code, out, err) = lutetia(work, &db, args).await;
        assert_ne!(code, 0, "{args:?} succeeded: {out}");
        assert!(
            err.contains(expected),
            "{args:?}: expected {expected:?} in:\n{err}"
        );
        assert!(!err.contains("panicked"), "{args:?} panicked:\n{err}");
    }

    // An existing folder is never overwritten.
    std::fs::create_dir_all(work.join("taken")).expect("folder");
    std::fs::write(work.join("taken/keep.txt"), "mine").expect("file");
    let (code, _, err) = lutetia(work, &db, &["plugin", "new", "--lang", "js", "taken"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(
        std::fs::read_to_string(work.join("taken/keep.txt")).expect("kept"),
        "mine"
    );

    // A manifest without a language.
    std::fs::create_dir_all(work.join("bare")).expect("folder");
    std::fs::write(
        work.join("bare/plugin.toml"),
        "id = \"bare\"\nname = \"Bare\"\nversion = \"0.1.0\"\napi = \"0.1.0\"\n",
    )
    .expect("manifest");
    let (code, _, err) = lutetia(work, &db, &["plugin", "build", "bare"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("cannot tell the language"), "{err}");

    // An invalid manifest names the file and the field.
    std::fs::write(work.join("bare/plugin.toml"), "id = \"Bare!\"\n").expect("manifest");
    std::fs::write(work.join("bare/app.py"), "").expect("app.py");
    let (code, _, err) = lutetia(work, &db, &["plugin", "build", "bare"]).await;
    assert_ne!(code, 0);
    assert!(
        err.contains("plugin.toml") && err.contains("invalid plugin manifest"),
        "{err}"
    );

    // A build tool that is not installed.
    let (code, _, err) = lutetia(work, &db, &["plugin", "new", "--lang", "python", "no-tool"]).await;
    assert_eq!(code, 0, "{err}");
    let output = tokio::process::Command::new(BIN)
        .args(["plugin", "build", "no-tool"])
        .current_dir(work)
        .env("LUTETIA_COMPONENTIZE_PY", work.join("nowhere/componentize-py"))
        .output()
        .await
        .expect("run lutetia");
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        err.contains("componentize-py is not installed") && err.contains("pip install componentize-py=="),
        "{err}"
    );
    let output = tokio::process::Command::new(BIN)
        .args(["plugin", "new", "--lang", "js", "no-node"])
        .current_dir(work)
        .output()
        .await
        .expect("run lutetia");
    assert!(output.status.success());
    let output = tokio::process::Command::new(BIN)
        .args(["plugin", "build", "no-node"])
        .current_dir(work)
        .env("LUTETIA_NODE", work.join("nowhere/node"))
        .output()
        .await
        .expect("run lutetia");
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(err.contains("node is not installed"), "{err}");
}

/// `lutetia dev` builds a Python plugin as `plugin build` does and installs it as a
/// development version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_builds_and_installs_a_python_plugin() {
    let db = TestDb::new(Backend::Sqlite).await;
    let work = db.dir().join("work");
    std::fs::create_dir_all(&work).expect("work folder");
    let (code, out, err) = lutetia(&work, &db, &["plugin", "new", "--lang", "python", "dev-py"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = lutetia(&work, &db, &["dev", "--once", "dev-py"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("installed dev-py 0.1.0-dev."), "{out}");
    let (code, out, err) = lutetia(&work, &db, &["plugin", "list"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("dev-py") && out.contains("0.1.0-dev."), "{out}");
}
