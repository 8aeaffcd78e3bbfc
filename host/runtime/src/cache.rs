//! The compiled-component cache: `Component::serialize` output on disk, so that a host
//! restarting with N plugins loads them instead of compiling them again.
//!
//! Files are named `SHA256-ENGINE.cwasm`: the hex SHA-256 of the component bytes and a hash
//! of wasmtime's `precompile_compatibility_hash` (wasmtime version, target, and every
//! engine setting that affects code). A changed component, wasmtime or engine configuration
//! never meets an old file. Files are written to a temporary name and renamed, so a reader
//! never sees half a file.
//!
//! Loading a serialized component is `unsafe` in wasmtime because the bytes are trusted
//! machine code. It is sound here because the cache only ever reads files this host wrote
//! itself, in a folder it owns (created `0700`), under names derived from hashes it
//! computed; a precompiled file from anywhere else is never loaded (see DESIGN "Hot reload
//! and versions"). wasmtime also checks each file's header against the engine and refuses a
//! mismatch, which is then recompiled.
// The one place that needs `unsafe`: the workspace denies it everywhere else.
#![allow(unsafe_code)]

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

/// A folder of compiled components for one engine configuration.
#[derive(Debug, Clone)]
pub struct CompiledCache {
    dir: PathBuf,
    engine_key: String,
}

impl CompiledCache {
    /// Opens (creating, mode `0700`) the cache folder `dir` for `engine`.
    pub fn open(dir: &Path, engine: &Engine) -> std::io::Result<CompiledCache> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir)?;
        // SipHash with fixed keys: stable for a given build, which is all the key needs
        // (another build has another wasmtime header anyway).
        #[allow(deprecated)]
        let mut hasher = std::hash::SipHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(CompiledCache {
            dir: dir.to_owned(),
            engine_key: format!("{:016x}", hasher.finish()),
        })
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{}.cwasm", self.engine_key))
    }

    /// The compiled component for `sha256`, if this host cached it before.
    pub fn get(&self, engine: &Engine, sha256: &str) -> Option<Component> {
        let path = self.path(sha256);
        if !path.is_file() {
            return None;
        }
        // SAFETY: `path` is in the host-owned cache folder under a name derived from the
        // hash of the component, and only `put` below writes there (module docs).
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "compiled cache entry unusable; recompiling");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores a compiled component. Failures are logged: the cache is an optimisation.
    pub fn put(&self, sha256: &str, component: &Component) {
        let path = self.path(sha256);
        let result = component
            .serialize()
            .map_err(std::io::Error::other)
            .and_then(|bytes| {
                let tmp = self.dir.join(format!(
                    ".{sha256}-{}.{}.tmp",
                    self.engine_key,
                    std::process::id()
                ));
                std::fs::write(&tmp, bytes)?;
                std::fs::rename(&tmp, &path)
            });
        if let Err(e) = result {
            tracing::warn!(file = %path.display(), error = %e, "cannot write the compiled cache");
        }
    }
}
