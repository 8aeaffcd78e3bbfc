//! `lutetia plugin ...`: the operator's lifecycle commands on the command line. Part of the
//! `cli` edge (uses `anyhow`); the work is done by [`lutetia_platform::lifecycle`].

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::Context;

use super::{CommonArgs, DevArgs, InstallArgs, NewArgs, PluginCommand, load_settings};
use lutetia_db::Database;
use lutetia_model::manifest::{Manifest, format_capabilities};
use lutetia_model::settings::Settings;
use lutetia_platform::lifecycle::{GrantRequest, Lifecycle, Outcome, read_package};
use lutetia_runtime::Runtime;
use lutetia_toolchain::{Language, Tools};

/// Runs one `plugin` subcommand.
pub(super) async fn run(command: PluginCommand) -> anyhow::Result<()> {
    match command {
        PluginCommand::New(args) => new_plugin(&args),
        PluginCommand::Build(args) => {
            let built =
                lutetia_toolchain::build(&args.dir, args.output.as_deref(), &Tools::from_env()).await?;
            println!(
                "built {} {} ({}) into {}: component {} bytes, package {} bytes, {:.1} s",
                built.manifest.id,
                built.manifest.version,
                built.language.name(),
                built.package.display(),
                built.component_bytes,
                built.package_bytes,
                built.elapsed.as_secs_f64()
            );
            Ok(())
        }
        PluginCommand::Pack(args) => {
            let component = read_file(&args.component)?;
            let text = std::fs::read_to_string(&args.manifest)
                .with_context(|| format!("cannot read {}", args.manifest.display()))?;
            let packed = lutetia_model::package::pack(&component, &text)
                .with_context(|| format!("cannot pack {}", args.component.display()))?;
            let manifest = Manifest::parse(&text)?;
            let output = args
                .output
                .unwrap_or_else(|| format!("{}-{}.wasm", manifest.id, manifest.version).into());
            std::fs::write(&output, &packed).with_context(|| format!("cannot write {}", output.display()))?;
            println!(
                "packed {} {} into {} ({} bytes, sha256 {})",
                manifest.id,
                manifest.version,
                output.display(),
                packed.len(),
                lutetia_model::hash::sha256_hex(&packed)
            );
            Ok(())
        }
        PluginCommand::Inspect(args) => inspect(&args.target, &args.common).await,
        PluginCommand::Install(args) => install_or_upgrade(args, false).await,
        PluginCommand::Upgrade(args) => install_or_upgrade(args, true).await,
        PluginCommand::List(common) => {
            let (_settings, db) = open(&common).await?;
            let rows = db.plugin_rows().await?;
            db.close().await;
            println!(
                "{:<24} {:<12} {:<8} {:<12} {:<12} GRANTS",
                "ID", "VERSION", "STATE", "PREVIOUS", "PENDING"
            );
            for r in &rows {
                println!(
                    "{:<24} {:<12} {:<8} {:<12} {:<12} {}",
                    r.id,
                    r.version,
                    if r.enabled { "enabled" } else { "disabled" },
                    r.previous_version.as_deref().unwrap_or("-"),
                    r.pending_version.as_deref().unwrap_or("-"),
                    if r.grants.is_empty() { "-" } else { &r.grants }
                );
            }
            println!("({} plugin(s))", rows.len());
            Ok(())
        }
        PluginCommand::Enable(args) => set_enabled(&args.id, &args.common, true).await,
        PluginCommand::Disable(args) => set_enabled(&args.id, &args.common, false).await,
        PluginCommand::Grant(args) => {
            let request = GrantRequest::parse(&args.grant).map_err(anyhow::Error::msg)?;
            with_lifecycle(&args.common, async |ops| {
                let outcome = ops.grant(&args.id, &request, &operator()).await?;
                report(&outcome, "granted");
                Ok(())
            })
            .await
        }
        PluginCommand::Rollback(args) => {
            with_lifecycle(&args.common, async |ops| {
                let outcome = ops.rollback(&args.id, &operator()).await?;
                report(&outcome, "rolled back");
                Ok(())
            })
            .await
        }
        PluginCommand::Remove(args) => {
            with_lifecycle(&args.common, async |ops| {
                ops.remove(&args.id, args.purge_data, &operator()).await?;
                println!(
                    "removed {}{}",
                    args.id,
                    if args.purge_data {
                        " and its data"
                    } else {
                        " (its data is kept)"
                    }
                );
                Ok(())
            })
            .await
        }
    }
}

