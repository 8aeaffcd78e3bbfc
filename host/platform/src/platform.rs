//! Wiring: open the database, migrate, start the runtime, load the plugins, serve HTTP.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::db::{Database, DbError};
use crate::http::{HttpState, Layout, LayoutError, NavItem};
use crate::registry::{LoadError, Registry};
use crate::runtime::{Runtime, RuntimeError};
use crate::settings::{Settings, SettingsError};

/// Why the host could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Invalid settings.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The WebAssembly engine could not start.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The files folder could not be opened.
    #[error(transparent)]
    Files(#[from] crate::files::FilesError),
    /// The built-in templates do not compile.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// The admin token could not be created or written.
    #[error("cannot create the admin API token: {0}")]
    AdminToken(String),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The state shared by every request.
#[derive(Debug)]
pub struct App {
    /// Effective settings.
    pub settings: Settings,
    /// The database.
    pub db: Database,
    /// The WebAssembly runtime.
    pub runtime: Runtime,
    /// Plugins being served.
    pub registry: Registry,
    /// The site layout.
    pub layout: Layout,
    /// The HTTP layer's own state: page workers, refused answers per plugin.
    pub http: HttpState,
}

impl App {
    /// The navigation: every plugin served.
    pub fn site_nav(&self) -> Vec<NavItem> {
        self.registry
            .list()
            .iter()
            .map(|p| NavItem {
                id: p.context.id.clone(),
                name: p.manifest.name.clone(),
                description: p.manifest.description.clone(),
            })
            .collect()
    }
}

/// A host serving HTTP in the background.
#[derive(Debug)]
pub struct RunningServer {
    /// The address actually bound (useful with port 0).
    pub addr: SocketAddr,
    /// Shared state.
    pub app: Arc<App>,
    /// Plugins that failed to load (already logged).
    pub load_errors: Vec<LoadError>,
    /// The admin API token created at this start (the first start on a database), to be
    /// shown once; `None` when one already existed.
    pub new_admin_token: Option<String>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// Stops accepting connections, lets requests in flight finish, closes the database.
    pub async fn shutdown(self) -> std::io::Result<()> {
        let _ = self.shutdown.send(true);
        let result = self.task.await.unwrap_or_else(|e| Err(std::io::Error::other(e)));
        self.app.db.close().await;
        result
    }
}

/// Opens, migrates, loads and starts serving; returns once the listener is bound.
pub async fn start(settings: Settings) -> Result<RunningServer, StartError> {
    settings.validate()?;
    let db = Database::connect(&settings.database_url).await?;
    db.migrate().await?;
    let runtime = Runtime::new(&settings.limits, db.clone())?
        .with_files(crate::files::FileStore::open(&settings.files_dir, db.clone())?)
        .with_compiled_cache(&compiled_cache_dir(&settings))?;
    let new_admin_token = ensure_admin_token(&db, &settings).await?;
    let registry = Registry::default();
    let load_errors = registry.load_all(&runtime, &db, &settings).await;
    let layout = Layout::new(&settings.site_name)?;
    let listener = TcpListener::bind(settings.bind)
        .await
        .map_err(|source| StartError::Bind {
            addr: settings.bind,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: settings.bind,
        source,
    })?;
    let http = HttpState::new(&settings.http);
    let app = Arc::new(App {
        settings,
        db,
        runtime,
        registry,
        layout,
        http,
    });
    crate::mail::spawn_sender(&app.settings, app.db.clone());
    let (shutdown, _) = watch::channel(false);
    crate::events::start(app.clone(), shutdown.subscribe());
    crate::schedule::start(app.clone(), shutdown.subscribe());
    spawn_plugin_sync(app.clone(), shutdown.subscribe());
    let router = crate::http::router(app.clone());
    let task = tokio::spawn(crate::http::serve(
        listener,
        router,
        app.settings.http.clone(),
        shutdown.subscribe(),
    ));
    tracing::info!(%addr, pooling = app.runtime.pooling(), plugins = app.registry.list().len(), "serving");
    Ok(RunningServer {
        addr,
        app,
        load_errors,
        new_admin_token,
        shutdown,
        task,
    })
}

/// How often a host re-checks the database for plugin changes (on SQLite the only way to
/// see a change made by the command line; on PostgreSQL a fallback behind `LISTEN`).
const PLUGIN_RECHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// Keeps the served plugins in step with the database: on every PostgreSQL notification
/// of a change and every [`PLUGIN_RECHECK`].
fn spawn_plugin_sync(app: Arc<App>, mut stop: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut changes = match app.db.plugin_changes().await {
            Ok(changes) => changes,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for plugin changes; re-checking every second only");
                None
            }
        };
        let mut tick = tokio::time::interval(PLUGIN_RECHECK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let notified = async {
                match changes.as_mut() {
                    Some(listener) => listener.next().await.map(Some),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = stop.wait_for(|stop| *stop) => return,
                _ = tick.tick() => {}
                got = notified => match got {
                    Ok(id) => tracing::debug!(plugin = %id.unwrap_or_default(), "plugin change notified"),
                    Err(e) => {
                        tracing::warn!(error = %e, "plugin change listener failed; re-checking every second only");
                        changes = None;
                    }
                },
            }
            if let Err(e) = app
                .registry
                .sync(&app.runtime, &app.db, &app.settings, Vec::new())
                .await
            {
                tracing::warn!(error = %e, "cannot re-check the installed plugins");
            }
        }
    });
}

/// Creates the admin API token at the first start on a database: 256 random bits, stored
/// as their SHA-256, written to `admin-token` (mode 0600) in the data folder and returned
/// so that `serve` prints it once.
async fn ensure_admin_token(db: &Database, settings: &Settings) -> Result<Option<String>, StartError> {
    if db.has_admin_token().await? {
        return Ok(None);
    }
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| StartError::AdminToken(e.to_string()))?;
    let token = format!("lut_{}", hex::encode(secret));
    let path = data_dir(settings).join("admin-token");
    write_private(&path, &token).map_err(|e| StartError::AdminToken(format!("{}: {e}", path.display())))?;
    db.add_admin_token(&crate::registry::sha256_hex(token.as_bytes()))
        .await?;
    tracing::info!(file = %path.display(), "admin API token created");
    Ok(Some(token))
}

fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")
}

/// The data folder: the parent of the files folder (`./data` by default).
fn data_dir(settings: &Settings) -> &std::path::Path {
    settings
        .files_dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."))
}

/// Where compiled components are cached: `compiled-cache-dir`, else `compiled-cache` in
/// the data folder.
pub fn compiled_cache_dir(settings: &Settings) -> std::path::PathBuf {
    settings
        .compiled_cache_dir
        .clone()
        .unwrap_or_else(|| data_dir(settings).join("compiled-cache"))
}
