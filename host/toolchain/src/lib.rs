//! `lutetia-toolchain`, the plugin author's toolchain: `lutetia plugin new` (scaffolding) and
//! `lutetia plugin build` (any supported language → the one-file package). The WIT contract
//! and the Python and JavaScript SDKs are embedded in the binary (see
//! `host/toolchain/build.rs`), so a
//! contributor needs only `lutetia` and the language's own tool: `cargo` (Rust),
//! `componentize-py` (Python) or Node.js with `@bytecodealliance/componentize-js`
//! (JavaScript).
//!
//! Every language is built against a world derived from the manifest
//! ([`world_for`]): it imports only the interfaces the plugin asks for. Componentizers for
//! dynamic languages import every interface of their world, and the host refuses a
//! component importing an interface that was not granted, so the full `plugin` world would
//! make a Python plugin that asked only for `kv` uninstallable.
//!
//! Depends on `lutetia-model` only (manifest and package format): building a plugin needs
//! no database, no wasmtime and no web server.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lutetia_model::manifest::{Manifest, ManifestError, is_valid_id};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

/// The `componentize-py` version the Python SDK is written and tested against.
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";
/// The `@bytecodealliance/componentize-js` version the JavaScript SDK is tested against.
pub const COMPONENTIZE_JS_VERSION: &str = "0.23.0";
/// Name of the build world generated in the staging folder.
pub const BUILD_WORLD: &str = "plugin-build";
/// Staging folder inside a plugin folder (recreated by every build).
pub const STAGE_DIR: &str = ".lutetia-build";

/// Why scaffolding or building failed. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The folder has no `plugin.toml`.
    #[error(
        "{0} is not a plugin folder: it has no plugin.toml (create one with `lutetia plugin new --lang rust|python|js NAME`)"
    )]
    NotAPlugin(PathBuf),
    /// The folder has a manifest but nothing that says which language it is written in.
    #[error(
        "cannot tell the language of the plugin in {0}: expected Cargo.toml (Rust), app.py (Python) or package.json (JavaScript) beside plugin.toml"
    )]
    UnknownLanguage(PathBuf),
    /// The manifest is invalid.
    #[error("{path}: {source}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong.
        source: ManifestError,
    },
    /// A build tool is not installed.
    #[error("{tool} is not installed (or not on PATH): {hint}")]
    ToolMissing {
        /// The program.
        tool: String,
        /// How to install it.
        hint: String,
    },
    /// The language's build tool ran and failed; its output was shown.
    #[error("{tool} failed ({status}){detail}")]
    ToolFailed {
        /// The program.
        tool: String,
        /// Its exit status.
        status: String,
        /// Its last lines of output, when they were captured.
        detail: String,
    },
    /// The build produced no component.
    #[error("the build produced no component: {0}")]
    NoComponent(String),
    /// `plugin new` with a name that is not a plugin id.
    #[error(
        "invalid plugin name {0:?}: use 1-63 characters, lower-case letters, digits and dashes, starting with a letter and not ending with a dash (it becomes the plugin id and its URL /p/NAME/)"
    )]
    InvalidName(String),
    /// `plugin new` into a folder that exists.
    #[error("{0} already exists: choose another name or --dir, or remove it first")]
    Exists(PathBuf),
    /// An unknown `--lang`.
    #[error("unknown language {0:?}: use rust, python or js")]
    UnknownLanguageName(String),
    /// The Rust SDK's folder, needed by a new Rust plugin, was not found.
    #[error(
        "cannot find the Lutetia Rust SDK (plugins-sdk/ of a Lutetia checkout); pass --rust-sdk PATH or set LUTETIA_RUST_SDK"
    )]
    RustSdkMissing,
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Packing the component with its manifest failed.
    #[error("cannot package the component: {0}")]
    Package(#[from] lutetia_model::package::PackageError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |source| BuildError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A language Lutetia plugins are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// Rust, with the `lutetia-sdk` crate (`cargo`, target `wasm32-wasip2`).
    Rust,
    /// Python, with the `lutetia` package (`componentize-py`).
    Python,
    /// JavaScript, with the `lutetia` module (`componentize-js`).
    JavaScript,
}

