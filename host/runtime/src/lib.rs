//! `lutetia-runtime`, the WebAssembly runtime: one wasmtime `Engine`, one `Linker`, one
//! `InstancePre` per plugin, and a fresh `Store` + instance for every call; the host imports
//! (`host_*`, one file per WIT interface) and the calls of the other exports (`calls`).
//! The only crate that uses wasmtime and wasmtime-wasi.
//!
//! Depends on `lutetia-model`, `lutetia-db` and `lutetia-services`; never on the platform
//! or the web layer. What it must tell the layers above (an event was published) goes
//! through `lutetia_services::bus`.
//!
//! Every call runs under three limits: a deadline in CPU time with a wall-clock bound of
//! twice that, checked at every epoch tick (guest code); a Tokio timeout (host calls the
//! guest is waiting on); and a `ResourceLimiter` (linear memory).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::component::{Component, Linker};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap, UpdateDeadline,
};

use lutetia_db::Database;
use lutetia_model::manifest::{Capability, CapabilitySet, Manifest};
use lutetia_model::settings::Limits;

pub mod bindings;
mod cache;
mod calls;
mod host_config;
mod host_events;
mod host_files;
mod host_kv;
mod host_log;
mod host_mail;
mod host_store;
mod log_meter;
mod metrics;
mod scheduler;
mod state;

pub use bindings::{Headers, Page, PluginError, Reply, Request, Response, User};
pub use calls::{Event, Job, Migration};
pub use log_meter::{LogMeter, one_log_line};
pub use scheduler::{Lane, cpu_time_of};
use state::HostState;

/// How often the epoch advances; deadlines are counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Extra time the Tokio timeout allows past a call's wall-clock bound before it cancels it.
const TIMEOUT_GRACE: Duration = Duration::from_millis(250);
/// A call's deadline is CPU time: it may use `timeout` of CPU, and it ends anyway when
/// `WALL_CLOCK_FACTOR × timeout` has passed, however little CPU it got meanwhile (it was
/// starved in the background lane, or waited on host calls). See `docs/design/scheduling.md`.
const WALL_CLOCK_FACTOR: u32 = 2;
/// Bytes of a plugin's stderr kept per call (panic messages land there).
const STDERR_CAPTURE: usize = 16 * 1024;

/// Why the runtime could not start or load a plugin.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The engine could not be configured.
    #[error("cannot start the WebAssembly engine: {0}")]
    Engine(String),
    /// The bytes are not a valid WebAssembly component.
    #[error("plugin `{plugin}` is not a valid WebAssembly component: {message}")]
    InvalidComponent {
        /// Plugin id.
        plugin: String,
        /// The validator's message.
        message: String,
    },
    /// The component imports something the host does not provide, or lacks the handler export.
    #[error("plugin `{plugin}` does not fit the lutetia:plugin world: {message}")]
    WorldMismatch {
        /// Plugin id.
        plugin: String,
        /// What is missing.
        message: String,
    },
    /// The component imports an interface whose capability was not granted.
    #[error(
        "plugin `{plugin}` imports {interface}, which needs the `{capability}` capability, \
         and it was not granted: grant it (--grant {capability}) or ask the plugin's author \
         why it uses {interface}"
    )]
    NotGranted {
        /// Plugin id.
        plugin: String,
        /// The imported interface.
        interface: String,
        /// The capability it needs.
        capability: Capability,
    },
}

/// Why a call into a plugin failed. The plugin's own error answers are not here: they are
/// replies like any other.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The guest trapped (panic, unreachable, out-of-bounds access, ...).
    #[error("plugin trapped: {0}")]
    Trap(String),
    /// The call used its deadline's CPU time, or ran for twice as long in all, and was
    /// interrupted.
    #[error("plugin exceeded its deadline of {0:?}")]
    Timeout(Duration),
    /// The guest tried to grow its memory beyond its limit.
    #[error("plugin exceeded its memory limit of {0} MiB")]
    MemoryExceeded(u32),
    /// No instance slot is free right now (pooling allocator exhausted).
    #[error("no instance slot available: {0}")]
    Overloaded(String),
}

