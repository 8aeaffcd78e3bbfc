//! One contract, several languages: the conformance plugins
//! (`example-plugins/testing/conformance-{rust,python,js}`, see `CONFORMANCE.md` there), built
//! the way a contributor builds a plugin, laid out in a plugins folder and served by hosts
//! that share one compiled-component cache.
//!
//! A Python or JavaScript component is 12-18 MB and takes seconds to compile, so every host
//! and CLI run started from here gets [`COMPILED_CACHE_VAR`] = [`compiled_cache_dir`], and
//! each plugin folder is built once per test process ([`build_plugin`]).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::OnceCell;

use crate::{Host, ManifestEdit, PLUGINS_DIR, TestDb};

/// Names the languages whose contract tests run: a comma-separated list of [`Lang::name`]s
/// (`rust,python,js`); unset, all of them run.
pub const LANGS_VAR: &str = "LUTETIA_CONTRACT_LANGS";

/// The host setting (environment variable) naming the compiled-component cache folder.
pub const COMPILED_CACHE_VAR: &str = "LUTETIA_COMPILED_CACHE_DIR";

/// A language plugins are written in, with its conformance plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    /// Rust, with `plugins-sdk`.
    Rust,
    /// Python, with `plugins-sdk/python`.
    Python,
    /// JavaScript, with `plugins-sdk/js`.
    Js,
}

impl Lang {
    /// Every language, in a stable order.
    pub const ALL: [Lang; 3] = [Lang::Rust, Lang::Python, Lang::Js];

    /// The short name: `rust`, `python` or `js` (the `LANG` of `CONFORMANCE.md`).
    pub fn name(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Js => "js",
        }
    }

    /// The id of its conformance plugin: `conformance-rust`, `conformance-python`, `conformance-js`.
    pub fn id(self) -> &'static str {
        match self {
            Lang::Rust => "conformance-rust",
            Lang::Python => "conformance-python",
            Lang::Js => "conformance-js",
        }
    }

    /// The name people use, as in the manifest's `name` (`Conformance (JavaScript)`).
    pub fn label(self) -> &'static str {
        match self {
            Lang::Rust => "Rust",
            Lang::Python => "Python",
            Lang::Js => "JavaScript",
        }
    }

    /// Whether this language's contract tests run ([`LANGS_VAR`]).
    pub fn enabled(self) -> bool {
        match std::env::var(LANGS_VAR) {
            Ok(list) => list
                .split(',')
                .any(|name| name.trim().eq_ignore_ascii_case(self.name())),
            Err(_) => true,
        }
    }
}

/// The repository this test crate belongs to.
pub fn repo_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_owned()
}

/// The source folder of `lang`'s conformance plugin.
pub fn conformance_source(lang: Lang) -> PathBuf {
    repo_root().join("example-plugins/testing").join(lang.id())
}

/// The compiled-component cache every test host (and CLI run) of this module shares.
pub fn compiled_cache_dir() -> PathBuf {
    std::env::temp_dir().join("lutetia-test-compiled-cache")
}

/// This process's folder of built packages (older processes' folders are removed).
fn packages_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let parent = std::env::temp_dir().join("lutetia-test-packages");
        // Best effort: folders of test processes that ended hours ago.
        if let Ok(entries) = std::fs::read_dir(&parent) {
            for entry in entries.filter_map(Result::ok) {
                let stale = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > Duration::from_secs(6 * 3600));
                if stale {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = parent.join(std::process::id().to_string());
        std::fs::create_dir_all(&dir).expect("packages folder");
        dir
    })
}

/// The variables that point `lutetia plugin build` at the Python and JavaScript tools:
/// those of the environment (`./dev test` sets them), else the tools that
/// `scripts/install-plugin-tools.sh` installed in this build's target folder.
pub fn tool_env() -> Vec<(&'static str, std::ffi::OsString)> {
    let target_tools = Some(Path::new(env!("LUTETIA_TEST_TARGET_DIR")).join("plugin-tools"));
    let mut out = Vec::new();
    for (var, relative) in [
        ("LUTETIA_COMPONENTIZE_PY", "python/bin/componentize-py"),
        ("LUTETIA_JS_TOOLS", "js"),
    ] {
        if let Some(value) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            out.push((var, value));
        } else if let Some(path) = target_tools
            .as_ref()
            .map(|t| t.join(relative))
            .filter(|p| p.exists())
        {
            out.push((var, path.into_os_string()));
        }
    }
    out
}

/// Runs the real CLI with `args` (the shared compiled cache and the plugin tools set);
/// returns exit code, stdout and stderr.
pub async fn cli(bin: &str, args: &[&OsStr]) -> (i32, String, String) {
    let scratch = std::env::temp_dir().join("lutetia-cli-tests");
    std::fs::create_dir_all(&scratch).expect("scratch folder");
    let envs = toolchain_env();
    let envs: Vec<(&str, &OsStr)> = envs.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
    crate::run_cli_in(bin, &scratch, args, &envs).await
}

/// The shared compiled cache and [`tool_env`]: what a CLI run that builds or loads
/// plugins needs.
pub fn toolchain_env() -> Vec<(&'static str, std::ffi::OsString)> {
    let mut envs = vec![(COMPILED_CACHE_VAR, compiled_cache_dir().into_os_string())];
    envs.extend(tool_env());
    envs
}