impl Language {
    /// Parses a `--lang` value: `rust`, `python` (`py`), `js` (`javascript`).
    pub fn from_name(name: &str) -> Result<Language, BuildError> {
        match name.to_ascii_lowercase().as_str() {
            "rust" | "rs" => Ok(Language::Rust),
            "python" | "py" => Ok(Language::Python),
            "js" | "javascript" => Ok(Language::JavaScript),
            _ => Err(BuildError::UnknownLanguageName(name.to_owned())),
        }
    }

    /// Short name: `rust`, `python`, `js`.
    pub fn name(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::JavaScript => "js",
        }
    }

    /// The language of the plugin folder `dir` (which must hold `plugin.toml`).
    pub fn detect(dir: &Path) -> Result<Language, BuildError> {
        if !dir.join("plugin.toml").is_file() {
            return Err(BuildError::NotAPlugin(dir.to_owned()));
        }
        if dir.join("Cargo.toml").is_file() {
            Ok(Language::Rust)
        } else if dir.join("app.py").is_file() {
            Ok(Language::Python)
        } else if dir.join("package.json").is_file() {
            Ok(Language::JavaScript)
        } else {
            Err(BuildError::UnknownLanguage(dir.to_owned()))
        }
    }
}

/// Where the build tools are; each field falls back to its environment variable, then to
/// the usual place.
#[derive(Debug, Clone, Default)]
pub struct Tools {
    /// `cargo` (default: `cargo` on PATH).
    pub cargo: Option<PathBuf>,
    /// `componentize-py` (`LUTETIA_COMPONENTIZE_PY`, else on PATH).
    pub componentize_py: Option<PathBuf>,
    /// `node` (`LUTETIA_NODE`, else on PATH).
    pub node: Option<PathBuf>,
    /// A folder whose `node_modules` holds componentize-js (`LUTETIA_JS_TOOLS`, else the
    /// plugin's own `node_modules`, else `~/.cache/lutetia/js-tools`).
    pub js_tools: Option<PathBuf>,
}

impl Tools {
    /// Reads the `LUTETIA_*` variables.
    pub fn from_env() -> Tools {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Tools {
            cargo: var("CARGO"),
            componentize_py: var("LUTETIA_COMPONENTIZE_PY"),
            node: var("LUTETIA_NODE"),
            js_tools: var("LUTETIA_JS_TOOLS"),
        }
    }

    /// The default folder for the JavaScript build tools.
    pub fn default_js_tools() -> Option<PathBuf> {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(cache.join("lutetia").join("js-tools"))
    }
}

/// What a build produced.
#[derive(Debug, Clone)]
pub struct Built {
    /// The plugin's language.
    pub language: Language,
    /// Its manifest.
    pub manifest: Manifest,
    /// The package written (component + embedded manifest).
    pub package: PathBuf,
    /// Size of the component, in bytes.
    pub component_bytes: usize,
    /// Size of the package, in bytes.
    pub package_bytes: usize,
    /// How long the build took.
    pub elapsed: Duration,
}

/// A plugin folder built into a component, before packaging.
#[derive(Debug, Clone)]
pub struct Component {
    /// The plugin's language.
    pub language: Language,
    /// Its manifest.
    pub manifest: Manifest,
    /// The manifest's text, as written (what the package embeds).
    pub manifest_text: String,
    /// The component's bytes.
    pub bytes: Vec<u8>,
}

/// Builds the plugin folder `dir` into a component with the language's tool (its output
/// goes to this process's stderr).
pub async fn build_component(dir: &Path, tools: &Tools) -> Result<Component, BuildError> {
    let language = Language::detect(dir)?;
    // Tools run in the staging folder: give them absolute paths.
    let dir = &dir.canonicalize().map_err(io(dir))?;
    let manifest_path = dir.join("plugin.toml");
    let manifest_text = std::fs::read_to_string(&manifest_path).map_err(io(&manifest_path))?;
    let manifest = Manifest::parse(&manifest_text).map_err(|source| BuildError::Manifest {
        path: manifest_path.clone(),
        source,
    })?;
    let bytes = match language {
        Language::Rust => build_rust(dir, tools).await?,
        Language::Python => build_python(dir, &manifest, tools).await?,
        Language::JavaScript => build_js(dir, &manifest, tools).await?,
    };
    Ok(Component {
        language,
        manifest,
        manifest_text,
        bytes,
    })
}

