//! The operator's plugin lifecycle: install, grant, upgrade, roll back, enable, disable,
//! remove. Shared by the command line and the admin API.
//!
//! Every change is validated completely before anything is written: the package is read
//! (component header, embedded manifest), compiled and linked with the granted
//! capabilities, and the plugin's `lifecycle.migrate` hook runs in a [`Migration`]: what it
//! writes waits in a transaction, and the record of the change joins that transaction, so
//! the two are committed together or not at all. A failure at any step (the hook answering
//! an error, trapping or timing out; the record meeting a concurrent change) leaves the
//! installed set and the plugin's data as they were. Serving hosts pick the change up
//! through `Registry::sync`.

use semver::Version;

use lutetia_db::{Database, DbError, PluginRow, VersionRow};
use lutetia_model::hash::sha256_hex;
use lutetia_model::manifest::{CapabilitySet, Manifest, format_capabilities, parse_capabilities};
use lutetia_model::package::{self, PackageError};
use lutetia_model::settings::Settings;
use lutetia_runtime::{CallError, Imports, LoadedPlugin, Migration, Runtime, RuntimeError};

/// What the operator grants with an install, an upgrade or a `grant`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantRequest {
    /// Nothing said: an install of a plugin that asks for capabilities is refused, an
    /// upgrade keeps the current grants.
    Unspecified,
    /// Everything the plugin asks for.
    All,
    /// These capabilities (each must be one the plugin asks for).
    Only(CapabilitySet),
}

impl GrantRequest {
    /// Parses `all` or `kv,store,...`.
    pub fn parse(text: &str) -> Result<GrantRequest, String> {
        if text.trim() == "all" {
            Ok(GrantRequest::All)
        } else {
            parse_capabilities(text).map(GrantRequest::Only)
        }
    }
}

/// Why a lifecycle operation was refused. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// The file is not a plugin package.
    #[error(transparent)]
    Package(#[from] PackageError),
    /// The component does not compile, link or fit its grants.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The operator's settings for the plugin name keys its manifest does not declare.
    #[error(transparent)]
    Config(#[from] lutetia_model::settings::UndeclaredConfig),
    /// Installing an id that is already installed.
    #[error("plugin `{0}` is already installed: use `upgrade` to install a new version")]
    AlreadyInstalled(String),
    /// Naming a plugin that is not installed.
    #[error("plugin `{0}` is not installed")]
    NotInstalled(String),
    /// An upgrade to a version that is not newer.
    #[error("plugin `{id}` {installed} is installed: the upgrade must be a newer version, not {uploaded}")]
    NotNewer {
        /// Plugin id.
        id: String,
        /// The version served.
        installed: String,
        /// The version uploaded.
        uploaded: String,
    },
    /// The plugin asks for capabilities and the operator granted none.
    #[error(
        "plugin `{id}` asks for {}: grant them with --grant all or --grant {} (or a part of them)",
        format_capabilities(.requested), format_capabilities(.requested)
    )]
    GrantRequired {
        /// Plugin id.
        id: String,
        /// What it asks for.
        requested: CapabilitySet,
    },
    /// The operator granted a capability the plugin does not ask for, or an invalid name.
    #[error("invalid grant for plugin `{id}`: {message}")]
    InvalidGrant {
        /// Plugin id.
        id: String,
        /// What is wrong.
        message: String,
    },
    /// The `migrate` hook answered an error or trapped.
    #[error("plugin `{id}` {version}: migrate failed, nothing was changed: {message}")]
    MigrateFailed {
        /// Plugin id.
        id: String,
        /// The version whose hook failed.
        version: String,
        /// The plugin's error or the trap.
        message: String,
    },
    /// Rolling back a plugin that has no previous version.
    #[error("plugin `{0}` has no previous version to roll back to")]
    NoPrevious(String),
    /// The plugin changed meanwhile (another operator or node).
    #[error("plugin `{0}` was changed by someone else meanwhile; look at it again and retry")]
    Conflict(String),
    /// A stored manifest is unreadable (the database was edited by hand).
    #[error("stored version {version} of `{id}` is unreadable: {message}")]
    Corrupt {
        /// Plugin id.
        id: String,
        /// Version.
        version: String,
        /// What is wrong.
        message: String,
    },
    /// The database failed.
    #[error(transparent)]
    Db(DbError),
}