/// Who runs the command, recorded with each version.
fn operator() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}

fn read_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

async fn open(common: &CommonArgs) -> anyhow::Result<(Settings, Database)> {
    let settings = load_settings(common)?;
    let db = Database::connect(&settings.database_url).await?;
    db.migrate().await?;
    Ok((settings, db))
}

/// Opens the database and a runtime, runs `f`, closes the database.
async fn with_lifecycle(
    common: &CommonArgs,
    f: impl AsyncFnOnce(Lifecycle<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let (settings, db) = open(common).await?;
    let runtime = Runtime::new(&settings.limits, db.clone())?
        .with_files(lutetia_services::files::FileStore::open(
            &settings.files_dir,
            db.clone(),
        )?)
        .with_compiled_cache(&lutetia_platform::platform::compiled_cache_dir(&settings))?;
    let result = f(Lifecycle {
        db: &db,
        runtime: &runtime,
        settings: &settings,
    })
    .await;
    db.close().await;
    result
}

async fn set_enabled(id: &str, common: &CommonArgs, enabled: bool) -> anyhow::Result<()> {
    with_lifecycle(common, async |ops| {
        let row = ops.set_enabled(id, enabled, &operator()).await?;
        println!(
            "{} {} {}",
            if enabled { "enabled" } else { "disabled" },
            row.id,
            row.version
        );
        Ok(())
    })
    .await
}

fn report(outcome: &Outcome, verb: &str) {
    match &outcome.pending {
        Some((version, missing)) => println!(
            "{} {} is stored but waits for a grant of: {}; {} keeps serving. \
             Grant with `lutetia plugin grant {} --grant {}`",
            outcome.id,
            version,
            format_capabilities(missing),
            outcome.version,
            outcome.id,
            format_capabilities(missing)
        ),
        None => println!(
            "{verb} {} {} (granted: {})",
            outcome.id,
            outcome.version,
            if outcome.grants.is_empty() {
                "nothing".to_owned()
            } else {
                format_capabilities(&outcome.grants)
            }
        ),
    }
}

async fn install_or_upgrade(args: InstallArgs, upgrade: bool) -> anyhow::Result<()> {
    let wasm = read_file(&args.file)?;
    let info =
        read_package(&wasm).with_context(|| format!("{} is not a plugin package", args.file.display()))?;
    let requested = info.manifest.capabilities.requested();
    let request = match &args.grant {
        Some(text) => GrantRequest::parse(text).map_err(anyhow::Error::msg)?,
        None if !requested.is_empty() && !upgrade && std::io::stdin().is_terminal() => {
            prompt_grant(&info.manifest)?
        }
        None => GrantRequest::Unspecified,
    };
    with_lifecycle(&args.common, async |ops| {
        let outcome = if upgrade {
            ops.upgrade(wasm, &request, &operator()).await?
        } else {
            ops.install(wasm, &request, &operator()).await?
        };
        report(&outcome, if upgrade { "upgraded" } else { "installed" });
        if outcome.pending.is_none() {
            print_effective(&info.manifest, ops.settings);
        }
        Ok(())
    })
    .await
}

/// Shows what the plugin asks for and reads the operator's answer.
fn prompt_grant(manifest: &Manifest) -> anyhow::Result<GrantRequest> {
    println!("{} {} asks for:", manifest.id, manifest.version);
    for line in manifest.capabilities.describe() {
        println!("  {line}");
    }
    print!("Grant `all`, a comma-separated list, or nothing (Enter) to cancel: ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    let answer = answer.trim();
    anyhow::ensure!(!answer.is_empty(), "cancelled: nothing was installed");
    GrantRequest::parse(answer).map_err(anyhow::Error::msg)
}

async fn inspect(target: &str, common: &CommonArgs) -> anyhow::Result<()> {
    let path = Path::new(target);
    if path.is_file() {
        let wasm = read_file(path)?;
        let info =
            read_package(&wasm).with_context(|| format!("{} is not a plugin package", path.display()))?;
        // The operator's settings (not the database): the limits shown are this host's.
        let settings = load_settings(common)?;
        let db = Database::connect("sqlite::memory:").await?;
        let runtime = Runtime::new(&settings.limits, db.clone())?;
        let interfaces = runtime
            .interfaces(&info.manifest.id, wasm)
            .await
            .with_context(|| format!("{} does not compile", path.display()))?;
        print_manifest(&info.manifest, &info.sha256);
        print_effective(&info.manifest, &settings);
        println!("imports:");
        for name in &interfaces.imports {
            println!("  {name}");
        }
        println!("exports:");
        for name in &interfaces.exports {
            println!("  {name}");
        }
        db.close().await;
        return Ok(());
    }
    anyhow::ensure!(
        lutetia_model::manifest::is_valid_id(target),
        "{target} is neither a file nor a plugin id"
    );
    let (settings, db) = open(common).await?;
    let row = db
        .plugin_row(target)
        .await?
        .with_context(|| format!("plugin `{target}` is not installed"))?;
    let versions = db.plugin_versions(target).await?;
    db.close().await;
    let current = versions.iter().find(|v| v.version == row.version);
    if let Some(v) = current {
        let manifest = Manifest::parse(&v.manifest)?;
        print_manifest(&manifest, &v.sha256);
        print_effective(&manifest, &settings);
    }
    println!("state: {}", if row.enabled { "enabled" } else { "disabled" });
    println!(
        "granted: {}",
        if row.grants.is_empty() { "-" } else { &row.grants }
    );
    println!("versions:");
    for v in &versions {
        let mark = if v.version == row.version {
            " (served)"
        } else if Some(&v.version) == row.pending_version.as_ref() {
            " (pending a grant)"
        } else if Some(&v.version) == row.previous_version.as_ref() {
            " (previous)"
        } else {
            ""
        };
        println!(
            "  {:<12} sha256 {} by {} at {}{mark}",
            v.version,
            v.sha256,
            v.installed_by,
            chrono::DateTime::from_timestamp_millis(v.installed_at)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default()
        );
    }
    Ok(())
}

fn print_manifest(m: &Manifest, sha256: &str) {
    println!("id: {}", m.id);
    println!("name: {}", m.name);
    println!("version: {}", m.version);
    if !m.description.is_empty() {
        println!("description: {}", m.description);
    }
    if !m.license.is_empty() {
        println!("license: {}", m.license);
    }
    if !m.authors.is_empty() {
        println!("authors: {}", m.authors.join(", "));
    }
    if let Some(home) = &m.homepage {
        println!("homepage: {home}");
    }
    println!("api: lutetia:plugin@{}", m.api);
    println!("sha256: {sha256}");
    let lines = m.capabilities.describe();
    println!(
        "capabilities requested:{}",
        if lines.is_empty() { " none" } else { "" }
    );
    for line in lines {
        println!("  {line}");
    }
    let l = &m.limits;
    let mut asked = vec![
        format!(
            "memory-mb {}",
            l.memory_mb.map_or("host default".into(), |v| v.to_string())
        ),
        format!(
            "timeout-ms {}",
            l.timeout_ms.map_or("host default".into(), |v| v.to_string())
        ),
    ];
    for (key, value) in [
        ("log-lines-per-call", l.log_lines_per_call),
        ("log-bytes-per-call", l.log_bytes_per_call),
        ("log-lines-per-minute", l.log_lines_per_minute),
        ("log-bytes-per-minute", l.log_bytes_per_minute),
    ] {
        if let Some(value) = value {
            asked.push(format!("{key} {value}"));
        }
    }
    println!("limits requested: {}", asked.join(", "));
}

/// What applies on this host (the manifest's asks within the operator's defaults and
/// ceilings), and a warning on stderr for each ask beyond a ceiling.
fn print_effective(m: &Manifest, settings: &Settings) {
    let effective = lutetia_model::limits::EffectiveLimits::of(m, &settings.limits);
    println!("effective limits on this host:");
    for line in effective.describe(m) {
        println!("  {line}");
    }
    for warning in effective.warnings() {
        eprintln!("warning: {warning}");
    }
}

/// `lutetia dev PLUGIN_DIR`: build, pack (version `X.Y.Z-dev.MILLIS`, always newer than the
/// previous dev build), install or upgrade; then again whenever a source file changes.
pub(super) async fn dev(args: DevArgs) -> anyhow::Result<()> {
    let dir = args.plugin_dir.clone();
    // Refuse a folder that is not a plugin before watching it.
    Language::detect(&dir)?;
    let request = GrantRequest::parse(&args.grant).map_err(anyhow::Error::msg)?;
    let mut last = None;
    loop {
        let fingerprint = sources_fingerprint(&dir);
        if last.as_ref() != Some(&fingerprint) {
            last = Some(fingerprint);
            match dev_cycle(&dir, &request, &args.common).await {
                Ok(line) => println!("{line}"),
                Err(e) if !args.once => eprintln!("error: {e:#}\n(waiting for the next change)"),
                Err(e) => return Err(e),
            }
            if args.once {
                return Ok(());
            }
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
        }
    }
}

/// One build → pack → install/upgrade; returns what was done.
async fn dev_cycle(dir: &Path, request: &GrantRequest, common: &CommonArgs) -> anyhow::Result<String> {
    println!("building {} ...", dir.display());
    let built = lutetia_toolchain::build_component(dir, &Tools::from_env()).await?;
    let manifest = built.manifest;
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let dev_version = format!(
        "{}.{}.{}-dev.{millis}",
        manifest.version.major, manifest.version.minor, manifest.version.patch
    );
    let text = replace_version(&built.manifest_text, &manifest.version.to_string(), &dev_version)?;
    let packed = lutetia_model::package::pack(&built.bytes, &text)?;
    let mut line = String::new();
    with_lifecycle(common, async |ops| {
        let installed = ops.db.plugin_row(&manifest.id).await?.is_some();
        let outcome = if installed {
            ops.upgrade(packed, request, "dev").await?
        } else {
            ops.install(packed, request, "dev").await?
        };
        line = format!(
            "{} {} {} (running hosts serve it within a second)",
            if installed { "upgraded" } else { "installed" },
            outcome.id,
            outcome.version
        );
        Ok(())
    })
    .await?;
    Ok(line)
}

/// Rewrites the `version = "..."` line of a manifest.
fn replace_version(text: &str, old: &str, new: &str) -> anyhow::Result<String> {
    let mut done = false;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if !done && trimmed.starts_with("version") && trimmed.contains(&format!("\"{old}\"")) {
                done = true;
                format!("version = \"{new}\"")
            } else {
                line.to_owned()
            }
        })
        .collect();
    anyhow::ensure!(done, "cannot find the `version = \"{old}\"` line of plugin.toml");
    Ok(lines.join("\n") + "\n")
}

/// Size and modification time of every source file, to notice changes.
fn sources_fingerprint(dir: &Path) -> Vec<(std::path::PathBuf, u64, Option<std::time::SystemTime>)> {
    lutetia_toolchain::sources(dir, &[])
        .into_iter()
        .filter_map(|relative| {
            let meta = std::fs::metadata(dir.join(&relative)).ok()?;
            Some((relative, meta.len(), meta.modified().ok()))
        })
        .collect()
}

/// `plugin new`: scaffolds the folder and says what to do next.
fn new_plugin(args: &NewArgs) -> anyhow::Result<()> {
    let language = Language::from_name(&args.lang)?;
    let dir = args.dir.clone().unwrap_or_else(|| args.name.clone().into());
    let files = lutetia_toolchain::scaffold(language, &args.name, &dir, args.rust_sdk.as_deref())?;
    println!(
        "created {} plugin {} in {}:",
        language.name(),
        args.name,
        dir.display()
    );
    for file in files {
        println!("  {}", file.display());
    }
    println!("next: lutetia plugin build {}", dir.display());
    Ok(())
}
