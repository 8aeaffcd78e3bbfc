//! `lutetia:plugin/files`: binary files private to each plugin.
//!
//! Every function checks the grant first, then reaches [`lutetia_services::files::FileStore`] with the
//! calling plugin's id: a plugin can only ever name its own files, and the store validates
//! names, types, sizes and the quota.

use super::bindings::lutetia::plugin::files::{FileInfo, Host};
use super::bindings::lutetia::plugin::types::Error;
use super::state::HostState;
use lutetia_db::files::FileRow;
use lutetia_model::manifest::FilesCapability;
use lutetia_services::files::{FileStore, FilesError};
use lutetia_services::metrics::Service;

/// Most files returned by one `list`.
pub const MAX_LIST: u32 = 1000;

impl HostState {
    fn files_granted(&self, operation: &str) -> Result<(FilesCapability, FileStore), Error> {
        let Some(grant) = self.plugin.grants.files.clone() else {
            tracing::warn!(plugin = %self.plugin.id, operation, "denied: files capability not granted");
            return Err(Error::Denied);
        };
        let Some(store) = self.files.clone() else {
            tracing::error!(plugin = %self.plugin.id, operation, "file storage not configured");
            return Err(Error::Unavailable("file storage is not configured".into()));
        };
        Ok((grant, store))
    }

    fn files_error(&self, error: FilesError) -> Error {
        match error {
            FilesError::Invalid(m) => Error::Invalid(m),
            FilesError::QuotaExceeded(m) => {
                tracing::info!(plugin = %self.plugin.id, reason = %m, "files quota exceeded");
                Error::QuotaExceeded
            }
            other => {
                tracing::error!(plugin = %self.plugin.id, error = %other, "file storage error");
                Error::Unavailable("file storage temporarily unavailable".into())
            }
        }
    }
}

fn info(row: FileRow) -> FileInfo {
    FileInfo {
        name: row.name,
        content_type: row.content_type,
        size: u64::try_from(row.size).unwrap_or(0),
        sha256: row.sha256,
        created_at: u64::try_from(row.created_at).unwrap_or(0),
    }
}

impl Host for HostState {
    async fn put(&mut self, name: String, content_type: String, data: Vec<u8>) -> Result<FileInfo, Error> {
        let state = &mut *self;
        let answer = async move {
            let (grant, store) = state.files_granted("put")?;
            store
                .put(&state.plugin.id, &grant, &name, &content_type, data)
                .await
                .map(info)
                .map_err(|e| state.files_error(e))
        }
        .await;
        self.counted(Service::Files, answer)
    }

    async fn get(&mut self, name: String) -> Result<Option<(FileInfo, Vec<u8>)>, Error> {
        let state = &mut *self;
        let answer = async move {
            let (_, store) = state.files_granted("get")?;
            store
                .get(&state.plugin.id, &name)
                .await
                .map(|found| found.map(|(row, data)| (info(row), data)))
                .map_err(|e| state.files_error(e))
        }
        .await;
        self.counted(Service::Files, answer)
    }

    async fn stat(&mut self, name: String) -> Result<Option<FileInfo>, Error> {
        let state = &mut *self;
        let answer = async move {
            let (_, store) = state.files_granted("stat")?;
            store
                .stat(&state.plugin.id, &name)
                .await
                .map(|found| found.map(info))
                .map_err(|e| state.files_error(e))
        }
        .await;
        self.counted(Service::Files, answer)
    }

    async fn delete(&mut self, name: String) -> Result<bool, Error> {
        let state = &mut *self;
        let answer = async move {
            let (_, store) = state.files_granted("delete")?;
            store
                .delete(&state.plugin.id, &name)
                .await
                .map_err(|e| state.files_error(e))
        }
        .await;
        self.counted(Service::Files, answer)
    }

    async fn list(&mut self, prefix: String, limit: u32) -> Result<Vec<FileInfo>, Error> {
        let state = &mut *self;
        let answer = async move {
            let (_, store) = state.files_granted("list")?;
            store
                .list(&state.plugin.id, &prefix, limit.clamp(1, MAX_LIST))
                .await
                .map(|rows| rows.into_iter().map(info).collect())
                .map_err(|e| state.files_error(e))
        }
        .await;
        self.counted(Service::Files, answer)
    }
}