impl From<DbError> for LifecycleError {
    fn from(e: DbError) -> Self {
        LifecycleError::Db(e)
    }
}

impl LifecycleError {
    /// A stable code for scripts and the API (`{"error": code}`).
    pub fn code(&self) -> &'static str {
        match self {
            LifecycleError::Package(PackageError::Manifest(_)) => "invalid_manifest",
            LifecycleError::Package(PackageError::NoManifest) => "missing_manifest",
            LifecycleError::Package(PackageError::CoreModule) => "not_a_component",
            LifecycleError::Package(_) => "invalid_package",
            LifecycleError::Runtime(RuntimeError::NotGranted { .. }) => "not_granted",
            LifecycleError::Runtime(RuntimeError::WorldMismatch { .. }) => "world_mismatch",
            LifecycleError::Runtime(RuntimeError::InvalidComponent { .. }) => "invalid_component",
            LifecycleError::Runtime(RuntimeError::Engine(_)) => "engine_error",
            LifecycleError::Config(_) => "undeclared_config",
            LifecycleError::AlreadyInstalled(_) => "already_installed",
            LifecycleError::NotInstalled(_) => "not_found",
            LifecycleError::NotNewer { .. } => "not_newer",
            LifecycleError::GrantRequired { .. } => "grant_required",
            LifecycleError::InvalidGrant { .. } => "invalid_grant",
            LifecycleError::MigrateFailed { .. } => "migrate_failed",
            LifecycleError::NoPrevious(_) => "no_previous_version",
            LifecycleError::Conflict(_) => "conflict",
            LifecycleError::Corrupt { .. } => "corrupt",
            LifecycleError::Db(_) => "database_error",
        }
    }

    /// Whether the error is the caller's (bad input, wrong state) rather than the host's.
    pub fn is_client_error(&self) -> bool {
        !matches!(
            self,
            LifecycleError::Db(_)
                | LifecycleError::Corrupt { .. }
                | LifecycleError::Runtime(RuntimeError::Engine(_))
        )
    }
}

/// How an install, upgrade, grant or rollback ended.
#[derive(Debug)]
pub struct Outcome {
    /// Plugin id.
    pub id: String,
    /// The version now served (or still served, when `pending`).
    pub version: String,
    /// Granted capabilities.
    pub grants: CapabilitySet,
    /// An upgrade waiting for a grant: its version and the capabilities it still needs.
    pub pending: Option<(String, CapabilitySet)>,
    /// The plugin loaded while validating, ready to serve (saves a recompilation).
    pub loaded: Option<LoadedPlugin>,
}

/// A read-only view of an uploaded package, for an operator to look at before installing.
#[derive(Debug)]
pub struct PackageInfo {
    /// The manifest.
    pub manifest: Manifest,
    /// Its text.
    pub manifest_text: String,
    /// Hex SHA-256 of the file.
    pub sha256: String,
}

/// Reads a package without compiling it.
pub fn read_package(wasm: &[u8]) -> Result<PackageInfo, LifecycleError> {
    let (manifest, manifest_text) = package::read(wasm)?;
    Ok(PackageInfo {
        manifest,
        manifest_text,
        sha256: sha256_hex(wasm),
    })
}

/// The lifecycle operations, over one database and one runtime.
#[derive(Debug, Clone, Copy)]
pub struct Lifecycle<'a> {
    /// Where plugins are recorded.
    pub db: &'a Database,
    /// Compiles, links and runs `migrate`.
    pub runtime: &'a Runtime,
    /// Limits and operator config.
    pub settings: &'a Settings,
}

