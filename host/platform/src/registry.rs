//! The set of plugins being served, by id. Lookups clone an `Arc`, so a call in flight keeps
//! the version it started with even if the entry is replaced meanwhile.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use lutetia_db::{Database, DbError, ServedState, StoredPlugin};
use lutetia_model::manifest::{Manifest, ManifestError, parse_capabilities};
use lutetia_model::package::PackageError;
use lutetia_model::settings::Settings;
use lutetia_runtime::{Imports, LoadedPlugin, Runtime, RuntimeError};

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
    /// A `.wasm` file has no manifest beside it nor inside it.
    #[error("{wasm} has no manifest: expected {manifest} beside it or one embedded by `lutetia plugin pack`")]
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
    /// The file is not a component, or its embedded manifest is unreadable.
    #[error("{path}: {source}")]
    Package {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: PackageError,
    },
    /// Compiling or linking failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The operator's settings for the plugin name keys its manifest does not declare.
    #[error(transparent)]
    Config(#[from] lutetia_model::settings::UndeclaredConfig),
    /// Reading the installed plugins failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Plugins being served.
#[derive(Debug, Default)]
pub struct Registry {
    plugins: RwLock<HashMap<String, Arc<LoadedPlugin>>>,
    /// For each plugin served from the database, the recorded state it was loaded from;
    /// plugins of the `--plugins` folder are not in it and `sync` leaves them alone.
    from_db: tokio::sync::Mutex<SyncState>,
}

#[derive(Debug, Default)]
struct SyncState {
    served: HashMap<String, ServedState>,
    /// States that failed to load, not retried until they change (no error every second).
    failed: HashMap<String, ServedState>,
    from_folder: HashSet<String>,
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

    /// Whether `id` is served from the `--plugins` folder (which takes precedence over an
    /// installed plugin of the same id).
    pub async fn is_from_folder(&self, id: &str) -> bool {
        self.from_db.lock().await.from_folder.contains(id)
    }

    /// Stops serving `id`; calls in flight finish on the version they hold.
    fn remove(&self, id: &str) -> Option<Arc<LoadedPlugin>> {
        match self.plugins.write() {
            Ok(mut map) => map.remove(id),
            Err(poisoned) => poisoned.into_inner().remove(id),
        }
    }

    /// Reconciles the plugins served from the database with what it records: loads new
    /// and changed versions (compiling off the request path; `prepared` holds plugins
    /// already loaded by a lifecycle operation of this process), swaps each entry
    /// atomically, and drops disabled and removed plugins. Calls in flight finish on the
    /// version they started with. A version that fails to load is logged once and the
    /// entry served before is kept. Returns the number of entries changed.
    pub async fn sync(
        &self,
        runtime: &Runtime,
        db: &Database,
        settings: &Settings,
        prepared: Vec<LoadedPlugin>,
    ) -> Result<usize, DbError> {
        let mut state = self.from_db.lock().await;
        let wanted = db.served_states().await?;
        let mut prepared: HashMap<String, LoadedPlugin> =
            prepared.into_iter().map(|p| (p.sha256.clone(), p)).collect();
        let mut changed = 0;
        let wanted_ids: HashSet<&str> = wanted.iter().map(|w| w.id.as_str()).collect();
        for target in &wanted {
            if state.served.get(&target.id) == Some(target)
                || state.failed.get(&target.id) == Some(target)
                || state.from_folder.contains(&target.id)
            {
                continue;
            }
            let loaded = match prepared.remove(&target.sha256) {
                Some(p) if p.context.id == target.id && grants_match(&p, target) => Ok(p),
                _ => load_version(runtime, db, settings, target).await,
            };
            match loaded {
                Ok(plugin) => {
                    let previous = self.insert(plugin);
                    tracing::info!(
                        plugin = %target.id,
                        version = %target.version,
                        replaced = previous.as_ref().map(|p| p.context.version.as_str()).unwrap_or("-"),
                        "plugin now served"
                    );
                    state.failed.remove(&target.id);
                    state.served.insert(target.id.clone(), target.clone());
                    changed += 1;
                }
                Err(e) => {
                    tracing::error!(plugin = %target.id, version = %target.version, error = %e, "plugin version not loaded; the previous one keeps serving");
                    state.failed.insert(target.id.clone(), target.clone());
                }
            }
        }
        let gone: Vec<String> = state
            .served
            .keys()
            .filter(|id| !wanted_ids.contains(id.as_str()))
            .cloned()
            .collect();
        for id in gone {
            state.served.remove(&id);
            if self.remove(&id).is_some() {
                tracing::info!(plugin = %id, "plugin no longer served (disabled or removed)");
                changed += 1;
            }
        }
        state.failed.retain(|id, _| wanted_ids.contains(id.as_str()));
        Ok(changed)
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
        if let Err(e) = self.sync(runtime, db, settings, Vec::new()).await {
            errors.push(e.into());
        }
        if let Some(dir) = &settings.plugins_dir {
            match plugin_files(dir) {
                Ok(files) => {
                    for wasm in files {
                        match load_file(runtime, settings, &wasm).await {
                            Ok(loaded) => {
                                let id = loaded.context.id.clone();
                                self.announce(loaded, "plugins folder");
                                let mut state = self.from_db.lock().await;
                                state.served.remove(&id);
                                state.from_folder.insert(id);
                            }
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

fn grants_match(plugin: &LoadedPlugin, target: &ServedState) -> bool {
    lutetia_model::manifest::format_capabilities(&plugin.granted) == target.grants
}

/// Loads the recorded version `target` with its recorded grants.
async fn load_version(
    runtime: &Runtime,
    db: &Database,
    settings: &Settings,
    target: &ServedState,
) -> Result<LoadedPlugin, LoadError> {
    let stored = db
        .plugin_version(&target.id, &target.version)
        .await?
        .ok_or_else(|| LoadError::Manifest {
            path: format!("stored version {} of `{}`", target.version, target.id),
            source: ManifestError::Parse("the version is missing".into()),
        })?;
    load_stored(
        runtime,
        settings,
        StoredPlugin {
            id: stored.plugin_id,
            version: stored.version,
            sha256: stored.sha256,
            manifest: stored.manifest,
            wasm: stored.wasm,
            enabled: true,
            grants: target.grants.clone(),
        },
    )
    .await
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
    let grants = parse_capabilities(&plugin.grants).map_err(|message| LoadError::Manifest {
        path: format!("stored grants of `{}`", plugin.id),
        source: ManifestError::Parse(message),
    })?;
    let config = settings.plugin_config(&manifest)?;
    Ok(runtime
        .load(
            manifest,
            plugin.wasm,
            plugin.sha256,
            config,
            &settings.limits,
            &grants,
            Imports::Refuse,
        )
        .await?)
}

/// Reads `ID.wasm` and its manifest (`ID.toml` beside it, or the one embedded by
/// `lutetia plugin pack`), checks them and loads the plugin. A plugin of the folder gets
/// every capability its manifest asks for: the operator chose to put it there.
pub async fn load_file(
    runtime: &Runtime,
    settings: &Settings,
    wasm_path: &Path,
) -> Result<LoadedPlugin, LoadError> {
    let wasm = tokio::fs::read(wasm_path)
        .await
        .map_err(|source| LoadError::Read {
            path: wasm_path.to_owned(),
            source,
        })?;
    let manifest_path = wasm_path.with_extension("toml");
    let (text, from) = if manifest_path.is_file() {
        let text = tokio::fs::read_to_string(&manifest_path)
            .await
            .map_err(|source| LoadError::Read {
                path: manifest_path.clone(),
                source,
            })?;
        (text, manifest_path.display().to_string())
    } else {
        let embedded =
            lutetia_model::package::embedded_manifest(&wasm).map_err(|source| LoadError::Package {
                path: wasm_path.to_owned(),
                source,
            })?;
        match embedded {
            Some(text) => (text, format!("{} (embedded manifest)", wasm_path.display())),
            None => {
                return Err(LoadError::MissingManifest {
                    wasm: wasm_path.to_owned(),
                    manifest: manifest_path,
                });
            }
        }
    };
    let manifest = Manifest::parse(&text).map_err(|source| LoadError::Manifest { path: from, source })?;
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
    let sha256 = lutetia_model::hash::sha256_hex(&wasm);
    let config = settings.plugin_config(&manifest)?;
    let granted = manifest.capabilities.requested();
    Ok(runtime
        .load(
            manifest,
            wasm,
            sha256,
            config,
            &settings.limits,
            &granted,
            Imports::Deny,
        )
        .await?)
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
