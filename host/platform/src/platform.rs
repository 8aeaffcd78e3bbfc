//! The platform: settings, database, runtime (with the files folder) and the served plugins,
//! opened together (connect, migrate, compile, load) and shared by the web layer and the
//! background tasks (`crate::background`).

use std::sync::Arc;

use lutetia_db::{Database, DbError};
use lutetia_model::settings::{Settings, SettingsError};
use lutetia_runtime::{Runtime, RuntimeError};

use crate::registry::{LoadError, Registry};

/// Why the platform could not open.
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
    Files(#[from] lutetia_services::files::FilesError),
    /// The admin token could not be created or written.
    #[error("cannot create the admin API token: {0}")]
    AdminToken(String),
}

/// What a running host shares between the web layer and its background tasks.
#[derive(Debug)]
pub struct Platform {
    /// Effective settings.
    pub settings: Settings,
    /// The database.
    pub db: Database,
    /// The WebAssembly runtime (with the files folder).
    pub runtime: Runtime,
    /// Plugins being served.
    pub registry: Registry,
}

/// A platform just opened.
#[derive(Debug)]
pub struct Opened {
    /// The platform, ready to serve.
    pub platform: Arc<Platform>,
    /// Plugins that failed to load (already logged).
    pub load_errors: Vec<LoadError>,
    /// The admin API token created at this start (the first start on a database), to be
    /// shown once; `None` when one already existed.
    pub new_admin_token: Option<String>,
}

impl Platform {
    /// Validates the settings, opens and migrates the database, starts the runtime and
    /// loads the plugins. Starts no task: see [`crate::background::start`].
    pub async fn open(settings: Settings) -> Result<Opened, StartError> {
        settings.validate()?;
        let db = Database::connect(&settings.database_url).await?;
        db.migrate().await?;
        let runtime = Runtime::new(&settings.limits, db.clone())?
            .with_files(lutetia_services::files::FileStore::open(
                &settings.files_dir,
                db.clone(),
            )?)
            .with_compiled_cache(&compiled_cache_dir(&settings))?;
        let new_admin_token = ensure_admin_token(&db, &settings).await?;
        let registry = Registry::default();
        let load_errors = registry.load_all(&runtime, &db, &settings).await;
        let platform = Arc::new(Platform {
            settings,
            db,
            runtime,
            registry,
        });
        Ok(Opened {
            platform,
            load_errors,
            new_admin_token,
        })
    }
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
    db.add_admin_token(&lutetia_model::hash::sha256_hex(token.as_bytes()))
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