/// Builds the plugin folder `dir` and writes its package to `output` (default
/// `DIR/dist/ID-VERSION.wasm`).
pub async fn build(dir: &Path, output: Option<&Path>, tools: &Tools) -> Result<Built, BuildError> {
    let started = Instant::now();
    let component = build_component(dir, tools).await?;
    let packed = lutetia_model::package::pack(&component.bytes, &component.manifest_text)?;
    let manifest = component.manifest;
    let package = output.map(Path::to_owned).unwrap_or_else(|| {
        dir.join("dist")
            .join(format!("{}-{}.wasm", manifest.id, manifest.version))
    });
    if let Some(parent) = package.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    std::fs::write(&package, &packed).map_err(io(&package))?;
    Ok(Built {
        language: component.language,
        manifest,
        package,
        component_bytes: component.bytes.len(),
        package_bytes: packed.len(),
        elapsed: started.elapsed(),
    })
}

/// The WIT world a plugin is built against: `log` and `config`, the service interfaces
/// its manifest asks for, and every export (the SDKs give defaults for the optional ones).
pub fn world_for(manifest: &Manifest) -> String {
    let mut world = format!(
        "// Generated by `lutetia plugin build` from plugin.toml: the interfaces this plugin\n\
         // asked for. Do not edit; it is rewritten by every build.\n\
         package lutetia:plugin@0.1.0;\n\nworld {BUILD_WORLD} {{\n"
    );
    for interface in imported_interfaces(manifest) {
        world.push_str(&format!("    import {interface};\n"));
    }
    for export in ["handler", "subscriber", "scheduler", "lifecycle"] {
        world.push_str(&format!("    export {export};\n"));
    }
    world.push_str("}\n");
    world
}

/// The `lutetia:plugin` interfaces a plugin built from `manifest` imports.
pub fn imported_interfaces(manifest: &Manifest) -> Vec<&'static str> {
    let c = &manifest.capabilities;
    let mut out = vec!["log", "config"];
    if c.kv.enabled {
        out.push("kv");
    }
    if c.store.is_some() {
        out.push("store");
    }
    if c.files.is_some() {
        out.push("files");
    }
    if c.mail.is_some() {
        out.push("mail");
    }
    if !c.events.publish.is_empty() {
        out.push("events");
    }
    out
}

/// Recreates `DIR/.lutetia-build` with the WIT contract and the generated build world.
fn stage(dir: &Path, manifest: &Manifest) -> Result<PathBuf, BuildError> {
    let stage = dir.join(STAGE_DIR);
    if stage.exists() {
        std::fs::remove_dir_all(&stage).map_err(io(&stage))?;
    }
    let wit = stage.join("wit");
    write_files(&wit, embedded::WIT_FILES)?;
    let world = wit.join("lutetia-build.wit");
    std::fs::write(&world, world_for(manifest)).map_err(io(&world))?;
    Ok(stage)
}

fn write_files(into: &Path, files: &[(&str, &[u8])]) -> Result<(), BuildError> {
    for (relative, bytes) in files {
        let path = into.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, bytes).map_err(io(&path))?;
    }
    Ok(())
}

/// Runs a build tool with inherited output; a missing program is [`BuildError::ToolMissing`].
async fn run_tool(command: &mut tokio::process::Command, tool: &str, hint: &str) -> Result<(), BuildError> {
    // A failing tool's message, not a Rust backtrace of its internals, is what helps.
    command
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::inherit())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true);
    let status = command.status().await.map_err(|e| missing_or_io(e, tool, hint))?;
    if status.success() {
        Ok(())
    } else {
        Err(BuildError::ToolFailed {
            tool: tool.to_owned(),
            status: status.to_string(),
            detail: String::new(),
        })
    }
}

fn missing_or_io(e: std::io::Error, tool: &str, hint: &str) -> BuildError {
    if e.kind() == std::io::ErrorKind::NotFound {
        BuildError::ToolMissing {
            tool: tool.to_owned(),
            hint: hint.to_owned(),
        }
    } else {
        BuildError::Io {
            path: PathBuf::from(tool),
            source: e,
        }
    }
}

