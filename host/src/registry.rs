//! The set of plugins being served, by id. Lookups clone an `Arc`, so a call in flight keeps
//! the version it started with even if the entry is replaced meanwhile.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use sha2::{Digest, Sha256};

use crate::db::{Database, DbError, StoredPlugin};
use crate::manifest::{Manifest, ManifestError};
use crate::runtime::{LoadedPlugin, Runtime, RuntimeError};
use crate::settings::Settings;

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A plugin file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The manifest is invalid.
    #[error("{path}: {source}")]
    Manifest {
        /// Where the manifest came from.
        path: String,
        /// What is wrong.
        source: ManifestError,
    },
    /// A `.wasm` file has no manifest beside it.
    #[error("{wasm} has no manifest: expected {manifest} beside it")]
    MissingManifest {
        /// The component.
        wasm: PathBuf,
        /// The manifest path looked for.
        manifest: PathBuf,
    },
    /// The file name and the manifest id disagree.
    #[error("{path}: the manifest id is `{id}` but the file is named `{stem}.wasm`")]
    IdMismatch {
        /// The component.
        path: PathBuf,
        /// Manifest id.
        id: String,
        /// File stem.
        stem: String,
    },
    /// Compiling or linking failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// Reading the installed plugins failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Plugins being served.
#[derive(Debug, Default)]
pub struct Registry {
    plugins: RwLock<HashMap<String, Arc<LoadedPlugin>>>,
}

impl Registry {
    /// The plugin mounted at `id`, if any.
    pub fn get(&self, id: &str) -> Option<Arc<LoadedPlugin>> {
        self.plugins.read().ok()?.get(id).cloned()
    }

    /// Serves `plugin`, replacing any plugin with the same id; returns the one replaced.
    pub fn insert(&self, plugin: LoadedPlugin) -> Option<Arc<LoadedPlugin>> {
        let id = plugin.context.id.clone();
        match self.plugins.write() {
            Ok(mut map) => map.insert(id, Arc::new(plugin)),
            Err(poisoned) => poisoned.into_inner().insert(id, Arc::new(plugin)),
        }
    }

    /// Every plugin served, sorted by id.
    pub fn list(&self) -> Vec<Arc<LoadedPlugin>> {
        let mut all: Vec<_> = match self.plugins.read() {
            Ok(map) => map.values().cloned().collect(),
            Err(poisoned) => poisoned.into_inner().values().cloned().collect(),
        };
        all.sort_by(|a, b| a.context.id.cmp(&b.context.id));
        all
    }

    /// Loads the enabled plugins recorded in the database, then those of `plugins_dir`.
    /// A plugin that fails to load is logged and skipped: one broken plugin must not keep
    /// the site down. Returns the errors for the caller to report.
    pub async fn load_all(&self, runtime: &Runtime, db: &Database, settings: &Settings) -> Vec<LoadError> {
        let mut errors = Vec::new();
        match db.enabled_plugins().await {
            Ok(stored) => {
                for plugin in stored {
                    match load_stored(runtime, settings, plugin).await {
                        Ok(loaded) => self.announce(loaded, "database"),
                        Err(e) => errors.push(e),
                    }
                }
            }
            Err(e) => errors.push(e.into()),
        }
        if let Some(dir) = &settings.plugins_dir {
            match plugin_files(dir) {
                Ok(files) => {
                    for wasm in files {
                        match load_file(runtime, settings, &wasm).await {
                            Ok(loaded) => self.announce(loaded, "plugins folder"),
                            Err(e) => errors.push(e),
                        }
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        for e in &errors {
            tracing::error!(error = %e, "plugin not loaded");
        }
        errors
    }

    fn announce(&self, loaded: LoadedPlugin, source: &str) {
        let (id, version) = (loaded.context.id.clone(), loaded.context.version.clone());
        if let Some(previous) = self.insert(loaded) {
            tracing::info!(plugin = %id, replaced = %previous.context.version, "plugin replaced by the {source}'s copy");
        }
        tracing::info!(plugin = %id, %version, "plugin loaded from the {source}");
    }
}

/// Hex SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

async fn load_stored(
    runtime: &Runtime,
    settings: &Settings,
    plugin: StoredPlugin,
) -> Result<LoadedPlugin, LoadError> {
    let manifest = Manifest::parse(&plugin.manifest).map_err(|source| LoadError::Manifest {
        path: format!("stored manifest of `{}`", plugin.id),
        source,
    })?;
    let config = operator_config(settings, &manifest.id);
    Ok(runtime
        .load(manifest, plugin.wasm, plugin.sha256, config, &settings.limits)
        .await?)
}

/// Reads `ID.wasm` and `ID.toml`, checks them and loads the plugin.
pub async fn load_file(
    runtime: &Runtime,
    settings: &Settings,
    wasm_path: &Path,
) -> Result<LoadedPlugin, LoadError> {
    let manifest_path = wasm_path.with_extension("toml");
    if !manifest_path.is_file() {
        return Err(LoadError::MissingManifest {
            wasm: wasm_path.to_owned(),
            manifest: manifest_path,
        });
    }
    let text = tokio::fs::read_to_string(&manifest_path)
        .await
        .map_err(|source| LoadError::Read {
            path: manifest_path.clone(),
            source,
        })?;
    let manifest = Manifest::parse(&text).map_err(|source| LoadError::Manifest {
        path: manifest_path.display().to_string(),
        source,
    })?;
    let stem = wasm_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if stem != manifest.id {
        return Err(LoadError::IdMismatch {
            path: wasm_path.to_owned(),
            id: manifest.id,
            stem,
        });
    }
    let wasm = tokio::fs::read(wasm_path)
        .await
        .map_err(|source| LoadError::Read {
            path: wasm_path.to_owned(),
            source,
        })?;
    let sha256 = sha256_hex(&wasm);
    let config = operator_config(settings, &manifest.id);
    Ok(runtime
        .load(manifest, wasm, sha256, config, &settings.limits)
        .await?)
}

fn operator_config(settings: &Settings, id: &str) -> BTreeMap<String, String> {
    settings
        .plugins
        .get(id)
        .map(|p| p.config.clone())
        .unwrap_or_default()
}

/// The `.wasm` files of a plugins folder, sorted.
fn plugin_files(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let read_err = |source| LoadError::Read {
        path: dir.to_owned(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let path = entry.map_err(read_err)?.path();
        if path.extension().is_some_and(|e| e == "wasm") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}