/// The effective limits of one plugin: its manifest's requests, capped by the host.
#[derive(Debug, Clone, Copy)]
pub struct CallLimits {
    /// Linear memory ceiling, MiB.
    pub memory_mb: u32,
    /// Deadline per call.
    pub timeout: Duration,
    /// How much the plugin may log.
    pub log: LogLimits,
}

/// How much a plugin may log: per call, and per minute over all its calls on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    /// Lines of one call.
    pub lines_per_call: u64,
    /// Bytes of one call.
    pub bytes_per_call: u64,
    /// Lines per minute.
    pub lines_per_minute: u64,
    /// Bytes per minute.
    pub bytes_per_minute: u64,
}

impl CallLimits {
    /// Resolves a manifest's requested limits against the host's defaults and ceilings.
    pub fn resolve(manifest: &Manifest, host: &Limits) -> CallLimits {
        let effective = lutetia_model::limits::EffectiveLimits::of(manifest, host);
        let q = &effective.quotas;
        CallLimits {
            memory_mb: effective.memory_mb,
            timeout: Duration::from_millis(effective.timeout_ms),
            log: LogLimits {
                lines_per_call: q.log_lines_per_call,
                bytes_per_call: q.log_bytes_per_call,
                lines_per_minute: q.log_lines_per_minute,
                bytes_per_minute: q.log_bytes_per_minute,
            },
        }
    }
}

/// What a plugin was granted, with the quotas that apply, checked by every host import.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    /// May use the `kv` interface, within this quota.
    pub kv: Option<lutetia_model::manifest::KvCapability>,
    /// May use the `store` interface, within this quota.
    pub store: Option<lutetia_model::manifest::StoreCapability>,
    /// May use the `files` interface, within these limits.
    pub files: Option<lutetia_model::manifest::FilesCapability>,
    /// May queue mail, within this rate.
    pub mail: Option<lutetia_model::manifest::MailCapability>,
    /// Topics it may publish and receive, and its publishing quotas.
    pub events: lutetia_model::manifest::EventsCapability,
    /// Its scheduled jobs.
    pub jobs: Vec<lutetia_model::manifest::JobSpec>,
}

impl Grants {
    /// What the manifest asks for, limited to what the operator granted: a capability
    /// granted but not asked for gives nothing, one asked for but not granted is denied.
    /// Quotas are the manifest's, else the host's defaults, at most the host's ceilings.
    pub fn granted(manifest: &Manifest, granted: &CapabilitySet, host: &Limits) -> Grants {
        let c = &manifest.capabilities;
        let q = lutetia_model::limits::EffectiveLimits::of(manifest, host).quotas;
        let has = |capability| granted.contains(&capability);
        Grants {
            kv: (c.kv.enabled && has(Capability::Kv)).then_some(lutetia_model::manifest::KvCapability {
                max_keys: q.kv_max_keys,
                max_bytes: q.kv_max_bytes,
            }),
            store: c.store.as_ref().filter(|_| has(Capability::Store)).map(|_| {
                lutetia_model::manifest::StoreCapability {
                    max_bytes: q.store_max_bytes,
                    max_documents: q.store_max_documents,
                }
            }),
            files: c.files.as_ref().filter(|_| has(Capability::Files)).map(|f| {
                lutetia_model::manifest::FilesCapability {
                    max_size: q.files_max_size,
                    max_total_bytes: q.files_max_total_bytes,
                    content_types: f.content_types.clone(),
                }
            }),
            mail: c.mail.as_ref().filter(|_| has(Capability::Mail)).map(|_| {
                lutetia_model::manifest::MailCapability {
                    max_per_hour: u32::try_from(q.mail_max_per_hour).unwrap_or(u32::MAX),
                }
            }),
            events: if has(Capability::Events) {
                lutetia_model::manifest::EventsCapability {
                    publish: c.events.publish.clone(),
                    subscribe: c.events.subscribe.clone(),
                    max_per_minute: q.events_max_per_minute,
                    max_backlog: q.events_max_backlog,
                }
            } else {
                lutetia_model::manifest::EventsCapability::default()
            },
            jobs: if has(Capability::Jobs) {
                c.jobs.clone()
            } else {
                Vec::new()
            },
        }
    }
}