fn parse_grants(id: &str, text: &str) -> Result<CapabilitySet, LifecycleError> {
    parse_capabilities(text).map_err(|message| LifecycleError::Corrupt {
        id: id.to_owned(),
        version: "-".into(),
        message,
    })
}

/// The grants an explicit request gives, checked against what the plugin asks for.
fn requested_grants(
    id: &str,
    request: &GrantRequest,
    requested: &CapabilitySet,
) -> Result<CapabilitySet, LifecycleError> {
    match request {
        GrantRequest::Unspecified => Ok(CapabilitySet::new()),
        GrantRequest::All => Ok(requested.clone()),
        GrantRequest::Only(set) => {
            if let Some(extra) = set.iter().find(|c| !requested.contains(c)) {
                return Err(LifecycleError::InvalidGrant {
                    id: id.to_owned(),
                    message: format!(
                        "it does not ask for `{extra}` (it asks for: {})",
                        if requested.is_empty() {
                            "nothing".to_owned()
                        } else {
                            format_capabilities(requested)
                        }
                    ),
                });
            }
            Ok(set.clone())
        }
    }
}

impl Lifecycle<'_> {
    /// Logs each limit or quota the manifest asks beyond this host's ceiling (the ceiling
    /// applies); `plugin inspect` and `install` show the same to the operator.
    fn warn_capped(&self, manifest: &Manifest) {
        for warning in lutetia_model::limits::EffectiveLimits::of(manifest, &self.settings.limits).warnings()
        {
            tracing::warn!(plugin = %manifest.id, "{warning}");
        }
    }

    /// Compiles and links `wasm` with `grants`, then runs its `migrate(from)` hook; what the
    /// hook wrote is returned uncommitted, for [`Lifecycle::record`].
    async fn prepare(
        &self,
        manifest: &Manifest,
        wasm: Vec<u8>,
        grants: &CapabilitySet,
        from: Option<String>,
    ) -> Result<(LoadedPlugin, Migration), LifecycleError> {
        let sha256 = sha256_hex(&wasm);
        let config = self.settings.plugin_config(manifest)?;
        let loaded = self
            .runtime
            .load(
                manifest.clone(),
                wasm,
                sha256,
                config,
                &self.settings.limits,
                grants,
                Imports::Refuse,
            )
            .await?;
        let migration = self.runtime.begin_migration(&manifest.id)?;
        let message = match self.runtime.migrate(&loaded, from, &migration).await {
            Ok(Ok(())) => return Ok((loaded, migration)),
            Ok(Err(message)) => message,
            Err(CallError::Trap(message)) => format!("the plugin trapped: {message}"),
            Err(other) => other.to_string(),
        };
        migration.rollback().await;
        Err(LifecycleError::MigrateFailed {
            id: manifest.id.clone(),
            version: manifest.version.to_string(),
            message,
        })
    }

    async fn row(&self, id: &str) -> Result<PluginRow, LifecycleError> {
        self.db
            .plugin_row(id)
            .await?
            .ok_or_else(|| LifecycleError::NotInstalled(id.to_owned()))
    }

    async fn save(
        &self,
        row: &PluginRow,
        version: Option<&VersionRow>,
        expected: Option<i64>,
    ) -> Result<(), LifecycleError> {
        save_on(self.db, row, version, expected).await
    }

    /// Records `row` (and `version`) in the migration's transaction, then commits both: a
    /// record refused (a concurrent change) or failed discards what `migrate` wrote too.
    async fn record(
        &self,
        migration: Migration,
        row: &PluginRow,
        version: Option<&VersionRow>,
        expected: Option<i64>,
    ) -> Result<(), LifecycleError> {
        if let Err(e) = save_on(&migration.database(), row, version, expected).await {
            migration.rollback().await;
            return Err(e);
        }
        // Whether a COMMIT that reported an error happened anyway: our record is there.
        let db = self.db.clone();
        let (id, version, at) = (row.id.clone(), row.version.clone(), row.updated_at);
        let committed = async move {
            matches!(db.plugin_row(&id).await, Ok(Some(r)) if r.version == version && r.updated_at == at)
        };
        migration.commit(committed).await?;
        Ok(())
    }

    /// After a change: drops the plugin's store indexes whose last declaration
    /// (`ensure-index`, in `migrate` or while serving) came from none of the versions `keep`
    /// (the one replaced and the one served; none after a purge). Best effort: the change
    /// is recorded already, and a failed drop is retried at the next change.
    async fn drop_undeclared_indexes(&self, id: &str, keep: &[&str]) {
        match self.db.store_drop_undeclared_indexes(id, keep).await {
            Ok(dropped) if dropped.is_empty() => {}
            Ok(dropped) => {
                tracing::info!(plugin = %id, ?keep, indexes = ?dropped, "dropped store indexes no longer declared")
            }
            Err(e) => {
                tracing::warn!(plugin = %id, error = %e, "cannot drop store indexes no longer declared")
            }
        }
    }

    /// Installs a new plugin from a package.
    pub async fn install(
        &self,
        wasm: Vec<u8>,
        grant: &GrantRequest,
        by: &str,
    ) -> Result<Outcome, LifecycleError> {
        let info = read_package(&wasm)?;
        let manifest = &info.manifest;
        let id = manifest.id.clone();
        if self.db.plugin_row(&id).await?.is_some() {
            return Err(LifecycleError::AlreadyInstalled(id));
        }
        let requested = manifest.capabilities.requested();
        if *grant == GrantRequest::Unspecified && !requested.is_empty() {
            return Err(LifecycleError::GrantRequired { id, requested });
        }
        let grants = requested_grants(&id, grant, &requested)?;
        let (loaded, migration) = self.prepare(manifest, wasm.clone(), &grants, None).await?;
        let now = lutetia_db::now_ms();
        let row = PluginRow {
            id: id.clone(),
            version: manifest.version.to_string(),
            enabled: true,
            grants: format_capabilities(&grants),
            previous_version: None,
            pending_version: None,
            updated_at: now,
        };
        self.record(migration, &row, Some(&version_row(&info, wasm, by, now)), None)
            .await?;
        tracing::info!(plugin = %id, version = %row.version, grants = %row.grants, by, "plugin installed");
        self.warn_capped(manifest);
        Ok(Outcome {
            id,
            version: row.version,
            grants,
            pending: None,
            loaded: Some(loaded),
        })
    }

    /// Upgrades an installed plugin to a newer version. If it asks for more than is
    /// granted (and `grant` does not give it), the version is stored as pending and the
    /// current one keeps serving.
    pub async fn upgrade(
        &self,
        wasm: Vec<u8>,
        grant: &GrantRequest,
        by: &str,
    ) -> Result<Outcome, LifecycleError> {
        let info = read_package(&wasm)?;
        let manifest = &info.manifest;
        let id = manifest.id.clone();
        let row = self.row(&id).await?;
        let installed = Version::parse(&row.version).map_err(|e| LifecycleError::Corrupt {
            id: id.clone(),
            version: row.version.clone(),
            message: e.to_string(),
        })?;
        if manifest.version <= installed {
            return Err(LifecycleError::NotNewer {
                id,
                installed: row.version,
                uploaded: manifest.version.to_string(),
            });
        }
        let requested = manifest.capabilities.requested();
        let mut grants = parse_grants(&id, &row.grants)?;
        grants.extend(requested_grants(&id, grant, &requested)?);
        let missing: CapabilitySet = requested.difference(&grants).copied().collect();
        let now = (lutetia_db::now_ms()).max(row.updated_at + 1);
        let new_version = manifest.version.to_string();
        if !missing.is_empty() && *grant == GrantRequest::Unspecified {
            // Validate the component now (with what it asks for), so the grant that
            // promotes it later cannot fail on a broken file.
            self.runtime
                .load(
                    manifest.clone(),
                    wasm.clone(),
                    info.sha256.clone(),
                    self.settings.plugin_config(manifest)?,
                    &self.settings.limits,
                    &requested,
                    Imports::Refuse,
                )
                .await?;
            let pending = PluginRow {
                pending_version: Some(new_version.clone()),
                updated_at: now,
                ..row.clone()
            };
            self.save(
                &pending,
                Some(&version_row(&info, wasm, by, now)),
                Some(row.updated_at),
            )
            .await?;
            tracing::warn!(plugin = %id, version = %new_version, missing = %format_capabilities(&missing), "upgrade waits for a grant");
            return Ok(Outcome {
                id,
                version: row.version,
                grants,
                pending: Some((new_version, missing)),
                loaded: None,
            });
        }
        let (loaded, migration) = self
            .prepare(manifest, wasm.clone(), &grants, Some(row.version.clone()))
            .await?;
        let upgraded = PluginRow {
            version: new_version.clone(),
            grants: format_capabilities(&grants),
            previous_version: Some(row.version.clone()),
            pending_version: None,
            updated_at: now,
            ..row.clone()
        };
        self.record(
            migration,
            &upgraded,
            Some(&version_row(&info, wasm, by, now)),
            Some(row.updated_at),
        )
        .await?;
        tracing::info!(plugin = %id, from = %row.version, version = %new_version, by, "plugin upgraded");
        self.warn_capped(manifest);
        self.drop_undeclared_indexes(&id, &[row.version.as_str(), new_version.as_str()])
            .await;
        Ok(Outcome {
            id,
            version: new_version,
            grants,
            pending: None,
            loaded: Some(loaded),
        })
    }

    /// Adds grants; promotes a pending upgrade once everything it asks for is granted.
    pub async fn grant(&self, id: &str, grant: &GrantRequest, by: &str) -> Result<Outcome, LifecycleError> {
        let row = self.row(id).await?;
        let target = row.pending_version.clone().unwrap_or_else(|| row.version.clone());
        let stored = self.stored(id, &target).await?;
        let manifest = self.manifest_of(&stored)?;
        let requested = manifest.capabilities.requested();
        let mut grants = parse_grants(id, &row.grants)?;
        grants.extend(requested_grants(id, grant, &requested)?);
        let now = (lutetia_db::now_ms()).max(row.updated_at + 1);
        let missing: CapabilitySet = requested.difference(&grants).copied().collect();
        let promote = row.pending_version.is_some() && missing.is_empty();
        let (loaded, migration) = if promote {
            let (loaded, migration) = self
                .prepare(&manifest, stored.wasm, &grants, Some(row.version.clone()))
                .await?;
            (Some(loaded), Some(migration))
        } else {
            (None, None)
        };
        let updated = PluginRow {
            version: if promote {
                target.clone()
            } else {
                row.version.clone()
            },
            previous_version: if promote {
                Some(row.version.clone())
            } else {
                row.previous_version.clone()
            },
            pending_version: if promote {
                None
            } else {
                row.pending_version.clone()
            },
            grants: format_capabilities(&grants),
            updated_at: now,
            ..row.clone()
        };
        match migration {
            Some(migration) => {
                self.record(migration, &updated, None, Some(row.updated_at))
                    .await?;
                self.drop_undeclared_indexes(id, &[row.version.as_str(), updated.version.as_str()])
                    .await;
            }
            None => self.save(&updated, None, Some(row.updated_at)).await?,
        }
        tracing::info!(plugin = %id, grants = %updated.grants, by, promoted = promote, "capabilities granted");
        Ok(Outcome {
            id: id.to_owned(),
            version: updated.version.clone(),
            grants,
            pending: updated
                .pending_version
                .clone()
                .map(|v| (v, missing))
                .filter(|(_, m)| !m.is_empty()),
            loaded,
        })
    }

    /// Serves the previous version again (the current one becomes the previous).
    pub async fn rollback(&self, id: &str, by: &str) -> Result<Outcome, LifecycleError> {
        let row = self.row(id).await?;
        let previous = row
            .previous_version
            .clone()
            .ok_or_else(|| LifecycleError::NoPrevious(id.to_owned()))?;
        let stored = self.stored(id, &previous).await?;
        let manifest = self.manifest_of(&stored)?;
        let grants = parse_grants(id, &row.grants)?;
        let (loaded, migration) = self
            .prepare(&manifest, stored.wasm, &grants, Some(row.version.clone()))
            .await?;
        let now = (lutetia_db::now_ms()).max(row.updated_at + 1);
        let rolled = PluginRow {
            version: previous.clone(),
            previous_version: Some(row.version.clone()),
            pending_version: None,
            updated_at: now,
            ..row.clone()
        };
        self.record(migration, &rolled, None, Some(row.updated_at))
            .await?;
        tracing::info!(plugin = %id, from = %row.version, version = %previous, by, "plugin rolled back");
        self.drop_undeclared_indexes(id, &[row.version.as_str(), previous.as_str()])
            .await;
        Ok(Outcome {
            id: id.to_owned(),
            version: previous,
            grants,
            pending: None,
            loaded: Some(loaded),
        })
    }

    /// Serves (`true`) or stops serving (`false`) a plugin; its data is kept.
    pub async fn set_enabled(&self, id: &str, enabled: bool, by: &str) -> Result<PluginRow, LifecycleError> {
        let row = self.row(id).await?;
        let updated = PluginRow {
            enabled,
            updated_at: (lutetia_db::now_ms()).max(row.updated_at + 1),
            ..row.clone()
        };
        self.save(&updated, None, Some(row.updated_at)).await?;
        tracing::info!(plugin = %id, enabled, by, "plugin {}", if enabled { "enabled" } else { "disabled" });
        Ok(updated)
    }

    /// Removes a plugin and its versions; with `purge`, its data too.
    pub async fn remove(&self, id: &str, purge: bool, by: &str) -> Result<(), LifecycleError> {
        if !self.db.delete_plugin(id, purge).await? {
            return Err(LifecycleError::NotInstalled(id.to_owned()));
        }
        if purge {
            // Its documents are gone: so are the indexes over them.
            self.drop_undeclared_indexes(id, &[]).await;
        }
        tracing::info!(plugin = %id, purge, by, "plugin removed");
        Ok(())
    }

    async fn stored(&self, id: &str, version: &str) -> Result<VersionRow, LifecycleError> {
        self.db
            .plugin_version(id, version)
            .await?
            .ok_or_else(|| LifecycleError::Corrupt {
                id: id.to_owned(),
                version: version.to_owned(),
                message: "the version's bytes are missing".into(),
            })
    }

    fn manifest_of(&self, stored: &VersionRow) -> Result<Manifest, LifecycleError> {
        Manifest::parse(&stored.manifest).map_err(|e| LifecycleError::Corrupt {
            id: stored.plugin_id.clone(),
            version: stored.version.clone(),
            message: e.to_string(),
        })
    }
}

/// Writes the record of a change on `db` (the pool, or a migration's transaction).
async fn save_on(
    db: &Database,
    row: &PluginRow,
    version: Option<&VersionRow>,
    expected: Option<i64>,
) -> Result<(), LifecycleError> {
    match db.save_plugin(row, version, expected).await {
        Err(DbError::Contention(_)) if expected.is_none() => {
            Err(LifecycleError::AlreadyInstalled(row.id.clone()))
        }
        Err(DbError::Contention(_)) => Err(LifecycleError::Conflict(row.id.clone())),
        other => Ok(other?),
    }
}

fn version_row(info: &PackageInfo, wasm: Vec<u8>, by: &str, now: i64) -> VersionRow {
    VersionRow {
        plugin_id: info.manifest.id.clone(),
        version: info.manifest.version.to_string(),
        sha256: info.sha256.clone(),
        manifest: info.manifest_text.clone(),
        wasm,
        installed_by: by.to_owned(),
        installed_at: now,
    }
}
