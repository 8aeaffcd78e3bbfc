//! Wiring: open the database, migrate, start the runtime, load the plugins, serve HTTP.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::db::{Database, DbError};
use crate::http::{Layout, LayoutError, NavItem};
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
        .with_files(crate::files::FileStore::open(&settings.files_dir, db.clone())?);
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
    let app = Arc::new(App {
        settings,
        db,
        runtime,
        registry,
        layout,
    });
    crate::mail::spawn_sender(&app.settings, app.db.clone());
    let (shutdown, mut stop) = watch::channel(false);
    crate::events::start(app.clone(), shutdown.subscribe());
    crate::schedule::start(app.clone(), shutdown.subscribe());
    let router = crate::http::router(app.clone());
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|stop| *stop).await;
            })
            .await
    });
    tracing::info!(%addr, pooling = app.runtime.pooling(), plugins = app.registry.list().len(), "serving");
    Ok(RunningServer {
        addr,
        app,
        load_errors,
        shutdown,
        task,
    })
}