/// `cargo build --release --target wasm32-wasip2` in `dir`; returns the component's bytes.
async fn build_rust(dir: &Path, tools: &Tools) -> Result<Vec<u8>, BuildError> {
    let cargo = tools.cargo.clone().unwrap_or_else(|| PathBuf::from("cargo"));
    let hint = "install Rust with rustup (https://rustup.rs), then `rustup target add wasm32-wasip2`";
    let output = tokio::process::Command::new(&cargo)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--message-format",
            "json-render-diagnostics",
        ])
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| missing_or_io(e, "cargo", hint))?;
    if !output.status.success() {
        return Err(BuildError::ToolFailed {
            tool: "cargo".into(),
            status: output.status.to_string(),
            detail: " (is the wasm32-wasip2 target installed? `rustup target add wasm32-wasip2`)".into(),
        });
    }
    let ours = dir.canonicalize().ok();
    let mut wasm = None;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        let crate_dir = message["manifest_path"]
            .as_str()
            .map(Path::new)
            .and_then(Path::parent)
            .and_then(|p| p.canonicalize().ok());
        if crate_dir.is_none() || crate_dir != ours {
            continue;
        }
        for file in message["filenames"].as_array().into_iter().flatten() {
            if let Some(f) = file.as_str().filter(|f| f.ends_with(".wasm")) {
                wasm = Some(PathBuf::from(f));
            }
        }
    }
    let wasm = wasm.ok_or_else(|| {
        BuildError::NoComponent(
            "cargo built no .wasm (is the crate a `cdylib`? [lib] crate-type = [\"cdylib\"])".into(),
        )
    })?;
    std::fs::read(&wasm).map_err(io(&wasm))
}

/// Source files of a plugin folder with one of `extensions` (every file when empty),
/// relative to it: build output, dependencies and hidden files and folders are skipped.
pub fn sources(dir: &Path, extensions: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(folder) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.')
                || matches!(name.as_str(), "target" | "dist" | "node_modules" | "__pycache__")
            {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if (extensions.is_empty()
                || path
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| extensions.contains(&e)))
                && let Ok(relative) = path.strip_prefix(dir)
            {
                out.push(relative.to_owned());
            }
        }
    }
    out.sort();
    out
}

/// The generated componentize-py entry module: the plugin, then the SDK's export classes.
const PYTHON_MAIN: &str = "\
# Generated by `lutetia plugin build`: imports the plugin (app.py calls lutetia.export),
# then the SDK's classes that componentize-py exports to the host.
import app  # noqa: F401
from lutetia._exports import Handler, Subscriber, Scheduler, Lifecycle  # noqa: F401
";

/// `componentize-py` against the manifest's world, with the plugin's modules and the SDK.
async fn build_python(dir: &Path, manifest: &Manifest, tools: &Tools) -> Result<Vec<u8>, BuildError> {
    let stage = stage(dir, manifest)?;
    let app = stage.join("app");
    for relative in sources(dir, &["py"]) {
        let from = dir.join(&relative);
        let to = app.join(&relative);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::copy(&from, &to).map_err(io(&from))?;
    }
    let sdk = stage.join("sdk");
    write_files(&sdk.join("lutetia"), embedded::PYTHON_SDK_FILES)?;
    let main = stage.join("lutetia_main.py");
    std::fs::write(&main, PYTHON_MAIN).map_err(io(&main))?;
    let component = stage.join("component.wasm");
    let program = tools
        .componentize_py
        .clone()
        .unwrap_or_else(|| PathBuf::from("componentize-py"));
    let hint = format!(
        "install it with `pip install componentize-py=={COMPONENTIZE_PY_VERSION}` (or set LUTETIA_COMPONENTIZE_PY to its path)"
    );
    let mut command = tokio::process::Command::new(&program);
    command
        .arg("-d")
        .arg(stage.join("wit"))
        .arg("-w")
        .arg(BUILD_WORLD)
        .arg("componentize")
        .arg("lutetia_main")
        .arg("-p")
        .arg(&stage)
        .arg("-p")
        .arg(&app)
        .arg("-p")
        .arg(&sdk)
        .arg("-o")
        .arg(&component)
        .current_dir(&stage);
    run_tool(&mut command, "componentize-py", &hint).await?;
    std::fs::read(&component).map_err(io(&component))
}