/// The capability a `lutetia:plugin` interface needs, or `None` for the interfaces every
/// plugin may import (`log`, `config`, `types`, and the sandboxed WASI ones).
pub fn capability_for_import(name: &str) -> Option<Capability> {
    let interface = name.strip_prefix("lutetia:plugin/")?;
    let interface = interface.split('@').next().unwrap_or(interface);
    match interface {
        "kv" => Some(Capability::Kv),
        "store" => Some(Capability::Store),
        "files" => Some(Capability::Files),
        "mail" => Some(Capability::Mail),
        "events" => Some(Capability::Events),
        _ => None,
    }
}

/// What loading does with an import whose capability was not granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imports {
    /// Refuse the plugin (installs and upgrades: the operator learns it at once).
    Refuse,
    /// Load it; its calls answer `denied` (the `--plugins` folder, whose manifests the
    /// operator edits by hand).
    Deny,
}

/// The imports and exports of a component, by name (`lutetia:plugin/kv@0.1.0`).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ComponentInterfaces {
    /// What the component imports.
    pub imports: Vec<String>,
    /// What the component exports.
    pub exports: Vec<String>,
}

/// Everything a call needs to know about the plugin it runs.
#[derive(Debug)]
pub struct PluginContext {
    /// Plugin id.
    pub id: String,
    /// Plugin version.
    pub version: String,
    /// Granted capabilities.
    pub grants: Grants,
    /// Settings visible through `config`: manifest defaults overridden by the operator.
    pub config: BTreeMap<String, String>,
    /// Effective limits.
    pub limits: CallLimits,
    /// What it logged this minute on this host (the per-minute log limits).
    pub log_meter: LogMeter,
    /// Its calls and host-service operations, counted (shared by all its versions).
    pub metrics: lutetia_services::metrics::PluginMetrics,
}

/// A plugin compiled and linked, ready to instantiate.
pub struct LoadedPlugin {
    /// Who it is and what it may do.
    pub context: Arc<PluginContext>,
    /// Its manifest.
    pub manifest: Manifest,
    /// Hex SHA-256 of the component bytes.
    pub sha256: String,
    /// The capabilities the operator granted (what `context.grants` was built from).
    pub granted: CapabilitySet,
    pre: bindings::PluginPre<HostState>,
    admission: Admission,
    /// What one of its calls is predicted to cost: picks the lane its calls and the
    /// host's work on its answers start in.
    cost: Arc<scheduler::CallCost>,
}

/// Bounds the calls of one plugin: `max` running at once, `max_waiting` waiting (they hold
/// no instance slot), then refusal.
#[derive(Debug)]
struct Admission {
    running: Arc<tokio::sync::Semaphore>,
    waiting: std::sync::atomic::AtomicUsize,
    max: usize,
    max_waiting: usize,
    patience: Duration,
}

/// Counts a waiting call until it is dropped (also when the wait is cancelled).
struct WaitingGuard<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Admission {
    fn new(max: u32, max_waiting: u32, patience: Duration) -> Admission {
        let max = usize::try_from(max).unwrap_or(usize::MAX).max(1);
        Admission {
            running: Arc::new(tokio::sync::Semaphore::new(max)),
            waiting: std::sync::atomic::AtomicUsize::new(0),
            max,
            max_waiting: usize::try_from(max_waiting).unwrap_or(usize::MAX),
            patience,
        }
    }