/// Builds the plugin folder `src_dir` (Rust, Python or JavaScript) with the real CLI,
/// `BIN plugin build SRC_DIR --output OUT.wasm`, and returns the package (manifest
/// embedded). Each folder is built once per test process; a failed build panics with
/// the CLI's output.
pub async fn build_plugin(bin: &str, src_dir: &Path) -> PathBuf {
    type Builds = Mutex<HashMap<PathBuf, Arc<OnceCell<PathBuf>>>>;
    static BUILDS: OnceLock<Builds> = OnceLock::new();
    let cell = {
        let mut builds = BUILDS
            .get_or_init(Builds::default)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        builds.entry(src_dir.to_owned()).or_default().clone()
    };
    cell.get_or_init(|| async {
        let name = src_dir
            .file_name()
            .map_or_else(|| "plugin".into(), |n| n.to_string_lossy().into_owned());
        let output = packages_dir().join(format!("{name}.wasm"));
        let started = std::time::Instant::now();
        let (code, stdout, stderr) = cli(
            bin,
            &[
                OsStr::new("plugin"),
                OsStr::new("build"),
                src_dir.as_os_str(),
                OsStr::new("--output"),
                output.as_os_str(),
            ],
        )
        .await;
        assert!(
            code == 0 && output.is_file(),
            "`lutetia plugin build {}` failed (exit {code}):\n{stdout}{stderr}",
            src_dir.display()
        );
        eprintln!(
            "built {} in {:.1} s ({} bytes)",
            src_dir.display(),
            started.elapsed().as_secs_f64(),
            std::fs::metadata(&output).map_or(0, |m| m.len())
        );
        output
    })
    .await
    .clone()
}

/// A plugin as a plugins folder holds it: the component (or a package) and its manifest.
#[derive(Debug, Clone)]
pub struct PluginFiles {
    /// The manifest's id.
    pub id: String,
    /// The component, or a package (manifest embedded).
    pub wasm: PathBuf,
    /// The manifest's text.
    pub manifest: String,
}

impl PluginFiles {
    /// A plugin built by this package's build script ([`PLUGINS_DIR`]).
    pub fn built(id: &str) -> PluginFiles {
        let dir = Path::new(PLUGINS_DIR);
        let manifest = std::fs::read_to_string(dir.join(format!("{id}.toml")))
            .unwrap_or_else(|e| panic!("manifest of {id} in {PLUGINS_DIR}: {e}"));
        PluginFiles {
            id: id.to_owned(),
            wasm: dir.join(format!("{id}.wasm")),
            manifest,
        }
    }

    /// A package file, with the manifest embedded in it.
    pub fn from_package(path: &Path) -> PluginFiles {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let (manifest, text) = lutetia_model::package::read(&bytes)
            .unwrap_or_else(|e| panic!("{} is not a plugin package: {e}", path.display()));
        PluginFiles {
            id: manifest.id,
            wasm: path.to_owned(),
            manifest: text,
        }
    }
}

/// `lang`'s conformance plugin: the build script's for Rust, `lutetia plugin build` of its
/// folder for the others.
pub async fn conformance_plugin(bin: &str, lang: Lang) -> PluginFiles {
    match lang {
        Lang::Rust => PluginFiles::built(lang.id()),
        Lang::Python | Lang::Js => {
            PluginFiles::from_package(&build_plugin(bin, &conformance_source(lang)).await)
        }
    }
}

/// Lays out `into/plugins` with `plugins` (`ID.wasm` + `ID.toml`), `edit` changing one
/// manifest (a plugins folder's manifest is what the host honours), and returns it.
pub fn plugins_folder(into: &Path, plugins: &[&PluginFiles], edit: Option<ManifestEdit<'_>>) -> PathBuf {
    let dir = into.join("plugins");
    std::fs::create_dir_all(&dir).expect("plugins folder");
    for plugin in plugins {
        let wasm = dir.join(format!("{}.wasm", plugin.id));
        // A link when the file systems allow it: packages are large, and only read.
        if std::fs::hard_link(&plugin.wasm, &wasm).is_err() {
            std::fs::copy(&plugin.wasm, &wasm)
                .unwrap_or_else(|e| panic!("copy {}: {e}", plugin.wasm.display()));
        }
        let manifest = match edit {
            Some((target, edit)) if target == plugin.id => edit(&plugin.manifest),
            _ => plugin.manifest.clone(),
        };
        std::fs::write(dir.join(format!("{}.toml", plugin.id)), manifest).expect("write manifest");
    }
    dir
}

/// Starts `lutetia serve` with `plugins` and `extra` arguments, on the shared compiled cache.
pub async fn start_host(bin: &str, db: &TestDb, plugins: &Path, extra: &[&str]) -> Host {
    let cache = compiled_cache_dir();
    Host::start_with_plugins_env(
        bin,
        db,
        plugins,
        extra,
        &[(COMPILED_CACHE_VAR, cache.as_os_str())],
    )
    .await
}

/// Packs `plugin` with `manifest` into `output` with the real CLI
/// (`lutetia plugin pack WASM TOML --output OUT`; an embedded manifest is replaced).
pub async fn pack(bin: &str, plugin: &PluginFiles, manifest: &str, output: &Path) {
    let toml = output.with_extension("manifest.toml");
    std::fs::write(&toml, manifest).expect("write manifest");
    let (code, stdout, stderr) = cli(
        bin,
        &[
            OsStr::new("plugin"),
            OsStr::new("pack"),
            plugin.wasm.as_os_str(),
            toml.as_os_str(),
            OsStr::new("--output"),
            output.as_os_str(),
        ],
    )
    .await;
    assert_eq!(code, 0, "plugin pack failed:\n{stdout}{stderr}");
}