/// Node.js running the JavaScript SDK's `build.mjs` (componentize-js) against the
/// manifest's world.
async fn build_js(dir: &Path, manifest: &Manifest, tools: &Tools) -> Result<Vec<u8>, BuildError> {
    let stage = stage(dir, manifest)?;
    write_files(&stage, embedded::JS_SDK_FILES)?;
    let js_tools = tools
        .js_tools
        .clone()
        .or_else(|| dir.join("node_modules").is_dir().then(|| dir.to_owned()))
        .or_else(Tools::default_js_tools)
        .unwrap_or_else(|| dir.to_owned());
    let hint = "install Node.js 20 or later (Debian: `apt-get install nodejs npm`), or set LUTETIA_NODE";
    let node = tools.node.clone().unwrap_or_else(|| PathBuf::from("node"));
    let component = stage.join("component.wasm");
    let mut command = tokio::process::Command::new(&node);
    command
        .arg(stage.join("build.mjs"))
        .arg(dir)
        .arg(&stage)
        .arg(&component)
        .arg(imported_interfaces(manifest).join(","))
        .env("LUTETIA_JS_TOOLS", &js_tools)
        .env("LUTETIA_COMPONENTIZE_JS_VERSION", COMPONENTIZE_JS_VERSION)
        .current_dir(&stage);
    run_tool(&mut command, "node", hint).await?;
    std::fs::read(&component)
        .map_err(|e| BuildError::NoComponent(format!("{} was not written: {e}", component.display())))
}

/// Where `lutetia plugin new` looks for the Rust SDK: the option, `LUTETIA_RUST_SDK`, then
/// the checkout this binary was built from.
pub fn find_rust_sdk(explicit: Option<&Path>) -> Result<PathBuf, BuildError> {
    let candidates = explicit
        .map(Path::to_owned)
        .into_iter()
        .chain(std::env::var_os("LUTETIA_RUST_SDK").map(PathBuf::from))
        .chain(std::iter::once(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins-sdk"),
        ));
    for candidate in candidates {
        if candidate.join("Cargo.toml").is_file() {
            return candidate.canonicalize().map_err(io(&candidate));
        }
        if explicit.is_some() {
            return Err(BuildError::RustSdkMissing);
        }
    }
    Err(BuildError::RustSdkMissing)
}

