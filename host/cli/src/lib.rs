//! `lutetia`, the command line: the binary's edge, where errors become messages and exit
//! codes (`anyhow` and clap are used here and nowhere else). The top of the crate graph:
//! it drives `lutetia-web` (`serve`), `lutetia-platform` (the operator's `plugin`
//! commands), `lutetia-db` (`migrate`, `outbox`) and `lutetia-toolchain` (`plugin new`,
//! `plugin build`, `dev`); nothing of the project depends on it but the tests, which run
//! its `main` as a process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use lutetia_model::settings::{Flags, Settings};

mod plugin;

/// Lutetia: city e-services built from sandboxed WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "lutetia", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web server with the installed plugins.
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate(CommonArgs),
    /// Check a configuration file (and overrides) and print the effective settings.
    CheckConfig(CommonArgs),
    /// Inspect the mail outbox.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Package, install, grant, upgrade, roll back and remove plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Development loop: rebuild a plugin (Rust, Python or JavaScript) when its sources
    /// change and install it as a new version, which running hosts on the same database
    /// serve within a second.
    Dev(DevArgs),
}

/// Options of `dev`.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// The plugin's folder (`plugin.toml` beside `Cargo.toml`, `app.py` or `package.json`).
    pub plugin_dir: PathBuf,
    /// Capabilities granted to each build (default: all it asks for; it is your plugin).
    #[arg(long, value_name = "CAPABILITIES", default_value = "all")]
    pub grant: String,
    /// Build once, install, and exit (scripts and tests).
    #[arg(long)]
    pub once: bool,
    /// Settings file and database.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `lutetia plugin ...`: changes are recorded in the database; running hosts serve them
/// within a second, without restarting.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Create a plugin folder (Rust, Python or JavaScript) that builds and loads as it is.
    New(NewArgs),
    /// Build a plugin folder of any language into the one-file package (manifest embedded).
    Build(BuildArgs),
    /// Embed a manifest in a component, making the one-file package a city installs.
    Pack(PackArgs),
    /// Show a package file's (or an installed plugin's) manifest, capabilities, imports
    /// and exports.
    Inspect(InspectArgs),
    /// Install a plugin package, granting the capabilities it asks for.
    Install(InstallArgs),
    /// List the installed plugins.
    List(CommonArgs),
    /// Serve an installed plugin again.
    Enable(IdArgs),
    /// Stop serving a plugin (its data and versions are kept).
    Disable(IdArgs),
    /// Install a newer version of an installed plugin.
    Upgrade(InstallArgs),
    /// Grant capabilities to an installed plugin (and apply an upgrade waiting for them).
    Grant(GrantArgs),
    /// Serve the previous version again.
    Rollback(IdArgs),
    /// Remove a plugin and its stored versions.
    Remove(RemoveArgs),
}

/// Options of `plugin new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The plugin's name, also its id and URL (`/p/NAME/`): lower-case letters, digits, dashes.
    pub name: String,
    /// The language: `rust`, `python` or `js`.
    #[arg(long, value_name = "LANG")]
    pub lang: String,
    /// The folder to create (default `./NAME`).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The Lutetia Rust SDK folder a Rust plugin depends on (default: `LUTETIA_RUST_SDK`,
    /// then the checkout this binary was built from).
    #[arg(long, value_name = "PATH")]
    pub rust_sdk: Option<PathBuf>,
}