    /// A permit to run, or `None` when `max` calls already run and `max_waiting` more wait,
    /// or when no slot freed up within `patience` (`limits.max-queue-wait-ms`). The permit is owned: it travels with the
    /// call when the call is demoted to the background lane, and frees the slot only when
    /// the call really ends.
    async fn enter(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        if let Ok(permit) = self.running.clone().try_acquire_owned() {
            return Some(permit);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let _waiting = WaitingGuard(&self.waiting);
        tokio::time::timeout(self.patience, self.running.clone().acquire_owned())
            .await
            .ok()?
            .ok()
    }
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("id", &self.context.id)
            .field("version", &self.context.version)
            .field("sha256", &self.sha256)
            .finish_non_exhaustive()
    }
}

/// The engine, the linker and the services host imports use.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    db: Database,
    files: Option<lutetia_services::files::FileStore>,
    pooling: bool,
    cache: Option<cache::CompiledCache>,
    scheduler: scheduler::Scheduler,
    stop_ticker: Arc<AtomicBool>,
    metrics: Arc<lutetia_services::metrics::Metrics>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("pooling", &self.pooling)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Builds the engine (pooling allocator when the address space allows it, on-demand
    /// otherwise), starts the single epoch ticker thread and links the host interfaces.
    pub fn new(limits: &Limits, db: Database) -> Result<Runtime, RuntimeError> {
        let (engine, pooling) = match Engine::new(&engine_config(limits, true)) {
            Ok(engine) => (engine, true),
            Err(e) => {
                tracing::warn!(error = %e, "pooling allocator unavailable; using on-demand allocation");
                let engine = Engine::new(&engine_config(limits, false))
                    .map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
                (engine, false)
            }
        };
        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| RuntimeError::Engine(format!("linking WASI: {e:#}")))?;
        bindings::Plugin::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(
            &mut linker,
            |state| state,
        )
        .map_err(|e| RuntimeError::Engine(format!("linking lutetia:plugin: {e:#}")))?;

        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let scheduler = scheduler::Scheduler::new(
            cores,
            Duration::from_millis(u64::from(limits.interactive_cpu_ms)),
            i32::from(limits.background_nice),
        )
        .map_err(|e| RuntimeError::Engine(e.to_string()))?;
        let stop_ticker = Arc::new(AtomicBool::new(false));
        spawn_epoch_ticker(engine.clone(), stop_ticker.clone());
        Ok(Runtime {
            engine,
            linker,
            db,
            files: None,
            pooling,
            cache: None,
            scheduler,
            stop_ticker,
            metrics: Arc::default(),
        })
    }

    /// Gives the `files` interface its storage.
    pub fn with_files(mut self, files: lutetia_services::files::FileStore) -> Runtime {
        self.files = Some(files);
        self
    }

    /// Caches compiled components in `dir` (created if needed), so that a restart loads
    /// them instead of compiling. Without it every load compiles.
    pub fn with_compiled_cache(mut self, dir: &std::path::Path) -> Result<Runtime, RuntimeError> {
        let cache = cache::CompiledCache::open(dir, &self.engine)
            .map_err(|e| RuntimeError::Engine(format!("compiled cache folder {}: {e}", dir.display())))?;
        self.cache = Some(cache);
        Ok(self)
    }

    /// The storage of the `files` interface, if configured.
    pub fn files(&self) -> Option<&lutetia_services::files::FileStore> {
        self.files.as_ref()
    }

    /// The host's metrics: calls and host-service operations are counted here (the web
    /// layer adds its own and renders them).
    pub fn metrics(&self) -> &Arc<lutetia_services::metrics::Metrics> {
        &self.metrics
    }

    /// Whether the pooling allocator is in use.
    pub fn pooling(&self) -> bool {
        self.pooling
    }

    /// Compiles a component off the async threads, or loads it from the compiled cache
    /// (keyed by `sha256`, the hex SHA-256 of `wasm` that every caller already has).
    async fn compile(&self, id: &str, wasm: Vec<u8>, sha256: String) -> Result<Component, RuntimeError> {
        let engine = self.engine.clone();
        let cache = self.cache.clone();
        let plugin = id.to_owned();
        let compiled = tokio::task::spawn_blocking(move || {
            let Some(cache) = cache else {
                return Component::new(&engine, &wasm);
            };
            if let Some(component) = cache.get(&engine, &sha256) {
                tracing::info!(plugin = %plugin, "loaded from the compiled cache");
                return Ok(component);
            }
            let component = Component::new(&engine, &wasm)?;
            cache.put(&sha256, &component);
            Ok(component)
        })
        .await
        .map_err(|e| RuntimeError::Engine(format!("compiler task failed: {e}")))?;
        compiled.map_err(|e| RuntimeError::InvalidComponent {
            plugin: id.to_owned(),
            message: format!("{e:#}"),
        })
    }

    /// Compiles a component and lists its imports and exports.
    pub async fn interfaces(&self, id: &str, wasm: Vec<u8>) -> Result<ComponentInterfaces, RuntimeError> {
        let sha256 = lutetia_model::hash::sha256_hex(&wasm);
        let component = self.compile(id, wasm, sha256).await?;
        Ok(self.interfaces_of(&component))
    }

    fn interfaces_of(&self, component: &Component) -> ComponentInterfaces {
        let ty = component.component_type();
        ComponentInterfaces {
            imports: ty
                .imports(&self.engine)
                .map(|(name, _)| name.to_owned())
                .collect(),
            exports: ty
                .exports(&self.engine)
                .map(|(name, _)| name.to_owned())
                .collect(),
        }
    }

    /// Compiles (off the async threads) and links a plugin with the capabilities
    /// `granted`. Fails if the bytes are not a component, if it does not fit the `plugin`
    /// world, or (with [`Imports::Refuse`]) if it imports an interface whose capability was
    /// not granted.
    #[allow(clippy::too_many_arguments)]
    pub async fn load(
        &self,
        manifest: Manifest,
        wasm: Vec<u8>,
        sha256: String,
        config: BTreeMap<String, String>,
        limits: &Limits,
        granted: &CapabilitySet,
        ungranted_imports: Imports,
    ) -> Result<LoadedPlugin, RuntimeError> {
        let id = manifest.id.clone();
        let component = self.compile(&id, wasm, sha256.clone()).await?;
        for interface in self.interfaces_of(&component).imports {
            if let Some(capability) = capability_for_import(&interface)
                && !granted.contains(&capability)
            {
                if ungranted_imports == Imports::Deny {
                    tracing::warn!(plugin = %id, %interface, %capability, "imports an interface it was not granted: its calls will be denied");
                    continue;
                }
                return Err(RuntimeError::NotGranted {
                    plugin: id,
                    interface,
                    capability,
                });
            }
        }
        let instance_pre =
            self.linker
                .instantiate_pre(&component)
                .map_err(|e| RuntimeError::WorldMismatch {
                    plugin: id.clone(),
                    message: format!("{e:#}"),
                })?;
        let pre = bindings::PluginPre::new(instance_pre).map_err(|e| RuntimeError::WorldMismatch {
            plugin: id.clone(),
            message: format!("{e:#}"),
        })?;
        let mut merged = manifest.config.clone();
        merged.extend(config);
        let metrics = self.metrics.plugin(&id);
        let context = PluginContext {
            id,
            version: manifest.version.to_string(),
            grants: Grants::granted(&manifest, granted, limits),
            config: merged,
            limits: CallLimits::resolve(&manifest, limits),
            log_meter: LogMeter::default(),
            metrics,
        };
        Ok(LoadedPlugin {
            context: Arc::new(context),
            manifest,
            sha256,
            granted: granted.clone(),
            pre,
            admission: Admission::new(
                limits.max_concurrent_per_plugin,
                limits.max_queued_per_plugin,
                Duration::from_millis(limits.max_queue_wait_ms),
            ),
            cost: Arc::default(),
        })
    }

    /// Whether `plugin`'s calls, and the host's work on its answers, start in the
    /// low-priority background lane: what its recent calls cost is over
    /// `limits.interactive-cpu-ms` (see the `scheduler` module).
    pub fn is_expensive(&self, plugin: &LoadedPlugin) -> bool {
        self.scheduler.is_expensive(&plugin.cost)
    }

    /// Charges `plugin` for host work done on one of its answers in the interactive lane
    /// (cleaning a page inline or on a page worker), so that its next answers are handled
    /// in the background lane if that was expensive.
    pub fn charge(&self, plugin: &LoadedPlugin, used: Duration) {
        plugin.cost.observe(used);
    }

    /// Counts an answer of `plugin` the host refused (or a call that failed) against it:
    /// its next calls start in the background lane for a while.
    pub fn penalize(&self, plugin: &LoadedPlugin) {
        plugin.cost.penalize(self.scheduler.threshold());
    }

    /// Runs the host's synchronous `work` on an answer of `plugin` in the background
    /// lane's low-priority threads, charging the time to `plugin`: for plugins that
    /// [`is_expensive`](Runtime::is_expensive). `None` when the work panicked or the
    /// runtime is shutting down.
    pub async fn background_work<T: Send + 'static>(
        &self,
        plugin: &LoadedPlugin,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        self.scheduler.run_work(&plugin.cost, work).await
    }

    /// Calls the plugin's `handler.handle` in a fresh instance, under its limits.
    pub async fn handle(&self, plugin: &LoadedPlugin, request: Request) -> Result<Reply, CallError> {
        self.invoke(plugin, move |store, instance| {
            Box::pin(async move {
                instance
                    .lutetia_plugin_handler()
                    .call_handle(store, &request)
                    .await
            })
        })
        .await
    }

    /// Runs `call` on a fresh instance of `plugin` under its limits (epoch deadline, Tokio
    /// timeout, memory limiter) and its share of the CPU (see [`scheduler`]), and classifies
    /// its failures, and counts how the call ended. Every export goes through here.
    async fn invoke<T: Send + metrics::Answered + 'static>(
        &self,
        plugin: &LoadedPlugin,
        call: impl for<'a> FnOnce(
            &'a mut Store<HostState>,
            &'a bindings::Plugin,
        ) -> scheduler::CallFuture<'a, wasmtime::Result<T>>
        + Send
        + 'static,
    ) -> Result<T, CallError> {
        let call = self.invoke_with(plugin, self.db.clone(), self.files.clone(), call);
        metrics::metered(&plugin.context.metrics, call).await
    }

    /// [`Runtime::invoke`] with the services the call's host imports use (`migrate`: a
    /// database scope and staged files, see `calls.rs`).
    async fn invoke_with<T: Send + 'static>(
        &self,
        plugin: &LoadedPlugin,
        db: Database,
        files: Option<lutetia_services::files::FileStore>,
        call: impl for<'a> FnOnce(
            &'a mut Store<HostState>,
            &'a bindings::Plugin,
        ) -> scheduler::CallFuture<'a, wasmtime::Result<T>>
        + Send
        + 'static,
    ) -> Result<T, CallError> {
        let limits = plugin.context.limits;
        let Some(permit) = plugin.admission.enter().await else {
            return Err(CallError::Overloaded(format!(
                "{} calls of this plugin are running and {} may wait, for at most {:?}",
                plugin.admission.max, plugin.admission.max_waiting, plugin.admission.patience
            )));
        };
        let mut state = HostState::new(plugin.context.clone(), db, STDERR_CAPTURE);
        state.files = files;
        let stderr = state.stderr.clone();
        let memory_hit = state.limiter.exceeded.clone();
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        // Guest code comes back to the executor at every tick: no call holds a worker
        // thread for longer than one tick, and the scheduler can demote it between two
        // polls. The deadline is checked at the same moment: the CPU time of the polls so
        // far (one tick behind at most), so a call the kernel or the background lane keeps
        // waiting is not cut short for it; and a wall-clock bound on top.
        let used = Arc::new(scheduler::CpuUsed::default());
        let wall_limit = limits.timeout.saturating_mul(WALL_CLOCK_FACTOR);
        let wall_deadline = std::time::Instant::now() + wall_limit;
        let cpu_used = used.clone();
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            Ok(
                if cpu_used.get() >= limits.timeout || std::time::Instant::now() >= wall_deadline {
                    UpdateDeadline::Interrupt
                } else {
                    UpdateDeadline::Yield(1)
                },
            )
        });

        let pre = plugin.pre.clone();
        let run: scheduler::CallFuture<'static, wasmtime::Result<T>> = Box::pin(async move {
            // The slot is freed when the call really ends, in whichever lane.
            let _permit = permit;
            let instance = pre.instantiate_async(&mut store).await?;
            call(&mut store, &instance).await
        });
        let scheduled = self.scheduler.run(&plugin.cost, &used, run, || {
            Err(wasmtime::Error::msg("the call was cancelled"))
        });
        let mut watch = CancelWatch(true);
        let outcome = tokio::time::timeout(wall_limit + TIMEOUT_GRACE, scheduled).await;
        watch.0 = false;
        let error = match outcome {
            Ok((Ok(answer), _lane)) => return Ok(answer),
            Ok((Err(error), _lane)) => error,
            Err(_elapsed) => {
                self.penalize(plugin);
                return Err(CallError::Timeout(limits.timeout));
            }
        };
        if error
            .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
            .is_some()
        {
            return Err(CallError::Overloaded(format!("{error:#}")));
        }
        // Every other failure is the plugin's: a trap, its deadline, its memory.
        self.penalize(plugin);
        if memory_hit.load(Ordering::Relaxed) {
            return Err(CallError::MemoryExceeded(limits.memory_mb));
        }
        if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            return Err(CallError::Timeout(limits.timeout));
        }
        // One line each, escaped and bounded: wasmtime's error spans lines (the wasm
        // backtrace), and the guest wrote its stderr, so neither may start a log line.
        let mut message = log_meter::one_log_line(&format!("{error:#}"));
        let captured = stderr.contents();
        if !captured.is_empty() {
            message.push_str("; stderr: ");
            message.push_str(&log_meter::one_log_line(
                String::from_utf8_lossy(&captured).trim_end(),
            ));
        }
        Err(CallError::Trap(message))
    }
}

