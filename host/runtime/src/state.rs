//! Per-call store data: the plugin's context, its sandboxed WASI view and its limiter.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::PluginContext;
use lutetia_db::Database;

/// What a `Store` holds for one call.
pub struct HostState {
    /// The plugin being called.
    pub plugin: Arc<PluginContext>,
    /// Services.
    pub db: Database,
    /// Captured stderr (panic messages), shown in the log when the call traps.
    pub stderr: MemoryOutputPipe,
    /// Memory limiter.
    pub limiter: MemoryLimiter,
    /// Storage of the `files` interface (`None`: answers `unavailable`).
    pub files: Option<lutetia_services::files::FileStore>,
    /// What this call logged (per-call log limits; reports drops when the call ends).
    pub log: super::log_meter::CallLog,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl HostState {
    /// A sandbox with no files, no environment, no network, and stderr captured.
    pub fn new(plugin: Arc<PluginContext>, db: Database, stderr_capacity: usize) -> HostState {
        let stderr = MemoryOutputPipe::new(stderr_capacity);
        let wasi = WasiCtx::builder().stderr(stderr.clone()).build();
        let limiter = MemoryLimiter::new(u64::from(plugin.limits.memory_mb) << 20);
        HostState {
            log: super::log_meter::CallLog::new(plugin.clone()),
            plugin,
            db,
            stderr,
            limiter,
            files: None,
            wasi,
            table: ResourceTable::new(),
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps the total linear memory of one instance and remembers whether the cap was hit, so
/// the resulting trap is reported as a memory overrun rather than a bug.
pub struct MemoryLimiter {
    max_bytes: u64,
    used_bytes: u64,
    /// Set when a growth was refused.
    pub exceeded: Arc<AtomicBool>,
}

impl MemoryLimiter {
    fn new(max_bytes: u64) -> MemoryLimiter {
        MemoryLimiter {
            max_bytes,
            used_bytes: 0,
            exceeded: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let growth = desired.saturating_sub(current) as u64;
        let total = self.used_bytes.saturating_add(growth);
        if total > self.max_bytes {
            self.exceeded.store(true, Ordering::Relaxed);
            return Ok(false);
        }
        self.used_bytes = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

impl super::bindings::lutetia::plugin::types::Host for HostState {}