/// Creates the folder `dir` (which must not exist) with a plugin named `id` in `language`
/// that builds and loads as it is. Returns the files written, relative to `dir`.
pub fn scaffold(
    language: Language,
    id: &str,
    dir: &Path,
    rust_sdk: Option<&Path>,
) -> Result<Vec<PathBuf>, BuildError> {
    if !is_valid_id(id) {
        return Err(BuildError::InvalidName(id.to_owned()));
    }
    if dir.exists() {
        return Err(BuildError::Exists(dir.to_owned()));
    }
    let title = title_of(id);
    let fill = |template: &str, sdk: &str| {
        template
            .replace("{{id}}", id)
            .replace("{{title}}", &title)
            .replace("{{rust_sdk}}", sdk)
    };
    let manifest = fill(include_str!("../templates/scaffold/plugin.toml"), "");
    let mut files: Vec<(PathBuf, Vec<u8>)> = vec![
        ("plugin.toml".into(), manifest.into_bytes()),
        (
            ".gitignore".into(),
            include_bytes!("../templates/scaffold/gitignore").to_vec(),
        ),
    ];
    match language {
        Language::Rust => {
            let sdk = find_rust_sdk(rust_sdk)?;
            let sdk = sdk.to_string_lossy().replace('\\', "/");
            files.push((
                "Cargo.toml".into(),
                fill(include_str!("../templates/scaffold/rust/Cargo.toml.in"), &sdk).into(),
            ));
            files.push((
                "src/lib.rs".into(),
                fill(include_str!("../templates/scaffold/rust/lib.rs"), "").into(),
            ));
        }
        Language::Python => {
            files.push((
                "app.py".into(),
                fill(include_str!("../templates/scaffold/python/app.py"), "").into(),
            ));
        }
        Language::JavaScript => {
            files.push((
                "package.json".into(),
                fill(include_str!("../templates/scaffold/js/package.json"), "").into(),
            ));
            files.push((
                "plugin.js".into(),
                fill(include_str!("../templates/scaffold/js/plugin.js"), "").into(),
            ));
            files.push((
                "jsconfig.json".into(),
                include_bytes!("../templates/scaffold/js/jsconfig.json").to_vec(),
            ));
            if let Some((_, types)) = embedded::JS_SDK_FILES
                .iter()
                .find(|(name, _)| *name == "lutetia.d.ts")
            {
                files.push(("types/lutetia.d.ts".into(), types.to_vec()));
            }
        }
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut written = Vec::new();
    for (relative, bytes) in files {
        let path = dir.join(&relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, bytes).map_err(io(&path))?;
        written.push(relative);
    }
    Ok(written)
}

/// `street-reports` → `Street reports`.
fn title_of(id: &str) -> String {
    let words = id.replace('-', " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(capabilities: &str) -> Manifest {
        Manifest::parse(&format!(
            "id = \"x\"\nname = \"X\"\nversion = \"0.1.0\"\napi = \"0.1.0\"\n{capabilities}"
        ))
        .expect("manifest")
    }

    #[test]
    fn the_world_imports_only_what_the_manifest_asks_for() {
        let bare = world_for(&manifest(""));
        assert!(bare.contains("import log;") && bare.contains("import config;"));
        assert!(!bare.contains("import kv;") && !bare.contains("import store;"));
        assert!(bare.contains("export handler;") && bare.contains("export lifecycle;"));

        let full = manifest(
            "[capabilities]\nkv = true\nevents = { publish = [\"a.b\"] }\n[capabilities.store]\n[capabilities.mail]\n",
        );
        assert_eq!(
            imported_interfaces(&full),
            ["log", "config", "kv", "store", "mail", "events"]
        );
        // Subscribing alone needs no import: events arrive through the `subscriber` export.
        let subscriber = manifest("[capabilities]\nevents = { subscribe = [\"a.*\"] }\n");
        assert_eq!(imported_interfaces(&subscriber), ["log", "config"]);
    }

    #[test]
    fn the_contract_and_the_sdks_are_embedded() {
        let names: Vec<&str> = embedded::WIT_FILES.iter().map(|(n, _)| *n).collect();
        assert!(
            names.contains(&"world.wit") && names.contains(&"types.wit"),
            "{names:?}"
        );
        assert!(!embedded::PYTHON_SDK_FILES.is_empty());
    }

    #[test]
    fn languages_and_titles() {
        assert_eq!(Language::from_name("PY").ok(), Some(Language::Python));
        assert_eq!(Language::from_name("javascript").ok(), Some(Language::JavaScript));
        assert!(Language::from_name("cobol").is_err());
        assert_eq!(title_of("street-reports"), "Street reports");
    }

    #[test]
    fn scaffolding_refuses_bad_names_and_existing_folders() {
        let tmp = tempfile::tempdir().expect("tempdir");
        for bad in ["", "News", "1news", "news-", "a_b", "é"] {
            let err = scaffold(Language::Python, bad, &tmp.path().join("x"), None);
            assert!(matches!(err, Err(BuildError::InvalidName(_))), "{bad:?}: {err:?}");
        }
        let err = scaffold(Language::Python, "news", tmp.path(), None);
        assert!(matches!(err, Err(BuildError::Exists(_))), "{err:?}");
        let dir = tmp.path().join("news");
        let files = scaffold(Language::Python, "news", &dir, None).expect("scaffold");
        assert!(files.contains(&PathBuf::from("app.py")));
        assert_eq!(Language::detect(&dir).ok(), Some(Language::Python));
        let manifest = std::fs::read_to_string(dir.join("plugin.toml")).expect("manifest");
        assert_eq!(Manifest::parse(&manifest).expect("valid").id, "news");
    }

    #[test]
    fn detection_needs_a_manifest_and_a_language() {
        let tmp = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            Language::detect(tmp.path()),
            Err(BuildError::NotAPlugin(_))
        ));
        std::fs::write(tmp.path().join("plugin.toml"), "").expect("write");
        assert!(matches!(
            Language::detect(tmp.path()),
            Err(BuildError::UnknownLanguage(_))
        ));
    }
}