/// Logs a call that is dropped before it answered: its caller went away (a visitor closed
/// the connection), so the guest was interrupted and its slot freed.
struct CancelWatch(bool);

impl Drop for CancelWatch {
    fn drop(&mut self) {
        if self.0 {
            tracing::info!("plugin call cancelled before it ended: the client went away");
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

/// One ticker thread per engine (a ticker per call ruins throughput, wasmtime#11814).
fn spawn_epoch_ticker(engine: Engine, stop: Arc<AtomicBool>) {
    let spawned = std::thread::Builder::new()
        .name("lutetia-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        });
    if let Err(e) = spawned {
        // Without a ticker deadlines would only be enforced by the Tokio timeout.
        tracing::error!(error = %e, "cannot start the epoch ticker thread");
    }
}

fn engine_config(limits: &Limits, pooling: bool) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    let max_memory = usize::try_from(limits.max_memory_mb).unwrap_or(usize::MAX / (1 << 20)) << 20;
    if pooling {
        // Sized from the number of instances that may run at once, as Spin does: a plugin
        // component holds a few core instances, memories and tables.
        let n = limits.max_instances;
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(8))
            .total_memories(n.saturating_mul(2))
            .total_tables(n.saturating_mul(4))
            .total_stacks(n)
            .max_memory_size(max_memory)
            .max_memories_per_module(1)
            .max_tables_per_module(2)
            .max_component_instance_size(4 << 20)
            .max_core_instance_size(4 << 20)
            .table_elements(100_000)
            // Zeroing what a call dirtied beats unmapping it and faulting it in again
            // (benchmarks.md: 4x the requests/s of a Python plugin).
            .linear_memory_keep_resident(usize::try_from(limits.keep_resident_mb).unwrap_or(0) << 20)
            .table_keep_resident(1 << 20);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}