/// Options of `plugin build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The plugin folder (with `plugin.toml`; default: the current folder).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Where to write the package (default `DIR/dist/ID-VERSION.wasm`).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Options of `plugin pack`.
#[derive(Debug, Args)]
pub struct PackArgs {
    /// The component (`cargo build --target wasm32-wasip2` output).
    pub component: PathBuf,
    /// Its manifest, `plugin.toml`.
    pub manifest: PathBuf,
    /// Where to write the package (default `ID-VERSION.wasm` in the current folder).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Options of `plugin inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A package file, or the id of an installed plugin.
    pub target: String,
    /// Settings file and database (to inspect an installed plugin).
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Options of `plugin install` and `plugin upgrade`.
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// The package (`.wasm` with its manifest embedded by `plugin pack`).
    pub file: PathBuf,
    /// Capabilities granted: `all`, or a comma-separated list (`kv,store`). Without it,
    /// you are asked (on a terminal) or the install is refused if the plugin asks for any.
    #[arg(long, value_name = "CAPABILITIES")]
    pub grant: Option<String>,
    /// Settings file and database.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Options of commands naming one installed plugin.
#[derive(Debug, Args)]
pub struct IdArgs {
    /// Plugin id.
    pub id: String,
    /// Settings file and database.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Options of `plugin grant`.
#[derive(Debug, Args)]
pub struct GrantArgs {
    /// Plugin id.
    pub id: String,
    /// Capabilities granted: `all` (all it asks for), or a comma-separated list.
    #[arg(long, value_name = "CAPABILITIES")]
    pub grant: String,
    /// Settings file and database.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Options of `plugin remove`.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// Plugin id.
    pub id: String,
    /// Also delete the plugin's data (key-value, documents, file records, job runs).
    #[arg(long)]
    pub purge_data: bool,
    /// Settings file and database.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `lutetia outbox ...`
#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// List queued, sent and failed messages, newest first.
    List(OutboxListArgs),
}

/// Options of `outbox list`.
#[derive(Debug, Args)]
pub struct OutboxListArgs {
    /// Settings file and database.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Only messages with this status.
    #[arg(long, value_parser = ["queued", "sent", "failed"])]
    pub status: Option<String>,
    /// Most messages shown.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
}

/// Options shared by every command that reads settings.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// TOML configuration file.
    #[arg(long, env = "LUTETIA_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Database URL: sqlite://PATH (default ./data/lutetia.db) or postgres://... (over
    /// the file and LUTETIA_DATABASE_URL)
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Folder of the compiled-component cache (default ./data/compiled-cache); several
    /// hosts may share one (over the file and LUTETIA_COMPILED_CACHE_DIR)
    #[arg(long, value_name = "DIR")]
    pub compiled_cache_dir: Option<PathBuf>,
}

/// Options of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Settings file and database.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Address to listen on (default 127.0.0.1:8080; over the file and LUTETIA_BIND)
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<SocketAddr>,
    /// Also load the plugins of this folder (ID.wasm with ID.toml beside it).
    #[arg(long, env = "LUTETIA_PLUGINS", value_name = "DIR")]
    pub plugins: Option<PathBuf>,
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Kept to the end: dropping it flushes the lines still in the log writer's buffer.
    let _log_writer = match init_tracing() {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Log lines the writer thread may hold before new ones are dropped (tracing-appender's
/// default): about 30 MB of ordinary lines.
const LOG_BUFFER_LINES: usize = 128_000;

/// Installs the log: filtered by `LUTETIA_LOG` (default `info`), as text or, with
/// `LUTETIA_LOG_FORMAT=json`, one JSON object per line, written to stderr by a thread of
/// its own. The thread that logs only queues the line: a slow stderr reader (a pipe, a
/// journal under pressure) or a plugin flooding its log never blocks a Tokio worker. When
/// the queue is full, new lines are dropped and counted (`lutetia_log_lines_dropped_total`).
/// The returned guard flushes the queue when it is dropped.
fn init_tracing() -> anyhow::Result<tracing_appender::non_blocking::WorkerGuard> {
    let json = match std::env::var("LUTETIA_LOG_FORMAT") {
        Err(std::env::VarError::NotPresent) => false,
        Ok(format) if format.is_empty() || format == "text" => false,
        Ok(format) if format == "json" => true,
        Ok(format) => anyhow::bail!("LUTETIA_LOG_FORMAT must be `text` or `json`, not `{format}`"),
        Err(std::env::VarError::NotUnicode(_)) => {
            anyhow::bail!("LUTETIA_LOG_FORMAT must be `text` or `json`")
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("LUTETIA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(LOG_BUFFER_LINES)
        .thread_name("lutetia-log")
        .finish(std::io::stderr());
    let dropped = writer.error_counter();
    lutetia_services::metrics::count_dropped_log_lines(move || dropped.dropped_lines() as u64);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
    Ok(guard)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Migrate(args) => {
            let settings = load_settings(&args)?;
            let db = lutetia_db::Database::connect(&settings.database_url).await?;
            db.migrate().await?;
            db.close().await;
            println!(
                "database {} is up to date",
                lutetia_model::settings::redact_url(&settings.database_url)
            );
            Ok(())
        }
        Command::Outbox(OutboxCommand::List(args)) => outbox_list(args).await,
        Command::Plugin(command) => plugin::run(command).await,
        Command::Dev(args) => plugin::dev(args).await,
        Command::CheckConfig(args) => {
            let settings = load_settings(&args)?;
            println!("# configuration is valid; the effective settings (secrets masked):");
            print!("{}", settings.to_masked_toml());
            Ok(())
        }
    }
}

/// Prints the outbox as a table.
async fn outbox_list(args: OutboxListArgs) -> anyhow::Result<()> {
    let settings = load_settings(&args.common)?;
    let db = lutetia_db::Database::connect(&settings.database_url).await?;
    db.migrate().await?;
    let rows = db.outbox_list(args.status.as_deref(), args.limit).await?;
    db.close().await;
    let clip = |s: &str, n: usize| -> String {
        let one_line = s.replace(['\r', '\n'], " ");
        if one_line.chars().count() > n {
            format!("{}…", one_line.chars().take(n - 1).collect::<String>())
        } else {
            one_line
        }
    };
    println!(
        "{:<28} {:<12} {:<40} {:<32} {:<7} {:>8}  LAST ERROR",
        "ID", "PLUGIN", "TO", "SUBJECT", "STATUS", "ATTEMPTS"
    );
    for r in &rows {
        println!(
            "{:<28} {:<12} {:<40} {:<32} {:<7} {:>8}  {}",
            r.id,
            clip(&r.plugin_id, 12),
            clip(&r.recipients, 40),
            clip(&r.subject, 32),
            r.status,
            r.attempts,
            clip(r.last_error.as_deref().unwrap_or("-"), 80)
        );
    }
    println!("({} message(s))", rows.len());
    Ok(())
}

/// Defaults, then the file, then `LUTETIA_*` variables, then flags
/// ([`Settings::load`]).
pub(crate) fn load_settings(args: &CommonArgs) -> anyhow::Result<Settings> {
    Ok(load_with(args, Flags::default())?)
}

/// [`load_settings`] with more flags than the common ones.
fn load_with(args: &CommonArgs, flags: Flags) -> Result<Settings, lutetia_model::settings::SettingsError> {
    let flags = Flags {
        database_url: args.database_url.clone(),
        compiled_cache_dir: args.compiled_cache_dir.clone(),
        ..flags
    };
    Settings::load(args.config.as_deref(), &flags)
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let flags = Flags {
        bind: args.bind,
        plugins_dir: args.plugins,
        ..Flags::default()
    };
    let settings = load_with(&args.common, flags)?;
    if let Some(dir) = &settings.plugins_dir {
        anyhow::ensure!(dir.is_dir(), "plugins folder {} does not exist", dir.display());
    }
    let server = lutetia_web::server::start(settings)
        .await
        .context("cannot start")?;
    let addr = server.addr;
    if let Some(token) = &server.new_admin_token {
        // Shown once; only its hash is stored. Tests read this line.
        println!("Admin API token (shown once, also written to the data folder): {token}");
    }
    // Tests and scripts read this line to find the port.
    println!("Lutetia is serving on http://{addr}/");
    for plugin in server.app.platform.registry.list() {
        println!(
            "  {} {} → http://{addr}/p/{}/",
            plugin.context.id, plugin.context.version, plugin.context.id
        );
    }
    if !server.load_errors.is_empty() {
        println!(
            "  ({} plugin(s) failed to load; see the log)",
            server.load_errors.len()
        );
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
