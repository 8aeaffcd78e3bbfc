//! The host's start: open the platform, bind, start the background tasks, serve HTTP;
//! `RunningServer` for graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use lutetia_model::settings::Settings;
use lutetia_platform::platform::{Opened, Platform, StartError};
use lutetia_platform::registry::LoadError;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::app::{App, HttpState};
use crate::layout::{Layout, LayoutError};

/// Why the host could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The platform could not open (settings, database, runtime, files, admin token).
    #[error(transparent)]
    Platform(#[from] StartError),
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
        self.app.platform.db.close().await;
        result
    }
}

/// Opens, migrates, loads and starts serving; returns once the listener is bound.
pub async fn start(settings: Settings) -> Result<RunningServer, ServerError> {
    let Opened {
        platform,
        load_errors,
        new_admin_token,
    } = Platform::open(settings).await?;
    let settings = &platform.settings;
    let layout = Layout::new(&settings.site_name)?;
    let listener = TcpListener::bind(settings.bind)
        .await
        .map_err(|source| ServerError::Bind {
            addr: settings.bind,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: settings.bind,
        source,
    })?;
    let http = HttpState::new(&settings.http);
    let app = Arc::new(App {
        platform,
        layout,
        http,
    });
    let (shutdown, _) = watch::channel(false);
    lutetia_platform::background::start(&app.platform, &shutdown);
    let router = crate::router(app.clone());
    let task = tokio::spawn(crate::serve(
        listener,
        router,
        app.platform.settings.http.clone(),
        app.platform.runtime.metrics().clone(),
        shutdown.subscribe(),
    ));
    let metrics = &app.platform.settings.metrics;
    if metrics.enabled && !metrics.require_admin_token && !addr.ip().is_loopback() {
        tracing::warn!(%addr, "/metrics is served without the admin token on a non-loopback address: keep it off the public internet (metrics.require-admin-token)");
    }
    tracing::info!(
        %addr,
        pooling = app.platform.runtime.pooling(),
        plugins = app.platform.registry.list().len(),
        "serving"
    );
    Ok(RunningServer {
        addr,
        app,
        load_errors,
        new_admin_token,
        shutdown,
        task,
    })
}
