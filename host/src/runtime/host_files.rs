//! `lutetia:plugin/files`: binary files private to each plugin.
//!
//! SCAFFOLD: the interface is linked and grant-checked; the storage is being written.

use super::bindings::lutetia::plugin::files::{FileInfo, Host};
use super::bindings::lutetia::plugin::types::Error;
use super::state::HostState;

impl HostState {
    fn files_granted(&self, operation: &str) -> Result<(), Error> {
        if self.plugin.grants.files.is_some() {
            Ok(())
        } else {
            tracing::warn!(plugin = %self.plugin.id, operation, "denied: files capability not granted");
            Err(Error::Denied)
        }
    }
}

fn not_yet() -> Error {
    Error::Unavailable("file storage is not available yet".into())
}

impl Host for HostState {
    async fn put(&mut self, _name: String, _content_type: String, _data: Vec<u8>) -> Result<FileInfo, Error> {
        self.files_granted("put")?;
        Err(not_yet())
    }

    async fn get(&mut self, _name: String) -> Result<Option<(FileInfo, Vec<u8>)>, Error> {
        self.files_granted("get")?;
        Err(not_yet())
    }

    async fn stat(&mut self, _name: String) -> Result<Option<FileInfo>, Error> {
        self.files_granted("stat")?;
        Err(not_yet())
    }

    async fn delete(&mut self, _name: String) -> Result<bool, Error> {
        self.files_granted("delete")?;
        Err(not_yet())
    }

    async fn list(&mut self, _prefix: String, _limit: u32) -> Result<Vec<FileInfo>, Error> {
        self.files_granted("list")?;
        Err(not_yet())
    }
}
